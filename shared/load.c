/* load - the own stress signal: levels with hysteresis; see load.h. */
#include "config.h"

#include "load.h"
#include "log.h"

#include <pthread.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

/* One level: a source's figures for one service, and its state. */
typedef struct level {
	long long value, limit;
	bool on;
	long long since;       /* the last transition; -1: none yet */
	long long below_since; /* when on: below leave since; -1: not below */
	unsigned long transitions;
} level;

#define NAME_MAX_LEN 64 /* a {daemon_name} longer than this is not a service */

typedef struct service {
	char name[NAME_MAX_LEN];
	long long limit; /* 0: no longer configured */
	long long open;  /* sessions now */
	level lv;
} service;

/* A transition to log once the lock is released. */
typedef struct event {
	bool on;
	enum load_source source;
	char service[64];
	long long value, limit, pct;
} event;

#define MAX_EVENTS (LOAD_MAX_SERVICES + 1)

struct load_levels {
	pthread_mutex_t lock;
	bool enabled[LOAD_N];
	long long enter, leave, hold_ms, latency_ms;
	double bucket_ms[LOAD_MAX_BUCKETS];
	size_t n_buckets;
	service svc[LOAD_MAX_SERVICES]; /* [0]: LOAD_DEFAULT_SERVICE */
	size_t n_svc;
	level latency;
	/* The latency window: the last LOAD_WINDOW_S + 1 tick's counts. */
	unsigned long long ring[LOAD_WINDOW_S + 1][LOAD_MAX_BUCKETS + 1];
	size_t ring_n, ring_head;
	event ev[MAX_EVENTS];
	size_t n_ev;
};

const char *
load_source_name(enum load_source src)
{
	return src == LOAD_LATENCY ? "latency" : "sessions";
}

long long
load_percent(long long value, long long limit)
{
	if (limit <= 0 || value <= 0)
		return 0;
	if (value > (long long)9e15 / 100)
		return (long long)9e15;
	return value * 100 / limit;
}

long long
load_p90_ms(const unsigned long long *counts, const double *bucket_ms, size_t n)
{
	unsigned long long total = 0, seen = 0, want;

	if (n == 0)
		return 0;
	for (size_t i = 0; i <= n; i++)
		total += counts[i];
	if (total == 0)
		return 0;
	want = total - total / 10; /* ceil(0.9 total) for the counts we see */
	for (size_t i = 0; i < n; i++) {
		seen += counts[i];
		if (seen >= want)
			return (long long)(bucket_ms[i] + 0.999);
	}
	return (long long)(bucket_ms[n - 1] * 2);
}

static void
level_reset(level *lv)
{
	memset(lv, 0, sizeof *lv);
	lv->since = -1;
	lv->below_since = -1;
}

/*
 * Shared with the processes forked after it (the stress endpoint's), so
 * the mapping is MAP_SHARED and the mutex process-shared and robust: a
 * process that dies holding it does not stop the other.
 */
load_levels *
load_create(void)
{
	load_levels *l = mmap(NULL, sizeof *l, PROT_READ | PROT_WRITE,
	                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_mutexattr_t attr;

	if (l == MAP_FAILED)
		ms_panic("cannot map %zu bytes for the load levels", sizeof *l);
	memset(l, 0, sizeof *l);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&l->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	strcpy(l->svc[0].name, LOAD_DEFAULT_SERVICE);
	level_reset(&l->svc[0].lv);
	l->n_svc = 1;
	level_reset(&l->latency);
	l->enter = 80;
	l->leave = 60;
	return l;
}

void
load_free(load_levels *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->lock);
	munmap(l, sizeof *l);
}

/* name into a fixed slot of n bytes, cut if longer. */
static void
copy_name(char *dst, size_t n, const char *name)
{
	strncpy(dst, name, n - 1);
	dst[n - 1] = '\0';
}

static void
queue_event(load_levels *l, const level *lv, enum load_source src, const char *name)
{
	event *e;

	if (l->n_ev == MAX_EVENTS)
		return;
	e = &l->ev[l->n_ev++];
	e->on = lv->on;
	e->source = src;
	copy_name(e->service, sizeof e->service, name);
	e->value = lv->value;
	e->limit = lv->limit;
	e->pct = load_percent(lv->value, lv->limit);
}

/*
 * The hysteresis: on at enter, off after hold below leave, transitions at
 * least hold apart. Under the lock.
 */
static void
level_eval(load_levels *l, level *lv, enum load_source src, const char *name, long long now)
{
	long long pct = load_percent(lv->value, lv->limit);
	bool spaced = lv->since < 0 || now - lv->since >= l->hold_ms;

	if (!l->enabled[src] || lv->limit <= 0) {
		if (lv->on) { /* a source switched off, a limit removed: calm now */
			lv->on = false;
			lv->since = now;
			lv->transitions++;
			queue_event(l, lv, src, name);
		}
		lv->below_since = -1;
		return;
	}
	if (!lv->on) {
		if (pct >= l->enter && spaced) {
			lv->on = true;
			lv->since = now;
			lv->below_since = -1;
			lv->transitions++;
			queue_event(l, lv, src, name);
		}
		return;
	}
	if (pct >= l->leave) {
		lv->below_since = -1;
		return;
	}
	if (lv->below_since < 0)
		lv->below_since = now;
	if (now - lv->below_since >= l->hold_ms && spaced) {
		lv->on = false;
		lv->since = now;
		lv->below_since = -1;
		lv->transitions++;
		queue_event(l, lv, src, name);
	}
}

