/*
 * Unit tests for metrics: the text format (families, labels, values), label
 * escaping, verdict series across a reload, the histogram's buckets, and
 * increments from many threads at once adding up.
 */
#include "config.h"

#include "unit.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "metrics.h"
#include "strbuf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define P "milter_stress_"

static void
render(strbuf *out)
{
	metrics_sources src;

	memset(&src, 0, sizeof src);
	src.version = "1.2.3";
	src.admission.active = 7;
	src.admission.peak = 9;
	src.admission.overloaded = 11;
	src.sessions.skipped_dnsbl = 3;
	src.sessions.skipped_body = 4;
	src.dns.lookups = 5;
	src.dns.cache_hits = 6;
	src.dns.timeouts = 8;
	src.generation = 2;
	strbuf_reset(out);
	metrics_render(&src, out);
}

/* The value of the sample whose name and labels are exactly series; -1: none. */
static long long
value(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return atoll(p + n + 1);
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	return -1;
}

static long long
scrape(const char *series)
{
	strbuf out = STRBUF_INIT;
	long long v;

	render(&out);
	v = value(out.s, series);
	strbuf_free(&out);
	return v;
}

/* ---- the format ---- */

static const struct format_case {
	const char *series;
	long long want;
} format_cases[] = {
        {P "sessions", 7},
        {P "sessions_peak", 9},
        {P "sessions_refused_total", 11},
        {P "skipped_total{kind=\"dnsbl\"}", 3},
        {P "skipped_total{kind=\"body\"}", 4},
        {P "dns_lookups_total", 5},
        {P "dns_cache_hits_total", 6},
        {P "dns_timeouts_total", 8},
        {P "build_info{version=\"1.2.3\"}", 1},
        {P "sessions_total{personality=\"stress\",source=\"macro\"}", 0},
        {P "budget_expired_total{stage=\"eom\"}", 0},
        {P "config_reload_failures_total", 0},
};

START_TEST(test_format_values)
{
	const struct format_case *fc = &format_cases[_i];

	ck_assert_int_eq(scrape(fc->series), fc->want);
}
END_TEST

/* Every line is a comment (HELP, TYPE) or NAME[{LABELS}] VALUE; TYPE first. */
START_TEST(test_format_lines)
{
	strbuf out = STRBUF_INIT;
	char family[128] = "";
	size_t n_types = 0;

	metrics_verdict(STAGE_RCPT, "reject", "r1");
	render(&out);
	ck_assert(out.len > 0 && out.s[out.len - 1] == '\n');
	for (char *line = strtok(out.s, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert(sscanf(line + 7, "%127s", family) == 1);
			n_types++;
			continue;
		}
		if (strncmp(line, "# HELP " P, 7 + strlen(P)) == 0)
			continue;
		ck_assert_msg(strncmp(line, family, strlen(family)) == 0 &&
		                      family[0] != '\0',
		              "sample outside its family %s: %s", family, line);
		ck_assert_msg(strchr(line, ' ') != NULL, "no value: %s", line);
	}
	ck_assert_uint_eq(n_types, 34); /* and the scanners: scans, connections, peak */
	strbuf_free(&out);
}
END_TEST

