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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>

#include "budget.h"
#include "dns-answer.h"
#include "dns-breaker.h"
#include "dns-cache.h"
#include "names.h"
#include "provider.h"

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
 * Appends a domain to out in lower case, without its final dot, if it is
 * one (names_domain()). A HELO is anything the client typed: nothing else
 * goes on the wire.
 */
static bool
append_domain(strbuf *out, const char *what, const char *name, strbuf *err)
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (!names_domain(name, len)) {
		strbuf_printf(err, "%s \"%.100s\" is not a domain name", what, name);
		return false;
	}
	for (size_t i = 0; i < len; i++)
		strbuf_putc(out, (char)tolower((unsigned char)name[i]));
	return true;
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
	if (q->name.len > NAMES_DOMAIN_MAX) {
		strbuf_printf(err, "query name longer than %d bytes", NAMES_DOMAIN_MAX);
		return false;
	}
	return true;
}

/* Context. */

struct job;

/*
 * A c-ares channel and the sockets it asked us to poll. The current one
 * takes new queries; one whose servers a reconfiguration replaced drains:
 * it is polled until its last query ended, then destroyed.
 */
struct chan {
	struct chan *next; /* the draining list */
	dnsbl_ctx *ctx;
	ares_channel ch;
	struct pollfd *socks;
	size_t nsocks, capsocks;
	unsigned outstanding; /* queries sent on it and not ended */
};

struct dnsbl_ctx {
	dnsbl_config cfg; /* servers not kept: see servers */
	dns_provider provider;

	/* dnsbl_reconfigure()'s caller only: the list cur (or next) uses. */
	char *servers;

	/* Resolver thread only (after create). */
	struct chan *cur;
	struct chan *draining;
	struct pollfd *pfd; /* [0] the wake pipe, then the channels' sockets */
	struct chan **pfd_chan;
	size_t cappfd;

	pthread_t thread;
	int wake[2];

	pthread_mutex_t qmu; /* the queue, next and stopping */
	struct job *qhead, *qtail;
	struct chan *next; /* from dnsbl_reconfigure(), for the resolver to take */
	bool stopping;

	dns_cache *cache;     /* its own lock */
	dns_breaker *breaker; /* its own lock */

	atomic_ullong lookups, sent, cache_hits, skipped, timeouts;
};

/*
 * A call (dnsbl_start() to dnsbl_finish()): shared by its caller and the
 * resolver thread until both let go (refs). Everything in it is under mu,
 * but ctx, q, n and deadline, which only the caller reads.
 */
struct slot {
	enum dnsbl_status status;
	const dnsbl_filter *filter; /* parsed filters are immutable */
	char *name;
	size_t zoff; /* the zone in name: the breaker's key */
	bool txt_pending, sent, probe, cached;
	bool no_txt; /* the caller's: a listing asks no TXT */
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
	unsigned pending; /* slots whose A or TXT answer is still out */
	bool abandoned;
	long long start;
	size_t n;
	struct slot *slot;
	/* The caller's. */
	dnsbl_ctx *ctx;
	dnsbl_query *q;
	long long deadline;
	bool blocked; /* on_block() was called for it */
};

