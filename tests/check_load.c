/*
 * Unit tests for the own stress signal (load, mastercf): the levels with a
 * fake clock (enter, hold, leave, a flapping input, latency, what
 * negotiation can know), the limits read from a real `postconf -M`
 * transcript (postconf-M.txt, Debian 12's Postfix 3.7 with services, -o
 * overrides and "-" defaults), and service_limits' syntax.
 */
#include "config.h"

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "mastercf.h"
#include "strbuf.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

static const load_limit two_limits[] = {{"smtpd", 10}, {"submission", 4}};

static void
configure(load_levels *l, const load_limit *limits, size_t n, long long hold, long long now)
{
	load_params p;

	memset(&p, 0, sizeof p);
	p.enabled[LOAD_SESSIONS] = true;
	p.limits = limits;
	p.n_limits = n;
	p.enter = 80;
	p.leave = 60;
	p.hold_ms = hold;
	load_configure(l, &p, now);
}

/* n sessions of service at time now; their slots in slots[]. */
static void
open_n(load_levels *l, const char *service, int n, long long now, int *slots)
{
	for (int i = 0; i < n; i++)
		slots[i] = load_begin(l, service, now);
}

START_TEST(enter_hold_leave)
{
	load_levels *l = load_create();
	int slots[10];
	load_verdict v;
	strbuf log = STRBUF_INIT;

	unit_log_capture(&log);
	configure(l, two_limits, 2, 10000, 0);
	open_n(l, "smtpd", 7, 0, slots);
	ck_assert(!load_check(l, "smtpd", 100, &v)); /* 70 % */
	slots[7] = load_begin(l, "smtpd", 200);      /* 80 %: enter */
	ck_assert(load_check(l, "smtpd", 200, &v));
	ck_assert_int_eq(v.source, LOAD_SESSIONS);
	ck_assert_str_eq(v.service, "smtpd");
	ck_assert_int_eq(v.value, 8);
	ck_assert_int_eq(v.limit, 10);
	/* another service is not stressed by smtpd's load_levels */
	ck_assert(!load_check(l, "submission", 200, NULL));
	/* an unknown daemon name ($myhostname) counts as smtpd */
	ck_assert(load_check(l, "mx.example.com", 200, NULL));
	ck_assert(load_check(l, NULL, 200, NULL));
	/* below leave: still on until hold has passed below it */
	for (int i = 0; i < 4; i++)
		load_end(l, slots[i], 1000); /* 40 % */
	ck_assert(load_check(l, "smtpd", 5000, NULL));
	ck_assert(load_check(l, "smtpd", 10999, NULL));
	ck_assert(!load_check(l, "smtpd", 11000, NULL));
	unit_log_capture(NULL);
	ck_assert_msg(strstr(strbuf_str(&log),
	                     "stress on: source=sessions service=smtpd 8/10 (80%)") != NULL,
	              "log: %s", strbuf_str(&log));
	ck_assert_msg(strstr(strbuf_str(&log), "stress off: source=sessions service=smtpd 4/10") !=
	                      NULL,
	              "log: %s", strbuf_str(&log));
	strbuf_free(&log);
	load_free(l);
}
END_TEST

/* Back above leave resets the time below it. */
START_TEST(leave_needs_hold_in_a_row)
{
	load_levels *l = load_create();
	int slots[10];

	configure(l, two_limits, 2, 1000, 0);
	open_n(l, "smtpd", 9, 0, slots); /* 90 % */
	ck_assert(load_check(l, "smtpd", 0, NULL));
	load_end(l, slots[0], 2000);
	load_end(l, slots[1], 2000);
	load_end(l, slots[2], 2000);
	load_end(l, slots[3], 2000); /* 50 % at 2000 */
	slots[0] = load_begin(l, "smtpd", 2500); /* 60 % at 2500: not below */
	load_end(l, slots[0], 2600);             /* 50 % from 2600 */
	ck_assert(load_check(l, "smtpd", 3500, NULL));
	ck_assert(!load_check(l, "smtpd", 3600, NULL));
	load_free(l);
}
END_TEST

/*
 * A load between 50 % and 90 %, up at the start of each period and down at
 * off_at within it, for a minute in steps of 100 ms: the transitions the
 * checks see, each asserted at least a hold after the one before.
 */
