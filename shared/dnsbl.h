/*
 * dnsbl - DNSBL and RHSBL lookups: parallel, deadline-bounded, cached, with a
 *	per-zone circuit breaker
 *
 * SYNOPSIS
 *	ctx = dnsbl_create(&cfg, &err);			once, by its owner
 *	f = dnsbl_filter_parse("127.0.0.[2..11]", &err);	at load time
 *
 *	dnsbl_query q[2];				per session, per stage
 *	dnsbl_query_init(&q[0], DNSBL_IP, client_addr, "zen.example.org", f);
 *	dnsbl_query_init(&q[1], DNSBL_NAME, helo_name, "dbl.example.org", NULL);
 *	call = dnsbl_start(ctx, q, 2, stage_deadline);	sends both at once
 *	if (dnsbl_wait(call, 1) && q[1].status == DNSBL_LISTED) ...
 *	dnsbl_finish(call);			q[0] is CANCELLED if still out
 *	dnsbl_query_free(&q[0]); dnsbl_query_free(&q[1]);
 *
 *	dnsbl_reconfigure(ctx, &cfg, &err);	a reload: cache and breakers kept
 *	p = dnsbl_provider(ctx);		the same calls as a dns_provider
 *
 * DESCRIPTION
 *	The resolver: this file's context, its thread and its calls. What
 *	it builds on has a module each: dnsbl-filter.h (the d.d.d.d filters,
 *	included here), dns-answer.h (DNS replies), dns-cache.h (the TTL
 *	cache), dns-breaker.h (the breakers).
 *
 * QUERIES
 *	DNSBL_IP: the client address as the MTA sends it ("192.0.2.1",
 *	"2001:db8::1"; no brackets), looked up as its reversed octets
 *	(1.2.0.192.ZONE) or, for IPv6, its 32 reversed nibbles. An
 *	IPv4-mapped IPv6 address (::ffff:192.0.2.1) is looked up as the IPv4
 *	address it carries, as Postfix does. DNSBL_NAME: a domain (a HELO name,
 *	a sender's domain) looked up as DOMAIN.ZONE. Names are checked with
 *	names_domain(), a final dot dropped, and compared and cached in lower
 *	case; a subject or zone that is not a valid name gives DNSBL_ERROR
 *	with the reason in err, and nothing is sent.
 *
 *	The A record decides. A listing counts only when at least one of its
 *	A records passes the query's filter (NULL: any A record); addr[] gets
 *	the records that passed. TXT (the list's reason, for $rbl_reason) is
 *	asked only for a listed name, as soon as its A answer is in, while the
 *	other queries of the call are still out, and not at all for a query
 *	whose no_txt the caller set (no reply says $rbl_reason: the listing is
 *	final with its A answer, its txt "" unless the cache had it). The TXT text is the record's
 *	strings joined, several records joined by "; ", bytes outside printable
 *	ASCII replaced by '?', at most DNSBL_TXT_MAX bytes: it is safe to put in
 *	an SMTP reply once % is doubled.
 *
 * RESULTS (one per query)
 *	DNSBL_LISTED	a passing A record (addr[], naddr; txt if it came in time)
 *	DNSBL_NOT_LISTED NXDOMAIN, no A record, or none passed the filter
 *	DNSBL_ERROR	SERVFAIL, REFUSED, bad name, ... (err says which)
 *	DNSBL_TIMEOUT	no answer by the deadline (or the resolver gave up)
 *	DNSBL_SKIPPED	the zone's breaker is open: nothing was sent
 *	DNSBL_CANCELLED	not needed: dnsbl_finish() before the deadline
 *	ms is how long the query took from the start of the call; cached says
 *	it was answered from the cache.
 *
 * DEADLINE
 *	dnsbl_start() looks every query of the call up in the cache, asks the
 *	breakers, sends the rest at once and returns at once; q[] must stay
 *	put until dnsbl_finish(), and the caller reads q[i] only once
 *	dnsbl_wait() returned for it. dnsbl_wait(call, i) blocks until q[i]
 *	is final (its TXT in, for a listing) or the deadline (absolute
 *	CLOCK_MONOTONIC ms, see budget.h) passed, then fills in q[i]; a q[i]
 *	still out at the deadline is DNSBL_TIMEOUT, and dnsbl_wait() returns
 *	false when q[i] is DNSBL_TIMEOUT. Waiting again on the same i returns
 *	at once with the same answer. It never waits past the deadline;
 *	c-ares's own per-try timeout and tries (config) only decide retries
 *	inside it. dnsbl_finish() fills in the other queries without
 *	waiting: one still out is DNSBL_CANCELLED before the deadline
 *	(abandoned, not counted by the breaker: the caller did not need it),
 *	DNSBL_TIMEOUT after it; then it reports to the breakers and frees the
 *	call. A NULL call (n was 0) is finished as a no-op. dnsbl_ready(call,
 *	i, until) waits at most until until (and the deadline) and says
 *	whether dnsbl_wait(call, i) would now return at once (q[i] final, or
 *	the deadline passed). Every started call
 *	must be finished, by its owner: one thread at a time, not
 *	necessarily the one that started it (a session's libmilter callbacks
 *	run on any worker, one after the other). Queries still
 *	out when their call ends are abandoned, not stopped: their late
 *	answers still fill the cache. A deadline already past sends nothing:
 *	queries not in the cache get DNSBL_TIMEOUT at once.
 *
 * CACHE (dns-cache.h)
 *	Answers (A and TXT, positive and negative) are cached per query name
 *	for their TTL, at most max_ttl; a negative answer for min(SOA TTL, SOA
 *	minimum) from its authority section (RFC 2308), or neg_ttl when it has
 *	no SOA. Errors and timeouts are never cached. At most cache_size
 *	entries; the least recently used goes first. The cache is consulted
 *	before the breaker: a cached answer is used even for a suspended zone.
 *
 * CIRCUIT BREAKER (per zone, dns-breaker.h)
 *	breaker_threshold consecutive timeouts (queries that were sent and had
 *	no answer by their deadline, or that no server could be reached for:
 *	a DNS server that is down fails at once with ECONNREFUSED, but it is
 *	as absent as a silent one) suspend a zone for breaker_open_ms: its
 *	queries return DNSBL_SKIPPED at once and send nothing. Then one query
 *	probes; only its answer resumes the zone. Note that a deadline the
 *	caller made too short counts as a timeout too. The breakers hear of
 *	a call's queries when it ends (dnsbl_finish()). on_breaker() is
 *	called once when a zone is suspended and once when it resumes, on the
 *	thread of the call (or of dnsbl_reconfigure()) that caused it, with
 *	no lock of ours held; it may run on several threads at once (for
 *	different zones). threshold 0: no breaker.
 *
 * RECONFIGURATION
 *	dnsbl_reconfigure() applies servers, cache_size, breaker_threshold
 *	and breaker_open_ms of cfg in place; the other fields keep their
 *	values from dnsbl_create(). The cache and the breakers are kept: a
 *	smaller cache_size evicts the least recently used answers, new
 *	breaker parameters apply to every zone at once (the open time of one
 *	suspended now counts from when it was suspended). New servers: every
 *	query sent after dnsbl_reconfigure() returned goes to them, on a new
 *	channel; the queries still out on the old one end there, in their
 *	own time, and the old channel goes with its last query. A change of
 *	servers closes every breaker (each zone suspended is reported
 *	resumed): what opened them was the old servers' silence. A server
 *	list c-ares refuses changes nothing and returns false with the reason
 *	in err; dnsbl_check_servers() asks the same question without a
 *	context.
 *
 * CONCURRENCY AND THREADS
 *	The context is runtime state: its owner creates it once (the daemon's
 *	runtime.h, not a config snapshot), so a reload keeps its cache and
 *	its breakers, and reconfigures it in place.
 *
 *	c-ares 1.18 (Debian 12) channels are not thread-safe, and libmilter
 *	runs sessions on a pool of worker threads whose size it alone decides.
 *	So each context has one resolver thread that alone touches its
 *	channels once they are in use: dnsbl_start() (any thread, any number
 *	at once) hands its queries to that thread through a queue (a mutex
 *	held only to link them in) and a pipe that wakes it; dnsbl_wait()
 *	then sleeps on a condition variable of its own call until the answer
 *	it waits for or the deadline arrive. dnsbl_reconfigure() opens a
 *	channel for new servers on its own thread (nobody else sees it yet)
 *	and hands it over through the same queue: the resolver thread makes it
 *	current before it sends anything queued after it.
 *	The resolver thread polls the channels' sockets, so thousands of
 *	sessions cost thousands of outstanding queries on a handful of
 *	sockets, not a thread or a channel each. The other designs fall short
 *	here: a channel per worker thread in thread-local storage would leave
 *	channels of a freed context in threads that live on, and in 1.18 the
 *	only way to stop one query at its deadline is ares_cancel() of the
 *	whole channel, which the single owner never needs: abandoned queries
 *	just end in c-ares's own time.
 *
 *	Shared state and what protects it: the queue and a new channel (the
 *	queue's mutex, held for a list splice); the cache and the breakers
 *	(a mutex each, inside their modules, never held across I/O); each
 *	call (its own mutex, between its caller and the resolver thread);
 *	counters are atomic. No lock is held while waiting on the network.
 *	dnsbl_reconfigure() runs on one thread at a time (the owner's),
 *	concurrently with any number of calls. dnsbl_create() and
 *	dnsbl_free() run on one thread, and dnsbl_free() only once no call on
 *	the context is running (a started one is finished) or will start.
 *	Filters are immutable once parsed: any thread may match them. A
 *	dnsbl_query belongs to the thread that passes it in.
 *
 *	The resolver thread blocks every signal (libmilter sigwaits its own).
 *
 * DIAGNOSTICS
 *	dnsbl_create(), dnsbl_reconfigure(), dnsbl_check_servers() and
 *	dnsbl_filter_parse() fail with a sentence in err (appended). Nothing
 *	here logs or prints.
 */
