/*
 * Unit tests for dnsbl: names and filters alone, then lookups against a real
 * DNS server (dnsmasq, started here on 127.0.0.1 and a free port with its
 * zones on the command line) and against a fake server of the test's own
 * that drops or answers on demand; reconfiguration in place (the cache and
 * the breakers kept, a cache resized, new servers) and the provider table.
 * A missing dnsmasq fails the suite.
 */
#include "config.h"

#include "unit.h"

#include <arpa/inet.h>
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "dnsbl.h"
#include "provider.h"

/* Deadlines are the contract: allow this much for a slow, shared machine. */
#define MARGIN_MS 200

static pid_t dns_pid = -1, auth_pid = -1;
static int dns_port, auth_port;
static int dead_upstream = -1; /* dnsmasq forwards slow.test here: no answer */
static char servers[64], auth_servers[64];

static const char *v6_listed = "2001:db8::1";
static const char *v6_name =
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2";

static void
dns_start(void)
{
	char slow[64];
	int dead_port;
	const char *const args[] = {
	        "--local-ttl=600",
	        "--local=/bl.test/",
	        "--local=/dbl.test/",
	        "--host-record=2.0.0.127.bl.test,127.0.0.2",
	        "--txt-record=2.0.0.127.bl.test,Listed: test entry",
	        "--host-record=99.2.0.192.bl.test,127.0.0.4",
	        "--txt-record=99.2.0.192.bl.test,spam from 192.0.2.99;,see bl.test",
	        "--host-record=10.2.0.192.bl.test,127.0.1.5",
	        "--address=/20.2.0.192.bl.test/127.0.0.2",
	        "--address=/20.2.0.192.bl.test/127.0.0.10",
	        "--host-record=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1."
	        "0.0."
	        "2.bl.test,127.0.0.3",
	        "--host-record=spam.example.dbl.test,127.0.1.2",
	        "--txt-record=spam.example.dbl.test,bad domain",
	        slow,
	        NULL,
	};
	/*
	 * An authoritative server: its NXDOMAIN carries an SOA, every TTL 2 s.
	 * Its own process: on an --auth-server address dnsmasq refuses the
	 * zones it is not authoritative for.
	 */
	const char *const auth_args[] = {
	        "--auth-server=ns.auth.test,127.0.0.1",
	        "--auth-zone=auth.test",
	        "--auth-ttl=2",
	        "--host-record=2.0.0.127.auth.test,127.0.0.2",
	        NULL,
	};

	dead_upstream = unit_udp_socket(&dead_port);
	snprintf(slow, sizeof slow, "--server=/slow.test/127.0.0.1#%d", dead_port);
	dns_pid = unit_dnsmasq_start(args, &dns_port);
	snprintf(servers, sizeof servers, "127.0.0.1:%d", dns_port);
	auth_pid = unit_dnsmasq_start(auth_args, &auth_port);
	snprintf(auth_servers, sizeof auth_servers, "127.0.0.1:%d", auth_port);
}

static void
dns_stop(void)
{
	unit_dnsmasq_stop(dns_pid);
	unit_dnsmasq_stop(auth_pid);
	dns_pid = auth_pid = -1;
	if (dead_upstream >= 0)
		close(dead_upstream);
	dead_upstream = -1;
}

static dnsbl_ctx *
ctx_new(const char *srv, size_t cache, unsigned threshold, unsigned open_ms,
        dnsbl_breaker_fn cb, void *arg)
{
	dnsbl_config cfg = {.servers = srv,
	                    .try_timeout_ms = 5000,
	                    .tries = 1,
	                    .cache_size = cache,
	                    .neg_ttl = 600,
	                    .breaker_threshold = threshold,
	                    .breaker_open_ms = open_ms,
	                    .on_breaker = cb,
	                    .breaker_arg = arg};
	strbuf err = STRBUF_INIT;
	dnsbl_ctx *ctx = dnsbl_create(&cfg, &err);

	ck_assert_msg(ctx != NULL, "dnsbl_create: %s", strbuf_str(&err));
	strbuf_free(&err);
	return ctx;
}

/* Every query of q[] to its end or the deadline: start, wait for each, finish. */
static void
lookup_all(dnsbl_ctx *ctx, dnsbl_query *q, size_t n, long long deadline)
{
	dnsbl_call *call = dnsbl_start(ctx, q, n, deadline);

	for (size_t i = 0; i < n; i++)
		dnsbl_wait(call, i);
	dnsbl_finish(call);
}

/* One query, returns its status; q is left for the caller to inspect. */
static enum dnsbl_status
lookup1(dnsbl_ctx *ctx, dnsbl_query *q, enum dnsbl_kind kind, const char *subject,
        const char *zone, const dnsbl_filter *f, long long budget_ms)
{
	dnsbl_query_init(q, kind, subject, zone, f);
	lookup_all(ctx, q, 1, budget_deadline(budget_now_ms(), budget_ms));
	return q->status;
}

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Names and filters. */

START_TEST(test_reverse)
{
	static const struct {
		const char *in, *out; /* out NULL: refused */
	} cases[] = {
	        {"192.0.2.1", "1.2.0.192"},
	        {"127.0.0.2", "2.0.0.127"},
	        {"2001:db8::1", NULL}, /* filled below */
	        {"::ffff:192.0.2.1", "1.2.0.192"},
	        {"::1",
	         "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"},
	        {"", NULL},
	        {"1.2.3", NULL},
	        {"1.2.3.4.5", NULL},
	        {"1.2.3.256", NULL},
	        {"[192.0.2.1]", NULL},
	        {"IPv6:2001:db8::1", NULL},
	        {"192.0.2.1 ", NULL},
	        {"hello", NULL},
	        {"2001:db8::1%eth0", NULL},
	};
	strbuf b = STRBUF_INIT;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *want = i == 2 ? v6_name : cases[i].out;
		bool ok = dnsbl_reverse_ip(cases[i].in, &b);

		ck_assert_msg(ok == (want != NULL), "%s: %d", cases[i].in, ok);
		if (want)
			ck_assert_str_eq(strbuf_str(&b), want);
		else
			ck_assert_str_eq(strbuf_str(&b), "");
	}
	strbuf_free(&b);
}
END_TEST

