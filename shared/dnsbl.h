/*
 * dnsbl - DNSBL and RHSBL lookups: parallel, deadline-bounded, cached, with a
 *	per-zone circuit breaker
 *
 * SYNOPSIS
 *	ctx = dnsbl_create(&cfg, &err);			once per config
 *	f = dnsbl_filter_parse("127.0.0.[2..11]", &err);	at load time
 *
 *	dnsbl_query q[2];				per session, per stage
 *	dnsbl_query_init(&q[0], DNSBL_IP, client_addr, "zen.example.org", f);
 *	dnsbl_query_init(&q[1], DNSBL_NAME, helo_name, "dbl.example.org", NULL);
 *	first = dnsbl_lookup(ctx, q, 2, stage_deadline, DNSBL_FIRST);
 *	... q[i].status, q[i].txt, q[i].addr ...
 *	dnsbl_query_free(&q[0]); dnsbl_query_free(&q[1]);
 *
 *	call = dnsbl_start(ctx, q, 2, stage_deadline, 0);	the same, a step
 *	if (dnsbl_wait(call, 1) && q[1].status == DNSBL_LISTED) ...	at a time
 *	dnsbl_finish(call);			q[0] is CANCELLED if still out
 *
 * QUERIES
 *	DNSBL_IP: the client address as the MTA sends it ("192.0.2.1",
 *	"2001:db8::1"; no brackets), looked up as its reversed octets
 *	(1.2.0.192.ZONE) or, for IPv6, its 32 reversed nibbles. An
 *	IPv4-mapped IPv6 address (::ffff:192.0.2.1) is looked up as the IPv4
 *	address it carries, as Postfix does. DNSBL_NAME: a domain (a HELO name,
 *	a sender's domain) looked up as DOMAIN.ZONE. Names are compared and
 *	cached in lower case; a subject or zone that is not a valid name gives
 *	DNSBL_ERROR with the reason in err, and nothing is sent.
 *
 *	The A record decides. A listing counts only when at least one of its
 *	A records passes the query's filter (NULL: any A record); addr[] gets
 *	the records that passed. TXT (the list's reason, for $rbl_reason) is
 *	asked only for a listed name, as soon as its A answer is in, while the
 *	other queries of the call are still out. The TXT text is the record's
 *	strings joined, several records joined by "; ", bytes outside printable
 *	ASCII replaced by '?', at most DNSBL_TXT_MAX bytes: it is safe to put in
 *	an SMTP reply once % is doubled.
 *
 * FILTERS (Postfix's reject_rbl_client domain=d.d.d.d, postconf(5))
 *	Four fields separated by ".": each a decimal number 0..255, or a
 *	"[]" holding one or more ";"-separated numbers or number..number
 *	ranges: 127.0.0.2, 127.0.0.[2..11], 127.0.[0..255].[2;4;8],
 *	127.0.0.[2;4..7;10]. As in Postfix 2.8+ (global/ip_match.c): a whole
 *	pattern inside one pair of [] is accepted too ("[127.0.0.2]"); a range
 *	must not run backwards; a "[]" cannot span fields or follow a number
 *	in the same field; no white space. Postfix's source comment shows
 *	"[2,4,6..8]" with commas, but its parser only takes ";": so do we.
 *
 * RESULTS (one per query)
 *	DNSBL_LISTED	a passing A record (addr[], naddr; txt if it came in time)
 *	DNSBL_NOT_LISTED NXDOMAIN, no A record, or none passed the filter
 *	DNSBL_ERROR	SERVFAIL, REFUSED, bad name, ... (err says which)
 *	DNSBL_TIMEOUT	no answer by the deadline (or the resolver gave up)
 *	DNSBL_SKIPPED	the zone's breaker is open: nothing was sent
 *	DNSBL_CANCELLED	not needed: DNSBL_FIRST and another query was listed,
 *			or dnsbl_finish() before the deadline
 *	ms is how long the query took from the start of the call; cached says
 *	it was answered from the cache.
 *
 * DEADLINE
 *	dnsbl_lookup() sends every query of the call at once and returns when
 *	all are answered, when (DNSBL_FIRST) one is listed and its TXT is in, or
 *	at the deadline (absolute CLOCK_MONOTONIC ms, see budget.h), whichever
 *	comes first. It never waits past the deadline; c-ares's own per-try
 *	timeout and tries (config) only decide retries inside it. Queries still
 *	out at the deadline are abandoned, not stopped: their late answers
 *	still fill the cache. A deadline already past sends nothing: queries
 *	not in the cache get DNSBL_TIMEOUT at once.
 *
 *	dnsbl_start(), dnsbl_wait() and dnsbl_finish() are dnsbl_lookup() in
 *	steps, for a caller that can stop early. dnsbl_start() does what
 *	dnsbl_lookup() does before it waits (cache, breaker, sending) and
 *	returns at once; q[] must stay put until dnsbl_finish(), and the
 *	caller reads q[i] only once dnsbl_wait() returned for it.
 *	dnsbl_wait(call, i) blocks until q[i] is final (its TXT in, for a
 *	listing) or the deadline passed, then fills in q[i]; a q[i] still out
 *	at the deadline is DNSBL_TIMEOUT, and dnsbl_wait() returns false when
 *	q[i] is DNSBL_TIMEOUT. Waiting again on the same i returns at once
 *	with the same answer. dnsbl_finish() fills in the other queries
 *	without waiting: one still out is DNSBL_CANCELLED before the deadline
 *	(abandoned, not counted by the breaker: the caller did not need it),
 *	DNSBL_TIMEOUT after it; then it reports to the breakers and frees the
 *	call. A NULL call (n was 0) is finished as a no-op. Every started call
 *	must be finished, on the thread that started it.
 *
 * CACHE
 *	Answers (A and TXT, positive and negative) are cached per query name
 *	for their TTL, at most max_ttl; a negative answer for min(SOA TTL, SOA
 *	minimum) from its authority section (RFC 2308), or neg_ttl when it has
 *	no SOA. Errors and timeouts are never cached. At most cache_size
 *	entries; the least recently used goes first. The cache is consulted
 *	before the breaker: a cached answer is used even for a suspended zone.
 *
 * CIRCUIT BREAKER (per zone)
 *	breaker_threshold consecutive timeouts (queries that were sent and had
 *	no answer by their deadline, or that no server could be reached for:
 *	a DNS server that is down fails at once with ECONNREFUSED, but it is
 *	as absent as a silent one) suspend a zone for breaker_open_ms: its
 *	queries return DNSBL_SKIPPED at once and send nothing. After that one
 *	query is let through as a probe while the others are still skipped;
 *	its answer (listed or not) resumes the zone, a timeout or error
 *	suspends it for another breaker_open_ms (not reported again). Only
 *	the probe resumes: the late answer of a query sent before the zone was
 *	suspended does not. Any answer resets the count; a cancelled query
 *	leaves it as it is. Note
 *	that a deadline the caller made too short counts as a timeout too.
 *	The breakers hear of a call's queries when it ends (dnsbl_lookup()
 *	returns, dnsbl_finish()). on_breaker() is called once when a zone is
 *	suspended and once when it resumes, on the thread of the call that
 *	caused it, with no lock of ours held; it may run on several
 *	threads at once (for different zones). threshold 0: no breaker.
 *
 * CONCURRENCY AND THREADS
 *	c-ares 1.18 (Debian 12) channels are not thread-safe, and libmilter
 *	runs sessions on a pool of worker threads whose size it alone decides.
 *	So each context owns one channel and one resolver thread that alone
 *	touches it: dnsbl_lookup() and dnsbl_start() (any thread, any number
 *	at once) hand their
 *	queries to that thread through a queue (a mutex held only to link
 *	them in) and a pipe that wakes it; dnsbl_lookup() and dnsbl_wait()
 *	then sleep on a condition variable of their own call until the
 *	answers they wait for or the deadline arrive.
 *	The resolver thread polls the channel's sockets, so thousands of
 *	sessions cost thousands of outstanding queries on a handful of
 *	sockets, not a thread or a channel each. The other designs fall short
 *	here: a channel per worker thread in thread-local storage would leave
 *	channels of a freed context (config reload) in threads that live on,
 *	and in 1.18 the only way to stop one query at its deadline is
 *	ares_cancel() of the whole channel, which the single owner never
 *	needs: abandoned queries just end in c-ares's own time.
 *
 *	Shared state and what protects it: the queue (its mutex, held for a
 *	list splice); the cache (its mutex, held for one map operation, never
 *	across I/O); the breakers (their mutex, a list walk and a few
 *	assignments); each call (its own mutex, between its caller and the
 *	resolver thread); counters are atomic. No lock is held while waiting
 *	on the network. dnsbl_create() and dnsbl_free() run on one thread,
 *	and dnsbl_free() only once no call on the context is running (a
 *	started one is finished) or will start. Filters are immutable once
 *	parsed: any thread may match them. A dnsbl_query belongs to the
 *	thread that passes it in.
 *
 *	The resolver thread blocks every signal (libmilter sigwaits its own).
 *
 * DIAGNOSTICS
 *	dnsbl_create() and dnsbl_filter_parse() return NULL with a sentence in
 *	err (appended). Nothing here logs or prints.
 */
