/*
 * metrics - the counters behind Prometheus' /metrics, without HTTP
 *
 * SYNOPSIS
 *	metrics_register_conf(c);		at load and at each reload
 *	metrics_session(stressed, source);	a session picked its personality
 *	metrics_verdict(stage, action, rule);	a verdict went out
 *	metrics_budget_expired(stage);		a stage's budget ran out
 *	t0 = metrics_now_ns(); ...
 *	metrics_stage_time(stage, metrics_now_ns() - t0);
 *	metrics_zone(zone, suspended);		a DNSBL zone's breaker moved
 *	metrics_config_loaded(unix_time); metrics_config_failed();
 *	metrics_render(&src, &out);		one scrape, in the text format
 *
 * DESCRIPTION
 *	The series are process-wide, like the statistics line: they start at
 *	zero with the process and a reload never resets them. What another
 *	module already counts (sessions now, peak and past max_sessions in
 *	admission.c; messages and skips in session-verdict.c; DNS in dnsbl.c) is not
 *	counted twice: the caller gathers it into a metrics_sources and
 *	metrics_render() prints it next to the series counted here.
 *
 *	Verdicts are counted by (stage, action, rule): rule is a rule's name
 *	(name=NAME, else FILE:LINE, rule_name()) or a session limit's name
 *	(error_limit, rcpt_limit, budget_action, dns_error_action), "" when
 *	no rule decided (a message accepted at end of message). Client
 *	addresses, queue ids and reply texts are never labels, so the number
 *	of series is bounded by the rule tables. metrics_register_conf() adds
 *	every verdict rule of both personalities at load, so a rule shows 0
 *	before it first matches and a verdict finds its series already there.
 *
 *	stage_duration_seconds measures one stage event inside the milter
 *	(rules, DNS waits; a body stage once per chunk), in buckets from
 *	0.1 ms to 30 s (metrics_bucket_le[]).
 *
 * OUTPUT
 *	Prometheus' text exposition format 0.0.4: HELP and TYPE before each
 *	family, label values escaped (backslash, double quote, newline), the
 *	histogram's buckets cumulative with le="+Inf" equal to _count.
 *
 * CONCURRENCY
 *	Every function may run on any thread, any number at once.
 *	Fixed series (sessions, budget, stage histograms, config) are arrays
 *	of counters updated with relaxed atomics: a session never waits.
 *	Labelled series (verdicts, zones) live in append-only lists of nodes
 *	that are never freed: a lookup reads them without a lock (acquire
 *	loads of published pointers) and increments the node's atomic
 *	counter. A mutex is taken only to add a label set not seen before:
 *	at load by metrics_register_conf(), and on the first verdict of a
 *	label set no rule table holds (a session limit), once per process.
 *	metrics_render() takes no lock: it walks the same lists. A scrape is
 *	not a snapshot: counters read one after another may be a few
 *	increments apart, each monotonic.
 */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <stdbool.h>

#include "admission.h"
#include "conf.h"
#include "dnsbl.h"
#include "history.h"
#include "scanners.h"
#include "session.h"
#include "stage.h"
#include "strbuf.h"
#include "stress.h"

/* Upper bounds of the stage histogram's buckets, in seconds; +Inf follows. */
#define METRICS_N_BUCKETS 17
extern const double metrics_bucket_le[METRICS_N_BUCKETS];

void metrics_register_conf(const conf *c);

void metrics_session(bool stressed, enum stress_source source);
void metrics_verdict(enum stage stage, const char *action, const char *rule_id);
void metrics_budget_expired(enum stage stage);
void metrics_stage_delayed(enum stage stage); /* session.h DELAYED STAGES */
void metrics_worker_lent(void);               /* daemon_lend_workers() */
long long metrics_now_ns(void); /* monotonic */
void metrics_stage_time(enum stage stage, long long ns);
/* Adds the stage's histogram (METRICS_N_BUCKETS + 1 counts, not
   cumulative, the last +Inf) to counts: the latency source reads it. */
void metrics_stage_counts(enum stage stage, unsigned long long *counts);
void metrics_zone(const char *zone, bool suspended);
/* One DNSBL query of zone ended with status (dnsbl.h), from the cache or not. */
void metrics_dns_query(const char *zone, enum dnsbl_status status, bool cached);
void metrics_config_loaded(long long unix_time);
void metrics_config_failed(void);

/* What other modules count, gathered by the caller for one scrape. */
typedef struct metrics_sources {
	session_counts sessions;
	admission_counts admission;
	dnsbl_stats dns;
	history_stats history; /* the client history (history.h) */
	scanners_stats scan[SCAN_N]; /* runtime_scan_stats() */
	unsigned long generation; /* the daemon's: 1 at start, +1 per reload */
	const char *version;
} metrics_sources;

void metrics_render(const metrics_sources *src, strbuf *out);

/*
 * For a person's status screen (control.h), from the same counters: the n
 * rules with the most verdicts, one line each, "COUNT STAGE ACTION RULE",
 * most first (verdicts no rule gave are left out); and the zones
 * suspended now, separated by spaces. Both append to out; any thread.
 */
void metrics_busiest_rules(size_t n, strbuf *out);
void metrics_suspended_zones(strbuf *out);

#endif