START_TEST(test_filter_parse)
{
	static const struct {
		const char *text, *err; /* err NULL: accepted; else in the message */
	} cases[] = {
	        {"127.0.0.2", NULL},
	        {"127.0.0.[2..11]", NULL},
	        {"127.0.[0..255].[2;4;8]", NULL},
	        {"127.0.0.[2;4..7;10]", NULL},
	        {"[127.0.0.2]", NULL},
	        {"127.000.0.002", NULL},
	        {"", "expected d.d.d.d"},
	        {"127.0.0", "expected \".\" and another field"},
	        {"127.0.0.2.3", "the end after four fields"},
	        {"127.0.0.256", "a number 0..255 or \"[\""},
	        {"127.0.0.[11..2]", "does not run backwards"},
	        {"127.0.0.[2,4]", "\";\" or \"]\""},
	        {"127.0.0.[]", "a number 0..255"},
	        {"127.0.0.[2", "\";\" or \"]\""},
	        {"127.0.[0.1]", "\";\" or \"]\""},
	        {"127.0.0.3[6..9]", "the end after four fields"},
	        {" 127.0.0.2", "a number 0..255 or \"[\""},
	        {"127.0.0.x", "column 9"},
	        {"127.0.0.[2..]", "after \"..\""},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		strbuf err = STRBUF_INIT;
		dnsbl_filter *f = dnsbl_filter_parse(cases[i].text, &err);

		if (cases[i].err == NULL) {
			ck_assert_msg(f != NULL, "%s: %s", cases[i].text,
			              strbuf_str(&err));
		} else {
			ck_assert_msg(f == NULL, "%s accepted", cases[i].text);
			ck_assert_msg(strstr(strbuf_str(&err), cases[i].err) != NULL,
			              "%s: \"%s\" lacks \"%s\"", cases[i].text,
			              strbuf_str(&err), cases[i].err);
		}
		dnsbl_filter_free(f);
		strbuf_free(&err);
	}
}
END_TEST

START_TEST(test_filter_match)
{
	static const struct {
		const char *filter, *addr;
		bool match;
	} cases[] = {
	        {"127.0.0.2", "127.0.0.2", true},
	        {"127.0.0.2", "127.0.0.3", false},
	        {"127.0.0.[2..11]", "127.0.0.2", true},
	        {"127.0.0.[2..11]", "127.0.0.11", true},
	        {"127.0.0.[2..11]", "127.0.0.12", false},
	        {"127.0.0.[2..11]", "127.0.1.2", false},
	        {"127.0.[0..255].[2;4;8]", "127.0.77.4", true},
	        {"127.0.[0..255].[2;4;8]", "127.0.77.5", false},
	        {"127.0.0.[2;4..7;10]", "127.0.0.6", true},
	        {"127.0.0.[2;4..7;10]", "127.0.0.9", false},
	        {"[127.0.0.2]", "127.0.0.2", true},
	        {"0.0.0.0", "0.0.0.0", true},
	        {"255.255.255.[255]", "255.255.255.255", true},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		strbuf err = STRBUF_INIT;
		dnsbl_filter *f = dnsbl_filter_parse(cases[i].filter, &err);
		unsigned char a[4];

		ck_assert_msg(f != NULL, "%s", strbuf_str(&err));
		ck_assert_int_eq(inet_pton(AF_INET, cases[i].addr, a), 1);
		ck_assert_msg(dnsbl_filter_match(f, a) == cases[i].match, "%s ~ %s",
		              cases[i].filter, cases[i].addr);
		dnsbl_filter_free(f);
		strbuf_free(&err);
	}
	ck_assert(dnsbl_filter_match(NULL, (const unsigned char *)"\x7f\0\0\x02"));
}
END_TEST

START_TEST(test_bad_servers)
{
	dnsbl_config cfg = {.servers = "not-an-address:53"};
	strbuf err = STRBUF_INIT;

	ck_assert_ptr_null(dnsbl_create(&cfg, &err));
	ck_assert_msg(strstr(strbuf_str(&err), "bad DNS server list") != NULL, "%s",
	              strbuf_str(&err));
	strbuf_reset(&err);
	ck_assert(!dnsbl_check_servers("not-an-address:53", &err));
	ck_assert_msg(strstr(strbuf_str(&err), "bad DNS server list") != NULL, "%s",
	              strbuf_str(&err));
	ck_assert(dnsbl_check_servers("127.0.0.1:53,127.0.0.2:5353", &err));
	ck_assert(dnsbl_check_servers("", &err));
	strbuf_free(&err);
}
END_TEST

/* Lookups against dnsmasq. */