#ifndef MS_DNSBL_H
#define MS_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#include "dnsbl-filter.h"
#include "strbuf.h"

typedef struct dnsbl_ctx dnsbl_ctx;
typedef struct dns_provider dns_provider; /* provider.h */
typedef struct dnsbl_call dnsbl_call;

/* suspended: true when the zone was suspended, false when it resumed;
 * timeouts: the consecutive timeouts (or unreachable servers) that
 * suspended it. */
typedef void (*dnsbl_breaker_fn)(void *arg, const char *zone, bool suspended,
                                 unsigned timeouts);

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

/* How one query of a call ended: its zone, its result, whether the cache
 * answered it. Called once per query when the call ends (dnsbl_finish()),
 * on its thread, with no lock of ours held. */
typedef void (*dnsbl_query_fn)(void *arg, const char *zone, enum dnsbl_status status,
                               bool cached);

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
	dnsbl_query_fn on_query; /* may be NULL; set at dnsbl_create() only */
	void *query_arg;
	/* Called once per call, on the caller's thread, before dnsbl_wait() or
	   dnsbl_ready() first blocks on it (the daemon lends libmilter a
	   worker: ARCHITECTURE.md F19); may be NULL; set at create only. */
	void (*on_block)(void *arg);
	void *block_arg;
} dnsbl_config;


