/* dnsbl - DNSBL/RHSBL lookups with c-ares; see dnsbl.h for the contract. */
#include "config.h"

#include "dnsbl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>

#include "budget.h"

#define T_A 1
#define T_SOA 6
#define T_TXT 16
#define C_IN 1

#define NAME_MAX_LEN 253 /* a DNS name in text, without the final dot */

/*
 * Filters: one 256-bit set per octet. Matching is four bit tests, and the
 * parsed form needs no allocation beyond the struct.
 */
struct dnsbl_filter {
	unsigned char set[4][32];
};

static void
set_range(unsigned char *set, unsigned lo, unsigned hi)
{
	for (unsigned v = lo; v <= hi; v++)
		set[v / 8] |= (unsigned char)(1u << (v % 8));
}

/* A decimal 0..255 at *p; false when there is none or it is too big. */
static bool
parse_octet(const char **p, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 255)
			return false;
	}
	*p = s;
	*out = v;
	return true;
}

static bool
filter_fail(strbuf *err, const char *text, const char *at, const char *expected)
{
	strbuf_printf(err, "bad DNSBL filter \"%s\" at column %d: expected %s", text,
	              (int)(at - text) + 1, expected);
	return false;
}

/* One field: a number or [n;n..m;...]. */
static bool
parse_field(const char *text, const char **p, unsigned char *set, strbuf *err)
{
	unsigned lo, hi;

	if (**p != '[') {
		if (!parse_octet(p, &lo))
			return filter_fail(err, text, *p, "a number 0..255 or \"[\"");
		set_range(set, lo, lo);
		return true;
	}
	(*p)++;
	for (;;) {
		if (!parse_octet(p, &lo))
			return filter_fail(err, text, *p, "a number 0..255");
		hi = lo;
		if ((*p)[0] == '.' && (*p)[1] == '.') {
			*p += 2;
			if (!parse_octet(p, &hi))
				return filter_fail(err, text, *p,
				                   "a number 0..255 after \"..\"");
			if (hi < lo)
				return filter_fail(err, text, *p,
				                   "a range that does not run backwards");
		}
		set_range(set, lo, hi);
		if (**p == ']') {
			(*p)++;
			return true;
		}
		if (**p != ';')
			return filter_fail(err, text, *p, "\";\" or \"]\"");
		(*p)++;
	}
}

dnsbl_filter *
dnsbl_filter_parse(const char *text, strbuf *err)
{
	dnsbl_filter *f = ms_xcalloc(1, sizeof *f);
	const char *p = text;
	size_t len = strlen(text);
	char *inner = NULL;

	/* Postfix also takes the whole pattern inside one pair of []. */
	if (len > 2 && text[0] == '[' && text[len - 1] == ']' &&
	    strchr(text + 1, '[') == NULL && strchr(text, ']') == text + len - 1 &&
	    strchr(text, '.') != NULL) {
		inner = ms_xstrndup(text + 1, len - 2);
		p = inner;
	}
	const char *base = inner ? inner : text;
	if (*p == '\0') {
		strbuf_printf(err, "empty DNSBL filter: expected d.d.d.d");
		goto fail;
	}
	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (*p != '.') {
				filter_fail(err, base, p, "\".\" and another field");
				goto fail;
			}
			p++;
		}
		if (!parse_field(base, &p, f->set[i], err))
			goto fail;
	}
	if (*p != '\0') {
		filter_fail(err, base, p, "the end after four fields");
		goto fail;
	}
	free(inner);
	return f;
fail:
	free(inner);
	free(f);
	return NULL;
}

bool
dnsbl_filter_match(const dnsbl_filter *f, const unsigned char addr[4])
{
	if (f == NULL)
		return true;
	for (int i = 0; i < 4; i++)
		if (!(f->set[i][addr[i] / 8] & (1u << (addr[i] % 8))))
			return false;
	return true;
}

void
dnsbl_filter_free(dnsbl_filter *f)
{
	free(f);
}

/* Query names. */

bool
dnsbl_reverse_ip(const char *addr, strbuf *out)
{
	unsigned char b[16];
	static const char hex[] = "0123456789abcdef";

	strbuf_reset(out);
	strbuf_puts(out, "");
	if (inet_pton(AF_INET, addr, b) == 1) {
		strbuf_printf(out, "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
		return true;
	}
	if (inet_pton(AF_INET6, addr, b) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)b)) {
		strbuf_printf(out, "%u.%u.%u.%u", b[15], b[14], b[13], b[12]);
		return true;
	}
	for (int i = 15; i >= 0; i--) {
		strbuf_putc(out, hex[b[i] & 0xf]);
		strbuf_putc(out, '.');
		strbuf_putc(out, hex[b[i] >> 4]);
		if (i > 0)
			strbuf_putc(out, '.');
	}
	return true;
}

/*
 * Appends a host-name-like domain to out in lower case, without a final
 * dot. Letters, digits, '-' and '_' (found in real DNSBL zones), labels of
 * 1..63. A HELO is anything the client typed: nothing else goes on the wire.
 */
static bool
append_domain(strbuf *out, const char *what, const char *name, strbuf *err)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.' && label > 0)
			label = 0;
		else if ((isalnum(c) || c == '-' || c == '_') && label < 63)
			label++;
		else
			goto bad;
	}
	if (label == 0)
		goto bad;
	for (size_t i = 0; i < len; i++)
		strbuf_putc(out, (char)tolower((unsigned char)name[i]));
	return true;
bad:
	strbuf_printf(err, "%s \"%.100s\" is not a domain name", what, name);
	return false;
}

