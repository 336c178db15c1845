/*
 * load - the milter's own stress signal: load levels with hysteresis
 *
 * SYNOPSIS
 *	l = load_create();
 *	load_configure(l, &cfg, now);		at start and at each reload
 *	slot = load_begin(l, daemon_name, now);	a session started (connect)
 *	load_end(l, slot, now);			... and ended (close)
 *	load_latency_tick(l, counts, now);	once a second: the early stages'
 *						duration histogram (metrics.h)
 *	if (load_check(l, daemon_name, now, &v)) ... stressed by v.source
 *	if (load_check_all(l, now, &v)) ...	stressed whatever the service
 *	load_status(l, now, &out);		one line per level, for a person
 *	load_free(l);
 *
 * DESCRIPTION
 *	Each source measures a load against a limit and gives a level in
 *	percent (0-100, more past the limit):
 *
 *	sessions  the SMTP sessions open now, per Postfix service, against
 *		  the service's process limit (cfg.limits). A service is
 *		  Postfix's {daemon_name} (ARCHITECTURE.md F3). The limit
 *		  named LOAD_DEFAULT_SERVICE ("smtpd") counts every session
 *		  whose {daemon_name} no other limit names: the smtpd
 *		  services master.cf does not name, which all send
 *		  $myhostname. A session enters its service at connect and
 *		  leaves it at close; one that Postfix stops talking to (an
 *		  accept at connect or HELO, F10) leaves early: the count is
 *		  then low by those sessions (doc/ARCHITECTURE.md, "The own
 *		  stress signal").
 *	latency   the 90th percentile of the early stages' durations inside
 *		  the milter (connect, HELO, MAIL FROM, where the delayed
 *		  stages end) over the last LOAD_WINDOW_S seconds, against
 *		  cfg.latency_ms. A resolver that slows down is stress too.
 *		  One level for every service.
 *
 *	A level is stressed from when it reaches cfg.enter percent; it is
 *	calm again once it has stayed below cfg.leave percent for cfg.hold_ms.
 *	Two transitions of one level are at least cfg.hold_ms apart, so a
 *	load that flaps around a threshold makes at most one transition per
 *	hold (one that enters right after a leave waits out the hold). Each
 *	transition is logged once, with its figures:
 *	"stress on: source=sessions service=smtpd 83/100 (83%)".
 *
 *	A source not enabled in cfg (stress_sources) is never stressed. A
 *	level is evaluated when its input changes, when it is checked, and at
 *	each load_latency_tick() (once a second), so a transition is logged
 *	within a second even when no session asks.
 *
 * TIME
 *	Every function takes now, in milliseconds of a monotonic clock
 *	(budget_now_ms() in the daemon; a fake one in tests).
 *
 * CONCURRENCY
 *	Every function may run on any thread at once: one mutex covers the
 *	counts and the levels (held for a few comparisons; never while
 *	logging's syslog() blocks: the lines are written after unlocking).
 *	Slots are stable for the life of the load: a session keeps its slot
 *	across reloads.
 */
#ifndef MS_LOAD_H
#define MS_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define LOAD_DEFAULT_SERVICE "smtpd" /* = MASTERCF_DEFAULT_SERVICE */
#define LOAD_MAX_SERVICES 64 /* services with a limit, over the load's life */
#define LOAD_WINDOW_S 10     /* the latency window, in ticks of one second */
#define LOAD_MAX_BUCKETS 32  /* of the latency histogram */

enum load_source {
	LOAD_SESSIONS,
	LOAD_LATENCY,
	LOAD_N
};

typedef struct load_levels load_levels;

typedef struct load_limit {
	const char *service; /* a {daemon_name}, or LOAD_DEFAULT_SERVICE */
	long long limit;     /* > 0 */
} load_limit;

typedef struct load_params {
	bool enabled[LOAD_N];
	const load_limit *limits;
	size_t n_limits;
	long long enter, leave; /* percent; leave <= enter */
	long long hold_ms;
	long long latency_ms; /* the latency source's limit */
	/* The latency histogram's upper bounds in ms, n_buckets of them, then
	   one more bucket (+Inf) in the counts load_latency_tick() gets. */
	const double *bucket_ms;
	size_t n_buckets;
} load_params;

typedef struct load_verdict {
	bool stressed;
	enum load_source source;
	char service[64]; /* "" for latency */
	long long value, limit;
} load_verdict;

load_levels *load_create(void);
void load_free(load_levels *l); /* NULL-safe */

void load_configure(load_levels *l, const load_params *cfg, long long now);

/* -1: nothing counted (l NULL, or the sessions source off and no slot). */
int load_begin(load_levels *l, const char *daemon_name, long long now);
void load_end(load_levels *l, int slot, long long now); /* slot -1: nothing */

/* counts: cfg.n_buckets + 1 cumulative-since-start counters (not
   cumulative across buckets), summed over the early stages. */
void load_latency_tick(load_levels *l, const unsigned long long *counts, long long now);

/* Is a session of this service (NULL: the default one) stressed by a
   source? *v (if not NULL) says which and its figures. */
bool load_check(load_levels *l, const char *daemon_name, long long now, load_verdict *v);
/* Stressed whatever service a session belongs to: the latency level, or
   every service with a limit stressed. What negotiation can know. */
bool load_check_all(load_levels *l, long long now, load_verdict *v);

/* "sessions smtpd 3/4 75% on since 12.3s, 2 transitions" ... per level. */
void load_status(load_levels *l, long long now, strbuf *out);

/* A level's percent of value against limit (0 for a limit <= 0). */
long long load_percent(long long value, long long limit);

/* The smallest upper bound (in ms) under which 90 % of the n + 1 bucket
   counts lie; the last bucket (+Inf) gives bucket_ms[n - 1] * 2; 0 when
   all counts are 0. */
long long load_p90_ms(const unsigned long long *counts, const double *bucket_ms,
                      size_t n);

const char *load_source_name(enum load_source src);

#endif
