/* history-memory - the in-process history store (memory:); see history-store.h. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history-store.h"

typedef struct mentry {
	struct mentry *next;
	history_record r;
	char key[HISTORY_KEY_MAX];
} mentry;

#define MEM_BUCKETS 4096

typedef struct mstore {
	history_store base;
	pthread_mutex_t mu;
	mentry *b[MEM_BUCKETS];
} mstore;

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % MEM_BUCKETS;
}

/* The entry of key, created (all zero) when create; under mu. */
static mentry *
find(mstore *m, const char *key, bool create)
{
	mentry **pp = &m->b[hash(key)], *e;

	for (e = *pp; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	if (!create)
		return NULL;
	e = ms_xcalloc(1, sizeof *e);
	snprintf(e->key, sizeof e->key, "%s", key);
	e->next = *pp;
	*pp = e;
	return e;
}

static int
m_get(history_store *st, const char *key, history_record *out, strbuf *why)
{
	mstore *m = (mstore *)st;
	mentry *e;

	(void)why;
	pthread_mutex_lock(&m->mu);
	if ((e = find(m, key, false)) != NULL)
		*out = e->r;
	pthread_mutex_unlock(&m->mu);
	return e != NULL;
}

static bool
m_update(history_store *st, const char *const *keys, const history_delta *d, size_t n,
         uint64_t now, const history_store_opts *o, history_record *out, strbuf *why)
{
	mstore *m = (mstore *)st;

	(void)why;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < n; i++) {
		mentry *e = find(m, keys[i], true);

		history_record_add(&e->r, &d[i], now, o->window_s);
		out[i] = e->r;
	}
	pthread_mutex_unlock(&m->mu);
	return true;
}

static bool
m_put(history_store *st, const char *key, const history_record *r,
      const history_store_opts *o, strbuf *why)
{
	mstore *m = (mstore *)st;

	(void)o, (void)why;
	pthread_mutex_lock(&m->mu);
	find(m, key, true)->r = *r;
	pthread_mutex_unlock(&m->mu);
	return true;
}

/* Removes the entries for which drop(e) says so; how many. */
static long
remove_if(mstore *m, bool (*drop)(const mentry *e, const void *arg), const void *arg)
{
	long n = 0;

	for (size_t i = 0; i < MEM_BUCKETS; i++) {
		for (mentry **pp = &m->b[i]; *pp != NULL;) {
			mentry *e = *pp;

			if (drop(e, arg)) {
				*pp = e->next;
				free(e);
				n++;
			} else {
				pp = &e->next;
			}
		}
	}
	return n;
}

static bool
same_key(const mentry *e, const void *key)
{
	return strcmp(e->key, key) == 0;
}

static int
m_del(history_store *st, const char *key, strbuf *why)
{
	mstore *m = (mstore *)st;
	long n;

	(void)why;
	pthread_mutex_lock(&m->mu);
	n = remove_if(m, same_key, key);
	pthread_mutex_unlock(&m->mu);
	return n > 0;
}

static bool
m_each(history_store *st, history_each_fn fn, void *ctx, strbuf *why)
{
	mstore *m = (mstore *)st;

	(void)why;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < MEM_BUCKETS; i++)
		for (mentry *e = m->b[i]; e != NULL; e = e->next)
			if (!fn(ctx, e->key, &e->r))
				goto out;
out:
	pthread_mutex_unlock(&m->mu);
	return true;
}

/* arg: the oldest last_seen kept */
static bool
too_old(const mentry *e, const void *arg)
{
	return e->r.last_seen < *(const uint64_t *)arg;
}

static long
m_sweep(history_store *st, uint64_t now, const history_store_opts *o, strbuf *why)
{
	mstore *m = (mstore *)st;
	uint64_t oldest = now > o->max_age ? now - o->max_age : 0;
	long n;

	(void)why;
	pthread_mutex_lock(&m->mu);
	n = remove_if(m, too_old, &oldest);
	pthread_mutex_unlock(&m->mu);
	return n;
}

static bool
drop_all(const mentry *e, const void *arg)
{
	(void)e, (void)arg;
	return true;
}

static void
m_close(history_store *st)
{
	mstore *m = (mstore *)st;

	remove_if(m, drop_all, NULL);
	pthread_mutex_destroy(&m->mu);
	free(m->base.spec);
	free(m);
}

static const history_store_ops memory_ops = {
        "memory", true, m_get, m_update, m_put, m_del, m_each, m_sweep, m_close,
};

history_store *
history_memory_open(const char *spec)
{
	mstore *m = ms_xcalloc(1, sizeof *m);

	m->base.ops = &memory_ops;
	m->base.spec = ms_xstrdup(spec);
	pthread_mutex_init(&m->mu, NULL);
	return &m->base;
}
