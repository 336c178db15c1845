/* fake-dns - an in-process DNS provider for unit tests; see fake-dns.h. */
#include "config.h"

#include "fake-dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "budget.h"
#include "strbuf.h"

struct fake_dns {
	dns_provider provider;
	const fake_dns_answer *table;
	size_t n;
	pthread_mutex_t mu; /* the counters */
	unsigned asked, asked_txt, open_calls, waits;
};

/* A call: each query's row (NULL: none matched) and whether it is filled in. */
struct provider_call {
	fake_dns *f;
	dnsbl_query *q;
	size_t n;
	long long start, deadline;
	const fake_dns_answer **row;
	bool *done;
};

/* What the real resolver would look up: reversed address or lower-case name. */
static void
lookup_key(enum dnsbl_kind kind, const char *subject, strbuf *out)
{
	size_t len;

	strbuf_reset(out);
	if (kind == DNSBL_IP && dnsbl_reverse_ip(subject, out))
		return;
	strbuf_puts(out, "");
	len = strlen(subject);
	if (len > 0 && subject[len - 1] == '.')
		len--;
	for (size_t i = 0; i < len; i++)
		strbuf_putc(out, (char)tolower((unsigned char)subject[i]));
}

static bool
same_zone(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	la -= la > 0 && a[la - 1] == '.';
	lb -= lb > 0 && b[lb - 1] == '.';
	return la == lb && strncasecmp(a, b, la) == 0;
}

static const fake_dns_answer *
find_row(const fake_dns *f, const dnsbl_query *q)
{
	strbuf want = STRBUF_INIT, have = STRBUF_INIT;
	const fake_dns_answer *found = NULL;

	lookup_key(q->kind, q->subject ? q->subject : "", &want);
	for (size_t i = 0; i < f->n && found == NULL; i++) {
		const fake_dns_answer *r = &f->table[i];

		if (r->kind != q->kind || !same_zone(r->zone, q->zone ? q->zone : ""))
			continue;
		if (r->subject != NULL) {
			lookup_key(r->kind, r->subject, &have);
			if (strcmp(strbuf_str(&have), strbuf_str(&want)) != 0)
				continue;
		}
		found = r;
	}
	strbuf_free(&want);
	strbuf_free(&have);
	return found;
}

/* When row's answer is in; LLONG_MAX: never. */
static long long
ready_at(const struct provider_call *c, const fake_dns_answer *row)
{
	if (row != NULL && row->result == FAKE_TIMEOUT)
		return LLONG_MAX;
	return budget_deadline(c->start, row != NULL ? row->delay_ms : 0);
}

static void
fill_listed(dnsbl_query *q, const fake_dns_answer *row)
{
	const char *p = row->addr ? row->addr : "";

	while (*p != '\0' && q->naddr < DNSBL_MAX_ADDR) {
		size_t len = strcspn(p, ",");
		char one[INET_ADDRSTRLEN];
		unsigned char a[4];

		if (len < sizeof one) {
			memcpy(one, p, len);
			one[len] = '\0';
			if (inet_pton(AF_INET, one, a) == 1 &&
			    dnsbl_filter_match(q->filter, a))
				memcpy(q->addr[q->naddr++], a, 4);
		}
		p += len + (p[len] == ',');
	}
	q->status = q->naddr > 0 ? DNSBL_LISTED : DNSBL_NOT_LISTED;
	if (q->status == DNSBL_LISTED && row->txt != NULL && !q->no_txt)
		strbuf_puts(&q->txt, row->txt);
}

/* Settles q[i] at time now: its answer if in, else pending. */
static void
settle(struct provider_call *c, size_t i, long long now, enum dnsbl_status pending)
{
	dnsbl_query *q = &c->q[i];
	const fake_dns_answer *row = c->row[i];
	long long ready = ready_at(c, row);

	if (c->done[i])
		return;
	c->done[i] = true;
	if (ready > now || ready > c->deadline) {
		q->status = pending;
		q->ms = now - c->start;
		return;
	}
	q->ms = ready - c->start;
	switch (row != NULL ? row->result : FAKE_NOT_LISTED) {
	case FAKE_LISTED:
		fill_listed(q, row);
		break;
	case FAKE_NOT_LISTED:
	case FAKE_TIMEOUT:
		q->status = DNSBL_NOT_LISTED;
		break;
	case FAKE_ERROR:
		q->status = DNSBL_ERROR;
		strbuf_puts(&q->err, "fake: refused");
		break;
	case FAKE_SKIPPED:
		q->status = DNSBL_SKIPPED;
		break;
	}
}

