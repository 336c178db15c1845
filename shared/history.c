/* history - cache, write-behind and the store's thread; see history.h. */
#include "config.h"

#include "history.h"

#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "log.h"
#include "metrics.h"

const double history_read_le[HISTORY_READ_BUCKETS] = {0.1, 0.5, 1, 5, 10, 50, 250};

#define BATCH 512
#define RETRY_OPEN_MS 10000
#define DOWN_MS 1000 /* after a failed read, reads answer unavailable at once */
#define COMPLAIN_MS 60000
#define SWEEP_MS (3600 * 1000LL)
/* Updates wait this long for others to share their batch: one commit (an
   fsync) or one pipeline per batch, the same client's updates merged. */
#define WRITE_DELAY_MS 100
#define READ_TURN 64 /* reads between two write batches */

/* A cached answer: found (rec) or not (a new client). */
typedef struct centry {
	struct centry *hnext;       /* hash chain */
	struct centry *prev, *next; /* LRU list, most recent first */
	char key[HISTORY_KEY_MAX];
	bool found;
	history_record rec;
	long long expires_ms;
} centry;

typedef struct pending {
	char key[HISTORY_KEY_MAX];
	history_delta d;
} pending;

/*
 * A read handed to the thread (Redis), shared by the sessions that wait for
 * the same client; freed by the last of them and the thread to let go.
 */
typedef struct readreq {
	struct readreq *next;
	char key[HISTORY_KEY_MAX];
	enum { RQ_QUEUED, RQ_READING, RQ_DONE, RQ_FAILED } state;
	bool found;
	history_record rec;
	unsigned refs;
} readreq;

enum complaint { C_OPEN, C_READ, C_WRITE, C_SWEEP, C_FULL, C_N };

struct history {
	pthread_mutex_t mu;
	pthread_cond_t work;     /* to the thread: something queued, configured, stop */
	pthread_cond_t answered; /* from the thread: a read is in the cache, or failed */
	pthread_cond_t written;  /* from the thread: a batch is done */
	pthread_rwlock_t store_lock; /* store: inline reads vs. the thread's swap */
	history_store *store;
	bool store_inline;

	/* configuration, under mu */
	history_config cfg;
	char *spec;
	bool configured, started, stop;
	unsigned long spec_gen, open_gen; /* the spec the store is for */
	long long next_open_ms, next_sweep_ms;

	/* the cache */
	centry **bucket;
	size_t n_bucket, n_entries;
	centry *lru_head, *lru_tail;

	/* the queues */
	pending *q;
	size_t q_head, q_len, q_cap;
	readreq *rq; /* reads for the thread, oldest first, and answers not yet taken */
	long long down_until_ms;
	bool busy; /* the thread is writing a batch */
	long long first_queued_ms; /* when the oldest queued update came */
	unsigned flushing;         /* history_flush() waits: write at once */

	long long complained_ms[C_N];
	unsigned long long evicted_seen; /* store->evicted at the last notice */
	history_stats st;
	pthread_t thread;
};

static uint64_t
wall_now(const history *h)
{
	return h->cfg.now != NULL ? h->cfg.now() : (uint64_t)time(NULL);
}

/* Logs at most once a minute per kind; counted always. Under mu. */
static void
complain(history *h, enum complaint c, const char *what, const strbuf *why)
{
	long long now = budget_now_ms();

	if (h->complained_ms[c] != 0 && now - h->complained_ms[c] < COMPLAIN_MS)
		return;
	h->complained_ms[c] = now;
	log_msg(LOG_WARNING, "client history: %s: %s (clients are unknown meanwhile; logged "
	                     "at most once a minute)",
	        what, strbuf_str(why));
}

