/* scanners - the daemon's content scanners; see scanners.h. */
#include "config.h"

#include "scanners.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "clamd.h"
#include "dns-breaker.h"
#include "log.h"
#include "scanio.h"
#include "spamd.h"

static enum scan_status
clamd_op(void *client, const char *endpoint, const scan_message *m, long long deadline,
         scan_result *out)
{
	(void)client;
	return clamd_scan(endpoint, m, deadline, out);
}

static enum scan_status
spamd_op(void *client, const char *endpoint, const scan_message *m, long long deadline,
         scan_result *out)
{
	(void)client;
	return spamd_scan(endpoint, m, deadline, out);
}

static const scanner_ops clamd_ops = {NULL, NULL, clamd_op};
static const scanner_ops spamd_ops = {NULL, NULL, spamd_op};

static const scanner_ops *const kind_ops[SCAN_N] = {
        [SCAN_CLAMD] = &clamd_ops,
        [SCAN_SPAMD] = &spamd_ops,
        [SCAN_RSPAMD] = &scan_rspamd_ops,
};

/* An endpoint and its client, shared by the scans that started with it. */
typedef struct target {
	atomic_uint refs;
	char *endpoint;
	void *client;
	const scanner_ops *ops;
} target;

typedef struct scanner {
	enum scan_kind kind;
	pthread_mutex_t mu; /* the fields below */
	pthread_cond_t cv;  /* a slot came free */
	target *target;     /* NULL: not configured */
	unsigned cap, busy, peak;
	unsigned waiting; /* scans waiting for a slot */
	atomic_ullong scans, ok, timeouts, errors, suspended;
	atomic_llong last_reply; /* ms: its latest reply on any connection, or the
	                            latest time it was asked while idle */
} scanner;

struct scanners {
	scanner sc[SCAN_N];
	dns_breaker *breaker; /* keyed by the scanner's name */
	scan_provider provider;
};

static void
target_unref(target *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	if (t->client != NULL)
		t->ops->client_free(t->client);
	free(t->endpoint);
	free(t);
}

static void
breaker_log(void *arg, const char *name, bool suspended, unsigned count)
{
	(void)arg;
	if (suspended)
		log_msg(LOG_WARNING,
		        "scanner %s suspended after %u scans in a row that timed out "
		        "or could not connect",
		        name, count);
	else
		log_msg(LOG_INFO, "scanner %s resumed", name);
}

static unsigned scanners_configured(void *self);
static void scanners_scan(void *self, unsigned kinds, const scan_message *m,
                          const long long deadline[SCAN_N], scan_result out[SCAN_N]);

scanners *
scanners_create(void)
{
	scanners *s = ms_xcalloc(1, sizeof *s);
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int k = 0; k < SCAN_N; k++) {
		scanner *sc = &s->sc[k];

		sc->kind = (enum scan_kind)k;
		pthread_mutex_init(&sc->mu, NULL);
		pthread_cond_init(&sc->cv, &ca);
		atomic_init(&sc->last_reply, budget_now_ms());
	}
	pthread_condattr_destroy(&ca);
	s->breaker = dns_breaker_create(0, 0, breaker_log, NULL);
	s->provider = (scan_provider){s, scanners_configured, scanners_scan};
	return s;
}

void
scanners_free(scanners *s)
{
	if (s == NULL)
		return;
	for (int k = 0; k < SCAN_N; k++) {
		target_unref(s->sc[k].target);
		pthread_mutex_destroy(&s->sc[k].mu);
		pthread_cond_destroy(&s->sc[k].cv);
	}
	dns_breaker_free(s->breaker);
	free(s);
}

static target *
target_new(enum scan_kind k, const char *endpoint, strbuf *why)
{
	target *t;
	void *client = NULL;
	const scanner_ops *ops = kind_ops[k];

	/* A client of its own checks its endpoint (rspamd's takes a URL too). */
	if (ops->client_new == NULL && !scanio_check(endpoint, why))
		return NULL;
	if (ops->client_new != NULL && (client = ops->client_new(endpoint, why)) == NULL)
		return NULL;
	t = ms_xcalloc(1, sizeof *t);
	atomic_init(&t->refs, 1);
	t->endpoint = ms_xstrdup(endpoint);
	t->client = client;
	t->ops = ops;
	return t;
}