#ifndef MS_DNSBL_H
#define MS_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

typedef struct dnsbl_ctx dnsbl_ctx;
typedef struct dnsbl_filter dnsbl_filter;
typedef struct dnsbl_call dnsbl_call;

/* suspended: true when the zone was suspended, false when it resumed;
 * timeouts: the consecutive timeouts (or unreachable servers) that
 * suspended it. */
typedef void (*dnsbl_breaker_fn)(void *arg, const char *zone, bool suspended,
                                 unsigned timeouts);

typedef struct dnsbl_config {
	const char *servers;         /* "127.0.0.1:5353,[::1]:53"; NULL or "":
	                                the system's resolv.conf */
	unsigned try_timeout_ms;     /* c-ares per-try timeout; 0: 750 */
	unsigned tries;              /* c-ares tries per server; 0: 2 */
	size_t cache_size;           /* entries; 0: no cache */
	unsigned neg_ttl;            /* s, negative answers without SOA */
	unsigned max_ttl;            /* s, cap on any TTL; 0: 3600 */
	unsigned breaker_threshold;  /* consecutive timeouts or unreachable
	                                servers; 0: no breaker */
	unsigned breaker_open_ms;    /* how long a zone stays suspended */
	dnsbl_breaker_fn on_breaker; /* may be NULL */
	void *breaker_arg;
} dnsbl_config;