START_TEST(test_lookups)
{
	static const struct {
		enum dnsbl_kind kind;
		const char *subject, *zone, *filter;
		enum dnsbl_status want;
		unsigned naddr;
		const char *first, *txt, *err; /* first: addr[0] */
	} cases[] = {
	        {DNSBL_IP, "127.0.0.2", "bl.test", NULL, DNSBL_LISTED, 1, "127.0.0.2",
	         "Listed: test entry", NULL},
	        {DNSBL_IP, "127.0.0.2", "BL.Test.", "127.0.0.[2..11]", DNSBL_LISTED, 1,
	         "127.0.0.2", "Listed: test entry", NULL},
	        {DNSBL_IP, "127.0.0.3", "bl.test", NULL, DNSBL_NOT_LISTED, 0, NULL, "",
	         NULL},
	        {DNSBL_IP, "192.0.2.99", "bl.test", NULL, DNSBL_LISTED, 1, "127.0.0.4",
	         "spam from 192.0.2.99;see bl.test", NULL},
	        {DNSBL_IP, "::ffff:192.0.2.99", "bl.test", NULL, DNSBL_LISTED, 1,
	         "127.0.0.4", "spam from 192.0.2.99;see bl.test", NULL},
	        {DNSBL_IP, "2001:db8::1", "bl.test", NULL, DNSBL_LISTED, 1, "127.0.0.3",
	         "", NULL},
	        {DNSBL_IP, "2001:db8::2", "bl.test", NULL, DNSBL_NOT_LISTED, 0, NULL, "",
	         NULL},
	        /* 127.0.1.5: listed, but not with the codes the filter asks for. */
	        {DNSBL_IP, "192.0.2.10", "bl.test", "127.0.0.[2..11]", DNSBL_NOT_LISTED,
	         0, NULL, "", NULL},
	        {DNSBL_IP, "192.0.2.10", "bl.test", NULL, DNSBL_LISTED, 1, "127.0.1.5",
	         "", NULL},
	        {DNSBL_IP, "192.0.2.20", "bl.test", NULL, DNSBL_LISTED, 2, NULL, "",
	         NULL},
	        {DNSBL_IP, "192.0.2.20", "bl.test", "127.0.0.10", DNSBL_LISTED, 1,
	         "127.0.0.10", "", NULL},
	        {DNSBL_NAME, "spam.example", "dbl.test", NULL, DNSBL_LISTED, 1,
	         "127.0.1.2", "bad domain", NULL},
	        {DNSBL_NAME, "Spam.EXAMPLE.", "dbl.test", NULL, DNSBL_LISTED, 1,
	         "127.0.1.2", "bad domain", NULL},
	        {DNSBL_NAME, "good.example", "dbl.test", NULL, DNSBL_NOT_LISTED, 0, NULL,
	         "", NULL},
	        {DNSBL_NAME, "[192.0.2.1]", "dbl.test", NULL, DNSBL_ERROR, 0, NULL, "",
	         "is not a domain name"},
	        {DNSBL_NAME, "a..b", "dbl.test", NULL, DNSBL_ERROR, 0, NULL, "",
	         "is not a domain name"},
	        {DNSBL_IP, "192.0.2.1", "bad zone", NULL, DNSBL_ERROR, 0, NULL, "",
	         "zone \"bad zone\" is not a domain name"},
	        {DNSBL_IP, "unknown", "bl.test", NULL, DNSBL_ERROR, 0, NULL, "",
	         "is not an IP address"},
	        /* dnsmasq refuses what it neither has nor may forward; c-ares 1.18
	         * tries the next server and, with none left, says it could not
	         * contact any. */
	        {DNSBL_IP, "127.0.0.2", "other.test", NULL, DNSBL_ERROR, 0, NULL, "",
	         "2.0.0.127.other.test: "},
	};
	dnsbl_ctx *ctx = ctx_new(servers, 0, 0, 0, NULL, NULL);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		dnsbl_filter *f = NULL;
		strbuf err = STRBUF_INIT;
		dnsbl_query q;
		char a[INET_ADDRSTRLEN];

		if (cases[i].filter)
			ck_assert((f = dnsbl_filter_parse(cases[i].filter, &err)) !=
			          NULL);
		lookup1(ctx, &q, cases[i].kind, cases[i].subject, cases[i].zone, f, 5000);
		ck_assert_msg(q.status == cases[i].want, "%zu %s: %s (%s)", i,
		              cases[i].subject, dnsbl_status_name(q.status),
		              strbuf_str(&q.err));
		ck_assert_uint_eq(q.naddr, cases[i].naddr);
		if (cases[i].first) {
			inet_ntop(AF_INET, q.addr[0], a, sizeof a);
			ck_assert_str_eq(a, cases[i].first);
		}
		ck_assert_str_eq(strbuf_str(&q.txt), cases[i].txt);
		if (cases[i].err)
			ck_assert_msg(strcasestr(strbuf_str(&q.err), cases[i].err) !=
			                      NULL,
			              "%s: %s", cases[i].subject, strbuf_str(&q.err));
		dnsbl_query_free(&q);
		dnsbl_filter_free(f);
		strbuf_free(&err);
	}
	dnsbl_free(ctx);
}
END_TEST

/* The query name; a listed name is asked for its TXT as well. */
START_TEST(test_name)
{
	dnsbl_ctx *ctx = ctx_new(servers, 0, 0, 0, NULL, NULL);
	dnsbl_query q;
	dnsbl_stats st;

	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 5000),
	                 DNSBL_LISTED);
	ck_assert_str_eq(strbuf_str(&q.name), "2.0.0.127.bl.test");
	ck_assert_str_eq(strbuf_str(&q.txt), "Listed: test entry");
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.sent, 2); /* A, then TXT */
	ck_assert_uint_eq(st.lookups, 1);
	dnsbl_query_free(&q);

	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, v6_listed, "bl.test", NULL, 5000),
	                 DNSBL_LISTED);
	ck_assert_str_eq(strbuf_str(&q.name),
	                 "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	                 "0.8.b.d.0.1.0.0.2.bl.test");
	dnsbl_query_free(&q);
	dnsbl_free(ctx);
}
END_TEST

/* no_txt: a listing is final with its A answer; one query, from the cache after. */
START_TEST(test_no_txt)
{
	dnsbl_ctx *ctx = ctx_new(servers, 100, 0, 0, NULL, NULL);
	dnsbl_query q;
	dnsbl_stats st;

	for (int round = 0; round < 2; round++) {
		dnsbl_query_init(&q, DNSBL_IP, "127.0.0.2", "bl.test", NULL);
		q.no_txt = true;
		lookup_all(ctx, &q, 1, budget_deadline(budget_now_ms(), 5000));
		ck_assert_int_eq(q.status, DNSBL_LISTED);
		ck_assert_str_eq(strbuf_str(&q.txt), "");
		ck_assert_int_eq(q.cached, round == 1);
		dnsbl_query_free(&q);
	}
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.sent, 1); /* A alone */
	/* A caller that wants the reason asks its TXT alone. */
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 5000),
	                 DNSBL_LISTED);
	ck_assert_str_eq(strbuf_str(&q.txt), "Listed: test entry");
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.sent, 2);
	dnsbl_query_free(&q);
	dnsbl_free(ctx);
}
END_TEST

/*
 * slow.test is forwarded to a server that never answers. Waiting for the
 * listed query alone and finishing ends the call long before the deadline,
 * the others cancelled; waiting for all of them waits until the deadline.
 */
START_TEST(test_parallel)
{
	dnsbl_ctx *ctx = ctx_new(servers, 0, 0, 0, NULL, NULL);
	dnsbl_query q[4];
	long long t0, took;

	for (int round = 0; round < 2; round++) {
		long long budget = round == 0 ? 5000 : 400;

		dnsbl_query_init(&q[0], DNSBL_IP, "127.0.0.3", "bl.test", NULL);
		dnsbl_query_init(&q[1], DNSBL_IP, "127.0.0.2", "slow.test", NULL);
		dnsbl_query_init(&q[2], DNSBL_IP, "192.0.2.99", "bl.test", NULL);
		dnsbl_query_init(&q[3], DNSBL_NAME, "spam.example", "slow.test", NULL);
		t0 = budget_now_ms();
		if (round == 0) {
			dnsbl_call *call =
			        dnsbl_start(ctx, q, 4, budget_deadline(t0, budget));

			ck_assert(dnsbl_wait(call, 2));
			dnsbl_finish(call);
		} else {
			lookup_all(ctx, q, 4, budget_deadline(t0, budget));
		}
		took = budget_now_ms() - t0;
		ck_assert_int_eq(q[2].status, DNSBL_LISTED);
		ck_assert_str_eq(strbuf_str(&q[2].txt),
		                 "spam from 192.0.2.99;see bl.test");
		if (round == 0) {
			ck_assert_msg(took < 2000, "the listed one alone waited %lld ms",
			              took);
			ck_assert_int_eq(q[1].status, DNSBL_CANCELLED);
			ck_assert_int_eq(q[3].status, DNSBL_CANCELLED);
		} else {
			ck_assert_msg(took >= budget - 5 && took < budget + MARGIN_MS,
			              "took %lld ms for a %lld ms budget", took, budget);
			ck_assert_int_eq(q[0].status, DNSBL_NOT_LISTED);
			ck_assert_int_eq(q[1].status, DNSBL_TIMEOUT);
			ck_assert_int_eq(q[3].status, DNSBL_TIMEOUT);
			ck_assert(q[0].ms < q[1].ms);
		}
		for (int i = 0; i < 4; i++)
			dnsbl_query_free(&q[i]);
	}
	dnsbl_free(ctx);
}
END_TEST

