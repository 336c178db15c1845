/* metrics - the counters behind Prometheus' /metrics; see metrics.h. */
#include "config.h"

#include "metrics.h"
#include "rules.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METRICS_PREFIX "milter_stress_"
#define METRICS_N_SOURCES STRESS_SRC_N

const double metrics_bucket_le[METRICS_N_BUCKETS] = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
        0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,
};

typedef unsigned long long counter; /* touched with relaxed atomics only */

typedef struct histogram {
	counter bucket[METRICS_N_BUCKETS + 1]; /* not cumulative; last: +Inf */
	counter sum_ns;
} histogram;

/* A labelled series: published once complete, never freed or moved. */
typedef struct series {
	struct series *next; /* the list in order of first appearance */
	enum stage stage;
	char *action; /* verdicts */
	char *name;   /* verdicts: the rule; zones: the zone */
	counter value;
} series;

static counter metrics_sessions[2][METRICS_N_SOURCES];
static counter metrics_budget[STAGE_N];
static counter metrics_delayed[STAGE_N];
static counter metrics_lent;
static histogram metrics_stage[STAGE_N];
static counter metrics_reload_time, metrics_reload_failures;

static pthread_mutex_t metrics_add_lock = PTHREAD_MUTEX_INITIALIZER;
static series *metrics_verdicts; /* head: acquire loads; added under the lock */
static series *metrics_zones;
static series *metrics_zone_queries; /* action: the result; name: the zone */
static series *metrics_zone_hits;    /* name: the zone */

static void
add(counter *c, unsigned long long n)
{
	__atomic_add_fetch(c, n, __ATOMIC_RELAXED);
}

