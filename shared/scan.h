/*
 * scan - what the content scanners say of a message, and how the rules ask
 *
 * SYNOPSIS
 *	scan_message m = {.spool = sp, .ip = "192.0.2.1", ...};
 *	scan_result res[SCAN_N];
 *	long long deadline[SCAN_N];
 *
 *	for (k = 0; k < SCAN_N; k++) scan_result_init(&res[k]);
 *	p->scan(p->self, wanted, &m, deadline, res);	the daemon's scanners
 *	... res[SCAN_CLAMD].status == SCAN_OK && res[SCAN_CLAMD].infected ...
 *	for (k = 0; k < SCAN_N; k++) scan_result_free(&res[k]);
 *
 * DESCRIPTION
 *	Three scanners, each a provider of the same shape: clamd (clamd.h),
 *	spamd (spamd.h) and rspamd (rspamd.h). The rules see only a
 *	scan_result per scanner; the scanners module (scanners.h) owns the
 *	connections, the concurrency caps, the breakers and the timing, and
 *	runs the scanners a message needs at once, each until its own
 *	deadline.
 *
 *	A result is SCAN_OK with what the scanner found, or why not:
 *	SCAN_SKIPPED (not asked: stress, a message over scan_size_limit, no
 *	socket configured), SCAN_TIMEOUT (its deadline passed: waiting for a
 *	free connection under the cap, connecting, sending or reading),
 *	SCAN_ERROR (refused, a reply that does not parse, the scanner's own
 *	error, its breaker open). why says which, for the log.
 *
 * CONCURRENCY
 *	A scan_result belongs to one caller; scan() fills each result from
 *	its own thread and returns when all are final.
 */
#ifndef MS_SCAN_H
#define MS_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "spool.h"
#include "strbuf.h"

enum scan_kind { SCAN_CLAMD, SCAN_SPAMD, SCAN_RSPAMD, SCAN_N };
#define SCAN_BIT(k) (1u << (unsigned)(k))
#define SCAN_ALL (SCAN_BIT(SCAN_N) - 1)

enum scan_status { SCAN_NOT_RUN, SCAN_OK, SCAN_SKIPPED, SCAN_TIMEOUT, SCAN_ERROR };

const char *scan_kind_name(enum scan_kind k);     /* "clamd" */
const char *scan_status_name(enum scan_status s); /* "ok", "timeout", ... */

typedef struct scan_result {
	enum scan_status status;
	long long ms;  /* time it took, waiting for a connection included */
	bool answered; /* the scanner replied (even with an error): it is up */
	strbuf why;    /* not SCAN_OK: the reason */
	bool infected; /* clamd */
	strbuf virus;  /* clamd: the signature's name; "" when clean */
	bool spam;     /* spamd's verdict; rspamd: an action other than "no action" */
	double score, required; /* spamd, rspamd */
	char **symbols;         /* spamd's rule names, rspamd's symbols (heap) */
	size_t nsymbols;
	char action[32]; /* rspamd: "no action", "greylist", ... "reject" */
} scan_result;

void scan_result_init(scan_result *r);
void scan_result_free(scan_result *r); /* and ready for reuse */
void scan_result_add_symbol(scan_result *r, const char *name, size_t len);

/* The message and its envelope; strings may be NULL. */
typedef struct scan_message {
	const spool *spool; /* headers, a blank line, the body (CRLF) */
	const char *ip, *helo, *from, *queue_id, *user, *hostname;
	const char *settings_id; /* rspamd: the personality's profile; NULL/"": none */
	const char *const *rcpt;
	size_t nrcpt;
	/* Each scanner's own budget (ms; 0: unknown). A scan's deadline may be
	   sooner, the message's; the breaker measures a scanner's silence
	   against its own budget. */
	long long budget_ms[SCAN_N];
} scan_message;

/* The daemon's scanners (scanners.h), or a test's fake. */
typedef struct scan_provider {
	void *self;
	/* SCAN_BIT()s of the scanners that have a socket configured. */
	unsigned (*configured)(void *self);
	/* Runs the scanners in kinds (at once), each until deadline[k]
	   (budget_now_ms() clock); fills out[k] for them, leaves the others. */
	void (*scan)(void *self, unsigned kinds, const scan_message *m,
	             const long long deadline[SCAN_N], scan_result out[SCAN_N]);
} scan_provider;

#endif