START_TEST(test_cache)
{
	dnsbl_ctx *ctx = ctx_new(servers, 100, 0, 0, NULL, NULL);
	dnsbl_query q;
	dnsbl_stats st;
	double t_net = 0, t_cache = 0, t;
	static const char *subjects[] = {"127.0.0.2", "127.0.0.3"};

	for (int s = 0; s < 2; s++) {
		unsigned long long sent;

		t = now_us();
		lookup1(ctx, &q, DNSBL_IP, subjects[s], "bl.test", NULL, 5000);
		t_net += now_us() - t;
		ck_assert(!q.cached);
		dnsbl_query_free(&q);
		dnsbl_get_stats(ctx, &st);
		sent = st.sent;
		ck_assert_uint_eq(sent, s == 0 ? 2 : 3); /* A+TXT, then A */
		t = now_us();
		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, subjects[s], "bl.test", NULL, 5000),
		        s == 0 ? DNSBL_LISTED : DNSBL_NOT_LISTED);
		t_cache += now_us() - t;
		ck_assert(q.cached);
		if (s == 0)
			ck_assert_str_eq(strbuf_str(&q.txt), "Listed: test entry");
		dnsbl_query_free(&q);
		dnsbl_get_stats(ctx, &st);
		ck_assert_uint_eq(st.sent, sent);
	}
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.cache_hits, 3);
	/* The filter applies to the cached records: same answer, other verdict. */
	{
		strbuf err = STRBUF_INIT;
		dnsbl_filter *f = dnsbl_filter_parse("127.0.0.3", &err);

		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", f, 5000),
		        DNSBL_NOT_LISTED);
		ck_assert(q.cached);
		dnsbl_query_free(&q);
		dnsbl_filter_free(f);
		strbuf_free(&err);
	}
	fprintf(stderr,
	        "check_dnsbl: lookup over loopback %.0f us, from the cache %.1f us\n",
	        t_net / 2, t_cache / 2);
	dnsbl_free(ctx);
}
END_TEST

/* on_query hears of every query of a finished call: its zone, result, cache. */
struct heard {
	char log[512];
};

static void
hear(void *arg, const char *zone, enum dnsbl_status status, bool cached)
{
	struct heard *h = arg;
	size_t n = strlen(h->log);

	snprintf(h->log + n, sizeof h->log - n, "%s %s%s;", zone, dnsbl_status_name(status),
	         cached ? " cached" : "");
}

START_TEST(test_on_query)
{
	dnsbl_config cfg = {.servers = servers, .try_timeout_ms = 5000, .tries = 1,
	                    .cache_size = 100, .neg_ttl = 600};
	struct heard h = {""};
	strbuf err = STRBUF_INIT;
	dnsbl_ctx *ctx;
	dnsbl_query q[2];

	cfg.on_query = hear;
	cfg.query_arg = &h;
	ctx = dnsbl_create(&cfg, &err);
	ck_assert_msg(ctx != NULL, "dnsbl_create: %s", strbuf_str(&err));
	dnsbl_query_init(&q[0], DNSBL_IP, "127.0.0.2", "bl.test", NULL);
	dnsbl_query_init(&q[1], DNSBL_IP, "127.0.0.3", "bl.test", NULL);
	lookup_all(ctx, q, 2, budget_deadline(budget_now_ms(), 5000));
	dnsbl_query_free(&q[0]);
	dnsbl_query_free(&q[1]);
	dnsbl_query_init(&q[0], DNSBL_IP, "127.0.0.2", "bl.test", NULL);
	lookup_all(ctx, q, 1, budget_deadline(budget_now_ms(), 5000));
	dnsbl_query_free(&q[0]);
	ck_assert_str_eq(h.log, "bl.test listed;bl.test not_listed;bl.test listed cached;");
	dnsbl_free(ctx);
	strbuf_free(&err);
}
END_TEST

/* Looks up each of the n unlisted subjects in bl.test, in order. */
static void
look_up(dnsbl_ctx *ctx, const char *const *subject, size_t n)
{
	dnsbl_query q;

	for (size_t i = 0; i < n; i++) {
		lookup1(ctx, &q, DNSBL_IP, subject[i], "bl.test", NULL, 5000);
		dnsbl_query_free(&q);
	}
}

/* Then which of them came from the cache, in this order. */
struct cached_case {
	const char *subject;
	bool cached;
};

static void
expect_cached(dnsbl_ctx *ctx, const struct cached_case *c, size_t n)
{
	dnsbl_query q;

	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, c[i].subject, "bl.test", NULL, 5000),
		        DNSBL_NOT_LISTED);
		ck_assert_msg(q.cached == c[i].cached, "%s", c[i].subject);
		dnsbl_query_free(&q);
	}
}

/* An LRU cache of 2 keeps the two most recently used names. */
START_TEST(test_cache_evicts)
{
	dnsbl_ctx *ctx = ctx_new(servers, 2, 0, 0, NULL, NULL);
	static const char *const order[] = {"10.0.0.1", "10.0.0.2", "10.0.0.1",
	                                    "10.0.0.3"};
	static const struct cached_case after[] = {
	        {"10.0.0.1", true}, {"10.0.0.3", true}, {"10.0.0.2", false}};

	look_up(ctx, order, 4);
	expect_cached(ctx, after, 3);
	dnsbl_free(ctx);
}
END_TEST

/*
 * auth.test answers with TTL 2 and an SOA (minimum 2) on NXDOMAIN; bl.test's
 * NXDOMAIN has no SOA and gets neg_ttl (600), its A record TTL 600: after
 * 2 s only the auth.test answers are gone.
 */
