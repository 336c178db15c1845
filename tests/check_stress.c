/*
 * Unit tests for personality selection (stress) and the per-session model
 * (session): the macro, -o stress=..., stress_values, the header and the log
 * line.
 */
#include "config.h"

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "session.h"
#include "strbuf.h"
#include "stress.h"

static conf *
load(const char *o1, const char *o2)
{
	char *ov[2];
	size_t n = 0;
	strbuf err = STRBUF_INIT;
	conf *c;

	if (o1 != NULL)
		ov[n++] = (char *)o1;
	if (o2 != NULL)
		ov[n++] = (char *)o2;
	c = conf_load(NULL, ov, n, &err);
	ck_assert_msg(c != NULL, "conf_load: %s", strbuf_str(&err));
	strbuf_free(&err);
	return c;
}

static const struct decide_case {
	const char *o1, *o2; /* -o overrides */
	const char *macro;   /* NULL: the MTA sent none */
	bool stressed;
	const char *log;
	const char *header;
} decide_cases[] = {
	{NULL, NULL, "yes", true, "yes(macro)", "yes (source=macro)"},
	{NULL, NULL, "YES", true, "yes(macro)", "yes (source=macro)"},
	{NULL, NULL, "no", false, "no(macro)", "no"},
	{NULL, NULL, "", false, "no(macro)", "no"},
	{NULL, NULL, NULL, false, "no(none)", "no (source=none)"},
	{"stress=yes", NULL, "no", true, "yes(forced)", "yes (source=forced)"},
	{"stress=yes", NULL, NULL, true, "yes(forced)", "yes (source=forced)"},
	{"stress=", NULL, "yes", false, "no(forced)", "no (source=forced)"},
	{"stress_values=1, true", NULL, "1", true, "yes(macro)", "yes (source=macro)"},
	{"stress_values=1, true", NULL, "yes", false, "no(macro)", "no"},
	{"stress_macro={busy}", NULL, "yes", true, "yes(macro)", "yes (source=macro)"},
};

START_TEST(test_decide)
{
	const struct decide_case *tc = &decide_cases[_i];
	conf *c = load(tc->o1, tc->o2);
	stress_state st = stress_decide(c, tc->macro);
	strbuf log = STRBUF_INIT, hdr = STRBUF_INIT;

	ck_assert_int_eq(st.stressed, tc->stressed);
	stress_format_log(&st, &log);
	stress_format_header(&st, &hdr);
	ck_assert_str_eq(log.s, tc->log);
	ck_assert_str_eq(hdr.s, tc->header);
	strbuf_free(&log);
	strbuf_free(&hdr);
	conf_unref(c);
}
END_TEST

START_TEST(test_macro_name)
{
	conf *c = load("stress_macro={busy}", NULL);

	ck_assert_str_eq(stress_macro_name(c), "{busy}");
	conf_unref(c);
	c = load(NULL, NULL);
	ck_assert_str_eq(stress_macro_name(c), "{stress}");
	conf_unref(c);
}
END_TEST

/* The personality a session gets follows its stress state. */
START_TEST(test_session_personality)
{
	conf *c = load("milter_timeout=${stress?{10s}:{300s}}", NULL);
	session *s = session_create(c, "mx.example", "192.0.2.1");

	conf_unref(c); /* the session holds its own reference */
	session_set_stress(s, "yes");
	ck_assert_int_eq(session_params(s)->milter_timeout, 10000);
	session_set_stress(s, "no");
	ck_assert_int_eq(session_params(s)->milter_timeout, 300000);
	session_free(s);
}
END_TEST

static const struct eom_case {
	const char *o1, *o2;
	const char *macro;
	const char *header; /* "" = none added */
} eom_cases[] = {
	{NULL, NULL, "yes", "yes (source=macro)"},
	{NULL, NULL, "no", "no"},
	{"stress_header_always=no", NULL, "no", ""},
	{"stress_header_always=no", NULL, "yes", "yes (source=macro)"},
	{"stress_header=", NULL, "yes", ""},
};

START_TEST(test_session_eom_header)
{
	const struct eom_case *tc = &eom_cases[_i];
	conf *c = load(tc->o1, tc->o2);
	session *s = session_create(c, "mx.example", "192.0.2.1");
	strbuf value = STRBUF_INIT, line = STRBUF_INIT;
	size_t forged;

	conf_unref(c);
	session_set_stress(s, tc->macro);
	session_mail(s, "<a@example.org>");
	session_rcpt(s, "<b@example.net>");
	session_eom(s, &value, &forged, &line);
	ck_assert_str_eq(strbuf_str(&value), tc->header);
	ck_assert_uint_eq(forged, 0);
	strbuf_free(&value);
	strbuf_free(&line);
	session_free(s);
}
END_TEST

START_TEST(test_session_log_line)
{
	conf *c = load(NULL, NULL);
	session *s = session_create(c, "mx.example", "2001:db8::1");
	strbuf value = STRBUF_INIT, line = STRBUF_INIT;
	size_t forged;

	conf_unref(c);
	session_set_stress(s, "yes");
	session_helo(s, "helo.example");
	session_mail(s, "<a@example.org>");
	session_set_queue_id(s, "4ABCDEF");
	session_rcpt(s, "b@example.net");
	session_rcpt(s, "<c@example.net>");
	session_header(s, "Subject");
	session_header(s, "x-stress"); /* forged by the client, any case */
	session_header(s, "X-Stress");
	session_eom(s, &value, &forged, &line);
	ck_assert_uint_eq(forged, 2);
	ck_assert_msg(strncmp(line.s,
			      "4ABCDEF: stress=yes(macro) stage=eom action=accept "
			      "client=mx.example[2001:db8::1] helo=<helo.example> "
			      "from=<a@example.org> to=<b@example.net> nrcpt=2 ms=",
			      strlen("4ABCDEF: stress=yes(macro) stage=eom action=accept "
				     "client=mx.example[2001:db8::1] helo=<helo.example> "
				     "from=<a@example.org> to=<b@example.net> nrcpt=2 ms=")) == 0,
		      "line: %s", line.s);
	/* The next message starts clean. */
	strbuf_reset(&line);
	ck_assert(!session_abort(s, &line));
	session_mail(s, "<>");
	ck_assert(session_abort(s, &line));
	ck_assert_msg(strstr(line.s, "NOQUEUE: stress=yes(macro) stage=mail action=aborted") == line.s,
		      "line: %s", line.s);
	ck_assert_msg(strstr(line.s, " from=<> ") != NULL, "line: %s", line.s);
	strbuf_free(&value);
	strbuf_free(&line);
	session_free(s);
}
END_TEST

START_TEST(test_session_unknown_client)
{
	conf *c = load(NULL, NULL);
	session *s = session_create(c, NULL, NULL);
	strbuf out = STRBUF_INIT;

	conf_unref(c);
	session_set_stress(s, NULL);
	session_format_client(s, &out);
	ck_assert_str_eq(out.s, "unknown[unknown]");
	strbuf_free(&out);
	session_free(s);
}
END_TEST

static Suite *
stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_decide, 0, sizeof decide_cases / sizeof decide_cases[0]);
	tcase_add_test(tc, test_macro_name);
	tcase_add_test(tc, test_session_personality);
	tcase_add_loop_test(tc, test_session_eom_header, 0, sizeof eom_cases / sizeof eom_cases[0]);
	tcase_add_test(tc, test_session_log_line);
	tcase_add_test(tc, test_session_unknown_client);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(stress_suite());
}