static unsigned long long
get(const counter *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* The list as published: readers follow it without the lock. */
static series *
first(series *const *list)
{
	return __atomic_load_n(list, __ATOMIC_ACQUIRE);
}

static series *
next(const series *s)
{
	return __atomic_load_n(&s->next, __ATOMIC_ACQUIRE);
}

static bool
same(const series *s, enum stage stage, const char *action, const char *name)
{
	return s->stage == stage && strcmp(s->name, name) == 0 &&
	       (action == NULL || strcmp(s->action, action) == 0);
}

static series *
find(series **list, enum stage stage, const char *action, const char *name)
{
	for (series *s = first(list); s != NULL; s = next(s))
		if (same(s, stage, action, name))
			return s;
	return NULL;
}

/*
 * The series of this label set, added at the end of the list if new. The
 * tail is where readers stop, so a node is linked only once complete.
 */
static series *
find_or_add(series **list, enum stage stage, const char *action, const char *name)
{
	series *s = find(list, stage, action, name), **tail;

	if (s != NULL)
		return s;
	pthread_mutex_lock(&metrics_add_lock);
	for (tail = list; *tail != NULL; tail = &(*tail)->next)
		if (same(*tail, stage, action, name))
			break;
	if ((s = *tail) == NULL) {
		s = ms_xcalloc(1, sizeof *s);
		s->stage = stage;
		s->action = ms_xstrdup(action != NULL ? action : "");
		s->name = ms_xstrdup(name);
		__atomic_store_n(tail, s, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&metrics_add_lock);
	return s;
}

/* ---- counting ---- */

static unsigned
checked(enum stage stage)
{
	if ((unsigned)stage >= STAGE_N)
		ms_panic("metrics: bad stage %d", (int)stage);
	return (unsigned)stage;
}

/* The actions that answer the MTA: the ones session-verdict.c counts. */
static bool
answers(enum rules_action_kind kind)
{
	return kind == RULES_ACCEPT || kind == RULES_TEMPFAIL || kind == RULES_REJECT ||
	       kind == RULES_DISCARD;
}

static void
register_table(const rules_table *t)
{
	for (size_t i = 0; i < rules_count(t); i++) {
		const rule *r = rules_rule(t, i);
		enum rules_action_kind kind = rule_action(r)->kind;

		if (answers(kind))
			find_or_add(&metrics_verdicts, rule_stage(r),
			            rules_action_name(kind), rule_name(r));
	}
}

void
metrics_register_conf(const conf *c)
{
	register_table(conf_rules(c, false));
	register_table(conf_rules(c, true));
}

void
metrics_session(bool stressed, enum stress_source source)
{
	if ((unsigned)source < METRICS_N_SOURCES)
		add(&metrics_sessions[stressed][source], 1);
}

void
metrics_verdict(enum stage stage, const char *action, const char *rule_id)
{
	add(&find_or_add(&metrics_verdicts, stage, action, rule_id ? rule_id : "")->value,
	    1);
}

void
metrics_budget_expired(enum stage stage)
{
	add(&metrics_budget[checked(stage)], 1);
}

void
metrics_stage_delayed(enum stage stage)
{
	add(&metrics_delayed[checked(stage)], 1);
}

void
metrics_worker_lent(void)
{
	add(&metrics_lent, 1);
}

long long
metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
metrics_stage_time(enum stage stage, long long ns)
{
	histogram *h = &metrics_stage[checked(stage)];
	double sec = (double)(ns > 0 ? ns : 0) / 1e9;
	unsigned i = 0;

	while (i < METRICS_N_BUCKETS && sec > metrics_bucket_le[i])
		i++;
	add(&h->bucket[i], 1);
	add(&h->sum_ns, (unsigned long long)(ns > 0 ? ns : 0));
}

void
metrics_stage_counts(enum stage stage, unsigned long long *counts)
{
	const histogram *h = &metrics_stage[checked(stage)];

	for (unsigned i = 0; i <= METRICS_N_BUCKETS; i++)
		counts[i] += get(&h->bucket[i]);
}

void
metrics_zone(const char *zone, bool suspended)
{
	series *s = find_or_add(&metrics_zones, STAGE_CONNECT, NULL, zone);

	__atomic_store_n(&s->value, suspended ? 1ULL : 0ULL, __ATOMIC_RELAXED);
}

void
metrics_dns_query(const char *zone, enum dnsbl_status status, bool cached)
{
	add(&find_or_add(&metrics_zone_queries, STAGE_CONNECT, dnsbl_status_name(status), zone)
	             ->value,
	    1);
	if (cached)
		add(&find_or_add(&metrics_zone_hits, STAGE_CONNECT, NULL, zone)->value, 1);
}

void
metrics_config_loaded(long long unix_time)
{
	__atomic_store_n(&metrics_reload_time, (counter)unix_time, __ATOMIC_RELAXED);
}

void
metrics_config_failed(void)
{
	add(&metrics_reload_failures, 1);
}

/* ---- the text format ---- */

static void
family(strbuf *out, const char *name, const char *type, const char *help)
{
	strbuf_printf(out, "# HELP " METRICS_PREFIX "%s %s\n# TYPE " METRICS_PREFIX "%s %s\n",
	              name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label(strbuf *out, const char *key, const char *value, bool first)
{
	strbuf_printf(out, "%s%s=\"", first ? "" : ",", key);
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\\')
			strbuf_puts(out, "\\\\");
		else if (*p == '"')
			strbuf_puts(out, "\\\"");
		else if (*p == '\n')
			strbuf_puts(out, "\\n");
		else
			strbuf_putc(out, *p);
	}
	strbuf_putc(out, '"');
}

static void
sample(strbuf *out, const char *name, unsigned long long v)
{
	strbuf_printf(out, METRICS_PREFIX "%s %llu\n", name, v);
}

static void
render_sessions(const metrics_sources *src, strbuf *out)
{
	static const char *const personality[2] = {"normal", "stress"};

	family(out, "sessions_total", "counter",
	       "Sessions by personality and where the stress state came from.");
	for (int p = 0; p < 2; p++)
		for (int s = 0; s < METRICS_N_SOURCES; s++) {
			strbuf_puts(out, METRICS_PREFIX "sessions_total{");
			label(out, "personality", personality[p], true);
			label(out, "source", stress_source_name((enum stress_source)s),
			      false);
			strbuf_printf(out, "} %llu\n", get(&metrics_sessions[p][s]));
		}
	family(out, "sessions", "gauge", "Sessions counted against max_sessions now.");
	sample(out, "sessions", src->admission.active);
	family(out, "sessions_peak", "gauge", "Most sessions at once since start.");
	sample(out, "sessions_peak", src->admission.peak);
	family(out, "sessions_refused_total", "counter",
	       "Sessions past max_sessions, given overload_action.");
	sample(out, "sessions_refused_total", src->admission.overloaded);
	family(out, "messages_total", "counter", "Messages ended or aborted.");
	sample(out, "messages_total", src->sessions.messages);
}

static void
render_verdicts(strbuf *out)
{
	family(out, "verdicts_total", "counter",
	       "Verdicts by stage, action and rule (name, FILE:LINE or a limit).");
	for (series *s = first(&metrics_verdicts); s != NULL; s = next(s)) {
		strbuf_puts(out, METRICS_PREFIX "verdicts_total{");
		label(out, "stage", stage_name(s->stage), true);
		label(out, "action", s->action, false);
		label(out, "rule", s->name, false);
		strbuf_printf(out, "} %llu\n", get(&s->value));
	}
}

void
metrics_busiest_rules(size_t n, strbuf *out)
{
	/*
	 * Ordered by count, most first, then by first appearance; n passes over
	 * the list, each taking the next series in that order (n is small).
	 */
	unsigned long long last_v = 0;
	size_t last_pos = 0;

	for (size_t k = 0; k < n; k++) {
		const series *best = NULL;
		unsigned long long best_v = 0;
		size_t best_pos = 0, pos = 0;

		for (series *s = first(&metrics_verdicts); s != NULL; s = next(s), pos++) {
			unsigned long long v = get(&s->value);
			bool after_last = k == 0 || v < last_v || (v == last_v && pos > last_pos);

			if (v == 0 || s->name[0] == '\0' || !after_last)
				continue;
			if (best == NULL || v > best_v) {
				best = s;
				best_v = v;
				best_pos = pos;
			}
		}
		if (best == NULL)
			break;
		strbuf_printf(out, "%llu %s %s %s\n", best_v, stage_name(best->stage),
		              best->action, best->name);
		last_v = best_v;
		last_pos = best_pos;
	}
}

void
metrics_suspended_zones(strbuf *out)
{
	for (series *s = first(&metrics_zones); s != NULL; s = next(s))
		if (get(&s->value) != 0)
			strbuf_printf(out, "%s%s", out->len > 0 ? " " : "", s->name);
}

/* A counter family with one series per stage (session_wide: connect and HELO only). */
static void
stage_counters(strbuf *out, const char *name, const char *help, const counter *v,
               bool session_wide)
{
	family(out, name, "counter", help);
	for (int st = 0; st < STAGE_N; st++) {
		if (session_wide && !stage_get((enum stage)st)->session_wide)
			continue;
		strbuf_printf(out, METRICS_PREFIX "%s{", name);
		label(out, "stage", stage_name((enum stage)st), true);
		strbuf_printf(out, "} %llu\n", get(&v[st]));
	}
}

static void
render_skips(const metrics_sources *src, strbuf *out)
{
	family(out, "skipped_total", "counter",
	       "Messages whose expensive checks of this kind did not all run.");
	strbuf_printf(out, METRICS_PREFIX "skipped_total{kind=\"dnsbl\"} %llu\n",
	              src->sessions.skipped_dnsbl);
	strbuf_printf(out, METRICS_PREFIX "skipped_total{kind=\"body\"} %llu\n",
	              src->sessions.skipped_body);
	stage_counters(out, "budget_expired_total", "Stages whose time budget ran out.",
	               metrics_budget, false);
	stage_counters(out, "stages_delayed_total",
	               "Connect and HELO stages decided at MAIL FROM: an answer was not in "
	               "within session_stage_wait, or an earlier stage was delayed.",
	               metrics_delayed, true);
	family(out, "workers_lent_total", "counter",
	       "Connections to our own socket before a session blocked on a lookup, "
	       "so that libmilter starts a worker for the commands queued meanwhile.");
	strbuf_printf(out, METRICS_PREFIX "workers_lent_total %llu\n", get(&metrics_lent));
}

static void
render_histogram(strbuf *out)
{
	family(out, "stage_duration_seconds", "histogram",
	       "Time inside the milter for one stage event.");
	for (int st = 0; st < STAGE_N; st++) {
		const histogram *h = &metrics_stage[st];
		const char *name = stage_name((enum stage)st);
		unsigned long long cum = 0;

		for (int i = 0; i <= METRICS_N_BUCKETS; i++) {
			cum += get(&h->bucket[i]);
			strbuf_printf(out, METRICS_PREFIX "stage_duration_seconds_bucket{");
			label(out, "stage", name, true);
			if (i < METRICS_N_BUCKETS)
				strbuf_printf(out, ",le=\"%g\"} %llu\n", metrics_bucket_le[i],
				              cum);
			else
				strbuf_printf(out, ",le=\"+Inf\"} %llu\n", cum);
		}
		strbuf_printf(out, METRICS_PREFIX "stage_duration_seconds_sum{");
		label(out, "stage", name, true);
		strbuf_printf(out, "} %.9f\n", (double)get(&h->sum_ns) / 1e9);
		strbuf_printf(out, METRICS_PREFIX "stage_duration_seconds_count{");
		label(out, "stage", name, true);
		strbuf_printf(out, "} %llu\n", cum);
	}
}

/* The content scanners: one series per scanner (scan.h's names). */
static void
render_scan(const metrics_sources *src, strbuf *out)
{
	static const char *const results[] = {"ok", "timeout", "error", "suspended"};

	family(out, "scans_total", "counter",
	       "Scans asked of each content scanner, by how they ended (suspended: "
	       "failed at once, its breaker open; counted in error too).");
	for (int k = 0; k < SCAN_N; k++) {
		const scanners_stats *st = &src->scan[k];
		const unsigned long long v[] = {st->ok, st->timeouts, st->errors,
		                                st->suspended};

		for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
			strbuf_puts(out, METRICS_PREFIX "scans_total{");
			label(out, "scanner", scan_kind_name((enum scan_kind)k), true);
			label(out, "result", results[i], false);
			strbuf_printf(out, "} %llu\n", v[i]);
		}
	}
	family(out, "scanner_connections", "gauge",
	       "Connections to each content scanner now (at most its cap).");
	for (int k = 0; k < SCAN_N; k++) {
		strbuf_puts(out, METRICS_PREFIX "scanner_connections{");
		label(out, "scanner", scan_kind_name((enum scan_kind)k), true);
		strbuf_printf(out, "} %u\n", src->scan[k].busy);
	}
	family(out, "scanner_connections_peak", "gauge",
	       "The most connections to each content scanner at once since start.");
	for (int k = 0; k < SCAN_N; k++) {
		strbuf_puts(out, METRICS_PREFIX "scanner_connections_peak{");
		label(out, "scanner", scan_kind_name((enum scan_kind)k), true);
		strbuf_printf(out, "} %u\n", src->scan[k].peak);
	}
}

static void
render_dns(const metrics_sources *src, strbuf *out)
{
	family(out, "dns_lookups_total", "counter", "DNSBL lookups asked of the resolver.");
	sample(out, "dns_lookups_total", src->dns.lookups);
	family(out, "dns_cache_hits_total", "counter", "DNSBL answers taken from the cache.");
	sample(out, "dns_cache_hits_total", src->dns.cache_hits);
	family(out, "dns_timeouts_total", "counter",
	       "DNSBL queries that reached their deadline.");
	sample(out, "dns_timeouts_total", src->dns.timeouts);
	family(out, "dns_zone_suspended", "gauge",
	       "1 while a DNSBL zone's breaker is open; zones ever suspended.");
	for (series *s = first(&metrics_zones); s != NULL; s = next(s)) {
		strbuf_puts(out, METRICS_PREFIX "dns_zone_suspended{");
		label(out, "zone", s->name, true);
		strbuf_printf(out, "} %llu\n", get(&s->value));
	}
	family(out, "dns_zone_queries_total", "counter",
	       "DNSBL queries by zone and how they ended (listed, not_listed, error, "
	       "timeout, skipped by the breaker, cancelled as not needed).");
	for (series *s = first(&metrics_zone_queries); s != NULL; s = next(s)) {
		strbuf_puts(out, METRICS_PREFIX "dns_zone_queries_total{");
		label(out, "zone", s->name, true);
		label(out, "result", s->action, false);
		strbuf_printf(out, "} %llu\n", get(&s->value));
	}
	family(out, "dns_zone_cache_hits_total", "counter",
	       "DNSBL queries by zone answered from the cache.");
	for (series *s = first(&metrics_zone_hits); s != NULL; s = next(s)) {
		strbuf_puts(out, METRICS_PREFIX "dns_zone_cache_hits_total{");
		label(out, "zone", s->name, true);
		strbuf_printf(out, "} %llu\n", get(&s->value));
	}
}

static void
render_history(const metrics_sources *src, strbuf *out)
{
	const history_stats *h = &src->history;
	unsigned long long cum = 0;

	family(out, "history_lookups_total", "counter",
	       "Client history lookups at connect (history_store set).");
	sample(out, "history_lookups_total", h->lookups);
	family(out, "history_cache_hits_total", "counter",
	       "Client history lookups answered from the in-memory cache.");
	sample(out, "history_cache_hits_total", h->cache_hits);
	family(out, "history_unavailable_total", "counter",
	       "Lookups with no answer within history_read_budget (store down, slow or "
	       "not open): the client was unknown.");
	sample(out, "history_unavailable_total", h->unavailable);
	family(out, "history_store_errors_total", "counter",
	       "Reads, writes, sweeps and opens the history store failed.");
	sample(out, "history_store_errors_total", h->store_errors);
	family(out, "history_updates_total", "counter",
	       "Transaction outcomes written to the history store.");
	sample(out, "history_updates_total", h->updates);
	family(out, "history_updates_dropped_total", "counter",
	       "Transaction outcomes dropped: queue full (history_queue_max) or the store "
	       "refused the batch.");
	sample(out, "history_updates_dropped_total", h->dropped);
	family(out, "history_evicted_total", "counter",
	       "Clients removed from a full history store (history_size) to make room.");
	sample(out, "history_evicted_total", h->evicted);
	family(out, "history_queue_depth", "gauge", "Updates waiting to be written now.");
	sample(out, "history_queue_depth", h->queue_depth);
	family(out, "history_queue_peak", "gauge", "The most updates ever waiting at once.");
	sample(out, "history_queue_peak", h->queue_peak);
	family(out, "history_read_seconds", "histogram",
	       "Time of one read from the history store (cache hits not included).");
	for (int i = 0; i <= HISTORY_READ_BUCKETS; i++) {
		cum += h->read_buckets[i];
		if (i < HISTORY_READ_BUCKETS)
			strbuf_printf(out, METRICS_PREFIX "history_read_seconds_bucket{le=\"%g\"} %llu\n",
			              history_read_le[i] / 1000, cum);
		else
			strbuf_printf(out, METRICS_PREFIX "history_read_seconds_bucket{le=\"+Inf\"} %llu\n",
			              cum);
	}
	strbuf_printf(out, METRICS_PREFIX "history_read_seconds_sum %.9f\n", h->read_ms_sum / 1000);
	strbuf_printf(out, METRICS_PREFIX "history_read_seconds_count %llu\n", cum);
}

static void
render_config(const metrics_sources *src, strbuf *out)
{
	family(out, "config_generation", "gauge",
	       "Configurations loaded since start: 1 at start, +1 per reload.");
	sample(out, "config_generation", src->generation);
	family(out, "config_last_reload_timestamp_seconds", "gauge",
	       "When the configuration in use was loaded (Unix time).");
	sample(out, "config_last_reload_timestamp_seconds", get(&metrics_reload_time));
	family(out, "config_reload_failures_total", "counter",
	       "Reloads that kept the configuration loaded before.");
	sample(out, "config_reload_failures_total", get(&metrics_reload_failures));
	family(out, "build_info", "gauge", "Always 1; the version as a label.");
	strbuf_puts(out, METRICS_PREFIX "build_info{");
	label(out, "version", src->version != NULL ? src->version : "", true);
	strbuf_puts(out, "} 1\n");
}

void
metrics_render(const metrics_sources *src, strbuf *out)
{
	render_sessions(src, out);
	render_verdicts(out);
	render_skips(src, out);
	render_histogram(out);
	render_dns(src, out);
	render_history(src, out);
	render_scan(src, out);
	render_config(src, out);
}