static void
eval_all(load_levels *l, long long now)
{
	for (size_t i = 0; i < l->n_svc; i++)
		level_eval(l, &l->svc[i].lv, LOAD_SESSIONS, l->svc[i].name, now);
	level_eval(l, &l->latency, LOAD_LATENCY, "", now);
}

/* A process that died holding the lock left the counts as they were. */
static void
lock(load_levels *l)
{
	if (pthread_mutex_lock(&l->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&l->lock);
}

/* Unlock, then log what changed: syslog() may block, the lock must not. */
static void
unlock_and_log(load_levels *l)
{
	event ev[MAX_EVENTS];
	size_t n = l->n_ev;

	memcpy(ev, l->ev, n * sizeof ev[0]);
	l->n_ev = 0;
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < n; i++) {
		const event *e = &ev[i];

		if (e->source == LOAD_LATENCY)
			log_msg(LOG_NOTICE,
			        "stress %s: source=latency p90=%lldms/%lldms (%lld%%)",
			        e->on ? "on" : "off", e->value, e->limit, e->pct);
		else
			log_msg(LOG_NOTICE, "stress %s: source=sessions service=%s %lld/%lld (%lld%%)",
			        e->on ? "on" : "off", e->service, e->value, e->limit, e->pct);
	}
}

static service *
find_service(load_levels *l, const char *name)
{
	for (size_t i = 0; i < l->n_svc; i++)
		if (strcmp(l->svc[i].name, name) == 0)
			return &l->svc[i];
	return NULL;
}

void
load_configure(load_levels *l, const load_params *cfg, long long now)
{
	lock(l);
	memcpy(l->enabled, cfg->enabled, sizeof l->enabled);
	l->enter = cfg->enter;
	l->leave = cfg->leave;
	l->hold_ms = cfg->hold_ms;
	l->latency_ms = cfg->latency_ms;
	l->latency.limit = cfg->latency_ms;
	if (cfg->n_buckets != l->n_buckets ||
	    (cfg->n_buckets > 0 &&
	     memcmp(cfg->bucket_ms, l->bucket_ms, cfg->n_buckets * sizeof(double)) != 0))
		l->ring_n = l->ring_head = 0; /* other buckets: a new window */
	l->n_buckets = cfg->n_buckets < LOAD_MAX_BUCKETS ? cfg->n_buckets : LOAD_MAX_BUCKETS;
	if (l->n_buckets > 0)
		memcpy(l->bucket_ms, cfg->bucket_ms, l->n_buckets * sizeof(double));
	for (size_t i = 0; i < l->n_svc; i++)
		l->svc[i].limit = 0;
	for (size_t i = 0; i < cfg->n_limits; i++) {
		service *s = find_service(l, cfg->limits[i].service);

		if (strlen(cfg->limits[i].service) >= NAME_MAX_LEN) {
			log_msg(LOG_WARNING, "load: service name %.40s... is too long: "
			        "not counted", cfg->limits[i].service);
			continue;
		}
		if (s == NULL && l->n_svc < LOAD_MAX_SERVICES) {
			s = &l->svc[l->n_svc++];
			strcpy(s->name, cfg->limits[i].service);
			level_reset(&s->lv);
		}
		if (s == NULL) {
			log_msg(LOG_WARNING, "load: more than %d services over this "
			        "process's life: %s is not counted", LOAD_MAX_SERVICES,
			        cfg->limits[i].service);
			continue;
		}
		s->limit = cfg->limits[i].limit;
	}
	for (size_t i = 0; i < l->n_svc; i++) {
		l->svc[i].lv.value = l->svc[i].open;
		l->svc[i].lv.limit = l->svc[i].limit;
	}
	eval_all(l, now);
	unlock_and_log(l);
}

/* The slot a {daemon_name} counts in: its own limit, or the default. */
static size_t
slot_of(load_levels *l, const char *daemon_name)
{
	if (daemon_name != NULL)
		for (size_t i = 1; i < l->n_svc; i++)
			if (l->svc[i].limit > 0 && strcmp(l->svc[i].name, daemon_name) == 0)
				return i;
	return 0;
}

static void
count(load_levels *l, size_t slot, long long delta, long long now)
{
	service *s = &l->svc[slot];

	s->open += delta;
	if (s->open < 0)
		s->open = 0;
	s->lv.value = s->open;
	s->lv.limit = s->limit;
	level_eval(l, &s->lv, LOAD_SESSIONS, s->name, now);
}