struct job {
	struct job *next;
	dnsbl_ctx *ctx;
	struct chan *chan; /* the channel it went out on */
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

/* The resolver thread. */

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void
send_job(dnsbl_ctx *ctx, struct job *j)
{
	j->chan = ctx->cur;
	/* Counted first: c-ares may call on_answer() before it returns. */
	j->chan->outstanding++;
	atomic_fetch_add(&ctx->sent, 1);
	ares_query(j->chan->ch, j->call->slot[j->i].name, DNS_C_IN, j->type, on_answer,
	           j);
}

/* The A records of a that pass f. */
static unsigned
filter_addrs(const dnsbl_filter *f, const dns_answer *a,
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
slot_take_a(struct slot *s, const dns_answer *a, unsigned nmatch,
            unsigned char match[DNSBL_MAX_ADDR][4])
{
	switch (a->outcome) {
	case DNS_POSITIVE:
	case DNS_NEGATIVE:
		s->status = nmatch > 0 ? DNSBL_LISTED : DNSBL_NOT_LISTED;
		s->naddr = nmatch;
		memcpy(s->addr, match, sizeof s->addr);
		break;
	case DNS_TIMEOUT:
		s->status = DNSBL_TIMEOUT;
		break;
	case DNS_ERROR:
		s->status = DNSBL_ERROR;
		s->unreachable = a->ares_status == ARES_ECONNREFUSED;
		set_error(s, s->name, a->ares_status);
		break;
	}
}

static bool
cache_get(dnsbl_ctx *ctx, int type, const char *name, dns_answer *a)
{
	if (!dns_cache_get(ctx->cache, type, name, a))
		return false;
	atomic_fetch_add(&ctx->cache_hits, 1);
	return true;
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct job *j = arg;
	dnsbl_ctx *ctx = j->ctx;
	struct dnsbl_call *c = j->call;
	struct slot *s = &c->slot[j->i];
	dns_answer a, cached_txt;
	unsigned char match[DNSBL_MAX_ADDR][4];
	unsigned nmatch = 0;
	bool need_txt = false, have_txt = false;

	(void)timeouts;
	j->chan->outstanding--;
	dns_answer_init(&a);
	dns_answer_init(&cached_txt);
	/* s->name and s->filter do not change once sent. */
	dns_answer_classify(status, abuf, alen, j->type, ctx->cfg.neg_ttl, &a);
	if (a.outcome == DNS_POSITIVE || a.outcome == DNS_NEGATIVE)
		dns_cache_put(ctx->cache, j->type, s->name, &a);
	if (j->type == DNS_T_A && a.outcome == DNS_POSITIVE) {
		nmatch = filter_addrs(s->filter, &a, match);
		if (nmatch > 0)
			have_txt = cache_get(ctx, DNS_T_TXT, s->name, &cached_txt);
	}

	pthread_mutex_lock(&c->mu);
	if (!c->abandoned && s->closed) {
		/* Its caller gave up on it at the deadline. */
		c->pending--;
		if (c->pending == 0)
			pthread_cond_broadcast(&c->cv);
	} else if (!c->abandoned) {
		if (j->type == DNS_T_A) {
			slot_take_a(s, &a, nmatch, match);
			if (s->status == DNSBL_LISTED && !have_txt && !s->no_txt) {
				need_txt = true;
				s->txt_pending = true;
				c->refs++;
			} else {
				if (have_txt && cached_txt.outcome == DNS_POSITIVE)
					s->txt = ms_xstrdup(strbuf_str(&cached_txt.txt));
				c->pending--;
			}
			s->ms = budget_now_ms() - c->start;
		} else {
			if (a.outcome == DNS_POSITIVE)
				s->txt = ms_xstrdup(strbuf_str(&a.txt));
			s->txt_pending = false;
			s->ms = budget_now_ms() - c->start;
			c->pending--;
		}
		/* Each answer may settle the one slot dnsbl_wait() waits for. */
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);

	dns_answer_free(&a);
	dns_answer_free(&cached_txt);
	if (need_txt) {
		/* Safe from inside a c-ares callback, on the channel's own thread. */
		struct job *t = ms_xcalloc(1, sizeof *t);
		*t = (struct job){.ctx = ctx, .call = c, .i = j->i, .type = DNS_T_TXT};
		send_job(ctx, t);
	}
	call_unref(c);
	free(j);
}

static void
sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct chan *ch = data;
	size_t i;

	for (i = 0; i < ch->nsocks; i++)
		if (ch->socks[i].fd == fd)
			break;
	if (!readable && !writable) {
		if (i < ch->nsocks)
			ch->socks[i] = ch->socks[--ch->nsocks];
		return;
	}
	if (i == ch->nsocks) {
		if (ch->nsocks == ch->capsocks) {
			ch->capsocks = ch->capsocks ? 2 * ch->capsocks : 8;
			ch->socks =
			        ms_xrealloc(ch->socks, ch->capsocks * sizeof *ch->socks);
		}
		ch->nsocks++;
	}
	ch->socks[i].fd = fd;
	ch->socks[i].events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
	ch->socks[i].revents = 0;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;

static void
lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/*
 * A channel for servers ("" or NULL: resolv.conf's), with the context's
 * timeouts; any thread, as nobody else sees it yet. ctx NULL: only to
 * check the list.
 */
static struct chan *
chan_open(dnsbl_ctx *ctx, const dnsbl_config *cfg, const char *servers, strbuf *err)
{
	struct chan *ch;
	struct ares_options opt;
	int rc, mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;

	pthread_once(&lib_once, lib_init);
	if (lib_status != ARES_SUCCESS) {
		strbuf_printf(err, "c-ares: %s", ares_strerror(lib_status));
		return NULL;
	}
	ch = ms_xcalloc(1, sizeof *ch);
	ch->ctx = ctx;
	memset(&opt, 0, sizeof opt);
	opt.timeout = (int)cfg->try_timeout_ms;
	opt.tries = (int)cfg->tries;
	opt.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	if (ctx != NULL) {
		opt.sock_state_cb = sock_state;
		opt.sock_state_cb_data = ch;
		mask |= ARES_OPT_SOCK_STATE_CB;
	}
	rc = ares_init_options(&ch->ch, &opt, mask);
	if (rc != ARES_SUCCESS) {
		strbuf_printf(err, "c-ares: %s", ares_strerror(rc));
		free(ch);
		return NULL;
	}
	if (servers && *servers &&
	    (rc = ares_set_servers_ports_csv(ch->ch, servers)) != ARES_SUCCESS) {
		strbuf_printf(err,
		              "bad DNS server list \"%s\": %s (expected ADDR[:PORT] or "
		              "[IPV6]:PORT, comma-separated)",
		              servers, ares_strerror(rc));
		ares_destroy(ch->ch);
		free(ch);
		return NULL;
	}
	return ch;
}

static void
chan_close(struct chan *ch)
{
	ares_destroy(ch->ch);
	free(ch->socks);
	free(ch);
}

bool
dnsbl_check_servers(const char *servers, strbuf *err)
{
	dnsbl_config cfg = {.try_timeout_ms = 750, .tries = 1};
	struct chan *ch = chan_open(NULL, &cfg, servers, err);

	if (ch == NULL)
		return false;
	chan_close(ch);
	return true;
}

/* A reconfiguration's channel becomes current; the old one drains. */
static void
take_chan(dnsbl_ctx *ctx, struct chan *fresh)
{
	ctx->cur->next = ctx->draining;
	ctx->draining = ctx->cur;
	ctx->cur = fresh;
}

/* Destroys the draining channels that have nothing out any more. */
static void
reap_drained(dnsbl_ctx *ctx)
{
	for (struct chan **pp = &ctx->draining; *pp;) {
		struct chan *ch = *pp;

		if (ch->outstanding > 0) {
			pp = &ch->next;
			continue;
		}
		*pp = ch->next;
		chan_close(ch);
	}
}

/* Walks the current channel, then the draining ones. */
static struct chan *
chan_after(const dnsbl_ctx *ctx, const struct chan *ch)
{
	return ch == ctx->cur ? ctx->draining : ch->next;
}

/* Fills pfd with the wake pipe and every channel's sockets; returns how many. */
static size_t
gather_fds(dnsbl_ctx *ctx)
{
	size_t n = 1;

	for (struct chan *ch = ctx->cur; ch; ch = chan_after(ctx, ch))
		n += ch->nsocks;
	if (n > ctx->cappfd) {
		ctx->cappfd = 2 * n;
		ctx->pfd = ms_xrealloc(ctx->pfd, ctx->cappfd * sizeof *ctx->pfd);
		ctx->pfd_chan =
		        ms_xrealloc(ctx->pfd_chan, ctx->cappfd * sizeof *ctx->pfd_chan);
	}
	ctx->pfd[0] = (struct pollfd){.fd = ctx->wake[0], .events = POLLIN};
	n = 1;
	for (struct chan *ch = ctx->cur; ch; ch = chan_after(ctx, ch)) {
		/* A channel with no socket yet has no array either. */
		if (ch->nsocks > 0)
			memcpy(ctx->pfd + n, ch->socks, ch->nsocks * sizeof *ctx->pfd);
		for (size_t i = 0; i < ch->nsocks; i++)
			ctx->pfd_chan[n + i] = ch;
		n += ch->nsocks;
	}
	return n;
}

/* The earliest c-ares timeout of all channels, in ms; -1: none. */
static int
poll_timeout(dnsbl_ctx *ctx)
{
	int ms = -1;

	for (struct chan *ch = ctx->cur; ch; ch = chan_after(ctx, ch)) {
		struct timeval buf, *tv = ares_timeout(ch->ch, NULL, &buf);
		int t;

		if (tv == NULL)
			continue;
		t = (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
		if (ms < 0 || t < ms)
			ms = t;
	}
	return ms;
}

/* Hands every ready socket to its channel, then lets the others time out. */
static void
process_fds(dnsbl_ctx *ctx, size_t n)
{
	struct chan *idle[2] = {ctx->cur, ctx->draining};

	for (size_t i = 1; i < n; i++) {
		short ev = ctx->pfd[i].revents;

		if (ev == 0)
			continue;
		ares_process_fd(ctx->pfd_chan[i]->ch,
		                ev & (POLLIN | POLLERR | POLLHUP) ? ctx->pfd[i].fd
		                                                  : ARES_SOCKET_BAD,
		                ev & POLLOUT ? ctx->pfd[i].fd : ARES_SOCKET_BAD);
		if (ctx->pfd_chan[i] == ctx->cur)
			idle[0] = NULL;
	}
	/* ares_process_fd() also handles the timeouts of its channel. */
	if (idle[0] != NULL)
		ares_process_fd(idle[0]->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	for (struct chan *ch = idle[1]; ch; ch = ch->next)
		ares_process_fd(ch->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void *
resolver_main(void *arg)
{
	dnsbl_ctx *ctx = arg;

	for (;;) {
		struct job *jobs;
		struct chan *fresh;
		bool stop;

		pthread_mutex_lock(&ctx->qmu);
		jobs = ctx->qhead;
		ctx->qhead = ctx->qtail = NULL;
		fresh = ctx->next;
		ctx->next = NULL;
		stop = ctx->stopping;
		pthread_mutex_unlock(&ctx->qmu);
		/* The new servers first: what was queued with them goes to them. */
		if (fresh != NULL)
			take_chan(ctx, fresh);
		while (jobs) {
			struct job *next = jobs->next;

			send_job(ctx, jobs);
			jobs = next;
		}
		if (stop)
			break;

		size_t n = gather_fds(ctx);
		if (poll(ctx->pfd, (nfds_t)n, poll_timeout(ctx)) < 0 && errno != EINTR)
			ms_panic("poll: %s", strerror(errno));
		if (ctx->pfd[0].revents) {
			char drain[64];

			while (read(ctx->wake[0], drain, sizeof drain) > 0)
				continue;
		}
		process_fds(ctx, n);
		reap_drained(ctx);
	}
	/* Callers are gone (contract): end what is left so its memory goes. */
	ares_cancel(ctx->cur->ch);
	for (struct chan *ch = ctx->draining; ch; ch = ch->next)
		ares_cancel(ch->ch);
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

/* The provider table (provider.h): dnsbl_start/wait/finish themselves. */

static provider_call *
provider_start(void *self, dnsbl_query *q, size_t n, long long deadline_ms)
{
	return (provider_call *)dnsbl_start(self, q, n, deadline_ms);
}

static bool
provider_wait(provider_call *call, size_t i)
{
	return dnsbl_wait((dnsbl_call *)call, i);
}

static bool
provider_ready(provider_call *call, size_t i, long long until_ms)
{
	return dnsbl_ready((dnsbl_call *)call, i, until_ms);
}

static void
provider_finish(provider_call *call)
{
	dnsbl_finish((dnsbl_call *)call);
}

const dns_provider *
dnsbl_provider(dnsbl_ctx *ctx)
{
	return &ctx->provider;
}

static void
free_ctx(dnsbl_ctx *ctx)
{
	for (int i = 0; i < 2; i++)
		if (ctx->wake[i] >= 0)
			close(ctx->wake[i]);
	if (ctx->cur)
		chan_close(ctx->cur);
	while (ctx->draining) {
		struct chan *ch = ctx->draining;

		ctx->draining = ch->next;
		chan_close(ch);
	}
	if (ctx->next)
		chan_close(ctx->next);
	dns_cache_free(ctx->cache);
	dns_breaker_free(ctx->breaker);
	pthread_mutex_destroy(&ctx->qmu);
	free(ctx->pfd);
	free(ctx->pfd_chan);
	free(ctx->servers);
	free(ctx);
}

dnsbl_ctx *
dnsbl_create(const dnsbl_config *cfg, strbuf *err)
{
	dnsbl_ctx *ctx;
	int rc;

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
	ctx->provider = (dns_provider){"dns", ctx, provider_start, provider_wait,
	                               provider_ready, provider_finish};
	ctx->servers = ms_xstrdup(cfg->servers ? cfg->servers : "");
	ctx->wake[0] = ctx->wake[1] = -1;
	ctx->cache = dns_cache_create(cfg->cache_size, ctx->cfg.max_ttl);
	ctx->breaker = dns_breaker_create(cfg->breaker_threshold, cfg->breaker_open_ms,
	                                  cfg->on_breaker, cfg->breaker_arg);
	pthread_mutex_init(&ctx->qmu, NULL);

	if ((ctx->cur = chan_open(ctx, &ctx->cfg, ctx->servers, err)) == NULL)
		goto fail;
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
	free_ctx(ctx);
	return NULL;
}

bool
dnsbl_reconfigure(dnsbl_ctx *ctx, const dnsbl_config *cfg, strbuf *err)
{
	const char *servers = cfg->servers ? cfg->servers : "";

	if (strcmp(servers, ctx->servers) != 0) {
		struct chan *fresh = chan_open(ctx, &ctx->cfg, servers, err), *unused;

		if (fresh == NULL)
			return false;
		pthread_mutex_lock(&ctx->qmu);
		unused = ctx->next; /* a reconfiguration the resolver did not see */
		ctx->next = fresh;
		pthread_mutex_unlock(&ctx->qmu);
		if (unused != NULL)
			chan_close(unused);
		wake_resolver(ctx);
		free(ctx->servers);
		ctx->servers = ms_xstrdup(servers);
		/* What opened the breakers was the old servers' silence. */
		dns_breaker_reset(ctx->breaker);
	}
	dns_cache_resize(ctx->cache, cfg->cache_size);
	dns_breaker_configure(ctx->breaker, cfg->breaker_threshold, cfg->breaker_open_ms);
	return true;
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
	free_ctx(ctx);
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
	dns_answer a;
	unsigned char match[DNSBL_MAX_ADDR][4];
	bool done = true;

	*txt_only = false;
	dns_answer_init(&a);
	if (!cache_get(ctx, DNS_T_A, s->name, &a)) {
		dns_answer_free(&a);
		return false;
	}
	s->cached = true;
	slot_take_a(s, &a, filter_addrs(s->filter, &a, match), match);
	if (s->status == DNSBL_LISTED) {
		strbuf_reset(&a.txt);
		if (!cache_get(ctx, DNS_T_TXT, s->name, &a)) {
			done = s->no_txt;
			*txt_only = !s->no_txt;
		} else if (a.outcome == DNS_POSITIVE)
			s->txt = ms_xstrdup(strbuf_str(&a.txt));
	}
	dns_answer_free(&a);
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
		enum dns_report r;

		/* Every query with a name, sent or answered from the cache. */
		if (ctx->cfg.on_query != NULL && s->name != NULL && s->status != DNSBL_PENDING)
			ctx->cfg.on_query(ctx->cfg.query_arg, s->name + s->zoff, s->status,
			                  s->cached);
		if (!s->sent)
			continue;
		switch (s->status) {
		case DNSBL_LISTED:
		case DNSBL_NOT_LISTED:
			r = DNS_REP_ANSWER;
			break;
		case DNSBL_TIMEOUT:
			r = DNS_REP_TIMEOUT;
			atomic_fetch_add(&ctx->timeouts, 1);
			break;
		case DNSBL_CANCELLED:
			r = DNS_REP_CANCEL;
			break;
		default:
			/*
			 * A server that is down (its port closed: ECONNREFUSED
			 * for every server) fails at once instead of timing
			 * out, but it is as absent: the breaker counts it.
			 */
			r = s->unreachable ? DNS_REP_TIMEOUT : DNS_REP_ERROR;
			break;
		}
		dns_breaker_report(ctx->breaker, s->name + s->zoff, r, s->probe);
	}
}

/* Pass 1: names and the cache; nothing shared is held yet. */
static void
prepare(dnsbl_ctx *ctx, struct dnsbl_call *c, dnsbl_query *q)
{
	for (size_t i = 0; i < c->n; i++) {
		struct slot *s = &c->slot[i];
		bool txt_only;

		reset_result(&q[i]);
		s->filter = q[i].filter;
		s->no_txt = q[i].no_txt;
		if (!build_name(&q[i], &s->zoff, &q[i].err)) {
			s->status = DNSBL_ERROR;
			continue;
		}
		s->name = ms_xstrdup(strbuf_str(&q[i].name));
		if (from_cache(ctx, s, &txt_only))
			s->ms = budget_now_ms() - c->start;
		else if (txt_only)
			s->txt_pending = true;
	}
}

/* Pass 2: the jobs for what must go out (NULL: nothing must). */
static struct job *
make_jobs(dnsbl_ctx *ctx, struct dnsbl_call *c, long long deadline)
{
	struct job *head = NULL, **tail = &head;
	bool expired = budget_expired(deadline);

	for (size_t i = 0; i < c->n; i++) {
		struct slot *s = &c->slot[i];

		if (slot_final(s))
			continue;
		if (expired) {
			if (s->status == DNSBL_PENDING)
				s->status = DNSBL_TIMEOUT;
			/* A listing whose TXT cannot come in time stays listed. */
			s->txt_pending = false;
			continue;
		}
		if (!s->txt_pending) {
			enum dns_admit ad =
			        dns_breaker_admit(ctx->breaker, s->name + s->zoff);

			if (ad == DNS_ADMIT_SKIP) {
				atomic_fetch_add(&ctx->skipped, 1);
				s->status = DNSBL_SKIPPED;
				continue;
			}
			s->probe = ad == DNS_ADMIT_PROBE;
			s->sent = true;
		}
		struct job *j = ms_xcalloc(1, sizeof *j);
		*j = (struct job){.ctx = ctx,
		                  .call = c,
		                  .i = i,
		                  .type = s->txt_pending ? DNS_T_TXT : DNS_T_A};
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
dnsbl_start(dnsbl_ctx *ctx, dnsbl_query *q, size_t n, long long deadline_ms)
{
	struct dnsbl_call *c;
	struct job *jobs;

	if (n == 0)
		return NULL;
	atomic_fetch_add(&ctx->lookups, n);
	c = call_new(n);
	c->ctx = ctx;
	c->q = q;
	c->deadline = deadline_ms;
	prepare(ctx, c, q);
	/* The resolver cannot see c before submit(): no lock needed so far. */
	jobs = make_jobs(ctx, c, deadline_ms);
	if (jobs)
		submit(ctx, jobs);
	return c;
}

/*
 * The caller is about to wait for slot i until some time before until: the
 * first time in this call, tell the daemon (on_block), with no lock held.
 * Called and returns with c->mu held.
 */
static void
before_blocking(struct dnsbl_call *c, const struct slot *s, long long until)
{
	if (c->blocked || c->ctx->cfg.on_block == NULL || s->closed || slot_final(s) ||
	    budget_expired(until))
		return;
	c->blocked = true; /* the caller's field: its thread only */
	pthread_mutex_unlock(&c->mu);
	c->ctx->cfg.on_block(c->ctx->cfg.block_arg);
	pthread_mutex_lock(&c->mu);
}

bool
dnsbl_wait(dnsbl_call *c, size_t i)
{
	struct timespec ts = budget_timespec(c->deadline);
	struct slot *s = &c->slot[i];
	bool ok;

	pthread_mutex_lock(&c->mu);
	before_blocking(c, s, c->deadline);
	while (!s->closed && !slot_final(s) && !budget_expired(c->deadline))
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	close_slot(c, i, DNSBL_TIMEOUT);
	ok = s->status != DNSBL_TIMEOUT;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

bool
dnsbl_ready(dnsbl_call *c, size_t i, long long until_ms)
{
	long long until = until_ms < c->deadline ? until_ms : c->deadline;
	struct timespec ts = budget_timespec(until);
	struct slot *s = &c->slot[i];
	bool ready;

	pthread_mutex_lock(&c->mu);
	before_blocking(c, s, until);
	while (!(ready = s->closed || slot_final(s) || budget_expired(c->deadline)) &&
	       !budget_expired(until))
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	ready = s->closed || slot_final(s) || budget_expired(c->deadline);
	pthread_mutex_unlock(&c->mu);
	return ready;
}

void
dnsbl_finish(dnsbl_call *c)
{
	if (c == NULL)
		return;
	/* Past the deadline what is still out timed out; before it, it was
	   not needed. */
	enum dnsbl_status pending =
	        budget_expired(c->deadline) ? DNSBL_TIMEOUT : DNSBL_CANCELLED;

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++)
		close_slot(c, i, pending);
	c->abandoned = true;
	pthread_mutex_unlock(&c->mu);
	/* Only this thread writes a slot once abandoned is set. */
	account(c->ctx, c);
	call_unref(c);
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
		return "not_listed";
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
	out->lookups = atomic_load(&ctx->lookups);
	out->sent = atomic_load(&ctx->sent);
	out->cache_hits = atomic_load(&ctx->cache_hits);
	out->skipped = atomic_load(&ctx->skipped);
	out->timeouts = atomic_load(&ctx->timeouts);
	out->suspended = dns_breaker_suspended(ctx->breaker);
}
