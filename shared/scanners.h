/*
 * scanners - the daemon's content scanners: connections, caps, breakers
 *
 * SYNOPSIS
 *	scanners *sc = scanners_create();
 *	scanners_configure(sc, &cfg);		at start and at each reload
 *	const scan_provider *p = scanners_provider(sc);
 *	p->scan(p->self, SCAN_BIT(SCAN_CLAMD) | SCAN_BIT(SCAN_SPAMD), &m,
 *	        deadline, res);
 *	scanners_get_stats(sc, SCAN_CLAMD, &st);
 *	scanners_free(sc);
 *
 * DESCRIPTION
 *	One provider for the three scanners (scan.h). Per scanner it keeps:
 *
 *	the endpoint (clamd_socket, spamd_socket, rspamd_socket; empty: not
 *	configured, and a check on it is skipped);
 *
 *	a concurrency cap, a counting semaphore (clamd_max_connections,
 *	...): a scan waits for a free slot at most until its deadline, and
 *	then times out without having touched the scanner. Set it no higher
 *	than the scanner's own limit (clamd's MaxThreads, spamd's
 *	--max-children): past it the scanner queues the connection itself
 *	and a deadline cannot take it back.
 *
 *	a circuit breaker, the DNSBL zones' one (dns-breaker.h) with the
 *	scanner's name as its key: scanner_breaker_threshold scans in a row
 *	that timed out or could not connect suspend the scanner for
 *	scanner_breaker_time (its scans fail at once: SCAN_ERROR "suspended"),
 *	then one scan probes. A scanner that replies, even with an error of
 *	its own, is up.
 *
 *	counters for the statistics and metrics: scans, outcomes, the
 *	slots in use and the most ever in use.
 *
 *	scan() runs the scanners asked for at once, one thread each (the
 *	caller's thread runs one of them), each until its own deadline, and
 *	returns when every one is final. A scanner that is not configured
 *	gives SCAN_SKIPPED.
 *
 *	scanners_configure() applies new endpoints, caps and breaker
 *	parameters in place: scans under way finish with what they started
 *	with; a smaller cap lets no new scan in until enough end.
 *
 * CONCURRENCY
 *	scan() from any number of threads at once; scanners_configure() from
 *	one thread at a time, concurrently with them. One mutex per scanner
 *	covers its endpoint and its slots.
 */
#ifndef MS_SCANNERS_H
#define MS_SCANNERS_H

#include <stdbool.h>

#include "scan.h"
#include "strbuf.h"

typedef struct scanners scanners;

typedef struct scanners_config {
	const char *endpoint[SCAN_N]; /* "" or NULL: not configured */
	unsigned max_connections[SCAN_N];
	unsigned breaker_threshold;
	unsigned breaker_ms;
} scanners_config;

typedef struct scanners_stats {
	unsigned long long scans, ok, timeouts, errors, suspended;
	unsigned busy, peak; /* slots in use now, and at most */
} scanners_stats;

/* How one kind of scanner is asked; client: its connection state or NULL
   (rspamd keeps connections; clamd and spamd connect per scan). */
typedef struct scanner_ops {
	void *(*client_new)(const char *endpoint, strbuf *why); /* NULL: none */
	void (*client_free)(void *client);
	enum scan_status (*scan)(void *client, const char *endpoint,
	                         const scan_message *m, long long deadline,
	                         scan_result *out);
} scanner_ops;
extern const scanner_ops scan_rspamd_ops; /* scan-rspamd.c */

scanners *scanners_create(void);
void scanners_free(scanners *sc); /* NULL-safe; no scan may be under way */
bool scanners_configure(scanners *sc, const scanners_config *cfg, strbuf *why);
const scan_provider *scanners_provider(scanners *sc);
void scanners_get_stats(scanners *sc, enum scan_kind k, scanners_stats *out);

#endif