START_TEST(test_cache_ttl)
{
	/* Two servers, two contexts, the same clock. */
	dnsbl_ctx *ctx = ctx_new(servers, 100, 0, 0, NULL, NULL);
	dnsbl_ctx *auth = ctx_new(auth_servers, 100, 0, 0, NULL, NULL);
	static const struct {
		bool auth;
		const char *subject, *zone;
		enum dnsbl_status want;
		bool cached_late;
	} cases[] = {
	        {true, "127.0.0.2", "auth.test", DNSBL_LISTED, false},
	        {true, "127.0.0.3", "auth.test", DNSBL_NOT_LISTED, false},
	        {false, "127.0.0.3", "bl.test", DNSBL_NOT_LISTED, true},
	        {false, "127.0.0.2", "bl.test", DNSBL_LISTED, true},
	};
	dnsbl_query q;

	for (int round = 0; round < 3; round++) {
		if (round == 2)
			usleep(2300 * 1000);
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			ck_assert_int_eq(lookup1(cases[i].auth ? auth : ctx, &q, DNSBL_IP,
			                         cases[i].subject, cases[i].zone, NULL,
			                         5000),
			                 cases[i].want);
			bool want = round == 1 || (round == 2 && cases[i].cached_late);
			ck_assert_msg(q.cached == want, "round %d %s.%s cached %d", round,
			              cases[i].subject, cases[i].zone, q.cached);
			dnsbl_query_free(&q);
		}
	}
	dnsbl_free(ctx);
	dnsbl_free(auth);
}
END_TEST

/*
 * A fake DNS server on 127.0.0.1: drops queries, or answers NXDOMAIN, as the
 * test says; counts what it receives.
 */
struct fake {
	int fd, port;
	atomic_bool answer, stop;
	atomic_uint received;
	pthread_t thread;
};

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	unsigned char buf[1500];

	while (!atomic_load(&f->stop)) {
		struct pollfd p = {.fd = f->fd, .events = POLLIN};
		struct sockaddr_storage from;
		socklen_t flen = sizeof from;
		ssize_t n;

		if (poll(&p, 1, 20) <= 0)
			continue;
		n = recvfrom(f->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
		if (n < 12)
			continue;
		atomic_fetch_add(&f->received, 1);
		if (!atomic_load(&f->answer))
			continue;
		/* The question back, as a response: QR, RD kept, RA, NXDOMAIN. */
		buf[2] = (unsigned char)(0x80 | (buf[2] & 0x01));
		buf[3] = 0x83;
		sendto(f->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
	}
	return NULL;
}

static void
fake_start(struct fake *f, char *srv, size_t len)
{
	memset(f, 0, sizeof *f);
	f->fd = unit_udp_socket(&f->port);
	snprintf(srv, len, "127.0.0.1:%d", f->port);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close(f->fd);
}

START_TEST(test_deadline)
{
	struct fake f;
	char srv[64];
	dnsbl_ctx *ctx;
	dnsbl_query q;
	dnsbl_stats st;
	static const long long budgets[] = {300, 50};

	fake_start(&f, srv, sizeof srv);
	ctx = ctx_new(srv, 100, 0, 0, NULL, NULL);
	for (size_t i = 0; i < 2; i++) {
		long long t0 = budget_now_ms(), took;

		ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL,
		                         budgets[i]),
		                 DNSBL_TIMEOUT);
		took = budget_now_ms() - t0;
		ck_assert_msg(took >= budgets[i] - 5 && took < budgets[i] + MARGIN_MS,
		              "took %lld ms for a %lld ms budget", took, budgets[i]);
		dnsbl_query_free(&q);
	}
	/* A deadline already past sends nothing. */
	dnsbl_get_stats(ctx, &st);
	unsigned long long sent = st.sent;
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.9", "bl.test", NULL, -1),
	                 DNSBL_TIMEOUT);
	dnsbl_query_free(&q);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.sent, sent);
	ck_assert_uint_eq(st.timeouts, 2);
	dnsbl_free(ctx);
	fake_stop(&f);
}
END_TEST

struct events {
	pthread_mutex_t mu;
	int suspended, resumed;
	unsigned timeouts;
	char zone[64];
};

static void
on_breaker(void *arg, const char *zone, bool suspended, unsigned timeouts)
{
	struct events *e = arg;

	pthread_mutex_lock(&e->mu);
	if (suspended) {
		e->suspended++;
		e->timeouts = timeouts;
	} else {
		e->resumed++;
	}
	snprintf(e->zone, sizeof e->zone, "%s", zone);
	pthread_mutex_unlock(&e->mu);
}

START_TEST(test_breaker)
{
	struct fake f;
	struct events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
	char srv[64];
	dnsbl_ctx *ctx;
	dnsbl_query q, two[2];
	dnsbl_stats st;
	unsigned received;
	long long t0;

	fake_start(&f, srv, sizeof srv);
	ctx = ctx_new(srv, 100, 3, 400, on_breaker, &ev);
	/* Three timeouts suspend the zone, once. */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "BL.test", NULL, 100),
		        DNSBL_TIMEOUT);
		dnsbl_query_free(&q);
		ck_assert_int_eq(ev.suspended, i == 2 ? 1 : 0);
	}
	ck_assert_uint_eq(ev.timeouts, 3);
	ck_assert_str_eq(ev.zone, "bl.test");
	/* Suspended: skipped at once, nothing sent; other zones still go. */
	usleep(50 * 1000);
	received = atomic_load(&f.received);
	dnsbl_get_stats(ctx, &st);
	unsigned long long sent = st.sent;
	t0 = budget_now_ms();
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 1000),
		        DNSBL_SKIPPED);
		dnsbl_query_free(&q);
	}
	ck_assert_msg(budget_now_ms() - t0 < 100, "skipping took %lld ms",
	              budget_now_ms() - t0);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.sent, sent);
	ck_assert_uint_eq(st.skipped, 5);
	ck_assert_uint_eq(atomic_load(&f.received), received);
	ck_assert_int_eq(ev.suspended, 1);

	/* After the open time one probe goes; an answer resumes the zone. */
	usleep(450 * 1000);
	atomic_store(&f.answer, true);
	dnsbl_query_init(&two[0], DNSBL_IP, "127.0.0.2", "bl.test", NULL);
	dnsbl_query_init(&two[1], DNSBL_IP, "127.0.0.4", "bl.test", NULL);
	lookup_all(ctx, two, 2, budget_deadline(budget_now_ms(), 2000));
	ck_assert_int_eq(two[0].status, DNSBL_NOT_LISTED);
	ck_assert_int_eq(two[1].status, DNSBL_SKIPPED);
	dnsbl_query_free(&two[0]);
	dnsbl_query_free(&two[1]);
	ck_assert_int_eq(ev.resumed, 1);
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.5", "bl.test", NULL, 2000),
	                 DNSBL_NOT_LISTED);
	dnsbl_query_free(&q);

	/* Suspended again; a probe that times out keeps it suspended, quietly. */
	atomic_store(&f.answer, false);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, "127.0.0.6", "bl.test", NULL, 100),
		        DNSBL_TIMEOUT);
		dnsbl_query_free(&q);
	}
	ck_assert_int_eq(ev.suspended, 2);
	usleep(450 * 1000);
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.7", "bl.test", NULL, 100),
	                 DNSBL_TIMEOUT);
	dnsbl_query_free(&q);
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.7", "bl.test", NULL, 100),
	                 DNSBL_SKIPPED);
	dnsbl_query_free(&q);
	ck_assert_int_eq(ev.suspended, 2);
	ck_assert_int_eq(ev.resumed, 1);
	dnsbl_free(ctx);
	fake_stop(&f);
}
END_TEST