START_TEST(test_counting)
{
	long long before = scrape(P "sessions_total{personality=\"stress\",source=\"forced\"}");

	metrics_session(true, STRESS_SRC_FORCED);
	metrics_session(true, STRESS_SRC_FORCED);
	metrics_session(false, STRESS_SRC_NONE);
	ck_assert_int_eq(scrape(P "sessions_total{personality=\"stress\",source=\"forced\"}"),
	                 before + 2);
	/* Every source has its series: the control socket's switch too. */
	for (int src = 0; src < STRESS_SRC_N; src++) {
		strbuf name = STRBUF_INIT;

		strbuf_printf(&name, P "sessions_total{personality=\"normal\",source=\"%s\"}",
		              stress_source_name((enum stress_source)src));
		before = scrape(name.s);
		metrics_session(false, (enum stress_source)src);
		ck_assert_int_eq(scrape(name.s), before + 1);
		strbuf_free(&name);
	}
	metrics_budget_expired(STAGE_BODY);
	ck_assert_int_eq(scrape(P "budget_expired_total{stage=\"body\"}"), 1);
	/* Delayed stages: connect and HELO only; the workers lent. */
	metrics_stage_delayed(STAGE_HELO);
	ck_assert_int_eq(scrape(P "stages_delayed_total{stage=\"helo\"}"), 1);
	ck_assert_int_eq(scrape(P "stages_delayed_total{stage=\"connect\"}"), 0);
	ck_assert_int_eq(scrape(P "stages_delayed_total{stage=\"mail\"}"), -1);
	metrics_worker_lent();
	metrics_worker_lent();
	ck_assert_int_eq(scrape(P "workers_lent_total"), 2);
	metrics_config_loaded(1700000000);
	metrics_config_loaded(1700000100);
	metrics_config_failed();
	ck_assert_int_eq(scrape(P "config_generation"), 2);
	ck_assert_int_eq(scrape(P "config_last_reload_timestamp_seconds"), 1700000100);
	ck_assert_int_eq(scrape(P "config_reload_failures_total"), 1);
	metrics_zone("zen.example.org", true);
	ck_assert_int_eq(scrape(P "dns_zone_suspended{zone=\"zen.example.org\"}"), 1);
	metrics_zone("zen.example.org", false);
	ck_assert_int_eq(scrape(P "dns_zone_suspended{zone=\"zen.example.org\"}"), 0);
	metrics_dns_query("zen.example.org", DNSBL_LISTED, false);
	metrics_dns_query("zen.example.org", DNSBL_LISTED, true);
	metrics_dns_query("zen.example.org", DNSBL_TIMEOUT, false);
	ck_assert_int_eq(
	        scrape(P "dns_zone_queries_total{zone=\"zen.example.org\",result=\"listed\"}"), 2);
	ck_assert_int_eq(
	        scrape(P "dns_zone_queries_total{zone=\"zen.example.org\",result=\"timeout\"}"), 1);
	ck_assert_int_eq(scrape(P "dns_zone_cache_hits_total{zone=\"zen.example.org\"}"), 1);
}
END_TEST

/* The status screen's busiest rules: by count, ties in order of appearance. */
START_TEST(test_busiest)
{
	strbuf out = STRBUF_INIT;

	metrics_busiest_rules(3, &out);
	ck_assert_str_eq(strbuf_str(&out), "");
	for (int i = 0; i < 3; i++)
		metrics_verdict(STAGE_RCPT, "reject", "many");
	metrics_verdict(STAGE_CONNECT, "tempfail", "tie-a");
	metrics_verdict(STAGE_CONNECT, "tempfail", "tie-b");
	metrics_verdict(STAGE_EOM, "accept", "");
	metrics_verdict(STAGE_HELO, "accept", "tie-c");
	metrics_busiest_rules(3, &out);
	ck_assert_str_eq(strbuf_str(&out), "3 rcpt reject many\n"
	                                   "1 connect tempfail tie-a\n"
	                                   "1 connect tempfail tie-b\n");
	strbuf_reset(&out);
	metrics_busiest_rules(10, &out);
	ck_assert_str_eq(strbuf_str(&out), "3 rcpt reject many\n"
	                                   "1 connect tempfail tie-a\n"
	                                   "1 connect tempfail tie-b\n"
	                                   "1 helo accept tie-c\n");
	strbuf_reset(&out);
	metrics_zone("a.example", true);
	metrics_zone("b.example", true);
	metrics_zone("a.example", false);
	metrics_suspended_zones(&out);
	ck_assert_str_eq(strbuf_str(&out), "b.example");
	strbuf_free(&out);
}
END_TEST

/* ---- escaping ---- */

