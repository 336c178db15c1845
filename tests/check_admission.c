/*
 * Unit tests for admission: the cap holds and frees, tickets make enter and
 * leave idempotent (no leak, no underflow), the overload warning is
 * rate-limited, the over-cap protocol and reply, the personality the
 * parameters come from, and many threads at once never pass the cap.
 */
#include "config.h"

#include "unit.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "conf.h"
#include "log.h"
#include "mproto.h"
#include "session.h"
#include "strbuf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static strbuf logged = STRBUF_INIT;

static void
setup(void)
{
	strbuf_reset(&logged);
	unit_log_capture(&logged);
}

static void
teardown(void)
{
	unit_log_capture(NULL);
}

static size_t
count_lines(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

START_TEST(test_cap_holds_and_frees)
{
	conf *c = unit_conf("max_sessions=3", NULL);
	const struct conf_values *p = admission_params(c);
	admission *a = admission_create();
	admission_ticket t[5] = {ADMISSION_TICKET_INIT, ADMISSION_TICKET_INIT,
	                         ADMISSION_TICKET_INIT, ADMISSION_TICKET_INIT,
	                         ADMISSION_TICKET_INIT};
	admission_counts n;

	for (int i = 0; i < 3; i++)
		ck_assert(admission_enter(a, &t[i], p, 1000));
	ck_assert(!admission_enter(a, &t[3], p, 1000));
	admission_get_counts(a, &n);
	ck_assert_uint_eq(n.active, 3);
	ck_assert_uint_eq(n.peak, 3);
	ck_assert_uint_eq(n.overloaded, 1);
	/* One leaves: the next one is admitted, the over-cap one stays out. */
	admission_leave(a, &t[1]);
	ck_assert(admission_enter(a, &t[4], p, 1000));
	ck_assert(!admission_enter(a, &t[3], p, 1000));
	admission_get_counts(a, &n);
	ck_assert_uint_eq(n.active, 3);
	ck_assert_uint_eq(n.overloaded, 1);
	for (int i = 0; i < 5; i++)
		admission_leave(a, &t[i]);
	admission_get_counts(a, &n);
	ck_assert_uint_eq(n.active, 0);
	ck_assert_uint_eq(n.peak, 3);
	admission_free(a);
	conf_unref(c);
}
END_TEST

/* Orders of enter (E) and leave (L) on one ticket, and the count after. */
static const struct tcase {
	const char *ops;
	bool last_enter; /* what the last E answered */
	unsigned long long active;
} ticket_cases[] = {
        {"E", true, 1},   {"EE", true, 1},   /* counted once */
        {"EL", true, 0},  {"ELL", true, 0},  /* uncounted once */
        {"L", false, 0},  {"LL", false, 0},  /* close without negotiation */
        {"LE", false, 0}, {"ELE", false, 0}, /* a closed ticket stays out */
        {"EEL", true, 0},
};

START_TEST(test_ticket_idempotent)
{
	const struct tcase *tc = &ticket_cases[_i];
	conf *c = unit_conf("max_sessions=1", NULL);
	admission *a = admission_create();
	admission_ticket other = ADMISSION_TICKET_INIT, t = ADMISSION_TICKET_INIT;
	bool last = false;
	admission_counts n;

	for (const char *op = tc->ops; *op; op++) {
		if (*op == 'E')
			last = admission_enter(a, &t, admission_params(c), 0);
		else
			admission_leave(a, &t);
	}
	if (strchr(tc->ops, 'E') != NULL)
		ck_assert_msg(last == tc->last_enter, "%s: enter answered %d", tc->ops,
		              last);
	admission_get_counts(a, &n);
	ck_assert_msg(n.active == tc->active, "%s: %llu counted", tc->ops, n.active);
	/* The slot is free exactly when nothing is counted. */
	ck_assert(admission_enter(a, &other, admission_params(c), 0) == (n.active == 0));
	admission_leave(a, &other);
	admission_free(a);
	conf_unref(c);
}
END_TEST

/* One warning at once, then one per ADMISSION_WARN_MS with the count. */
START_TEST(test_warning_rate_limited)
{
	conf *c = unit_conf("max_sessions=1", NULL);
	const struct conf_values *p = admission_params(c);
	admission *a = admission_create();
	admission_ticket in = ADMISSION_TICKET_INIT;
	long long t0 = 5000;

	ck_assert(admission_enter(a, &in, p, t0));
	ck_assert_str_eq(strbuf_str(&logged), "");
	for (int i = 0; i < 10; i++) {
		admission_ticket t = ADMISSION_TICKET_INIT;

		ck_assert(!admission_enter(a, &t, p, t0 + i * 1000));
	}
	ck_assert_uint_eq(count_lines(strbuf_str(&logged), "max_sessions=1 reached"), 1);
	ck_assert_ptr_nonnull(
	        strstr(strbuf_str(&logged),
	               "max_sessions=1 reached: new sessions are tempfailed "
	               "(overload_action=tempfail)"));
	for (int i = 0; i < 4; i++) {
		admission_ticket t = ADMISSION_TICKET_INIT;

		ck_assert(!admission_enter(a, &t, p, t0 + ADMISSION_WARN_MS - 1));
	}
	ck_assert_uint_eq(count_lines(strbuf_str(&logged), "reached"), 1);
	{
		admission_ticket t = ADMISSION_TICKET_INIT;

		ck_assert(!admission_enter(a, &t, p, t0 + ADMISSION_WARN_MS));
	}
	/* 9 after the first warning, 4 more, and this one. */
	ck_assert_msg(strstr(strbuf_str(&logged),
	                     "max_sessions=1 reached: 14 sessions tempfailed in the last "
	                     "60 s\n") != NULL,
	              "logged:\n%s", strbuf_str(&logged));
	admission_leave(a, &in);
	admission_free(a);
	conf_unref(c);
}
END_TEST

START_TEST(test_warning_accept)
{
	conf *c = unit_conf("max_sessions=1", "overload_action=accept");
	const struct conf_values *p = admission_params(c);
	admission *a = admission_create();
	admission_ticket in = ADMISSION_TICKET_INIT, t1 = ADMISSION_TICKET_INIT,
	                 t2 = ADMISSION_TICKET_INIT;

	ck_assert(admission_enter(a, &in, p, 0));
	ck_assert(!admission_enter(a, &t1, p, 0));
	ck_assert(!admission_enter(a, &t2, p, ADMISSION_WARN_MS * 2));
	ck_assert_msg(strstr(strbuf_str(&logged),
	                     "reached: new sessions are accepted unfiltered "
	                     "(overload_action=accept)") != NULL &&
	                      strstr(strbuf_str(&logged),
	                             "reached: 1 session accepted unfiltered in the last "
	                             "120 s") != NULL,
	              "logged:\n%s", strbuf_str(&logged));
	admission_free(a);
	conf_unref(c);
}
END_TEST

/* The reply at connect for each overload setting. */
static const struct rcase {
	const char *o1, *o2;
	enum session_answer answer;
	const char *code, *ecode, *text;
} reply_cases[] = {
        {NULL, NULL, SESSION_TEMPFAIL, "421", "4.7.0",
         "Too many sessions, try again later"},
        {"overload_reply=451 4.3.2 Busy now", NULL, SESSION_TEMPFAIL, "451", "4.3.2",
         "Busy now"},
        {"overload_reply=421 Busy", NULL, SESSION_TEMPFAIL, "421", "", "Busy"},
        {"overload_reply=421", NULL, SESSION_TEMPFAIL, "421", "",
         "Service unavailable, try again later"},
        {"overload_reply=421 4.7.0", NULL, SESSION_TEMPFAIL, "421", "4.7.0",
         "Service unavailable, try again later"},
        {"overload_action=accept", NULL, SESSION_ACCEPT, "", "", ""},
        /* At negotiation the stress macro is unknown: -o stress=yes decides. */
        {"overload_action=${stress?{accept}:{tempfail}}", NULL, SESSION_TEMPFAIL, "421",
         "4.7.0", "Too many sessions, try again later"},
        {"overload_action=${stress?{accept}:{tempfail}}", "stress=yes", SESSION_ACCEPT,
         "", "", ""},
};

START_TEST(test_reply)
{
	const struct rcase *rc = &reply_cases[_i];
	conf *c = unit_conf(rc->o1, rc->o2);
	session_reply r;

	session_reply_init(&r);
	admission_overload_reply(admission_params(c), &r);
	ck_assert_int_eq(r.answer, rc->answer);
	ck_assert_str_eq(r.code, rc->code);
	ck_assert_str_eq(r.ecode, rc->ecode);
	ck_assert_str_eq(strbuf_str(&r.text), rc->text);
	session_reply_free(&r);
	conf_unref(c);
}
END_TEST

START_TEST(test_params_personality)
{
	conf *normal = unit_conf("max_sessions=${stress?{5}:{10}}", NULL);
	conf *forced = unit_conf("max_sessions=${stress?{5}:{10}}", "stress=yes");

	ck_assert_int_eq(admission_params(normal)->max_sessions, 10);
	ck_assert_int_eq(admission_params(forced)->max_sessions, 5);
	conf_unref(normal);
	conf_unref(forced);
}
END_TEST

/* Only connect is sent, and nothing else needs a reply. */
START_TEST(test_protocol)
{
	unsigned long p = admission_overload_protocol();
	const unsigned long off[] = {PROTO_P_NOHELO, PROTO_P_NOMAIL,   PROTO_P_NORCPT,
	                             PROTO_P_NODATA, PROTO_P_NOHDRS,   PROTO_P_NOEOH,
	                             PROTO_P_NOBODY, PROTO_P_NOUNKNOWN};

	ck_assert_uint_eq(p & PROTO_P_NOCONNECT, 0);
	ck_assert_uint_eq(p & PROTO_P_NR_CONN, 0);
	for (size_t i = 0; i < N(off); i++)
		ck_assert_msg(p & off[i], "flag 0x%lx missing", off[i]);
	ck_assert_uint_eq(p & ~(unsigned long)PROTO_P_ALL, 0);
	ck_assert_uint_eq(p & PROTO_P_SKIP, 0);
}
END_TEST

/* Many threads enter and leave at once: never past the cap, none left over. */
#define RACE_THREADS 8
#define RACE_ROUNDS 20000
#define RACE_CAP 3

struct race {
	admission *a;
	const struct conf_values *p;
	unsigned long admitted;
};

static void *
racer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < RACE_ROUNDS; i++) {
		admission_ticket t = ADMISSION_TICKET_INIT;

		if (admission_enter(r->a, &t, r->p, 0))
			r->admitted++;
		admission_leave(r->a, &t);
	}
	return NULL;
}