/*
 * A call answered before the zone was suspended but finished after it (its
 * answer reaches the breaker late) does not resume the zone: only the probe
 * does. Threshold 1: one timeout suspends.
 */
START_TEST(test_breaker_late_answer)
{
	struct fake f;
	struct events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
	char srv[64];
	dnsbl_ctx *ctx;
	dnsbl_query early, q;
	dnsbl_call *call;

	fake_start(&f, srv, sizeof srv);
	ctx = ctx_new(srv, 100, 1, 60000, on_breaker, &ev);
	atomic_store(&f.answer, true);
	dnsbl_query_init(&early, DNSBL_IP, "127.0.0.2", "bl.test", NULL);
	call = dnsbl_start(ctx, &early, 1, budget_deadline(budget_now_ms(), 2000));
	ck_assert(dnsbl_wait(call, 0));
	ck_assert_int_eq(early.status, DNSBL_NOT_LISTED);
	/* The server stops answering; a timeout suspends the zone. */
	atomic_store(&f.answer, false);
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.3", "bl.test", NULL, 100),
	                 DNSBL_TIMEOUT);
	dnsbl_query_free(&q);
	ck_assert_int_eq(ev.suspended, 1);
	/* The early call ends now: its answer is old news. */
	dnsbl_finish(call);
	dnsbl_query_free(&early);
	ck_assert_int_eq(ev.resumed, 0);
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.4", "bl.test", NULL, 100),
	                 DNSBL_SKIPPED);
	dnsbl_query_free(&q);
	ck_assert_int_eq(ev.suspended, 1);
	dnsbl_free(ctx);
	fake_stop(&f);
}
END_TEST

/*
 * A DNS server that is down (nothing on its port: every query is refused at
 * once) fails fast, with an error, not a timeout; the breaker counts it all
 * the same and suspends the zone.
 */
START_TEST(test_breaker_unreachable)
{
	struct events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
	char srv[64];
	int port, fd = unit_udp_socket(&port);
	dnsbl_ctx *ctx;
	dnsbl_query q;
	dnsbl_stats st;
	long long t0, took;

	close(fd); /* the port is closed now: the kernel refuses queries to it */
	snprintf(srv, sizeof srv, "127.0.0.1:%d", port);
	ctx = ctx_new(srv, 100, 3, 60000, on_breaker, &ev);
	for (int i = 0; i < 3; i++) {
		t0 = budget_now_ms();
		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 3000),
		        DNSBL_ERROR);
		took = budget_now_ms() - t0;
		ck_assert_msg(took < 1000, "a refused lookup took %lld ms", took);
		ck_assert_msg(strstr(strbuf_str(&q.err), "2.0.0.127.bl.test") != NULL,
		              "error '%s'", strbuf_str(&q.err));
		dnsbl_query_free(&q);
		ck_assert_int_eq(ev.suspended, i == 2 ? 1 : 0);
	}
	ck_assert_uint_eq(ev.timeouts, 3);
	ck_assert_str_eq(ev.zone, "bl.test");
	dnsbl_get_stats(ctx, &st);
	unsigned long long sent = st.sent;
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.3", "bl.test", NULL, 3000),
	                 DNSBL_SKIPPED);
	dnsbl_query_free(&q);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.sent, sent);
	dnsbl_free(ctx);
}
END_TEST

/*
 * dnsbl_start/wait/finish: waiting for the listed query does not wait for
 * the silent one; finishing early cancels it without charging the breaker
 * (threshold 1: a single timeout would suspend slow.test).
 */
START_TEST(test_start_wait_finish)
{
	struct events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
	dnsbl_ctx *ctx = ctx_new(servers, 0, 1, 60000, on_breaker, &ev);
	dnsbl_query q[2];
	dnsbl_call *call;
	dnsbl_stats st;
	long long t0, took;

	ck_assert_ptr_null(dnsbl_start(ctx, q, 0, budget_now_ms() + 1000));
	dnsbl_finish(NULL);

	dnsbl_query_init(&q[0], DNSBL_IP, "127.0.0.2", "slow.test", NULL);
	dnsbl_query_init(&q[1], DNSBL_IP, "127.0.0.2", "bl.test", NULL);
	t0 = budget_now_ms();
	call = dnsbl_start(ctx, q, 2, budget_deadline(t0, 3000));
	ck_assert_ptr_nonnull(call);
	ck_assert(dnsbl_wait(call, 1));
	took = budget_now_ms() - t0;
	ck_assert_msg(took < 1000, "waited %lld ms for the listed one", took);
	ck_assert_int_eq(q[1].status, DNSBL_LISTED);
	ck_assert_str_eq(strbuf_str(&q[1].txt), "Listed: test entry");
	/* Again: the same answer, at once, the TXT not doubled. */
	ck_assert(dnsbl_wait(call, 1));
	ck_assert_str_eq(strbuf_str(&q[1].txt), "Listed: test entry");
	dnsbl_finish(call);
	ck_assert_msg(budget_now_ms() - t0 < 1000, "finish waited");
	ck_assert_int_eq(q[0].status, DNSBL_CANCELLED);
	ck_assert_int_eq(q[1].status, DNSBL_LISTED);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.timeouts, 0);
	ck_assert_int_eq(ev.suspended, 0);
	dnsbl_query_free(&q[0]);
	dnsbl_query_free(&q[1]);

	/* Waiting on the silent one: false at the deadline, then a timeout the
	   breaker does count (threshold 1: suspended). */
	dnsbl_query_init(&q[0], DNSBL_IP, "127.0.0.2", "slow.test", NULL);
	dnsbl_query_init(&q[1], DNSBL_IP, "127.0.0.3", "bl.test", NULL);
	t0 = budget_now_ms();
	call = dnsbl_start(ctx, q, 2, budget_deadline(t0, 300));
	ck_assert(!dnsbl_wait(call, 0));
	took = budget_now_ms() - t0;
	ck_assert_msg(took >= 295 && took < 300 + MARGIN_MS, "took %lld ms", took);
	ck_assert_int_eq(q[0].status, DNSBL_TIMEOUT);
	ck_assert(dnsbl_wait(call, 1));
	ck_assert_int_eq(q[1].status, DNSBL_NOT_LISTED);
	dnsbl_finish(call);
	ck_assert_int_eq(q[0].status, DNSBL_TIMEOUT);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.timeouts, 1);
	ck_assert_int_eq(ev.suspended, 1);
	dnsbl_query_free(&q[0]);
	dnsbl_query_free(&q[1]);

	dnsbl_free(ctx);
}
END_TEST