static const struct escape_case {
	const char *rule;
	const char *series;
} escape_cases[] = {
        {"plain-name_1.x:y", P "verdicts_total{stage=\"mail\",action=\"reject\",rule=\"plain-name_1.x:y\"}"},
        {"/etc/a\"b.conf:3", P "verdicts_total{stage=\"mail\",action=\"reject\",rule=\"/etc/a\\\"b.conf:3\"}"},
        {"C:\\dir\\f.conf:4", P "verdicts_total{stage=\"mail\",action=\"reject\",rule=\"C:\\\\dir\\\\f.conf:4\"}"},
        {"two\nlines.conf:5", P "verdicts_total{stage=\"mail\",action=\"reject\",rule=\"two\\nlines.conf:5\"}"},
        {"sp ace{}=,.conf:6", P "verdicts_total{stage=\"mail\",action=\"reject\",rule=\"sp ace{}=,.conf:6\"}"},
        {"", P "verdicts_total{stage=\"mail\",action=\"reject\",rule=\"\"}"},
};

START_TEST(test_escaping)
{
	const struct escape_case *ec = &escape_cases[_i];

	metrics_verdict(STAGE_MAIL, "reject", ec->rule);
	metrics_verdict(STAGE_MAIL, "reject", ec->rule);
	ck_assert_int_eq(scrape(ec->series), 2);
}
END_TEST

/* ---- reload ---- */

static conf *
load(const char *text)
{
	strbuf err = STRBUF_INIT;
	conf *c = conf_load_text("t.conf", text, strlen(text), NULL, 0, &err);

	ck_assert_msg(c != NULL, "%s", strbuf_str(&err));
	strbuf_free(&err);
	return c;
}

START_TEST(test_reload_keeps_counters)
{
	conf *c1 = load("connect name=listed client 192.0.2.1 reject 554 5.7.1 no\n"
	                "rcpt stress recipient @x.example tempfail 450 4.2.0 later\n"
	                "mail sender @t.example tag X-T t\n");
	conf *c2;
	const char *listed =
	        P "verdicts_total{stage=\"connect\",action=\"reject\",rule=\"listed\"}";

	metrics_register_conf(c1);
	/* Known at load: present at 0; tag is not a verdict. */
	ck_assert_int_eq(scrape(listed), 0);
	ck_assert_int_eq(scrape(P "verdicts_total{stage=\"rcpt\",action=\"tempfail\","
	                           "rule=\"t.conf:2\"}"),
	                 0);
	ck_assert_int_eq(scrape(P "verdicts_total{stage=\"mail\",action=\"tag\","
	                           "rule=\"t.conf:3\"}"),
	                 -1);
	metrics_verdict(STAGE_CONNECT, "reject", "listed");
	metrics_verdict(STAGE_CONNECT, "reject", "listed");
	/* The reload: the same rule, moved, and a new one. */
	c2 = load("connect name=new client 192.0.2.2 accept\n"
	          "connect name=listed client 192.0.2.1 reject 554 5.7.1 no\n");
	metrics_register_conf(c2);
	conf_unref(c1);
	ck_assert_int_eq(scrape(listed), 2);
	ck_assert_int_eq(
	        scrape(P "verdicts_total{stage=\"connect\",action=\"accept\",rule=\"new\"}"), 0);
	metrics_verdict(STAGE_CONNECT, "reject", "listed");
	ck_assert_int_eq(scrape(listed), 3);
	conf_unref(c2);
}
END_TEST

/* ---- histogram ---- */

static const struct bucket_case {
	long long ns;
	const char *first_le; /* the smallest bucket that counts it */
} bucket_cases[] = {
        {0, "0.0001"},
        {-5, "0.0001"},
        {100000, "0.0001"}, /* le is inclusive */
        {100001, "0.00025"},
        {1000000, "0.001"},
        {2400000, "0.0025"},
        {999999999, "1"},
        {1000000000, "1"},
        {29000000000LL, "30"},
        {30000000001LL, "+Inf"},
};