int
load_begin(load_levels *l, const char *daemon_name, long long now)
{
	size_t slot;

	if (l == NULL)
		return -1;
	lock(l);
	slot = slot_of(l, daemon_name);
	count(l, slot, 1, now);
	unlock_and_log(l);
	return (int)slot;
}

void
load_end(load_levels *l, int slot, long long now)
{
	if (l == NULL || slot < 0)
		return;
	lock(l);
	if ((size_t)slot < l->n_svc)
		count(l, (size_t)slot, -1, now);
	unlock_and_log(l);
}

void
load_latency_tick(load_levels *l, const unsigned long long *counts, long long now)
{
	unsigned long long delta[LOAD_MAX_BUCKETS + 1];
	size_t n, oldest;

	if (l == NULL)
		return;
	lock(l);
	n = l->n_buckets;
	if (n > 0 && counts != NULL) {
		memcpy(l->ring[l->ring_head], counts, (n + 1) * sizeof *counts);
		l->ring_head = (l->ring_head + 1) % (LOAD_WINDOW_S + 1);
		if (l->ring_n < LOAD_WINDOW_S + 1)
			l->ring_n++;
		/* the oldest snapshot kept, against the newest */
		oldest = (l->ring_head + (LOAD_WINDOW_S + 1) - l->ring_n) % (LOAD_WINDOW_S + 1);
		for (size_t i = 0; i <= n; i++)
			delta[i] = counts[i] >= l->ring[oldest][i] ? counts[i] - l->ring[oldest][i]
			                                           : 0;
		l->latency.value = load_p90_ms(delta, l->bucket_ms, n);
	}
	l->latency.limit = l->latency_ms;
	eval_all(l, now);
	unlock_and_log(l);
}

static void
verdict_of(const level *lv, enum load_source src, const char *name, load_verdict *v)
{
	if (v == NULL)
		return;
	v->stressed = lv->on;
	v->source = src;
	copy_name(v->service, sizeof v->service, name);
	v->value = lv->value;
	v->limit = lv->limit;
}

/* Locks l and evaluates; true when the latency level (every service) is on. */
static bool
check_begin(load_levels *l, long long now, load_verdict *v)
{
	lock(l);
	eval_all(l, now);
	if (!l->latency.on)
		return false;
	verdict_of(&l->latency, LOAD_LATENCY, "", v);
	return true;
}

bool
load_check(load_levels *l, const char *daemon_name, long long now, load_verdict *v)
{
	bool on = true;

	if (v != NULL)
		memset(v, 0, sizeof *v);
	if (l == NULL)
		return false;
	if (!check_begin(l, now, v)) {
		service *s = &l->svc[slot_of(l, daemon_name)];

		verdict_of(&s->lv, LOAD_SESSIONS, s->name, v);
		on = s->lv.on;
	}
	unlock_and_log(l);
	return on;
}

bool
load_check_all(load_levels *l, long long now, load_verdict *v)
{
	bool on = true;
	size_t n_limited = 0, n_on = 0, first_on = 0;

	if (v != NULL)
		memset(v, 0, sizeof *v);
	if (l == NULL)
		return false;
	if (!check_begin(l, now, v)) {
		for (size_t i = 0; i < l->n_svc; i++) {
			if (l->svc[i].limit <= 0)
				continue;
			n_limited++;
			if (l->svc[i].lv.on && n_on++ == 0)
				first_on = i;
		}
		on = n_limited > 0 && n_on == n_limited;
		if (on)
			verdict_of(&l->svc[first_on].lv, LOAD_SESSIONS, l->svc[first_on].name, v);
	}
	unlock_and_log(l);
	return on;
}

static void
status_line(strbuf *out, const load_levels *l, const level *lv, enum load_source src,
            const char *name, long long now)
{
	strbuf_printf(out, "%-8s %-12s %lld/%lld%s %lld%% %s", load_source_name(src),
	              *name ? name : "-", lv->value, lv->limit,
	              src == LOAD_LATENCY ? "ms" : "", load_percent(lv->value, lv->limit),
	              !l->enabled[src] ? "off (not in stress_sources)"
	              : lv->on         ? "stressed"
	                               : "calm");
	if (lv->since >= 0)
		strbuf_printf(out, " since %.1fs", (double)(now - lv->since) / 1000.0);
	strbuf_printf(out, ", %lu transition%s\n", lv->transitions,
	              lv->transitions == 1 ? "" : "s");
}

void
load_status(load_levels *l, long long now, strbuf *out)
{
	if (l == NULL)
		return;
	lock(l);
	eval_all(l, now);
	strbuf_printf(out, "enter %lld%%, leave %lld%% after %.1fs\n", l->enter, l->leave,
	              (double)l->hold_ms / 1000.0);
	for (size_t i = 0; i < l->n_svc; i++)
		if (l->svc[i].limit > 0 || l->svc[i].open > 0)
			status_line(out, l, &l->svc[i].lv, LOAD_SESSIONS, l->svc[i].name, now);
	if (l->latency_ms > 0)
		status_line(out, l, &l->latency, LOAD_LATENCY, "", now);
	unlock_and_log(l);
}