/* Reconfigured with the same servers and new parameters: the cache stays. */
START_TEST(test_reconfigure_keeps_cache)
{
	dnsbl_ctx *ctx = ctx_new(servers, 100, 0, 0, NULL, NULL);
	dnsbl_config cfg = {.servers = servers,
	                    .cache_size = 200,
	                    .breaker_threshold = 3,
	                    .breaker_open_ms = 1000};
	strbuf err = STRBUF_INIT;
	dnsbl_query q;
	dnsbl_stats st;

	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 5000),
	                 DNSBL_LISTED);
	ck_assert(!q.cached);
	dnsbl_query_free(&q);
	ck_assert_msg(dnsbl_reconfigure(ctx, &cfg, &err), "%s", strbuf_str(&err));
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 5000),
	                 DNSBL_LISTED);
	ck_assert(q.cached);
	ck_assert_str_eq(strbuf_str(&q.txt), "Listed: test entry");
	dnsbl_query_free(&q);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.sent, 2);
	ck_assert_uint_eq(st.cache_hits, 2); /* A and TXT */
	strbuf_free(&err);
	dnsbl_free(ctx);
}
END_TEST

/* A smaller cache keeps the most recently used names, a larger one all. */
START_TEST(test_reconfigure_cache_size)
{
	dnsbl_ctx *ctx = ctx_new(servers, 4, 0, 0, NULL, NULL);
	dnsbl_config cfg = {.servers = servers, .cache_size = 2};
	static const char *const order[] = {"10.0.1.1", "10.0.1.2", "10.0.1.3",
	                                    "10.0.1.4"};
	/* 10.0.1.1, looked up again, evicts 10.0.1.4 then. */
	static const struct cached_case after[] = {
	        {"10.0.1.4", true}, {"10.0.1.3", true}, {"10.0.1.1", false}};
	static const struct cached_case kept[] = {{"10.0.1.1", true}, {"10.0.1.3", true}};
	static const struct cached_case all[] = {{"10.0.1.1", true},
	                                         {"10.0.1.2", true},
	                                         {"10.0.1.3", true},
	                                         {"10.0.1.4", true}};
	strbuf err = STRBUF_INIT;

	look_up(ctx, order, 4);
	ck_assert(dnsbl_reconfigure(ctx, &cfg, &err));
	expect_cached(ctx, after, 3);
	/* Growing keeps what is there, and then keeps more. */
	cfg.cache_size = 1000;
	ck_assert(dnsbl_reconfigure(ctx, &cfg, &err));
	expect_cached(ctx, kept, 2);
	look_up(ctx, order, 4);
	expect_cached(ctx, all, 4);
	strbuf_free(&err);
	dnsbl_free(ctx);
}
END_TEST

/*
 * A context on a fake server that does not answer (yet), threshold 1: one
 * timeout has suspended bl.test for a minute.
 */
static dnsbl_ctx *
suspended_ctx(struct fake *f, char *srv, size_t len, struct events *ev)
{
	dnsbl_ctx *ctx;
	dnsbl_query q;

	fake_start(f, srv, len);
	ctx = ctx_new(srv, 100, 1, 60000, on_breaker, ev);
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 100),
	                 DNSBL_TIMEOUT);
	dnsbl_query_free(&q);
	ck_assert_int_eq(ev->suspended, 1);
	return ctx;
}

/*
 * A suspended zone stays suspended across a reconfiguration with the same
 * servers, nothing reported; a new open time applies to it at once.
 */
START_TEST(test_reconfigure_breaker)
{
	struct fake f;
	struct events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
	char srv[64];
	dnsbl_ctx *ctx;
	dnsbl_config cfg;
	strbuf err = STRBUF_INIT;
	dnsbl_query q;
	dnsbl_stats st;

	ctx = suspended_ctx(&f, srv, sizeof srv, &ev);
	cfg = (dnsbl_config){.servers = srv,
	                     .cache_size = 50,
	                     .breaker_threshold = 2,
	                     .breaker_open_ms = 60000};
	ck_assert(dnsbl_reconfigure(ctx, &cfg, &err));
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.3", "bl.test", NULL, 100),
	                 DNSBL_SKIPPED);
	dnsbl_query_free(&q);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.suspended, 1);
	ck_assert_int_eq(ev.resumed, 0);

	/* Open 100 ms from when it was suspended: over now, the probe goes. */
	cfg.breaker_open_ms = 100;
	ck_assert(dnsbl_reconfigure(ctx, &cfg, &err));
	usleep(150 * 1000);
	atomic_store(&f.answer, true);
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.4", "bl.test", NULL, 2000),
	                 DNSBL_NOT_LISTED);
	dnsbl_query_free(&q);
	ck_assert_int_eq(ev.resumed, 1);
	dnsbl_get_stats(ctx, &st);
	ck_assert_uint_eq(st.suspended, 0);

	/* The new threshold: two timeouts now, not one. */
	atomic_store(&f.answer, false);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(
		        lookup1(ctx, &q, DNSBL_IP, "127.0.0.5", "bl.test", NULL, 100),
		        DNSBL_TIMEOUT);
		dnsbl_query_free(&q);
		ck_assert_int_eq(ev.suspended, 1 + i);
	}
	strbuf_free(&err);
	dnsbl_free(ctx);
	fake_stop(&f);
}
END_TEST

/*
 * New servers take the next lookup; the breakers their predecessor's
 * silence opened are closed (and said so). A list c-ares refuses changes
 * nothing.
 */