static bool
build_name(dnsbl_query *q, size_t *zoff, strbuf *err)
{
	strbuf_reset(&q->name);
	if (q->kind == DNSBL_IP) {
		if (q->subject == NULL || !dnsbl_reverse_ip(q->subject, &q->name)) {
			strbuf_printf(err,
			              "client address \"%.100s\" is not an IP address",
			              q->subject ? q->subject : "(none)");
			return false;
		}
	} else if (q->subject == NULL ||
	           !append_domain(&q->name, "domain", q->subject, err)) {
		if (q->subject == NULL)
			strbuf_puts(err, "no domain");
		return false;
	}
	strbuf_putc(&q->name, '.');
	*zoff = q->name.len;
	if (!append_domain(&q->name, "zone", q->zone ? q->zone : "", err))
		return false;
	if (q->name.len > NAME_MAX_LEN) {
		strbuf_printf(err, "query name longer than %d bytes", NAME_MAX_LEN);
		return false;
	}
	return true;
}

/* DNS answers, parsed from the wire: the few things we need. */

enum outcome { OUT_POSITIVE, OUT_NEGATIVE, OUT_ERROR, OUT_TIMEOUT };

struct answer {
	enum outcome outcome;
	unsigned ttl; /* seconds, for POSITIVE and NEGATIVE */
	unsigned naddr;
	unsigned char addr[DNSBL_MAX_ADDR][4];
	strbuf txt;
	int ares_status; /* for ERROR */
};

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static unsigned long
get32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	       (unsigned long)p[2] << 8 | p[3];
}

/* RFC 2181 8: a TTL with the top bit set is 0. */
static unsigned
ttl_value(unsigned long t)
{
	return t > 0x7fffffffUL ? 0 : (unsigned)t;
}

static bool
skip_name(const unsigned char *b, size_t len, size_t *off)
{
	while (*off < len) {
		unsigned c = b[*off];

		if (c == 0) {
			*off += 1;
			return true;
		}
		if ((c & 0xc0) == 0xc0) {
			*off += 2;
			return *off <= len;
		}
		if (c & 0xc0)
			return false;
		*off += 1 + c;
	}
	return false;
}

static void
append_txt_rdata(strbuf *txt, const unsigned char *p, size_t n)
{
	if (txt->len > 0 && txt->len < DNSBL_TXT_MAX)
		strbuf_puts(txt, "; ");
	for (size_t i = 0; i < n;) {
		size_t sl = p[i++];

		for (size_t j = 0; j < sl && i < n; j++, i++) {
			unsigned char c = p[i];

			if (txt->len >= DNSBL_TXT_MAX)
				return;
			strbuf_putc(txt, c >= 0x20 && c < 0x7f ? (char)c : '?');
		}
	}
}

/*
 * Walks the answer section for records of the asked type and the authority
 * section for an SOA (the negative TTL). False on a malformed message.
 */
static bool
parse_reply(const unsigned char *b, size_t len, int type, struct answer *a,
            bool *have_soa, unsigned *soa_ttl)
{
	size_t off = 12;
	unsigned qd, an, ns;
	bool have_ttl = false;

	*have_soa = false;
	if (len < 12)
		return false;
	qd = get16(b + 4);
	an = get16(b + 6);
	ns = get16(b + 8);
	for (unsigned i = 0; i < qd; i++) {
		if (!skip_name(b, len, &off) || off + 4 > len)
			return false;
		off += 4;
	}
	for (unsigned i = 0; i < an + ns; i++) {
		unsigned rtype, rclass, rdlen, ttl;

		if (!skip_name(b, len, &off) || off + 10 > len)
			return false;
		rtype = get16(b + off);
		rclass = get16(b + off + 2);
		ttl = ttl_value(get32(b + off + 4));
		rdlen = get16(b + off + 8);
		off += 10;
		if (off + rdlen > len)
			return false;
		if (rclass != C_IN) {
			off += rdlen;
			continue;
		}
		if (i < an && (int)rtype == type) {
			if (type == T_A && rdlen == 4 && a->naddr < DNSBL_MAX_ADDR)
				memcpy(a->addr[a->naddr++], b + off, 4);
			else if (type == T_TXT)
				append_txt_rdata(&a->txt, b + off, rdlen);
			if (!have_ttl || ttl < a->ttl)
				a->ttl = ttl;
			have_ttl = true;
		} else if (i >= an && rtype == T_SOA) {
			size_t r = off, end = off + rdlen;

			if (skip_name(b, end, &r) && skip_name(b, end, &r) &&
			    r + 20 <= end) {
				unsigned minimum = ttl_value(get32(b + r + 16));

				*soa_ttl = minimum < ttl ? minimum : ttl;
				*have_soa = true;
			}
		}
		off += rdlen;
	}
	if (type == T_A && a->naddr == 0)
		return true; /* e.g. only a CNAME: the caller makes it negative */
	if (type == T_TXT && !have_ttl)
		return true;
	a->outcome = OUT_POSITIVE;
	return true;
}

/* Context. */

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

enum br_state { BR_CLOSED, BR_OPEN, BR_HALF };

struct breaker {
	struct breaker *next;
	enum br_state state;
	unsigned timeouts; /* consecutive */
	long long until;   /* OPEN: when a probe may go */
	char zone[];
};

struct job;

struct dnsbl_ctx {
	dnsbl_config cfg; /* servers not kept: used at create only */

	/* Resolver thread only (after create). */
	ares_channel ch;
	struct pollfd *socks;
	size_t nsocks, capsocks;
	struct pollfd *pfd;
	size_t cappfd;

	pthread_t thread;
	int wake[2];

	pthread_mutex_t qmu; /* queue and stopping */
	struct job *qhead, *qtail;
	bool stopping;