#define DNSBL_MAX_ADDR 8  /* A records kept per answer */
#define DNSBL_TXT_MAX 450 /* bytes of TXT kept */

typedef struct dnsbl_query {
	/* Set by dnsbl_query_init(): pointers the caller keeps alive. */
	enum dnsbl_kind kind;
	const char *subject;
	const char *zone;
	const dnsbl_filter *filter; /* NULL: any A record lists */
	bool no_txt; /* false after init; true: a listing asks no TXT (see QUERIES) */
	/* Filled in by dnsbl_wait() and dnsbl_finish(). */
	enum dnsbl_status status;
	bool cached;
	unsigned naddr;
	unsigned char addr[DNSBL_MAX_ADDR][4]; /* network order */
	long long ms;
	strbuf name; /* the query name, once it could be built */
	strbuf txt;  /* LISTED: the reason, "" when none came */
	strbuf err;  /* ERROR: why */
} dnsbl_query;

dnsbl_ctx *dnsbl_create(const dnsbl_config *cfg, strbuf *err);
void dnsbl_free(dnsbl_ctx *ctx);

/* See RECONFIGURATION. False (nothing changed) when c-ares refuses servers. */
bool dnsbl_reconfigure(dnsbl_ctx *ctx, const dnsbl_config *cfg, strbuf *err);
bool dnsbl_check_servers(const char *servers, strbuf *err);

/* dnsbl_start/wait/finish on ctx as a provider.h table; lives with ctx. */
const dns_provider *dnsbl_provider(dnsbl_ctx *ctx);

void dnsbl_query_init(dnsbl_query *q, enum dnsbl_kind kind, const char *subject,
                      const char *zone, const dnsbl_filter *filter);
void dnsbl_query_free(dnsbl_query *q);

/* See DEADLINE. dnsbl_start() returns NULL only when n is 0; dnsbl_wait()
   returns false when q[i] timed out. */
dnsbl_call *dnsbl_start(dnsbl_ctx *ctx, dnsbl_query *q, size_t n, long long deadline_ms);
bool dnsbl_wait(dnsbl_call *call, size_t i);
bool dnsbl_ready(dnsbl_call *call, size_t i, long long until_ms);
void dnsbl_finish(dnsbl_call *call);

/* "192.0.2.1" -> "1.2.0.192", IPv6 to 32 nibbles; out is replaced. False
 * (out empty) when addr is not an address. */
bool dnsbl_reverse_ip(const char *addr, strbuf *out);

/* "listed", "not_listed", ...: one word each, fit for a metrics label. */
const char *dnsbl_status_name(enum dnsbl_status s);

/* For tests and statistics: running totals since dnsbl_create(), and
   the zones suspended now. */
typedef struct dnsbl_stats {
	unsigned long long lookups;    /* queries asked of dnsbl_start() */
	unsigned long long sent;       /* DNS queries handed to c-ares (A and TXT) */
	unsigned long long cache_hits; /* answers taken from the cache */
	unsigned long long skipped;    /* queries skipped by an open breaker */
	unsigned long long timeouts;   /* queries that reached their deadline */
	unsigned suspended;            /* zones whose breaker is open now */
} dnsbl_stats;

void dnsbl_get_stats(dnsbl_ctx *ctx, dnsbl_stats *out);

#endif