bool
scanners_configure(scanners *s, const scanners_config *cfg, strbuf *why)
{
	target *fresh[SCAN_N] = {NULL};

	/* All or nothing: every new endpoint first, then the swap. */
	for (int k = 0; k < SCAN_N; k++) {
		const char *ep = cfg->endpoint[k];
		target *cur;

		if (ep == NULL || *ep == '\0')
			continue;
		pthread_mutex_lock(&s->sc[k].mu);
		cur = s->sc[k].target;
		if (cur != NULL && strcmp(cur->endpoint, ep) == 0) {
			atomic_fetch_add(&cur->refs, 1);
			fresh[k] = cur;
		}
		pthread_mutex_unlock(&s->sc[k].mu);
		if (fresh[k] == NULL &&
		    (fresh[k] = target_new((enum scan_kind)k, ep, why)) == NULL) {
			strbuf_printf(why, " (%s)", scan_kind_name((enum scan_kind)k));
			for (int j = 0; j < k; j++)
				target_unref(fresh[j]);
			return false;
		}
	}
	for (int k = 0; k < SCAN_N; k++) {
		scanner *sc = &s->sc[k];
		target *old;

		pthread_mutex_lock(&sc->mu);
		old = sc->target;
		sc->target = fresh[k];
		sc->cap = cfg->max_connections[k] > 0 ? cfg->max_connections[k] : 1;
		pthread_cond_broadcast(&sc->cv);
		pthread_mutex_unlock(&sc->mu);
		target_unref(old);
	}
	dns_breaker_configure(s->breaker, cfg->breaker_threshold, cfg->breaker_ms);
	return true;
}

const scan_provider *
scanners_provider(scanners *s)
{
	return &s->provider;
}

static unsigned
scanners_configured(void *self)
{
	scanners *s = self;
	unsigned bits = 0;

	for (int k = 0; k < SCAN_N; k++) {
		pthread_mutex_lock(&s->sc[k].mu);
		if (s->sc[k].target != NULL)
			bits |= SCAN_BIT(k);
		pthread_mutex_unlock(&s->sc[k].mu);
	}
	return bits;
}