/* The store made room for new clients: said at most once a minute. Under mu. */
static void
full_notice(history *h)
{
	unsigned long long n = h->store->evicted - h->evicted_seen;
	long long now = budget_now_ms();

	if (n == 0)
		return;
	h->evicted_seen = h->store->evicted;
	h->st.evicted += n;
	if (h->complained_ms[C_FULL] != 0 && now - h->complained_ms[C_FULL] < COMPLAIN_MS)
		return;
	h->complained_ms[C_FULL] = now;
	log_msg(LOG_NOTICE, "client history: %s is full: %llu clients not seen for longest "
	                    "removed to make room (history_size; logged at most once a minute)",
	        h->store->spec, n);
}

/* ---- the cache, under mu ---- */

static size_t
hash_key(const char *s, size_t n)
{
	size_t h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h % n;
}

static void
lru_unlink(history *h, centry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		h->lru_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		h->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_front(history *h, centry *e)
{
	e->next = h->lru_head;
	e->prev = NULL;
	if (h->lru_head != NULL)
		h->lru_head->prev = e;
	h->lru_head = e;
	if (h->lru_tail == NULL)
		h->lru_tail = e;
}

static centry **
slot(history *h, const char *key)
{
	centry **pp = &h->bucket[hash_key(key, h->n_bucket)];

	while (*pp != NULL && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
cache_drop(history *h, centry *e)
{
	centry **pp = slot(h, e->key);

	*pp = e->hnext;
	lru_unlink(h, e);
	free(e);
	h->n_entries--;
}

static void
cache_clear(history *h)
{
	while (h->lru_head != NULL)
		cache_drop(h, h->lru_head);
}

/* A live entry, made the most recent; an expired one goes. */
static centry *
cache_get(history *h, const char *key)
{
	centry *e;

	if (h->n_bucket == 0 || (e = *slot(h, key)) == NULL)
		return NULL;
	if (e->expires_ms <= budget_now_ms()) {
		cache_drop(h, e);
		return NULL;
	}
	lru_unlink(h, e);
	lru_front(h, e);
	return e;
}

static void
cache_put(history *h, const char *key, bool found, const history_record *r)
{
	centry **pp, *e;

	if (h->n_bucket == 0 || h->cfg.cache_size == 0)
		return;
	if ((e = *(pp = slot(h, key))) == NULL) {
		while (h->n_entries >= h->cfg.cache_size && h->lru_tail != NULL)
			cache_drop(h, h->lru_tail);
		e = ms_xcalloc(1, sizeof *e);
		snprintf(e->key, sizeof e->key, "%s", key);
		*slot(h, key) = e;
		h->n_entries++;
	} else {
		lru_unlink(h, e);
	}
	lru_front(h, e);
	e->found = found;
	if (r != NULL)
		e->rec = *r;
	e->expires_ms = budget_now_ms() + h->cfg.cache_ttl_ms;
}

/* The hash for cache_size entries; what does not fit goes. */
static void
cache_resize(history *h, size_t size)
{
	size_t n = size < 16 ? 16 : size;
	centry *e;

	while (h->n_entries > size && h->lru_tail != NULL)
		cache_drop(h, h->lru_tail);
	if (n == h->n_bucket)
		return;
	free(h->bucket);
	h->bucket = ms_xcalloc(n, sizeof *h->bucket);
	h->n_bucket = n;
	for (e = h->lru_head; e != NULL; e = e->next) {
		centry **pp = &h->bucket[hash_key(e->key, n)];

		e->hnext = *pp;
		*pp = e;
	}
}

/* ---- the thread ---- */

static void
count_read(history *h, long long ns)
{
	double ms = (double)ns / 1e6;
	size_t i = 0;

	while (i < HISTORY_READ_BUCKETS && ms > history_read_le[i])
		i++;
	h->st.read_buckets[i]++;
	h->st.read_ms_sum += ms;
}

/* Open the configured store when it is not open or the spec changed. Under mu. */
static void
open_store(history *h)
{
	history_store *st, *old;
	history_store_opts o = h->cfg.store;
	char *spec = ms_xstrdup(h->spec);
	unsigned long gen = h->spec_gen;
	strbuf why = STRBUF_INIT, moved = STRBUF_INIT;

	pthread_mutex_unlock(&h->mu);
	st = spec[0] != '\0' ? history_store_open(spec, &o, &why, &moved) : NULL;
	pthread_mutex_lock(&h->mu);
	if (moved.len > 0)
		log_msg(LOG_ERR, "client history: %s", strbuf_str(&moved));
	if (st == NULL && spec[0] != '\0') {
		h->st.store_errors++;
		complain(h, C_OPEN, spec, &why);
		h->next_open_ms = budget_now_ms() + RETRY_OPEN_MS;
	} else if (st != NULL) {
		log_msg(LOG_INFO, "client history: %s open", spec);
		h->next_sweep_ms = budget_now_ms() + 10000;
	}
	pthread_rwlock_wrlock(&h->store_lock);
	old = h->store;
	h->store = st;
	h->evicted_seen = 0; /* a new store counts from 0 */
	h->store_inline = st != NULL && st->ops->inline_reads;
	pthread_rwlock_unlock(&h->store_lock);
	if (st != NULL || spec[0] == '\0')
		h->open_gen = gen;
	if (old != st)
		cache_clear(h);
	pthread_mutex_unlock(&h->mu);
	history_store_close(old);
	pthread_mutex_lock(&h->mu);
	free(spec);
	strbuf_free(&why);
	strbuf_free(&moved);
}

/* Drops a reference; the last one unlinks and frees. Under mu. */
static void
rq_release(history *h, readreq *q)
{
	readreq **pp;

	if (--q->refs > 0)
		return;
	for (pp = &h->rq; *pp != q; pp = &(*pp)->next)
		;
	*pp = q->next;
	free(q);
}

static readreq *
rq_next_queued(history *h)
{
	readreq *q;

	for (q = h->rq; q != NULL && q->state != RQ_QUEUED; q = q->next)
		;
	return q;
}

/*
 * The reads asked of the thread (Redis), oldest first, at most READ_TURN of
 * them before the writes get a turn: under a steady stream of new clients
 * the reads alone would keep the thread. Under mu; unlocks around I/O.
 */
static void
do_reads(history *h)
{
	readreq *q;

	for (unsigned turn = 0; turn < READ_TURN && (q = rq_next_queued(h)) != NULL; turn++) {
		strbuf why = STRBUF_INIT;
		long long t0;
		int rc = -1;

		q->state = RQ_READING;
		q->refs++; /* the thread's, while it reads */
		if (h->store != NULL) {
			pthread_mutex_unlock(&h->mu);
			t0 = metrics_now_ns();
			rc = h->store->ops->get(h->store, q->key, &q->rec, &why);
			t0 = metrics_now_ns() - t0;
			pthread_mutex_lock(&h->mu);
			count_read(h, t0);
		}
		if (rc < 0) {
			readreq *o;

			if (h->store != NULL) {
				h->st.store_errors++;
				h->down_until_ms = budget_now_ms() + DOWN_MS;
				complain(h, C_READ, "read", &why);
			}
			/* The others would fail the same way. */
			for (o = h->rq; o != NULL; o = o->next)
				if (o->state == RQ_QUEUED)
					o->state = RQ_FAILED;
			q->state = RQ_FAILED;
		} else {
			q->found = rc == 1;
			q->state = RQ_DONE;
			cache_put(h, q->key, q->found, &q->rec);
		}
		strbuf_free(&why);
		rq_release(h, q);
		pthread_cond_broadcast(&h->answered);
	}
}

/* One batch of queued updates. Under mu; unlocks around I/O. */
static void
do_writes(history *h)
{
	pending batch[BATCH];
	const char *keys[BATCH];
	history_delta d[BATCH];
	history_record out[BATCH];
	history_store_opts o = h->cfg.store;
	strbuf why = STRBUF_INIT;
	size_t n = 0;
	uint64_t now;
	bool ok;

	size_t taken = 0;

	/* The same client's updates in one batch become one. */
	while (taken < BATCH && h->q_len > 0) {
		const pending *p = &h->q[h->q_head];
		size_t i;

		for (i = 0; i < n && strcmp(batch[i].key, p->key) != 0; i++)
			;
		if (i == n) {
			batch[n] = *p;
			keys[n] = batch[n].key;
			d[n++] = p->d;
		} else {
			d[i].accepted += p->d.accepted;
			d[i].refused += p->d.refused;
		}
		h->q_head = (h->q_head + 1) % h->q_cap;
		h->q_len--;
		taken++;
	}
	if (n == 0)
		return;
	if (h->store == NULL) {
		h->st.dropped += taken;
		return;
	}
	h->busy = true;
	now = wall_now(h); /* cfg is read under mu */
	pthread_mutex_unlock(&h->mu);
	pthread_rwlock_rdlock(&h->store_lock);
	ok = h->store->ops->update(h->store, keys, d, n, now, &o, out, &why);
	pthread_rwlock_unlock(&h->store_lock);
	pthread_mutex_lock(&h->mu);
	h->busy = false;
	if (!ok) {
		h->st.store_errors++;
		h->st.dropped += taken;
		complain(h, C_WRITE, "write", &why);
	} else {
		h->st.updates += taken;
		full_notice(h);
		for (size_t i = 0; i < n; i++)
			cache_put(h, keys[i], true, &out[i]);
	}
	strbuf_free(&why);
}

static void
do_sweep(history *h)
{
	history_store_opts o = h->cfg.store;
	strbuf why = STRBUF_INIT;
	uint64_t now = wall_now(h);
	long n;

	h->next_sweep_ms = budget_now_ms() + SWEEP_MS;
	if (h->store == NULL)
		return;
	pthread_mutex_unlock(&h->mu);
	pthread_rwlock_rdlock(&h->store_lock);
	n = h->store->ops->sweep(h->store, now, &o, &why);
	pthread_rwlock_unlock(&h->store_lock);
	pthread_mutex_lock(&h->mu);
	if (n < 0) {
		h->st.store_errors++;
		complain(h, C_SWEEP, "sweep", &why);
	} else if (n > 0) {
		log_msg(LOG_INFO, "client history: %ld clients not seen for %llu s removed", n,
		        (unsigned long long)o.max_age);
	}
	strbuf_free(&why);
}

static void
wait_work(history *h)
{
	long long now = budget_now_ms(), until = h->next_sweep_ms;
	struct timespec ts;

	if (h->open_gen != h->spec_gen && h->next_open_ms < until)
		until = h->next_open_ms;
	if (h->q_len > 0 && h->first_queued_ms + WRITE_DELAY_MS < until)
		until = h->first_queued_ms + WRITE_DELAY_MS;
	if (until <= now)
		return;
	ts = budget_timespec(until < now + 1000 ? until : now + 1000);
	pthread_cond_timedwait(&h->work, &h->mu, &ts);
}

static void *
run(void *arg)
{
	history *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		if (h->open_gen != h->spec_gen && budget_now_ms() >= h->next_open_ms)
			open_store(h);
		do_reads(h);
		if (h->q_len > 0 &&
		    (h->stop || h->flushing > 0 || h->q_len >= BATCH ||
		     budget_now_ms() >= h->first_queued_ms + WRITE_DELAY_MS)) {
			do_writes(h);
			pthread_cond_broadcast(&h->written);
			continue; /* reads first again */
		}
		if (h->stop)
			break;
		if (budget_now_ms() >= h->next_sweep_ms)
			do_sweep(h);
		if (rq_next_queued(h) == NULL && !h->stop)
			wait_work(h);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* The thread, on first use. Under mu. */
static bool
started(history *h)
{
	sigset_t all, old;

	if (h->started || !h->configured || h->spec[0] == '\0')
		return h->started;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* the daemon's signals stay its own */
	if (pthread_create(&h->thread, NULL, run, h) == 0)
		h->started = true;
	else
		log_msg(LOG_ERR, "client history: cannot start its thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return h->started;
}

/* ---- the interface ---- */

history *
history_create(void)
{
	history *h = ms_xcalloc(1, sizeof *h);

	pthread_condattr_t ca;

	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	/* Deadlines are monotonic: a clock step must not stretch a wait. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->work, &ca);
	pthread_cond_init(&h->answered, &ca);
	pthread_cond_init(&h->written, &ca);
	pthread_condattr_destroy(&ca);
	pthread_rwlock_init(&h->store_lock, NULL);
	h->spec = ms_xstrdup("");
	return h;
}

void
history_configure(history *h, const history_config *cfg)
{
	pthread_mutex_lock(&h->mu);
	if (strcmp(h->spec, cfg->spec) != 0 || !h->configured) {
		free(h->spec);
		h->spec = ms_xstrdup(cfg->spec);
		h->spec_gen++;
		h->next_open_ms = 0;
	}
	h->cfg = *cfg;
	h->cfg.spec = h->spec;
	if (h->cfg.queue_max == 0)
		h->cfg.queue_max = 1;
	h->configured = true;
	cache_resize(h, cfg->cache_size);
	pthread_cond_signal(&h->work);
	pthread_mutex_unlock(&h->mu);
}

void
history_start(history *h)
{
	pthread_mutex_lock(&h->mu);
	started(h);
	pthread_mutex_unlock(&h->mu);
}

void
history_free(history *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_signal(&h->work);
	pthread_mutex_unlock(&h->mu);
	if (h->started)
		pthread_join(h->thread, NULL);
	history_store_close(h->store);
	while (h->rq != NULL) { /* none is waited for any more */
		readreq *q = h->rq;

		h->rq = q->next;
		free(q);
	}
	cache_clear(h);
	free(h->bucket);
	free(h->q);
	free(h->spec);
	pthread_rwlock_destroy(&h->store_lock);
	pthread_cond_destroy(&h->written);
	pthread_cond_destroy(&h->answered);
	pthread_cond_destroy(&h->work);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* Through the thread, until the deadline. Under mu. */
static enum history_status
read_remote(history *h, const char *key, long long deadline_ms, history_record *out)
{
	struct timespec ts = budget_timespec(deadline_ms);
	enum history_status st = HISTORY_UNAVAILABLE;
	readreq *q, **tail = &h->rq;

	for (q = h->rq; q != NULL; tail = &q->next, q = q->next)
		if (strcmp(q->key, key) == 0 && (q->state == RQ_QUEUED || q->state == RQ_READING))
			break;
	if (q == NULL) {
		q = ms_xcalloc(1, sizeof *q);
		snprintf(q->key, sizeof q->key, "%s", key);
		q->state = RQ_QUEUED;
		*tail = q;
		pthread_cond_signal(&h->work);
	}
	q->refs++;
	while ((q->state == RQ_QUEUED || q->state == RQ_READING) && !budget_expired(deadline_ms))
		pthread_cond_timedwait(&h->answered, &h->mu, &ts);
	if (q->state == RQ_DONE) {
		if (q->found)
			*out = q->rec;
		st = q->found ? HISTORY_FOUND : HISTORY_NEW;
	}
	rq_release(h, q);
	return st;
}

static enum history_status
read_inline(history *h, const char *key, history_record *out)
{
	strbuf why = STRBUF_INIT;
	long long t0 = metrics_now_ns();
	int rc = -1;

	pthread_rwlock_rdlock(&h->store_lock);
	if (h->store != NULL)
		rc = h->store->ops->get(h->store, key, out, &why);
	pthread_rwlock_unlock(&h->store_lock);
	pthread_mutex_lock(&h->mu);
	count_read(h, metrics_now_ns() - t0);
	if (rc < 0) {
		h->st.store_errors++;
		complain(h, C_READ, "read", &why);
	} else {
		cache_put(h, key, rc == 1, out);
	}
	pthread_mutex_unlock(&h->mu);
	strbuf_free(&why);
	return rc < 0 ? HISTORY_UNAVAILABLE : rc == 1 ? HISTORY_FOUND : HISTORY_NEW;
}

enum history_status
history_lookup(history *h, const char *client_addr, long long deadline_ms,
               history_record *out)
{
	char key[HISTORY_KEY_MAX];
	enum history_status st = HISTORY_UNAVAILABLE;
	centry *e;

	memset(out, 0, sizeof *out);
	if (h == NULL)
		return HISTORY_UNAVAILABLE;
	pthread_mutex_lock(&h->mu);
	h->st.lookups++;
	if (!history_key(client_addr, h->cfg.v6_prefix, key) || !started(h)) {
		h->st.unavailable++;
		pthread_mutex_unlock(&h->mu);
		return HISTORY_UNAVAILABLE;
	}
	if ((e = cache_get(h, key)) != NULL) {
		h->st.cache_hits++;
		if (e->found)
			*out = e->rec;
		st = e->found ? HISTORY_FOUND : HISTORY_NEW;
	} else if (h->store_inline) {
		pthread_mutex_unlock(&h->mu);
		st = read_inline(h, key, out);
		pthread_mutex_lock(&h->mu);
	} else if (h->store != NULL && budget_now_ms() >= h->down_until_ms &&
	           !budget_expired(deadline_ms)) {
		st = read_remote(h, key, deadline_ms, out);
	}
	if (st == HISTORY_UNAVAILABLE)
		h->st.unavailable++;
	pthread_mutex_unlock(&h->mu);
	return st;
}

void
history_note(history *h, const char *client_addr, const history_delta *d)
{
	char key[HISTORY_KEY_MAX];
	pending *p;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	if (!history_key(client_addr, h->cfg.v6_prefix, key) || !started(h)) {
		pthread_mutex_unlock(&h->mu);
		return;
	}
	if (h->q_len >= h->cfg.queue_max) {
		h->st.dropped++;
		pthread_mutex_unlock(&h->mu);
		return;
	}
	if (h->q_len == h->q_cap) { /* grow the ring, oldest first */
		size_t cap = h->q_cap ? 2 * h->q_cap : 256;
		pending *q = ms_xcalloc(cap, sizeof *q);

		for (size_t i = 0; i < h->q_len; i++)
			q[i] = h->q[(h->q_head + i) % h->q_cap];
		free(h->q);
		h->q = q;
		h->q_cap = cap;
		h->q_head = 0;
	}
	p = &h->q[(h->q_head + h->q_len) % h->q_cap];
	snprintf(p->key, sizeof p->key, "%s", key);
	p->d = *d;
	if (h->q_len++ == 0)
		h->first_queued_ms = budget_now_ms();
	if (h->q_len > h->st.queue_peak)
		h->st.queue_peak = h->q_len;
	/* The thread wakes for the first (its delay starts) and for a full batch. */
	if (h->q_len == 1 || h->q_len == BATCH)
		pthread_cond_signal(&h->work);
	pthread_mutex_unlock(&h->mu);
}

bool
history_flush(history *h, long long deadline_ms)
{
	struct timespec ts;
	bool done;

	if (h == NULL)
		return true;
	ts = budget_timespec(deadline_ms);
	pthread_mutex_lock(&h->mu);
	h->flushing++;
	pthread_cond_signal(&h->work);
	while ((h->q_len > 0 || h->busy) && h->started && !budget_expired(deadline_ms))
		pthread_cond_timedwait(&h->written, &h->mu, &ts);
	h->flushing--;
	done = h->q_len == 0 && !h->busy;
	pthread_mutex_unlock(&h->mu);
	return done;
}

void
history_get_stats(history *h, history_stats *out)
{
	memset(out, 0, sizeof *out);
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	*out = h->st;
	out->queue_depth = h->q_len;
	pthread_mutex_unlock(&h->mu);
}