enum dnsbl_kind {
	DNSBL_IP,   /* client address against a DNSBL */
	DNSBL_NAME, /* domain against an RHSBL */
};

enum dnsbl_status {
	DNSBL_PENDING, /* never seen by the caller once its result is in */
	DNSBL_LISTED,
	DNSBL_NOT_LISTED,
	DNSBL_ERROR,
	DNSBL_TIMEOUT,
	DNSBL_SKIPPED,
	DNSBL_CANCELLED,
};

#define DNSBL_MAX_ADDR 8  /* A records kept per answer */
#define DNSBL_TXT_MAX 450 /* bytes of TXT kept */

typedef struct dnsbl_query {
	/* Set by dnsbl_query_init(): pointers the caller keeps alive. */
	enum dnsbl_kind kind;
	const char *subject;
	const char *zone;
	const dnsbl_filter *filter; /* NULL: any A record lists */
	/* Filled in by dnsbl_lookup() (dnsbl_wait(), dnsbl_finish()). */
	enum dnsbl_status status;
	bool cached;
	unsigned naddr;
	unsigned char addr[DNSBL_MAX_ADDR][4]; /* network order */
	long long ms;
	strbuf name; /* the query name, once it could be built */
	strbuf txt;  /* LISTED: the reason, "" when none came */
	strbuf err;  /* ERROR: why */
} dnsbl_query;

/* dnsbl_lookup() and dnsbl_start() flags */
#define DNSBL_FIRST 0x1  /* return as soon as one query is listed */
#define DNSBL_NO_TXT 0x2 /* do not ask for TXT */

dnsbl_ctx *dnsbl_create(const dnsbl_config *cfg, strbuf *err);
void dnsbl_free(dnsbl_ctx *ctx);

void dnsbl_query_init(dnsbl_query *q, enum dnsbl_kind kind, const char *subject,
                      const char *zone, const dnsbl_filter *filter);
void dnsbl_query_free(dnsbl_query *q);

/* Returns the index of the first listed query in q[] (array order), or -1. */
int dnsbl_lookup(dnsbl_ctx *ctx, dnsbl_query *q, size_t n, long long deadline_ms,
                 unsigned flags);

/* dnsbl_lookup() in steps (see DEADLINE). dnsbl_start() returns NULL only
   when n is 0; dnsbl_wait() returns false when q[i] timed out. */
dnsbl_call *dnsbl_start(dnsbl_ctx *ctx, dnsbl_query *q, size_t n, long long deadline_ms,
                        unsigned flags);
bool dnsbl_wait(dnsbl_call *call, size_t i);
void dnsbl_finish(dnsbl_call *call);

/* "192.0.2.1" -> "1.2.0.192", IPv6 to 32 nibbles; out is replaced. False
 * (out empty) when addr is not an address. */
bool dnsbl_reverse_ip(const char *addr, strbuf *out);

dnsbl_filter *dnsbl_filter_parse(const char *text, strbuf *err);
bool dnsbl_filter_match(const dnsbl_filter *f, const unsigned char addr[4]);
void dnsbl_filter_free(dnsbl_filter *f);

const char *dnsbl_status_name(enum dnsbl_status s);

/* For tests and statistics: running totals since dnsbl_create(). */
typedef struct dnsbl_stats {
	unsigned long long sent;       /* DNS queries handed to c-ares (A and TXT) */
	unsigned long long cache_hits; /* answers taken from the cache */
	unsigned long long skipped;    /* queries skipped by an open breaker */
	unsigned long long timeouts;   /* queries that reached their deadline */
} dnsbl_stats;

void dnsbl_get_stats(dnsbl_ctx *ctx, dnsbl_stats *out);

#endif
