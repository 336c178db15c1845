/*
 * Unit tests for personality selection (stress): the macro, -o stress=...,
 * stress_values, and the header and log forms of the result.
 */
#include "config.h"

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "strbuf.h"
#include "stress.h"

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
	conf *c = unit_conf(tc->o1, tc->o2);
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
	conf *c = unit_conf("stress_macro={busy}", NULL);

	ck_assert_str_eq(stress_macro_name(c), "{busy}");
	conf_unref(c);
	c = unit_conf(NULL, NULL);
	ck_assert_str_eq(stress_macro_name(c), "{stress}");
	conf_unref(c);
}
END_TEST

static Suite *
stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_decide, 0, sizeof decide_cases / sizeof decide_cases[0]);
	tcase_add_test(tc, test_macro_name);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(stress_suite());
}
