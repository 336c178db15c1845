/*
 * Unit tests for personality selection (stress): the macro stress_macro
 * names, -o stress=..., stress_values, and the header and log forms of the
 * result.
 */
#include "config.h"

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "strbuf.h"
#include "stress.h"

#define STRESS "{stress}"

static const struct decide_case {
	const char *o1, *o2;      /* -o overrides */
	const char *name, *value; /* the one macro the MTA sent; NULL: none */
	enum stress_force force;  /* the runtime switch */
	bool stressed;
	const char *log;
	const char *header;
} decide_cases[] = {
        {NULL, NULL, STRESS, "yes", STRESS_FORCE_NONE, true, "yes(macro)",
         "yes (source=macro)"},
        {NULL, NULL, STRESS, "YES", STRESS_FORCE_NONE, true, "yes(macro)",
         "yes (source=macro)"},
        {NULL, NULL, STRESS, "no", STRESS_FORCE_NONE, false, "no(macro)", "no"},
        {NULL, NULL, STRESS, "", STRESS_FORCE_NONE, false, "no(macro)", "no"},
        {NULL, NULL, NULL, NULL, STRESS_FORCE_NONE, false, "no(none)",
         "no (source=none)"},
        {"stress=yes", NULL, STRESS, "no", STRESS_FORCE_NONE, true, "yes(forced)",
         "yes (source=forced)"},
        {"stress=yes", NULL, NULL, NULL, STRESS_FORCE_NONE, true, "yes(forced)",
         "yes (source=forced)"},
        {"stress=", NULL, STRESS, "yes", STRESS_FORCE_NONE, false, "no(forced)",
         "no (source=forced)"},
        {"stress_values=1, true", NULL, STRESS, "1", STRESS_FORCE_NONE, true,
         "yes(macro)", "yes (source=macro)"},
        {"stress_values=1, true", NULL, STRESS, "yes", STRESS_FORCE_NONE, false,
         "no(macro)", "no"},
        /* stress_macro names the macro that is read, and only that one */
        {"stress_macro={busy}", NULL, "{busy}", "yes", STRESS_FORCE_NONE, true,
         "yes(macro)", "yes (source=macro)"},
        {"stress_macro={busy}", NULL, STRESS, "yes", STRESS_FORCE_NONE, false, "no(none)",
         "no (source=none)"},
        {NULL, NULL, "{busy}", "yes", STRESS_FORCE_NONE, false, "no(none)",
         "no (source=none)"},
        /* the runtime switch: over the macro, under -o stress=... */
        {NULL, NULL, STRESS, "no", STRESS_FORCE_ON, true, "yes(control)",
         "yes (source=control)"},
        {NULL, NULL, NULL, NULL, STRESS_FORCE_ON, true, "yes(control)",
         "yes (source=control)"},
        {NULL, NULL, STRESS, "yes", STRESS_FORCE_OFF, false, "no(control)",
         "no (source=control)"},
        {"stress=", NULL, STRESS, "yes", STRESS_FORCE_ON, false, "no(forced)",
         "no (source=forced)"},
        {"stress=yes", NULL, STRESS, "no", STRESS_FORCE_OFF, true, "yes(forced)",
         "yes (source=forced)"},
};

/* The MTA's macros: the case's one. */
static const char *
sent(void *ctx, const char *name)
{
	const struct decide_case *tc = ctx;

	return tc->name != NULL && strcmp(name, tc->name) == 0 ? tc->value : NULL;
}

START_TEST(test_decide)
{
	const struct decide_case *tc = &decide_cases[_i];
	conf *c = unit_conf(tc->o1, tc->o2);
	stress_state st = stress_decide(c, tc->force, sent, (void *)tc);
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

/* A session whose MTA reads no macros at all. */
START_TEST(test_no_macros)
{
	conf *c = unit_conf(NULL, NULL);
	stress_state st = stress_decide(c, STRESS_FORCE_NONE, NULL, NULL);

	ck_assert(!st.stressed);
	ck_assert_int_eq(st.source, STRESS_SRC_NONE);
	conf_unref(c);
	c = unit_conf("stress=yes", NULL);
	st = stress_decide(c, STRESS_FORCE_NONE, NULL, NULL);
	ck_assert(st.stressed);
	ck_assert_int_eq(st.source, STRESS_SRC_FORCED);
	conf_unref(c);
}
END_TEST

static Suite *
stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_decide, 0,
	                    sizeof decide_cases / sizeof decide_cases[0]);
	tcase_add_test(tc, test_no_macros);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(stress_suite());
}
