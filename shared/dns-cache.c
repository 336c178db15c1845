/* dns-cache - a TTL and LRU cache of DNS answers; see dns-cache.h. */
#include "config.h"

#include "dns-cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"

struct centry {
	struct centry *hnext;       /* hash chain */
	struct centry *prev, *next; /* LRU list, most recent first */
	unsigned hash;
	int type;
	long long expires;
	bool negative;
	unsigned naddr;
	unsigned char addr[DNSBL_MAX_ADDR][4];
	char *txt;
	char name[]; /* flexible */
};

struct dns_cache {
	pthread_mutex_t mu; /* everything below */
	size_t size;        /* the most entries kept; 0: none */
	unsigned max_ttl;
	struct centry **bucket;
	size_t nbuckets, count; /* nbuckets: a power of 2 */
	struct centry lru;      /* sentinel of the LRU list */
};

static unsigned
name_hash(int type, const char *name)
{
	unsigned h = 2166136261u ^ (unsigned)type;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

static size_t
buckets_for(size_t size)
{
	size_t n = 16;

	while (n < size)
		n *= 2;
	return n;
}

dns_cache *
dns_cache_create(size_t size, unsigned max_ttl)
{
	dns_cache *c = ms_xcalloc(1, sizeof *c);

	pthread_mutex_init(&c->mu, NULL);
	c->size = size;
	c->max_ttl = max_ttl;
	c->nbuckets = buckets_for(size);
	c->bucket = ms_xcalloc(c->nbuckets, sizeof *c->bucket);
	c->lru.next = c->lru.prev = &c->lru;
	return c;
}

static void
lru_unlink(struct centry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void
lru_push_front(dns_cache *c, struct centry *e)
{
	e->next = c->lru.next;
	e->prev = &c->lru;
	c->lru.next->prev = e;
	c->lru.next = e;
}

/* Unlinks e from its chain and the LRU list and frees it; under mu. */
static void
drop(dns_cache *c, struct centry *e)
{
	struct centry **pp = &c->bucket[e->hash & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	c->count--;
	free(e->txt);
	free(e);
}

void
dns_cache_free(dns_cache *c)
{
	if (c == NULL)
		return;
	while (c->lru.next != &c->lru)
		drop(c, c->lru.next);
	free(c->bucket);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct centry *
find(dns_cache *c, int type, const char *name, unsigned h)
{
	for (struct centry *e = c->bucket[h & (c->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->type == type && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

bool
dns_cache_get(dns_cache *c, int type, const char *name, dns_answer *a)
{
	unsigned h = name_hash(type, name);
	long long now = budget_now_ms();
	struct centry *e;
	bool hit = false;

	pthread_mutex_lock(&c->mu);
	e = c->size > 0 ? find(c, type, name, h) : NULL;
	if (e != NULL && e->expires <= now) {
		drop(c, e);
		e = NULL;
	}
	if (e != NULL) {
		lru_unlink(e);
		lru_push_front(c, e);
		a->outcome = e->negative ? DNS_NEGATIVE : DNS_POSITIVE;
		a->naddr = e->naddr;
		memcpy(a->addr, e->addr, sizeof a->addr);
		if (e->txt)
			strbuf_puts(&a->txt, e->txt);
		hit = true;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void
dns_cache_put(dns_cache *c, int type, const char *name, const dns_answer *a)
{
	unsigned h = name_hash(type, name);
	unsigned ttl = a->ttl < c->max_ttl ? a->ttl : c->max_ttl;
	size_t nlen = strlen(name);
	struct centry *e, *old;

	if (ttl == 0)
		return;
	/* Built outside the lock: the lock covers the map operation only. */
	e = ms_xcalloc(1, sizeof *e + nlen + 1);
	memcpy(e->name, name, nlen + 1);
	e->hash = h;
	e->type = type;
	e->expires = budget_deadline(budget_now_ms(), (long long)ttl * 1000);
	e->negative = a->outcome == DNS_NEGATIVE;
	e->naddr = a->naddr;
	memcpy(e->addr, a->addr, sizeof e->addr);
	if (type == DNS_T_TXT && !e->negative)
		e->txt = ms_xstrdup(strbuf_str(&a->txt));

	pthread_mutex_lock(&c->mu);
	if (c->size == 0) {
		pthread_mutex_unlock(&c->mu);
		free(e->txt);
		free(e);
		return;
	}
	if ((old = find(c, type, name, h)) != NULL)
		drop(c, old);
	e->hnext = c->bucket[h & (c->nbuckets - 1)];
	c->bucket[h & (c->nbuckets - 1)] = e;
	lru_push_front(c, e);
	if (++c->count > c->size)
		drop(c, c->lru.prev);
	pthread_mutex_unlock(&c->mu);
}

void
dns_cache_resize(dns_cache *c, size_t size)
{
	size_t n = buckets_for(size);
	struct centry **fresh = ms_xcalloc(n, sizeof *fresh), **stale;

	pthread_mutex_lock(&c->mu);
	c->size = size;
	while (c->count > size)
		drop(c, c->lru.prev);
	/* Rehashed from the LRU list, which holds every entry. */
	for (struct centry *e = c->lru.next; e != &c->lru; e = e->next) {
		e->hnext = fresh[e->hash & (n - 1)];
		fresh[e->hash & (n - 1)] = e;
	}
	stale = c->bucket;
	c->bucket = fresh;
	c->nbuckets = n;
	pthread_mutex_unlock(&c->mu);
	free(stale);
}

size_t
dns_cache_count(dns_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->count;
	pthread_mutex_unlock(&c->mu);
	return n;
}