	pthread_mutex_t cmu; /* the cache */
	struct centry **bucket;
	size_t nbuckets, count;
	struct centry *lru; /* sentinel of the LRU list */

	pthread_mutex_t bmu; /* the breakers */
	struct breaker *breakers;

	atomic_ullong sent, cache_hits, skipped, timeouts;
};

/*
 * A call (dnsbl_start() to dnsbl_finish()): shared by its caller and the
 * resolver thread until both let go (refs). Everything in it is under mu,
 * but ctx, q, n, deadline and flags, which only the caller reads.
 */
struct slot {
	enum dnsbl_status status;
	const dnsbl_filter *filter; /* parsed filters are immutable */
	char *name;
	size_t zoff; /* the zone in name: the breaker's key */
	bool want_txt, txt_pending, sent, probe, cached;
	bool unreachable; /* DNSBL_ERROR because no server could be reached */
	unsigned naddr;
	unsigned char addr[DNSBL_MAX_ADDR][4];
	char *txt;
	char *err;
	long long ms;
	bool closed; /* copied out to its dnsbl_query: answers leave it alone */
};

struct dnsbl_call {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned refs;
	unsigned pending;     /* slots whose A or TXT answer is still out */
	unsigned listed_done; /* listed slots with their TXT settled */
	bool abandoned;
	long long start;
	size_t n;
	struct slot *slot;
	/* The caller's. */
	dnsbl_ctx *ctx;
	dnsbl_query *q;
	long long deadline;
	unsigned flags;
	bool sent_any; /* jobs went to the resolver */
};

struct job {
	struct job *next;
	dnsbl_ctx *ctx;
	struct dnsbl_call *call;
	size_t i;
	int type;
};

static void
call_unref(struct dnsbl_call *c)
{
	bool last;

	pthread_mutex_lock(&c->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (!last)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->slot[i].name);
		free(c->slot[i].txt);
		free(c->slot[i].err);
	}
	free(c->slot);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* The cache. */

