/*
 * Unit tests for budget: deadlines saturate instead of wrapping, zero and
 * negative budgets are "no time", remainders never go negative, a check's
 * cap never outlives its stage, and nesting inside Postfix's timeouts.
 */
#include "config.h"

#include "unit.h"
#include <limits.h>
#include <string.h>

#include "budget.h"
#include "strbuf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX LLONG_MAX

static const struct dcase {
	long long now, ms, want;
} deadlines[] = {
        {1000, 250, 1250},      {1000, 0, 1000},          /* no time: due now */
        {1000, -5, 1000},                                 /* negative: already due */
        {0, MAX, MAX},          {1, MAX, MAX},            /* saturates */
        {MAX - 10, 11, MAX},                              /* saturates */
        {MAX - 10, 10, MAX},                              /* exactly */
        {MAX - 10, 9, MAX - 1}, {-1000, MAX, MAX - 1000}, /* a negative now still adds */
        {MAX, 1, MAX},
};

START_TEST(test_deadline)
{
	const struct dcase *c = &deadlines[_i];

	ck_assert_int_eq(budget_deadline(c->now, c->ms), c->want);
}
END_TEST

static const struct lcase {
	long long deadline, now, want;
} lefts[] = {
        {1250, 1000, 250},     {1000, 1000, 0},
        {900, 1000, 0}, /* passed: clamps, never negative */
        {LLONG_MIN, MAX, 0},   {MAX, 0, MAX},
        {MAX, -1, MAX}, /* would overflow: saturates */
        {MAX, LLONG_MIN, MAX}, {0, -5, 5},
};

START_TEST(test_left_at)
{
	const struct lcase *c = &lefts[_i];

	ck_assert_int_eq(budget_left_at(c->deadline, c->now), c->want);
}
END_TEST

static const struct ccase {
	long long stage, now, cap, want;
} caps[] = {
        {5000, 1000, 100, 1100},  /* the cap is sooner */
        {5000, 1000, 9000, 5000}, /* the stage is sooner */
        {5000, 1000, 0, 1000},    /* a cap of no time */
        {5000, 1000, MAX, 5000},  /* a huge cap saturates, the stage wins */
        {MAX, 1000, MAX, MAX},    {500, 1000, 100, 500}, /* the stage already passed */
};

START_TEST(test_cap)
{
	const struct ccase *c = &caps[_i];

	ck_assert_int_eq(budget_cap(c->stage, c->now, c->cap), c->want);
}
END_TEST

static const struct ncase {
	long long inner, outer, margin;
	bool want;
	const char *msg;
} nests[] = {
        {10000, BUDGET_POSTFIX_COMMAND_MS, 5000, true, NULL},
        {25000, BUDGET_POSTFIX_COMMAND_MS, 5000, true, NULL}, /* exactly */
        {25001, BUDGET_POSTFIX_COMMAND_MS, 5000, false,
         "inner = 25001 ms does not fit in outer (30000 ms) with a margin of 5000 ms"},
        {60000, BUDGET_POSTFIX_CONTENT_MS, 10000, true, NULL},
        {300000, BUDGET_POSTFIX_CONTENT_MS, 0, true, NULL},
        {300000, BUDGET_POSTFIX_CONTENT_MS, 1, false, "with a margin of 1 ms"},
        {0, 0, 0, true, NULL},
        {-5, 10, -3, true, NULL}, /* negatives count as 0 */
        {1, -1, 0, false, NULL},
        {MAX, MAX, 1, false, NULL}, /* no overflow */
        {1, MAX, MAX, false, NULL},
        {MAX, BUDGET_POSTFIX_COMMAND_MS, MAX, false, NULL},
};

START_TEST(test_nests)
{
	const struct ncase *c = &nests[_i];
	strbuf err = STRBUF_INIT;

	ck_assert(budget_nests(c->inner, c->outer, c->margin) == c->want);
	ck_assert(budget_check_nested("inner", c->inner, "outer", c->outer, c->margin,
	                              &err) == c->want);
	if (c->want)
		ck_assert_str_eq(strbuf_str(&err), "");
	else
		ck_assert_ptr_nonnull(
		        strstr(strbuf_str(&err), c->msg ? c->msg : "does not fit"));
	strbuf_free(&err);
}
END_TEST

START_TEST(test_clock)
{
	long long a = budget_now_ms(), d = budget_deadline(a, 60000), b;

	b = budget_now_ms();
	ck_assert_int_ge(b, a);
	ck_assert_int_le(budget_left(d), 60000);
	ck_assert_int_gt(budget_left(d), 50000);
	ck_assert(!budget_expired(d));
	ck_assert(budget_expired(budget_deadline(a, 0)));
	ck_assert_int_eq(budget_left(a - 1), 0);
	ck_assert_int_eq(budget_min(3, -2), -2);
}
END_TEST

static Suite *
budget_suite(void)
{
	Suite *s = suite_create("budget");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_deadline, 0, N(deadlines));
	tcase_add_loop_test(tc, test_left_at, 0, N(lefts));
	tcase_add_loop_test(tc, test_cap, 0, N(caps));
	tcase_add_loop_test(tc, test_nests, 0, N(nests));
	tcase_add_test(tc, test_clock);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(budget_suite());
}