START_TEST(test_histogram_buckets)
{
	const struct bucket_case *bc = &bucket_cases[_i];
	char series[160];
	bool reached = false;

	metrics_stage_time(STAGE_HELO, bc->ns);
	for (int i = 0; i <= METRICS_N_BUCKETS; i++) {
		char le[16];

		if (i < METRICS_N_BUCKETS)
			snprintf(le, sizeof le, "%g", metrics_bucket_le[i]);
		else
			snprintf(le, sizeof le, "+Inf");
		reached = reached || strcmp(le, bc->first_le) == 0;
		snprintf(series, sizeof series,
		         P "stage_duration_seconds_bucket{stage=\"helo\",le=\"%s\"}", le);
		ck_assert_msg(scrape(series) == reached, "%lld ns in le=%s: %lld", bc->ns,
		              le, scrape(series));
	}
	ck_assert(reached);
	ck_assert_int_eq(scrape(P "stage_duration_seconds_count{stage=\"helo\"}"), 1);
	ck_assert_int_eq(scrape(P "stage_duration_seconds_count{stage=\"rcpt\"}"), 0);
}
END_TEST

START_TEST(test_histogram_sum)
{
	strbuf out = STRBUF_INIT;
	const char *p;

	metrics_stage_time(STAGE_EOM, 1500000);
	metrics_stage_time(STAGE_EOM, 2500000000LL);
	render(&out);
	p = strstr(out.s, P "stage_duration_seconds_sum{stage=\"eom\"} ");
	ck_assert(p != NULL);
	ck_assert_double_eq_tol(atof(strchr(p, ' ') + 1), 2.5015, 1e-9);
	ck_assert(metrics_now_ns() > 0);
	strbuf_free(&out);
}
END_TEST

/* ---- threads ---- */

#define T_THREADS 8
#define T_ROUNDS 20000

static const char *const thread_rules[] = {"a", "b", "c", "d"};

static void *
hammer(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < T_ROUNDS; i++) {
		/* New label sets appear while others count: the insert path races. */
		metrics_verdict(STAGE_RCPT, "reject", thread_rules[(i + id) % 4]);
		metrics_session(i % 2, STRESS_SRC_MACRO);
		metrics_stage_time(STAGE_DATA, i);
	}
	return NULL;
}

static void *
scraper(void *arg)
{
	strbuf out = STRBUF_INIT;

	(void)arg;
	for (int i = 0; i < 50; i++)
		render(&out);
	strbuf_free(&out);
	return NULL;
}

START_TEST(test_threads_sum)
{
	pthread_t t[T_THREADS + 1];
	long long total = 0;

	for (long i = 0; i < T_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
	ck_assert_int_eq(pthread_create(&t[T_THREADS], NULL, scraper, NULL), 0);
	for (int i = 0; i <= T_THREADS; i++)
		pthread_join(t[i], NULL);
	for (size_t r = 0; r < N(thread_rules); r++) {
		char series[128];
		long long v;

		snprintf(series, sizeof series,
		         P "verdicts_total{stage=\"rcpt\",action=\"reject\",rule=\"%s\"}",
		         thread_rules[r]);
		v = scrape(series);
		ck_assert_int_eq(v, T_THREADS * T_ROUNDS / 4);
		total += v;
	}
	ck_assert_int_eq(total, T_THREADS * T_ROUNDS);
	ck_assert_int_eq(scrape(P "sessions_total{personality=\"stress\",source=\"macro\"}") +
	                         scrape(P "sessions_total{personality=\"normal\",source="
	                                  "\"macro\"}"),
	                 T_THREADS * T_ROUNDS);
	ck_assert_int_eq(scrape(P "stage_duration_seconds_count{stage=\"data\"}"),
	                 T_THREADS * T_ROUNDS);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_format_values, 0, N(format_cases));
	tcase_add_test(tc, test_format_lines);
	tcase_add_test(tc, test_counting);
	tcase_add_test(tc, test_busiest);
	tcase_add_loop_test(tc, test_escaping, 0, N(escape_cases));
	tcase_add_test(tc, test_reload_keeps_counters);
	tcase_add_loop_test(tc, test_histogram_buckets, 0, N(bucket_cases));
	tcase_add_test(tc, test_histogram_sum);
	tcase_add_test(tc, test_threads_sum);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(metrics_suite());
}
