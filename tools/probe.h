/*
 * probe - what the files of milter-probe share
 *
 * SYNOPSIS
 *	probe-main.c	the command line: probe_opts from argv, usage
 *	probe-message.c	the message: headers and body from files or made up
 *	probe-macro.c	the macros Postfix would send at each stage
 *	probe-txn.c	one SMTP transaction over the milter protocol
 *	probe-bench.c	--bench: many transactions at once, the figures
 *
 * DESCRIPTION
 *	probe_opts is what the command line asked for. It is filled once
 *	by probe-main.c and probe-message.c, then only read: --bench hands
 *	each of its threads a copy, of which it changes only the client
 *	address and the cut. Everything a transaction learns on the way
 *	(what the milter negotiated, its verdicts) lives in probe-txn.c.
 *
 *	Errors in the command line end the program through
 *	probe_usage_error() (exit PROBE_EXIT_USAGE); a transaction's errors
 *	are printed on stderr and make probe_txn_run() return
 *	PROBE_EXIT_FAIL.
 *
 * CONCURRENCY
 *	probe_txn_run() and probe_macros_put() keep no state of their own
 *	and run in every --bench thread at once; the rest runs in the main
 *	thread before or after them.
 */
#ifndef MS_PROBE_H
#define MS_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "strbuf.h"

#define PROBE_NAME "milter-probe"
#define PROBE_MTA_HOSTNAME "probe.example" /* the j macro */
#define PROBE_IDLE_HOLD_S 3600        /* --idle without --hold */

enum { PROBE_EXIT_DONE = 0, PROBE_EXIT_FAIL = 1, PROBE_EXIT_USAGE = 2 };

/* Append one element to a growing array arr of n; evaluates to it. */
#define PROBE_PUSH(arr, n)                                                               \
	((arr) = ms_xrealloc((arr), ((n) + 1) * sizeof *(arr)), &(arr)[(n)++])

typedef struct probe_macro {
	int stage; /* PROTO_M_* */
	char *name;
	char *value;
} probe_macro;

typedef struct probe_header {
	char *name;
	char *value; /* everything after the colon; folded lines joined by \n */
} probe_header;

typedef struct probe_opts {
	const char *socket;
	int family;           /* MPROTO_FAM_* */
	char client_addr[64]; /* as sent; "" for 'U' */
	const char *client_name;
	unsigned client_port;
	const char *helo;
	char **from; /* argv: address, then ESMTP args */
	char ***rcpts;
	size_t nrcpt;
	probe_header *hdrs;
	size_t nhdr;
	strbuf body; /* CRLF line ends */
	probe_macro *macros;
	size_t nmacro;
	const char *queue_id;
	int timeout_ms;
	bool verbose;
	bool quiet;            /* --bench: no per-stage lines */
	unsigned bench_conc;   /* --bench C,N: C sessions at once */
	unsigned long bench_n; /* ... N transactions in all */
	double bench_secs;     /* --bench C,Ds: or as many as fit in D seconds */
	int stage_delay_ms;    /* --stage-delay: the SMTP client's think time */
	bool bench_vary;       /* --bench-vary-client: a new IPv6 client each time */
	unsigned hold_s;       /* --hold: pause after connect, session open */
	bool cut;              /* --cut-after: close after cut_after bytes */
	size_t cut_after;
	FILE *bench_transcript; /* --bench-transcript: one line per transaction */
} probe_opts;

/* What a milter decided for the message. */
typedef enum probe_verdict {
	PROBE_NONE,
	PROBE_ACCEPT,
	PROBE_DISCARD,
	PROBE_QUARANTINE,
	PROBE_REJECT,
	PROBE_TEMPFAIL,
	PROBE_CUT, /* --cut-after: we hung up before any verdict */
	PROBE_SHUTDOWN,
	PROBE_NVERDICT
} probe_verdict;

/* probe-main.c: "milter-probe: MESSAGE", a hint, exit PROBE_EXIT_USAGE. */
void probe_usage_error(const char *fmt, ...)
        __attribute__((format(printf, 1, 2), noreturn));

/* probe-message.c: what the command line asks the message to be. */
typedef struct probe_message_args {
	const char *body_file;    /* --body, or NULL */
	const char *message_file; /* --message, or NULL */
	const char **headers;     /* --header arguments */
	size_t nheaders;
	long gen_headers; /* --headers N, or -1 */
	long gen_body;    /* --body-size N, or -1 */
} probe_message_args;

/*
 * Fill opts->hdrs and opts->body from a; opts->from, opts->rcpts and
 * opts->queue_id are already set (the default headers name them). Exits on
 * a usage error.
 */
void probe_message_build(probe_opts *opts, const probe_message_args *a);

/*
 * probe-macro.c: queue on out the D packet of macros for command cmd at
 * stage (PROTO_M_*): the milter's own list if it negotiated one
 * (milter_list, or NULL), else Postfix's default list plus the -m names of
 * the stage; rcpt_addr gives {rcpt_addr}. -1 when it does not fit in one
 * packet.
 */
int probe_macros_put(strbuf *out, const probe_opts *opts, const char *milter_list,
                     int stage, int cmd, const char *rcpt_addr);

/*
 * Milliseconds since *t0 (CLOCK_MONOTONIC) to the microsecond: a reply over
 * a unix socket takes less than the whole milliseconds of budget_now_ms().
 */
double probe_ms_since(const struct timespec *t0);

/* What a transaction measured: the longest the MTA waited for one reply. */
typedef struct probe_txn_stats {
	double slowest_reply_ms; /* from writing a command to its reply */
	const char *slowest_stage; /* its stage (static), NULL before any */
} probe_txn_stats;

/*
 * probe-txn.c: one transaction on its own connection. *v and *stage get the
 * overall verdict (see probe_put_result()); returns PROBE_EXIT_DONE or
 * PROBE_EXIT_FAIL. With a transcript, the stage lines go there instead of
 * stdout. stats, when not NULL, gets what was measured.
 */
int probe_txn_run(const probe_opts *opts, probe_verdict *v, const char **stage,
                  strbuf *transcript, probe_txn_stats *stats);

/* The "result:" line, without its newline. */
void probe_put_result(strbuf *b, probe_verdict v, const char *stage);

const char *probe_verdict_name(probe_verdict v); /* "continue", "accept", ... */

/* probe-bench.c: --bench; prints its figures, returns the exit status. */
int probe_bench_run(const probe_opts *opts);

#endif