static void
sleep_until(long long t)
{
	long long left;

	while ((left = t - budget_now_ms()) > 0) {
		struct timespec ts = {.tv_sec = (time_t)(left / 1000),
		                      .tv_nsec = (long)(left % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
}

static provider_call *
fake_start(void *self, dnsbl_query *q, size_t n, long long deadline_ms)
{
	fake_dns *f = self;
	struct provider_call *c;

	if (n == 0)
		return NULL;
	c = ms_xcalloc(1, sizeof *c);
	c->f = f;
	c->q = q;
	c->n = n;
	c->start = budget_now_ms();
	c->deadline = deadline_ms;
	c->row = ms_xcalloc(n, sizeof *c->row);
	c->done = ms_xcalloc(n, sizeof *c->done);
	for (size_t i = 0; i < n; i++) {
		q[i].status = DNSBL_PENDING;
		q[i].cached = false;
		q[i].naddr = 0;
		q[i].ms = 0;
		strbuf_reset(&q[i].txt);
		strbuf_reset(&q[i].err);
		c->row[i] = find_row(f, &q[i]);
	}
	pthread_mutex_lock(&f->mu);
	f->asked += (unsigned)n;
	for (size_t i = 0; i < n; i++)
		f->asked_txt += !q[i].no_txt;
	f->open_calls++;
	pthread_mutex_unlock(&f->mu);
	return c;
}

static bool
fake_wait(provider_call *c, size_t i)
{
	long long ready = ready_at(c, c->row[i]);

	pthread_mutex_lock(&c->f->mu);
	c->f->waits++;
	pthread_mutex_unlock(&c->f->mu);
	if (!c->done[i])
		sleep_until(ready < c->deadline ? ready : c->deadline);
	settle(c, i, budget_now_ms(), DNSBL_TIMEOUT);
	return c->q[i].status != DNSBL_TIMEOUT;
}

static bool
fake_ready(provider_call *c, size_t i, long long until_ms)
{
	long long ready = ready_at(c, c->row[i]), now;

	if (!c->done[i]) {
		long long t = ready < c->deadline ? ready : c->deadline;

		sleep_until(t < until_ms ? t : until_ms);
	}
	now = budget_now_ms();
	return c->done[i] || now >= ready || now >= c->deadline;
}

static void
fake_finish(provider_call *c)
{
	long long now;

	if (c == NULL)
		return;
	now = budget_now_ms();
	for (size_t i = 0; i < c->n; i++)
		settle(c, i, now, now >= c->deadline ? DNSBL_TIMEOUT : DNSBL_CANCELLED);
	pthread_mutex_lock(&c->f->mu);
	c->f->open_calls--;
	pthread_mutex_unlock(&c->f->mu);
	free(c->row);
	free(c->done);
	free(c);
}

fake_dns *
fake_dns_create(const fake_dns_answer *table, size_t n)
{
	fake_dns *f = ms_xcalloc(1, sizeof *f);

	f->table = table;
	f->n = n;
	pthread_mutex_init(&f->mu, NULL);
	f->provider = (dns_provider){"fake-dns", f, fake_start, fake_wait, fake_ready,
	                             fake_finish};
	return f;
}

void
fake_dns_free(fake_dns *f)
{
	if (f == NULL)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f);
}

const dns_provider *
fake_dns_provider(fake_dns *f)
{
	return &f->provider;
}

#define COUNTER(name)                                                                    \
	unsigned fake_dns_##name(fake_dns *f)                                            \
	{                                                                                \
		unsigned v;                                                              \
		pthread_mutex_lock(&f->mu);                                              \
		v = f->name;                                                             \
		pthread_mutex_unlock(&f->mu);                                            \
		return v;                                                                \
	}
COUNTER(asked)
COUNTER(asked_txt)
COUNTER(open_calls)
COUNTER(waits)
