/*
 * Unit tests for budget: deadlines saturate instead of wrapping, zero and
 * negative budgets are "no time", remainders never go negative, and a
 * budget nests in Postfix's timeout only with a sixth of it to spare.
 */
#include "config.h"

#include "unit.h"
#include <limits.h>

#include "budget.h"

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

static const struct ncase {
	long long inner, outer, margin;
	bool nests;
} nests[] = {
        {10000, 30000, 5000, true}, /* the defaults, Postfix's defaults */
        {25000, 30000, 5000, true}, /* exactly */
        {25001, 30000, 5000, false},
        {250000, 300000, 50000, true},
        {250001, 300000, 50000, false},
        {300000, 300000, 50000, false}, /* no margin left */
        {8334, 10000, 1666, true},      /* a sixth, rounded down */
        {8335, 10000, 1666, false},
        {0, 1000, 166, true},
        {-5, 1000, 166, true}, /* a negative budget counts as 0 */
        {0, 0, 0, true},
        {1, 0, 0, false},
        {0, -1, 0, false}, /* no timeout holds anything */
        {MAX, MAX, MAX / 6, false},
        {MAX - MAX / 6, MAX, MAX / 6, true}, /* no overflow */
        {MAX, 30000, 5000, false},
};

START_TEST(test_nests)
{
	const struct ncase *c = &nests[_i];

	ck_assert_int_eq(budget_margin(c->outer), c->margin);
	ck_assert_msg(budget_nests(c->inner, c->outer) == c->nests, "%lld in %lld",
	              c->inner, c->outer);
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
}
END_TEST

static Suite *
budget_suite(void)
{
	Suite *s = suite_create("budget");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_deadline, 0, N(deadlines));
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