static struct timespec
abs_monotonic(long long deadline)
{
	struct timespec ts;
	long long left = budget_left(deadline);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* A slot under the cap and the current target, or NULL (out->status says why). */
static target *
take_slot(scanner *sc, long long deadline, scan_result *out)
{
	target *t = NULL;
	bool waited = false;

	pthread_mutex_lock(&sc->mu);
	while (sc->target != NULL && sc->busy >= sc->cap && !budget_expired(deadline)) {
		struct timespec ts = abs_monotonic(deadline);

		waited = true;
		sc->waiting++;
		pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
		sc->waiting--;
	}
	if (sc->target == NULL) {
		out->status = SCAN_SKIPPED;
		strbuf_puts(&out->why, "no socket configured");
	} else if (sc->busy >= sc->cap) {
		out->status = SCAN_TIMEOUT;
		strbuf_printf(&out->why, "all %u connections busy until the deadline",
		              sc->cap);
	} else {
		t = sc->target;
		atomic_fetch_add(&t->refs, 1);
		/* A scanner asked while idle (no scan on it, none waiting) is
		   presumed up from now: its silence is measured from here, not
		   from its last reply. A slot handed on is not idleness. */
		if (sc->busy == 0 && sc->waiting == 0 && !waited)
			atomic_store(&sc->last_reply, budget_now_ms());
		if (++sc->busy > sc->peak)
			sc->peak = sc->busy;
	}
	pthread_mutex_unlock(&sc->mu);
	return t;
}

static void
give_slot(scanner *sc, target *t)
{
	pthread_mutex_lock(&sc->mu);
	sc->busy--;
	pthread_cond_signal(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	target_unref(t);
}

static void
count_outcome(scanner *sc, const scan_result *out)
{
	atomic_fetch_add(&sc->scans, 1);
	switch (out->status) {
	case SCAN_OK:
		atomic_fetch_add(&sc->ok, 1);
		break;
	case SCAN_TIMEOUT:
		atomic_fetch_add(&sc->timeouts, 1);
		break;
	case SCAN_ERROR:
		atomic_fetch_add(&sc->errors, 1);
		break;
	default:
		break;
	}
}

/*
 * What a scan that ended says of the scanner, for the breaker: a reply (even
 * an error of its own) says it is up. No reply says it is down or hung when
 * the scan had the scanner for at least half its time, or when the scanner
 * has answered nothing on any connection for a whole budget of its own
 * (silence_ms), whether the scan got a connection or waited for one in
 * vain. A scan that waited for a free connection while other connections
 * were answering says only that the cap is busy. Without the silence test a
 * hung scanner under load would never be suspended: every scan gets its
 * connection late or not at all, so none holds it for half its time.
 */
static enum dns_report
breaker_news(scanner *sc, const scan_result *out, bool held_half, long long silence_ms)
{
	long long now = budget_now_ms();

	if (out->status == SCAN_OK || out->answered) {
		atomic_store(&sc->last_reply, now);
		return DNS_REP_ANSWER;
	}
	if (out->status == SCAN_TIMEOUT && !held_half &&
	    now - atomic_load(&sc->last_reply) < silence_ms)
		return DNS_REP_CANCEL;
	return DNS_REP_TIMEOUT;
}

static void
scan_one(scanners *s, enum scan_kind k, const scan_message *m, long long deadline,
         scan_result *out)
{
	scanner *sc = &s->sc[k];
	const char *name = scan_kind_name(k);
	long long t0 = budget_now_ms(), t_slot;
	long long silence = m->budget_ms[k] > deadline - t0 ? m->budget_ms[k] : deadline - t0;
	bool probe;
	target *t;

	pthread_mutex_lock(&sc->mu);
	t = sc->target;
	pthread_mutex_unlock(&sc->mu);
	if (t == NULL) {
		out->status = SCAN_SKIPPED;
		strbuf_puts(&out->why, "no socket configured");
		return;
	}
	/* A suspended scanner fails at once, without waiting for a slot. */
	switch (dns_breaker_admit(s->breaker, name)) {
	case DNS_ADMIT_SKIP:
		out->status = SCAN_ERROR;
		strbuf_puts(&out->why, "suspended: its breaker is open");
		atomic_fetch_add(&sc->suspended, 1);
		count_outcome(sc, out);
		return;
	case DNS_ADMIT_PROBE:
		probe = true;
		break;
	default:
		probe = false;
	}
	if ((t = take_slot(sc, deadline, out)) == NULL) {
		if (out->status == SCAN_TIMEOUT) {
			dns_breaker_report(s->breaker, name,
			                   breaker_news(sc, out, false, silence), probe);
			count_outcome(sc, out);
		} else if (probe) { /* the next scan probes */
			dns_breaker_report(s->breaker, name, DNS_REP_CANCEL, true);
		}
		out->ms = budget_now_ms() - t0;
		return;
	}
	t_slot = budget_now_ms();
	out->status = t->ops->scan(t->client, t->endpoint, m, deadline, out);
	dns_breaker_report(s->breaker, name,
	                   breaker_news(sc, out, 2 * (deadline - t_slot) >= deadline - t0,
	                                silence),
	                   probe);
	count_outcome(sc, out);
	give_slot(sc, t);
	out->ms = budget_now_ms() - t0;
}

typedef struct job {
	scanners *s;
	enum scan_kind k;
	const scan_message *m;
	long long deadline;
	scan_result *out;
	pthread_t th;
	bool started;
} job;

static void *
job_run(void *arg)
{
	job *j = arg;

	scan_one(j->s, j->k, j->m, j->deadline, j->out);
	return NULL;
}

static void
scanners_scan(void *self, unsigned kinds, const scan_message *m,
              const long long deadline[SCAN_N], scan_result out[SCAN_N])
{
	job jobs[SCAN_N];
	int last = -1;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int k = 0; k < SCAN_N; k++)
		if (kinds & SCAN_BIT(k))
			last = k;
	for (int k = 0; k < SCAN_N; k++) {
		job *j = &jobs[k];

		*j = (job){self, (enum scan_kind)k, m, deadline[k], &out[k], 0, false};
		if (!(kinds & SCAN_BIT(k)) || k == last)
			continue;
		/* The caller's thread runs the last; without a thread, run it here. */
		j->started = pthread_create(&j->th, &attr, job_run, j) == 0;
		if (!j->started)
			job_run(j);
	}
	if (last >= 0)
		job_run(&jobs[last]);
	for (int k = 0; k < SCAN_N; k++)
		if (jobs[k].started)
			pthread_join(jobs[k].th, NULL);
	pthread_attr_destroy(&attr);
}

void
scanners_get_stats(scanners *s, enum scan_kind k, scanners_stats *out)
{
	scanner *sc = &s->sc[k];

	out->scans = atomic_load(&sc->scans);
	out->ok = atomic_load(&sc->ok);
	out->timeouts = atomic_load(&sc->timeouts);
	out->errors = atomic_load(&sc->errors);
	out->suspended = atomic_load(&sc->suspended);
	pthread_mutex_lock(&sc->mu);
	out->busy = sc->busy;
	out->peak = sc->peak;
	pthread_mutex_unlock(&sc->mu);
}