static unsigned
name_hash(int type, const char *name)
{
	unsigned h = 2166136261u ^ (unsigned)type;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

static void
lru_unlink(struct centry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void
lru_push_front(dnsbl_ctx *ctx, struct centry *e)
{
	e->next = ctx->lru->next;
	e->prev = ctx->lru;
	ctx->lru->next->prev = e;
	ctx->lru->next = e;
}

/* Unlinks e from its chain and the LRU list and frees it; under cmu. */
static void
cache_drop(dnsbl_ctx *ctx, struct centry *e)
{
	struct centry **pp = &ctx->bucket[e->hash & (ctx->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	ctx->count--;
	free(e->txt);
	free(e);
}

static struct centry *
cache_find(dnsbl_ctx *ctx, int type, const char *name, unsigned h)
{
	for (struct centry *e = ctx->bucket[h & (ctx->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->type == type && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* Copies a live entry into a (its txt appended). */
static bool
cache_get(dnsbl_ctx *ctx, int type, const char *name, struct answer *a)
{
	unsigned h = name_hash(type, name);
	struct centry *e;
	bool hit = false;

	if (ctx->cfg.cache_size == 0)
		return false;
	long long now = budget_now_ms();
	pthread_mutex_lock(&ctx->cmu);
	e = cache_find(ctx, type, name, h);
	if (e != NULL && e->expires <= now) {
		cache_drop(ctx, e);
		e = NULL;
	}
	if (e != NULL) {
		lru_unlink(e);
		lru_push_front(ctx, e);
		a->outcome = e->negative ? OUT_NEGATIVE : OUT_POSITIVE;
		a->naddr = e->naddr;
		memcpy(a->addr, e->addr, sizeof a->addr);
		if (e->txt)
			strbuf_puts(&a->txt, e->txt);
		hit = true;
	}
	pthread_mutex_unlock(&ctx->cmu);
	if (hit)
		atomic_fetch_add(&ctx->cache_hits, 1);
	return hit;
}

static void
cache_put(dnsbl_ctx *ctx, int type, const char *name, const struct answer *a)
{
	unsigned h = name_hash(type, name);
	unsigned ttl = a->ttl < ctx->cfg.max_ttl ? a->ttl : ctx->cfg.max_ttl;
	size_t nlen = strlen(name);
	struct centry *e, *old;

	if (ctx->cfg.cache_size == 0 || ttl == 0)
		return;
	/* Built outside the lock: the lock covers the map operation only. */
	e = ms_xcalloc(1, sizeof *e + nlen + 1);
	memcpy(e->name, name, nlen + 1);
	e->hash = h;
	e->type = type;
	e->expires = budget_deadline(budget_now_ms(), (long long)ttl * 1000);
	e->negative = a->outcome == OUT_NEGATIVE;
	e->naddr = a->naddr;
	memcpy(e->addr, a->addr, sizeof e->addr);
	if (type == T_TXT && !e->negative)
		e->txt = ms_xstrdup(strbuf_str(&a->txt));

	pthread_mutex_lock(&ctx->cmu);
	if ((old = cache_find(ctx, type, name, h)) != NULL)
		cache_drop(ctx, old);
	e->hnext = ctx->bucket[h & (ctx->nbuckets - 1)];
	ctx->bucket[h & (ctx->nbuckets - 1)] = e;
	lru_push_front(ctx, e);
	if (++ctx->count > ctx->cfg.cache_size)
		cache_drop(ctx, ctx->lru->prev);
	pthread_mutex_unlock(&ctx->cmu);
}

/* The breakers. */

enum admit { ADMIT_PASS, ADMIT_PROBE, ADMIT_SKIP };
enum report { REP_ANSWER, REP_TIMEOUT, REP_ERROR, REP_CANCEL };

/* Under bmu. Zones come from the config: a short list. */
static struct breaker *
breaker_get(dnsbl_ctx *ctx, const char *zone)
{
	struct breaker *b;
	size_t len = strlen(zone);

	for (b = ctx->breakers; b; b = b->next)
		if (strcmp(b->zone, zone) == 0)
			return b;
	b = ms_xcalloc(1, sizeof *b + len + 1);
	memcpy(b->zone, zone, len + 1);
	b->next = ctx->breakers;
	ctx->breakers = b;
	return b;
}

static enum admit
breaker_admit(dnsbl_ctx *ctx, const char *zone)
{
	enum admit r = ADMIT_PASS;

	if (ctx->cfg.breaker_threshold == 0)
		return ADMIT_PASS;
	pthread_mutex_lock(&ctx->bmu);
	struct breaker *b = breaker_get(ctx, zone);
	if (b->state == BR_HALF) {
		r = ADMIT_SKIP; /* its one probe is out */
	} else if (b->state == BR_OPEN) {
		if (budget_now_ms() < b->until) {
			r = ADMIT_SKIP;
		} else {
			b->state = BR_HALF;
			r = ADMIT_PROBE;
		}
	}
	pthread_mutex_unlock(&ctx->bmu);
	if (r == ADMIT_SKIP)
		atomic_fetch_add(&ctx->skipped, 1);
	return r;
}

static void
breaker_report(dnsbl_ctx *ctx, const char *zone, enum report what, bool probe)
{
	bool suspended = false, resumed = false;
	unsigned count = 0;

	if (ctx->cfg.breaker_threshold == 0)
		return;
	pthread_mutex_lock(&ctx->bmu);
	struct breaker *b = breaker_get(ctx, zone);
	long long now = budget_now_ms();
	switch (what) {
	case REP_ANSWER:
		b->timeouts = 0;
		/*
		 * Only the probe resumes a suspended zone. Any other query
		 * was sent before the zone was suspended, and its answer, told
		 * late (when its call ends), says nothing of the server now.
		 */
		if (b->state != BR_CLOSED && probe) {
			b->state = BR_CLOSED;
			resumed = true;
		}
		break;
	case REP_TIMEOUT:
		b->timeouts++;
		if (probe) {
			b->state = BR_OPEN;
			b->until = budget_deadline(now, ctx->cfg.breaker_open_ms);
		} else if (b->state == BR_CLOSED &&
		           b->timeouts >= ctx->cfg.breaker_threshold) {
			b->state = BR_OPEN;
			b->until = budget_deadline(now, ctx->cfg.breaker_open_ms);
			suspended = true;
			count = b->timeouts;
		}
		break;
	case REP_ERROR:
		if (probe) {
			b->state = BR_OPEN;
			b->until = budget_deadline(now, ctx->cfg.breaker_open_ms);
		}
		break;
	case REP_CANCEL:
		/* The probe was not needed after all: the next query probes. */
		if (probe && b->state == BR_HALF) {
			b->state = BR_OPEN;
			b->until = now;
		}
		break;
	}
	pthread_mutex_unlock(&ctx->bmu);
	if ((suspended || resumed) && ctx->cfg.on_breaker)
		ctx->cfg.on_breaker(ctx->cfg.breaker_arg, zone, suspended, count);
}

/* The resolver thread. */

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void
send_job(dnsbl_ctx *ctx, struct job *j)
{
	atomic_fetch_add(&ctx->sent, 1);
	ares_query(ctx->ch, j->call->slot[j->i].name, C_IN, j->type, on_answer, j);
}

static void
classify(dnsbl_ctx *ctx, int status, const unsigned char *abuf, int alen, int type,
         struct answer *a)
{
	bool have_soa = false;
	unsigned soa_ttl = 0;

	a->ares_status = status;
	switch (status) {
	case ARES_SUCCESS:
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		a->outcome = OUT_NEGATIVE;
		if (abuf == NULL || alen < 0 ||
		    !parse_reply(abuf, (size_t)alen, type, a, &have_soa, &soa_ttl)) {
			a->outcome = OUT_ERROR;
			a->ares_status = ARES_EBADRESP;
			return;
		}
		if (a->outcome == OUT_NEGATIVE) {
			a->naddr = 0;
			strbuf_reset(&a->txt);
			a->ttl = have_soa ? soa_ttl : ctx->cfg.neg_ttl;
		}
		return;
	case ARES_ETIMEOUT:
		a->outcome = OUT_TIMEOUT;
		return;
	default:
		a->outcome = OUT_ERROR;
		return;
	}
}

/* The A records of a that pass f. */
static unsigned
filter_addrs(const dnsbl_filter *f, const struct answer *a,
             unsigned char out[DNSBL_MAX_ADDR][4])
{
	unsigned n = 0;

	for (unsigned i = 0; i < a->naddr; i++)
		if (dnsbl_filter_match(f, a->addr[i]))
			memcpy(out[n++], a->addr[i], 4);
	return n;
}

static void
set_error(struct slot *s, const char *name, int ares_status)
{
	size_t len = strlen(name) + 64;

	free(s->err);
	s->err = ms_xmalloc(len);
	snprintf(s->err, len, "%s: %s", name, ares_strerror(ares_status));
}

/* Final status of a slot from its A answer; TXT is settled by the caller. */
static void
slot_take_a(struct slot *s, const struct answer *a, unsigned nmatch,
            unsigned char match[DNSBL_MAX_ADDR][4])
{
	switch (a->outcome) {
	case OUT_POSITIVE:
	case OUT_NEGATIVE:
		s->status = nmatch > 0 ? DNSBL_LISTED : DNSBL_NOT_LISTED;
		s->naddr = nmatch;
		memcpy(s->addr, match, sizeof s->addr);
		break;
	case OUT_TIMEOUT:
		s->status = DNSBL_TIMEOUT;
		break;
	case OUT_ERROR:
		s->status = DNSBL_ERROR;
		s->unreachable = a->ares_status == ARES_ECONNREFUSED;
		set_error(s, s->name, a->ares_status);
		break;
	}
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct job *j = arg;
	dnsbl_ctx *ctx = j->ctx;
	struct dnsbl_call *c = j->call;
	struct slot *s = &c->slot[j->i];
	struct answer a = {.outcome = OUT_ERROR};
	unsigned char match[DNSBL_MAX_ADDR][4];
	unsigned nmatch = 0;
	bool need_txt = false, have_txt = false;
	struct answer cached_txt = {.outcome = OUT_ERROR};

	(void)timeouts;
	strbuf_init(&a.txt);
	strbuf_init(&cached_txt.txt);
	/* s->name, s->filter and s->want_txt do not change once sent. */
	classify(ctx, status, abuf, alen, j->type, &a);
	if (a.outcome == OUT_POSITIVE || a.outcome == OUT_NEGATIVE)
		cache_put(ctx, j->type, s->name, &a);
	if (j->type == T_A && a.outcome == OUT_POSITIVE) {
		nmatch = filter_addrs(s->filter, &a, match);
		if (nmatch > 0 && s->want_txt)
			have_txt = cache_get(ctx, T_TXT, s->name, &cached_txt);
	}

	pthread_mutex_lock(&c->mu);
	if (!c->abandoned && s->closed) {
		/* Its caller gave up on it at the deadline. */
		c->pending--;
		if (c->pending == 0)
			pthread_cond_broadcast(&c->cv);
	} else if (!c->abandoned) {
		if (j->type == T_A) {
			slot_take_a(s, &a, nmatch, match);
			if (s->status == DNSBL_LISTED && s->want_txt && !have_txt) {
				need_txt = true;
				s->txt_pending = true;
				c->refs++;
			} else {
				if (have_txt && cached_txt.outcome == OUT_POSITIVE)
					s->txt = ms_xstrdup(strbuf_str(&cached_txt.txt));
				c->pending--;
				if (s->status == DNSBL_LISTED)
					c->listed_done++;
			}
			s->ms = budget_now_ms() - c->start;
		} else {
			if (a.outcome == OUT_POSITIVE)
				s->txt = ms_xstrdup(strbuf_str(&a.txt));
			s->txt_pending = false;
			s->ms = budget_now_ms() - c->start;
			c->pending--;
			c->listed_done++;
		}
		/* Each answer may settle the one slot dnsbl_wait() waits for. */
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);

	strbuf_free(&a.txt);
	strbuf_free(&cached_txt.txt);
	if (need_txt) {
		/* Safe from inside a c-ares callback, on the channel's own thread. */
		struct job *t = ms_xcalloc(1, sizeof *t);
		*t = (struct job){.ctx = ctx, .call = c, .i = j->i, .type = T_TXT};
		send_job(ctx, t);
	}
	call_unref(c);
	free(j);
}

static void
sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	dnsbl_ctx *ctx = data;
	size_t i;

	for (i = 0; i < ctx->nsocks; i++)
		if (ctx->socks[i].fd == fd)
			break;
	if (!readable && !writable) {
		if (i < ctx->nsocks)
			ctx->socks[i] = ctx->socks[--ctx->nsocks];
		return;
	}
	if (i == ctx->nsocks) {
		if (ctx->nsocks == ctx->capsocks) {
			ctx->capsocks = ctx->capsocks ? 2 * ctx->capsocks : 8;
			ctx->socks = ms_xrealloc(ctx->socks,
			                         ctx->capsocks * sizeof *ctx->socks);
		}
		ctx->nsocks++;
	}
	ctx->socks[i].fd = fd;
	ctx->socks[i].events =
	        (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
	ctx->socks[i].revents = 0;
}

static int
poll_timeout(dnsbl_ctx *ctx)
{
	struct timeval buf, *tv = ares_timeout(ctx->ch, NULL, &buf);

	if (tv == NULL)
		return -1;
	return (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
}

static void *
resolver_main(void *arg)
{
	dnsbl_ctx *ctx = arg;

	for (;;) {
		struct job *jobs;
		bool stop;

		pthread_mutex_lock(&ctx->qmu);
		jobs = ctx->qhead;
		ctx->qhead = ctx->qtail = NULL;
		stop = ctx->stopping;
		pthread_mutex_unlock(&ctx->qmu);
		while (jobs) {
			struct job *next = jobs->next;

			send_job(ctx, jobs);
			jobs = next;
		}
		if (stop)
			break;

		size_t n = ctx->nsocks + 1;
		if (n > ctx->cappfd) {
			ctx->cappfd = 2 * n;
			ctx->pfd = ms_xrealloc(ctx->pfd, ctx->cappfd * sizeof *ctx->pfd);
		}
		ctx->pfd[0] = (struct pollfd){.fd = ctx->wake[0], .events = POLLIN};
		if (ctx->nsocks > 0)
			memcpy(ctx->pfd + 1, ctx->socks, ctx->nsocks * sizeof *ctx->pfd);
		if (poll(ctx->pfd, (nfds_t)n, poll_timeout(ctx)) < 0 && errno != EINTR)
			ms_panic("poll: %s", strerror(errno));
		if (ctx->pfd[0].revents) {
			char drain[64];

			while (read(ctx->wake[0], drain, sizeof drain) > 0)
				continue;
		}
		bool processed = false;
		for (size_t i = 1; i < n; i++) {
			short ev = ctx->pfd[i].revents;

			if (ev == 0)
				continue;
			ares_process_fd(ctx->ch,
			                ev & (POLLIN | POLLERR | POLLHUP)
			                        ? ctx->pfd[i].fd
			                        : ARES_SOCKET_BAD,
			                ev & POLLOUT ? ctx->pfd[i].fd : ARES_SOCKET_BAD);
			processed = true;
		}
		if (!processed)
			ares_process_fd(ctx->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
	/* Callers are gone (contract): end what is left so its memory goes. */
	ares_cancel(ctx->ch);
	return NULL;
}

static void
wake_resolver(dnsbl_ctx *ctx)
{
	char c = 0;

	/* A full pipe already means "wake up". */
	while (write(ctx->wake[1], &c, 1) < 0 && errno == EINTR)
		continue;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;

static void
lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

dnsbl_ctx *
dnsbl_create(const dnsbl_config *cfg, strbuf *err)
{
	dnsbl_ctx *ctx;
	struct ares_options opt;
	int rc;

	pthread_once(&lib_once, lib_init);
	if (lib_status != ARES_SUCCESS) {
		strbuf_printf(err, "c-ares: %s", ares_strerror(lib_status));
		return NULL;
	}
	ctx = ms_xcalloc(1, sizeof *ctx);
	ctx->cfg = *cfg;
	ctx->cfg.servers = NULL;
	if (ctx->cfg.try_timeout_ms == 0)
		ctx->cfg.try_timeout_ms = 750;
	if (ctx->cfg.tries == 0)
		ctx->cfg.tries = 2;
	if (ctx->cfg.max_ttl == 0)
		ctx->cfg.max_ttl = 3600;
	if (ctx->cfg.neg_ttl > ctx->cfg.max_ttl)
		ctx->cfg.neg_ttl = ctx->cfg.max_ttl;
	ctx->wake[0] = ctx->wake[1] = -1;
	ctx->lru = ms_xcalloc(1, sizeof *ctx->lru + 1);
	ctx->lru->next = ctx->lru->prev = ctx->lru;
	for (ctx->nbuckets = 16; ctx->nbuckets < cfg->cache_size; ctx->nbuckets *= 2)
		continue;
	ctx->bucket = ms_xcalloc(ctx->nbuckets, sizeof *ctx->bucket);
	pthread_mutex_init(&ctx->qmu, NULL);
	pthread_mutex_init(&ctx->cmu, NULL);
	pthread_mutex_init(&ctx->bmu, NULL);

	memset(&opt, 0, sizeof opt);
	opt.timeout = (int)ctx->cfg.try_timeout_ms;
	opt.tries = (int)ctx->cfg.tries;
	opt.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	opt.sock_state_cb = sock_state;
	opt.sock_state_cb_data = ctx;
	rc = ares_init_options(&ctx->ch, &opt,
	                       ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
	                               ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		strbuf_printf(err, "c-ares: %s", ares_strerror(rc));
		ctx->ch = NULL;
		goto fail;
	}
	if (cfg->servers && *cfg->servers &&
	    (rc = ares_set_servers_ports_csv(ctx->ch, cfg->servers)) != ARES_SUCCESS) {
		strbuf_printf(err,
		              "bad DNS server list \"%s\": %s (expected ADDR[:PORT] or "
		              "[IPV6]:PORT, comma-separated)",
		              cfg->servers, ares_strerror(rc));
		goto fail;
	}
	if (pipe(ctx->wake) < 0) {
		strbuf_printf(err, "pipe: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(ctx->wake[i], F_SETFL, fcntl(ctx->wake[i], F_GETFL) | O_NONBLOCK);
		fcntl(ctx->wake[i], F_SETFD, FD_CLOEXEC);
	}

	/* Started with every signal blocked, which it inherits. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&ctx->thread, NULL, resolver_main, ctx);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		strbuf_printf(err, "cannot start the DNS resolver thread: %s",
		              strerror(rc));
		goto fail;
	}
	return ctx;
fail:
	for (int i = 0; i < 2; i++)
		if (ctx->wake[i] >= 0)
			close(ctx->wake[i]);
	if (ctx->ch)
		ares_destroy(ctx->ch);
	pthread_mutex_destroy(&ctx->qmu);
	pthread_mutex_destroy(&ctx->cmu);
	pthread_mutex_destroy(&ctx->bmu);
	free(ctx->bucket);
	free(ctx->lru);
	free(ctx);
	return NULL;
}

void
dnsbl_free(dnsbl_ctx *ctx)
{
	if (ctx == NULL)
		return;
	pthread_mutex_lock(&ctx->qmu);
	ctx->stopping = true;
	pthread_mutex_unlock(&ctx->qmu);
	wake_resolver(ctx);
	pthread_join(ctx->thread, NULL);
	ares_destroy(ctx->ch);
	close(ctx->wake[0]);
	close(ctx->wake[1]);
	while (ctx->lru->next != ctx->lru)
		cache_drop(ctx, ctx->lru->next);
	free(ctx->lru);
	free(ctx->bucket);
	while (ctx->breakers) {
		struct breaker *b = ctx->breakers;

		ctx->breakers = b->next;
		free(b);
	}
	free(ctx->socks);
	free(ctx->pfd);
	pthread_mutex_destroy(&ctx->qmu);
	pthread_mutex_destroy(&ctx->cmu);
	pthread_mutex_destroy(&ctx->bmu);
	free(ctx);
}

/* Lookups. */

void
dnsbl_query_init(dnsbl_query *q, enum dnsbl_kind kind, const char *subject,
                 const char *zone, const dnsbl_filter *filter)
{
	memset(q, 0, sizeof *q);
	q->kind = kind;
	q->subject = subject;
	q->zone = zone;
	q->filter = filter;
	strbuf_init(&q->name);
	strbuf_init(&q->txt);
	strbuf_init(&q->err);
}

void
dnsbl_query_free(dnsbl_query *q)
{
	strbuf_free(&q->name);
	strbuf_free(&q->txt);
	strbuf_free(&q->err);
}

static void
reset_result(dnsbl_query *q)
{
	q->status = DNSBL_PENDING;
	q->cached = false;
	q->naddr = 0;
	q->ms = 0;
	strbuf_reset(&q->name);
	strbuf_reset(&q->txt);
	strbuf_reset(&q->err);
}

/*
 * Looks the A record (and for a listed one the TXT) up in the cache. True
 * when the slot is settled; false with *txt_only when only TXT must be sent.
 */
static bool
from_cache(dnsbl_ctx *ctx, struct slot *s, bool *txt_only)
{
	struct answer a = {.outcome = OUT_ERROR};
	unsigned char match[DNSBL_MAX_ADDR][4];
	bool done = true;

	*txt_only = false;
	strbuf_init(&a.txt);
	if (!cache_get(ctx, T_A, s->name, &a)) {
		strbuf_free(&a.txt);
		return false;
	}
	s->cached = true;
	slot_take_a(s, &a, filter_addrs(s->filter, &a, match), match);
	if (s->status == DNSBL_LISTED && s->want_txt) {
		strbuf_reset(&a.txt);
		if (!cache_get(ctx, T_TXT, s->name, &a)) {
			done = false;
			*txt_only = true;
		} else if (a.outcome == OUT_POSITIVE)
			s->txt = ms_xstrdup(strbuf_str(&a.txt));
	}
	strbuf_free(&a.txt);
	return done;
}

static struct dnsbl_call *
call_new(size_t n)
{
	struct dnsbl_call *c = ms_xcalloc(1, sizeof *c);
	pthread_condattr_t ca;

	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	/* Deadlines are monotonic: a clock step must not stretch a wait. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->refs = 1;
	c->n = n;
	c->slot = ms_xcalloc(n, sizeof *c->slot);
	c->start = budget_now_ms();
	return c;
}

static struct timespec
deadline_ts(long long deadline)
{
	return (struct timespec){.tv_sec = (time_t)(deadline / 1000),
	                         .tv_nsec = (long)(deadline % 1000) * 1000000L};
}

/* Waits for the whole call (dnsbl_lookup()); under c->mu. */
static void
wait_all(struct dnsbl_call *c)
{
	struct timespec ts = deadline_ts(c->deadline);

	while (c->pending > 0 && !((c->flags & DNSBL_FIRST) && c->listed_done > 0)) {
		if (budget_expired(c->deadline))
			break;
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	}
}

static bool
slot_final(const struct slot *s)
{
	return s->status != DNSBL_PENDING && !s->txt_pending;
}

/*
 * Copies slot i into q[i] once, settling it as pending (TIMEOUT or
 * CANCELLED) if it is not final; under c->mu. A listing whose TXT did not
 * come stays listed.
 */
static void
close_slot(struct dnsbl_call *c, size_t i, enum dnsbl_status pending)
{
	struct slot *s = &c->slot[i];
	dnsbl_query *q = &c->q[i];

	if (s->closed)
		return;
	if (s->status == DNSBL_PENDING) {
		s->status = pending;
		s->ms = budget_now_ms() - c->start;
	}
	s->txt_pending = false;
	s->closed = true;
	q->status = s->status;
	q->cached = s->cached;
	q->ms = s->ms;
	q->naddr = s->naddr;
	memcpy(q->addr, s->addr, sizeof q->addr);
	if (s->txt)
		strbuf_puts(&q->txt, s->txt);
	if (s->err && q->err.len == 0)
		strbuf_puts(&q->err, s->err);
}

static void
account(dnsbl_ctx *ctx, const struct dnsbl_call *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct slot *s = &c->slot[i];
		enum report r;

		if (!s->sent)
			continue;
		switch (s->status) {
		case DNSBL_LISTED:
		case DNSBL_NOT_LISTED:
			r = REP_ANSWER;
			break;
		case DNSBL_TIMEOUT:
			r = REP_TIMEOUT;
			atomic_fetch_add(&ctx->timeouts, 1);
			break;
		case DNSBL_CANCELLED:
			r = REP_CANCEL;
			break;
		default:
			/*
			 * A server that is down (its port closed: ECONNREFUSED
			 * for every server) fails at once instead of timing
			 * out, but it is as absent: the breaker counts it.
			 */
			r = s->unreachable ? REP_TIMEOUT : REP_ERROR;
			break;
		}
		breaker_report(ctx, s->name + s->zoff, r, s->probe);
	}
}

/* Pass 1: names and the cache; nothing shared is held yet. */
static void
prepare(dnsbl_ctx *ctx, struct dnsbl_call *c, dnsbl_query *q, unsigned flags)
{
	for (size_t i = 0; i < c->n; i++) {
		struct slot *s = &c->slot[i];
		bool txt_only;

		reset_result(&q[i]);
		s->filter = q[i].filter;
		s->want_txt = !(flags & DNSBL_NO_TXT);
		if (!build_name(&q[i], &s->zoff, &q[i].err)) {
			s->status = DNSBL_ERROR;
			continue;
		}
		s->name = ms_xstrdup(strbuf_str(&q[i].name));
		if (from_cache(ctx, s, &txt_only)) {
			if (s->status == DNSBL_LISTED)
				c->listed_done++;
			s->ms = budget_now_ms() - c->start;
		} else if (txt_only) {
			s->txt_pending = true;
		}
	}
}

/* Pass 2: the jobs for what must go out (NULL: nothing must). */
static struct job *
make_jobs(dnsbl_ctx *ctx, struct dnsbl_call *c, long long deadline, unsigned flags)
{
	struct job *head = NULL, **tail = &head;
	bool expired = budget_expired(deadline);

	for (size_t i = 0; i < c->n; i++) {
		struct slot *s = &c->slot[i];

		if (s->status != DNSBL_PENDING && !s->txt_pending)
			continue;
		if ((flags & DNSBL_FIRST) && c->listed_done > 0)
			break; /* end_call() cancels the rest */
		if (expired) {
			if (s->status == DNSBL_PENDING)
				s->status = DNSBL_TIMEOUT;
			/* A listing whose TXT cannot come in time stays listed. */
			s->txt_pending = false;
			continue;
		}
		if (!s->txt_pending) {
			enum admit ad = breaker_admit(ctx, s->name + s->zoff);

			if (ad == ADMIT_SKIP) {
				s->status = DNSBL_SKIPPED;
				continue;
			}
			s->probe = ad == ADMIT_PROBE;
			s->sent = true;
		}
		struct job *j = ms_xcalloc(1, sizeof *j);
		*j = (struct job){.ctx = ctx,
		                  .call = c,
		                  .i = i,
		                  .type = s->txt_pending ? T_TXT : T_A};
		*tail = j;
		tail = &j->next;
		c->refs++;
		c->pending++;
	}
	return head;
}

static void
submit(dnsbl_ctx *ctx, struct job *head)
{
	struct job *last = head;
	bool was_empty;

	while (last->next)
		last = last->next;
	pthread_mutex_lock(&ctx->qmu);
	was_empty = ctx->qhead == NULL;
	if (ctx->qtail)
		ctx->qtail->next = head;
	else
		ctx->qhead = head;
	ctx->qtail = last;
	pthread_mutex_unlock(&ctx->qmu);
	/* The resolver empties the whole queue per wake-up. */
	if (was_empty)
		wake_resolver(ctx);
}

dnsbl_call *
dnsbl_start(dnsbl_ctx *ctx, dnsbl_query *q, size_t n, long long deadline_ms,
            unsigned flags)
{
	struct dnsbl_call *c;
	struct job *jobs;

	if (n == 0)
		return NULL;
	c = call_new(n);
	c->ctx = ctx;
	c->q = q;
	c->deadline = deadline_ms;
	c->flags = flags;
	prepare(ctx, c, q, flags);
	/* The resolver cannot see c before submit(): no lock needed so far. */
	jobs = make_jobs(ctx, c, deadline_ms, flags);
	if (jobs) {
		c->sent_any = true;
		submit(ctx, jobs);
	}
	return c;
}

bool
dnsbl_wait(dnsbl_call *c, size_t i)
{
	struct timespec ts = deadline_ts(c->deadline);
	struct slot *s = &c->slot[i];
	bool ok;

	pthread_mutex_lock(&c->mu);
	while (!s->closed && !slot_final(s) && !budget_expired(c->deadline))
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	close_slot(c, i, DNSBL_TIMEOUT);
	ok = s->status != DNSBL_TIMEOUT;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

/* Settles and copies out what is left, reports to the breakers, lets go. */
static void
end_call(struct dnsbl_call *c, enum dnsbl_status pending)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++)
		close_slot(c, i, pending);
	c->abandoned = true;
	pthread_mutex_unlock(&c->mu);
	/* Only this thread writes a slot once abandoned is set. */
	account(c->ctx, c);
	call_unref(c);
}

void
dnsbl_finish(dnsbl_call *c)
{
	if (c == NULL)
		return;
	/* Past the deadline what is still out timed out; before it, it was
	   not needed. */
	end_call(c, budget_expired(c->deadline) ? DNSBL_TIMEOUT : DNSBL_CANCELLED);
}

int
dnsbl_lookup(dnsbl_ctx *ctx, dnsbl_query *q, size_t n, long long deadline_ms,
             unsigned flags)
{
	struct dnsbl_call *c = dnsbl_start(ctx, q, n, deadline_ms, flags);
	bool cancel;

	if (c == NULL)
		return -1;
	pthread_mutex_lock(&c->mu);
	if (c->sent_any)
		wait_all(c);
	cancel = (flags & DNSBL_FIRST) && c->listed_done > 0;
	pthread_mutex_unlock(&c->mu);
	end_call(c, cancel ? DNSBL_CANCELLED : DNSBL_TIMEOUT);
	for (size_t i = 0; i < n; i++)
		if (q[i].status == DNSBL_LISTED)
			return (int)i;
	return -1;
}

const char *
dnsbl_status_name(enum dnsbl_status s)
{
	switch (s) {
	case DNSBL_PENDING:
		return "pending";
	case DNSBL_LISTED:
		return "listed";
	case DNSBL_NOT_LISTED:
		return "not listed";
	case DNSBL_ERROR:
		return "error";
	case DNSBL_TIMEOUT:
		return "timeout";
	case DNSBL_SKIPPED:
		return "skipped";
	case DNSBL_CANCELLED:
		return "cancelled";
	}
	return "?";
}

void
dnsbl_get_stats(dnsbl_ctx *ctx, dnsbl_stats *out)
{
	out->sent = atomic_load(&ctx->sent);
	out->cache_hits = atomic_load(&ctx->cache_hits);
	out->skipped = atomic_load(&ctx->skipped);
	out->timeouts = atomic_load(&ctx->timeouts);
}