START_TEST(test_reconfigure_servers)
{
	struct fake f;
	struct events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
	char srv[64];
	dnsbl_ctx *ctx;
	dnsbl_config cfg = {
	        .cache_size = 100, .breaker_threshold = 1, .breaker_open_ms = 60000};
	strbuf err = STRBUF_INIT;
	dnsbl_query q;
	unsigned received;

	ctx = suspended_ctx(&f, srv, sizeof srv, &ev);
	cfg.servers = "not-an-address:53";
	ck_assert(!dnsbl_reconfigure(ctx, &cfg, &err));
	ck_assert_msg(strstr(strbuf_str(&err), "bad DNS server list") != NULL, "%s",
	              strbuf_str(&err));
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 100),
	                 DNSBL_SKIPPED);
	dnsbl_query_free(&q);

	cfg.servers = servers;
	received = atomic_load(&f.received);
	ck_assert(dnsbl_reconfigure(ctx, &cfg, &err));
	ck_assert_int_eq(ev.resumed, 1);
	ck_assert_str_eq(ev.zone, "bl.test");
	ck_assert_int_eq(lookup1(ctx, &q, DNSBL_IP, "127.0.0.2", "bl.test", NULL, 5000),
	                 DNSBL_LISTED);
	ck_assert_str_eq(strbuf_str(&q.txt), "Listed: test entry");
	dnsbl_query_free(&q);
	usleep(50 * 1000);
	ck_assert_uint_eq(atomic_load(&f.received), received);
	strbuf_free(&err);
	dnsbl_free(ctx);
	fake_stop(&f);
}
END_TEST

/* The provider table is dnsbl_start/wait/finish on its context. */
START_TEST(test_provider)
{
	dnsbl_ctx *ctx = ctx_new(servers, 100, 0, 0, NULL, NULL);
	const dns_provider *p = dnsbl_provider(ctx);
	dnsbl_query q[2];
	provider_call *call;

	ck_assert_str_eq(p->name, "dns");
	ck_assert_ptr_null(p->start(p->self, q, 0, budget_now_ms() + 1000));
	p->finish(NULL);
	dnsbl_query_init(&q[0], DNSBL_IP, "127.0.0.2", "bl.test", NULL);
	dnsbl_query_init(&q[1], DNSBL_IP, "127.0.0.2", "slow.test", NULL);
	call = p->start(p->self, q, 2, budget_deadline(budget_now_ms(), 3000));
	ck_assert(p->wait(call, 0));
	ck_assert_int_eq(q[0].status, DNSBL_LISTED);
	p->finish(call);
	ck_assert_int_eq(q[1].status, DNSBL_CANCELLED);
	dnsbl_query_free(&q[0]);
	dnsbl_query_free(&q[1]);
	dnsbl_free(ctx);
}
END_TEST

#define THREADS 16
#define PER_THREAD 200

struct worker {
	dnsbl_ctx *ctx;
	int id, bad;
	char why[200];
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char ip[32];

	for (int i = 0; i < PER_THREAD && w->bad == 0; i++) {
		dnsbl_query q[2];
		bool listed = i % 5 == 0;

		if (listed)
			snprintf(ip, sizeof ip, "127.0.0.2");
		else
			snprintf(ip, sizeof ip, "10.%d.%d.%d", w->id, i / 256, i % 256);
		dnsbl_query_init(&q[0], DNSBL_IP, ip, "bl.test", NULL);
		dnsbl_query_init(&q[1], DNSBL_NAME,
		                 i % 2 ? "spam.example" : "good.example", "dbl.test",
		                 NULL);
		lookup_all(w->ctx, q, 2, budget_deadline(budget_now_ms(), 10000));
		if (q[0].status != (listed ? DNSBL_LISTED : DNSBL_NOT_LISTED) ||
		    q[1].status != (i % 2 ? DNSBL_LISTED : DNSBL_NOT_LISTED) ||
		    (listed &&
		     strcmp(strbuf_str(&q[0].txt), "Listed: test entry") != 0)) {
			w->bad++;
			snprintf(w->why, sizeof w->why, "%s: %s (%s), %s", ip,
			         dnsbl_status_name(q[0].status), strbuf_str(&q[0].err),
			         dnsbl_status_name(q[1].status));
		}
		dnsbl_query_free(&q[0]);
		dnsbl_query_free(&q[1]);
	}
	return NULL;
}

START_TEST(test_threads)
{
	/* A small cache: hits, misses and evictions from every thread at once. */
	dnsbl_ctx *ctx = ctx_new(servers, 64, 5, 1000, NULL, NULL);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	dnsbl_stats st;
	long long t0 = budget_now_ms();

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.ctx = ctx, .id = i};
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(w[i].bad == 0, "thread %d: %s", i, w[i].why);
	}
	dnsbl_get_stats(ctx, &st);
	fprintf(stderr,
	        "check_dnsbl: %d lookups on %d threads in %lld ms: %llu sent, "
	        "%llu cache hits\n",
	        THREADS * PER_THREAD, THREADS, budget_now_ms() - t0, st.sent,
	        st.cache_hits);
	ck_assert_uint_eq(st.timeouts, 0);
	dnsbl_free(ctx);
}
END_TEST

static Suite *
dnsbl_suite(void)
{
	Suite *s = suite_create("dnsbl");
	TCase *pure = tcase_create("pure");
	TCase *net = tcase_create("net");

	tcase_add_test(pure, test_reverse);
	tcase_add_test(pure, test_filter_parse);
	tcase_add_test(pure, test_filter_match);
	tcase_add_test(pure, test_bad_servers);
	suite_add_tcase(s, pure);

	/* One dnsmasq for the whole case, started in the parent of the forks. */
	tcase_add_unchecked_fixture(net, dns_start, dns_stop);
	tcase_set_timeout(net, 60);
	tcase_add_test(net, test_lookups);
	tcase_add_test(net, test_name);
	tcase_add_test(net, test_no_txt);
	tcase_add_test(net, test_parallel);
	tcase_add_test(net, test_start_wait_finish);
	tcase_add_test(net, test_cache);
	tcase_add_test(net, test_on_query);
	tcase_add_test(net, test_cache_evicts);
	tcase_add_test(net, test_cache_ttl);
	tcase_add_test(net, test_deadline);
	tcase_add_test(net, test_breaker);
	tcase_add_test(net, test_breaker_late_answer);
	tcase_add_test(net, test_breaker_unreachable);
	tcase_add_test(net, test_reconfigure_keeps_cache);
	tcase_add_test(net, test_reconfigure_cache_size);
	tcase_add_test(net, test_reconfigure_breaker);
	tcase_add_test(net, test_reconfigure_servers);
	tcase_add_test(net, test_provider);
	tcase_add_test(net, test_threads);
	suite_add_tcase(s, net);
	return s;
}

int
main(void)
{
	return unit_run(dnsbl_suite());
}