START_TEST(test_threads)
{
	conf *c = unit_conf("max_sessions=3", NULL);
	admission *a = admission_create();
	pthread_t tid[RACE_THREADS];
	struct race r[RACE_THREADS];
	unsigned long long admitted = 0;
	admission_counts n;

	for (int i = 0; i < RACE_THREADS; i++) {
		r[i] = (struct race){a, admission_params(c), 0};
		ck_assert_int_eq(pthread_create(&tid[i], NULL, racer, &r[i]), 0);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(tid[i], NULL);
		admitted += r[i].admitted;
	}
	admission_get_counts(a, &n);
	ck_assert_uint_eq(n.active, 0);
	ck_assert_uint_le(n.peak, RACE_CAP);
	ck_assert_uint_ge(n.peak, 1);
	ck_assert_uint_eq(admitted + n.overloaded,
	                  (unsigned long long)RACE_THREADS * RACE_ROUNDS);
	admission_free(a);
	conf_unref(c);
}
END_TEST

static Suite *
admission_suite(void)
{
	Suite *s = suite_create("admission");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_cap_holds_and_frees);
	tcase_add_loop_test(tc, test_ticket_idempotent, 0, N(ticket_cases));
	tcase_add_test(tc, test_warning_rate_limited);
	tcase_add_test(tc, test_warning_accept);
	tcase_add_loop_test(tc, test_reply, 0, N(reply_cases));
	tcase_add_test(tc, test_params_personality);
	tcase_add_test(tc, test_protocol);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(admission_suite());
}