static unsigned long
flap(long long hold, long long period, long long off_at)
{
	load_levels *l = load_create();
	int slots[10], extra[5];
	long long last = -hold;
	unsigned long transitions = 0;
	bool was = false;

	configure(l, two_limits, 2, hold, 0);
	open_n(l, "smtpd", 5, 0, slots); /* 50 % */
	for (long long t = 0; t < 60000; t += 100) {
		bool on;

		if (t % period == 0)
			open_n(l, "smtpd", 4, t, extra); /* 90 % */
		else if (t % period == off_at)
			for (int i = 0; i < 4; i++)
				load_end(l, extra[i], t); /* 50 % */
		on = load_check(l, "smtpd", t, NULL);
		if (on != was) {
			ck_assert_msg(t - last >= hold, "transitions at %lld and %lld", last, t);
			last = t;
			transitions++;
			was = on;
		}
	}
	load_free(l);
	return transitions;
}

/* Flapping every 100 ms: on once, and never below leave for a hold. */
START_TEST(flapping)
{
	ck_assert_uint_eq(flap(5000, 200, 100), 1);
}
END_TEST

/* Slower flapping: a transition each time, each at least a hold apart. */
START_TEST(flapping_slow)
{
	ck_assert_uint_ge(flap(2000, 3000, 500), 10);
}
END_TEST

START_TEST(check_all_needs_every_service)
{
	load_levels *l = load_create();
	int a[10], b[4];
	load_verdict v;

	configure(l, two_limits, 2, 1000, 0);
	open_n(l, "smtpd", 9, 0, a);
	ck_assert(!load_check_all(l, 0, &v));
	open_n(l, "submission", 4, 0, b);
	ck_assert(load_check_all(l, 0, &v));
	ck_assert(v.stressed);
	/* one service only: its level is what negotiation knows */
	configure(l, two_limits, 1, 1000, 10);
	ck_assert(load_check_all(l, 10, NULL));
	load_free(l);
}
END_TEST

START_TEST(source_off_or_no_limit)
{
	load_levels *l = load_create();
	int a[10];
	load_params p;

	configure(l, two_limits, 2, 0, 0);
	open_n(l, "smtpd", 10, 0, a);
	ck_assert(load_check(l, "smtpd", 0, NULL));
	memset(&p, 0, sizeof p);
	p.enter = 80;
	p.leave = 60;
	p.limits = two_limits;
	p.n_limits = 2;
	load_configure(l, &p, 1); /* sessions no longer a source */
	ck_assert(!load_check(l, "smtpd", 1, NULL));
	configure(l, NULL, 0, 0, 2); /* a source without limits */
	ck_assert(!load_check(l, "smtpd", 2, NULL));
	/* counts survive the reloads */
	configure(l, two_limits, 2, 0, 3);
	ck_assert(load_check(l, "smtpd", 3, NULL));
	load_end(l, -1, 3);
	ck_assert(!load_check(NULL, "smtpd", 3, NULL));
	ck_assert_int_eq(load_begin(NULL, "smtpd", 3), -1);
	load_free(l);
}
END_TEST

static const double buckets[] = {1, 10, 100, 1000};

START_TEST(p90)
{
	unsigned long long c1[] = {0, 0, 0, 0, 0};
	unsigned long long c2[] = {90, 10, 0, 0, 0};
	unsigned long long c3[] = {89, 11, 0, 0, 0};
	unsigned long long c4[] = {0, 0, 0, 0, 3};
	unsigned long long c5[] = {1, 0, 0, 0, 0};

	ck_assert_int_eq(load_p90_ms(c1, buckets, 4), 0);
	ck_assert_int_eq(load_p90_ms(c2, buckets, 4), 1);
	ck_assert_int_eq(load_p90_ms(c3, buckets, 4), 10);
	ck_assert_int_eq(load_p90_ms(c4, buckets, 4), 2000);
	ck_assert_int_eq(load_p90_ms(c5, buckets, 4), 1);
}
END_TEST

/* The latency window: slow stages stress, then age out of the window. */
START_TEST(latency)
{
	load_levels *l = load_create();
	load_params p;
	unsigned long long counts[5] = {0, 0, 0, 0, 0};
	load_verdict v;

	memset(&p, 0, sizeof p);
	p.enabled[LOAD_LATENCY] = true;
	p.enter = 80;
	p.leave = 60;
	p.hold_ms = 3000;
	p.latency_ms = 100;
	p.bucket_ms = buckets;
	p.n_buckets = 4;
	load_configure(l, &p, 0);
	for (long long t = 0; t <= 3000; t += 1000) {
		counts[0] += 100; /* fast */
		load_latency_tick(l, counts, t);
	}
	ck_assert(!load_check(l, "smtpd", 3000, NULL));
	counts[3] += 1000; /* a slow resolver: p90 1000 ms */
	load_latency_tick(l, counts, 4000);
	ck_assert(load_check(l, "smtpd", 4000, &v));
	ck_assert_int_eq(v.source, LOAD_LATENCY);
	ck_assert_int_eq(v.value, 1000);
	ck_assert(load_check_all(l, 4000, NULL));
	/* fast again: the slow second leaves the window after LOAD_WINDOW_S */
	long long t = 5000;
	for (; t < 5000 + (LOAD_WINDOW_S + 1) * 1000LL; t += 1000) {
		counts[0] += 100;
		load_latency_tick(l, counts, t);
		ck_assert(load_check(l, "smtpd", t, NULL));
	}
	for (int i = 0; i < 3; i++, t += 1000) {
		counts[0] += 100;
		load_latency_tick(l, counts, t);
	}
	ck_assert(!load_check(l, "smtpd", t, NULL));
	load_free(l);
}
END_TEST

START_TEST(status)
{
	load_levels *l = load_create();
	int a[10];
	strbuf out = STRBUF_INIT;

	configure(l, two_limits, 2, 10000, 0);
	open_n(l, "smtpd", 9, 0, a);
	load_status(l, 1500, &out);
	ck_assert_msg(strstr(out.s, "sessions smtpd        9/10 90% stressed since 1.5s, "
	                            "1 transition\n") != NULL,
	              "%s", out.s);
	ck_assert_msg(strstr(out.s, "sessions submission   0/4 0% calm, 0 transitions\n") !=
	                      NULL,
	              "%s", out.s);
	strbuf_free(&out);
	load_free(l);
}
END_TEST

/* ---- mastercf ---- */

static char *
read_transcript(size_t *len)
{
	FILE *fp = fopen(SRCDIR "/postconf-M.txt", "r");
	strbuf b = STRBUF_INIT;
	char buf[4096];
	size_t n;

	ck_assert_msg(fp != NULL, "cannot open " SRCDIR "/postconf-M.txt");
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
		strbuf_append(&b, buf, n);
	fclose(fp);
	*len = b.len;
	return strbuf_detach(&b);
}

static const mastercf_service *
find(const mastercf_services *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

START_TEST(transcript)
{
	size_t len;
	char *text = read_transcript(&len);
	mastercf_services s;
	mastercf_limits_list l;
	strbuf log = STRBUF_INIT;
	const mastercf_service *sv;

	mastercf_parse(text, len, 50, &s);
	/* smtpd services only: not postscreen's smtp, not the unix smtp client */
	ck_assert_uint_eq(s.n, 5);
	ck_assert_ptr_null(find(&s, "smtp"));
	sv = find(&s, "submission");
	ck_assert_int_eq(sv->limit, 20);
	ck_assert_str_eq(sv->daemon_name, "submission");
	sv = find(&s, "2525");
	ck_assert_int_eq(sv->limit, 50); /* "-": default_process_limit */
	ck_assert_str_eq(sv->daemon_name, "alt");
	sv = find(&s, "smtpd"); /* postscreen's pass service */
	ck_assert_str_eq(sv->type, "pass");
	ck_assert_ptr_null(sv->daemon_name);
	sv = find(&s, "127.0.0.1:10025");
	ck_assert_int_eq(sv->limit, 4);
	ck_assert_str_eq(sv->daemon_name, "reinject");
	sv = find(&s, "submissions"); /* -o { ... } and $service_name */
	ck_assert_str_eq(sv->daemon_name, "submissions");

	mastercf_limits(&s, &l, &log);
	ck_assert_uint_eq(l.n, 5);
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].service, "smtpd") == 0)
			ck_assert_int_eq(l.v[i].limit, 50);
		if (strcmp(l.v[i].service, "submission") == 0)
			ck_assert_int_eq(l.v[i].limit, 20);
	}
	ck_assert_msg(strstr(log.s, "service smtpd (pass): no milter_macro_daemon_name, "
	                            "counted as smtpd, limit 50\n") != NULL,
	              "%s", log.s);
	mastercf_limits_free(&l);
	mastercf_services_free(&s);
	strbuf_free(&log);
	free(text);
}
END_TEST

/* -f's folded form, shared names, a service without a limit. */
START_TEST(folded_and_shared)
{
	static const char text[] =
	        "# comment\n"
	        "smtp inet n - y - 30 smtpd\n"
	        "    -o syslog_name=a\n"
	        "smtpd pass - - y - 10 smtpd\n"
	        "sub inet n - y - 5 smtpd\n"
	        "\t-o milter_macro_daemon_name=x -omilter_macro_daemon_name=sub\n"
	        "sub2 inet n - y - 0 smtpd -o milter_macro_daemon_name=sub\n"
	        "bad inet n - y - x smtpd\n"
	        "short inet n\n";
	mastercf_services s;
	mastercf_limits_list l;
	strbuf log = STRBUF_INIT;

	mastercf_parse(text, sizeof text - 1, 100, &s);
	ck_assert_uint_eq(s.n, 4);
	ck_assert_str_eq(find(&s, "sub")->daemon_name, "sub");
	mastercf_limits(&s, &l, &log);
	ck_assert_uint_eq(l.n, 1); /* sub: sub2 has no limit */
	ck_assert_str_eq(l.v[0].service, "smtpd");
	ck_assert_int_eq(l.v[0].limit, 40);
	mastercf_limits_free(&l);
	mastercf_services_free(&s);
	strbuf_free(&log);
}
END_TEST

static const struct limits_case {
	const char *text;
	bool ok, is_auto;
	size_t n;
	const char *why;
} limits_cases[] = {
        {"auto", true, true, 0, NULL},
        {"smtpd=100, submission=20", true, false, 2, NULL},
        {"smtpd=1 a=2,b=3", true, false, 3, NULL},
        {"smtpd=0", false, false, 0, "the limit of smtpd must be a number from 1"},
        {"smtpd=-1", false, false, 0, "must be a number"},
        {"smtpd=10x", false, false, 0, "must be a number"},
        {"smtpd=2000000", false, false, 0, "must be a number"},
        {"smtpd", false, false, 0, "expected auto or a list"},
        {"=5", false, false, 0, "expected auto or a list"},
        {"", false, false, 0, "expected auto or a list"},
        {"a=1, a=2", false, false, 0, "a is given twice"},
};

START_TEST(limits_syntax)
{
	const struct limits_case *c = &limits_cases[_i];
	mastercf_limits_list l;
	strbuf why = STRBUF_INIT;
	bool is_auto;

	ck_assert_int_eq(mastercf_parse_limits(c->text, &is_auto, &l, &why), c->ok);
	if (c->ok) {
		ck_assert_int_eq(is_auto, c->is_auto);
		ck_assert_uint_eq(l.n, c->n);
	} else {
		ck_assert_msg(strstr(strbuf_str(&why), c->why) != NULL, "'%s': %s", c->text,
		              strbuf_str(&why));
		ck_assert_uint_eq(l.n, 0);
	}
	mastercf_limits_free(&l);
	strbuf_free(&why);
}
END_TEST

/* At load: a limit of zero and leave above enter are refused. */
static const struct conf_case {
	const char *o1, *o2;
	const char *why; /* NULL: loads */
} conf_cases[] = {
        {"service_limits=smtpd=0", NULL, "-o service_limits=smtpd=0: service_limits: the limit"},
        {"stress_sources=macro, cpu", NULL, "unknown stress source 'cpu'"},
        {"stress_leave=90", NULL, "stress_leave = 90 is above stress_enter = 80"},
        {"stress_sources=", "service_limits=smtpd=5", NULL},
        {"stress_sources=latency sessions MACRO", NULL, NULL},
};

START_TEST(conf_refuses)
{
	const struct conf_case *c = &conf_cases[_i];
	char *o[2];
	size_t n = 0;
	strbuf err = STRBUF_INIT;
	conf *cf;

	o[n++] = (char *)c->o1;
	if (c->o2 != NULL)
		o[n++] = (char *)c->o2;
	cf = conf_load(NULL, o, n, &err);
	if (c->why == NULL) {
		ck_assert_msg(cf != NULL, "%s", strbuf_str(&err));
	} else {
		ck_assert_ptr_null(cf);
		ck_assert_msg(strstr(strbuf_str(&err), c->why) != NULL, "%s", strbuf_str(&err));
	}
	conf_unref(cf);
	strbuf_free(&err);
}
END_TEST

static Suite *
load_suite(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, enter_hold_leave);
	tcase_add_test(tc, leave_needs_hold_in_a_row);
	tcase_add_test(tc, flapping);
	tcase_add_test(tc, flapping_slow);
	tcase_add_test(tc, check_all_needs_every_service);
	tcase_add_test(tc, source_off_or_no_limit);
	tcase_add_test(tc, p90);
	tcase_add_test(tc, latency);
	tcase_add_test(tc, status);
	tcase_add_test(tc, transcript);
	tcase_add_test(tc, folded_and_shared);
	tcase_add_loop_test(tc, limits_syntax, 0,
	                    (int)(sizeof limits_cases / sizeof limits_cases[0]));
	tcase_add_loop_test(tc, conf_refuses, 0, (int)(sizeof conf_cases / sizeof conf_cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(load_suite());
}
