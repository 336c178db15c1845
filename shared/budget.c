/* budget - deadlines in milliseconds on the monotonic clock; see budget.h. */
#include "config.h"

#include "budget.h"

#include <limits.h>
#include <time.h>

long long
budget_now_ms(void)
{
	struct timespec ts;

	/* Cannot fail with a valid clock id and pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
budget_deadline(long long now, long long ms)
{
	if (ms <= 0)
		return now;
	if (now > LLONG_MAX - ms)
		return LLONG_MAX;
	return now + ms;
}

long long
budget_left(long long deadline)
{
	long long now = budget_now_ms();

	return deadline > now ? deadline - now : 0;
}

bool
budget_expired(long long deadline)
{
	return budget_left(deadline) == 0;
}

long long
budget_min(long long a, long long b)
{
	return a < b ? a : b;
}

long long
budget_left_at(long long deadline, long long now)
{
	/* deadline - now could overflow when now is far in the past. */
	if (deadline <= now)
		return 0;
	if (now < 0 && deadline > LLONG_MAX + now)
		return LLONG_MAX;
	return deadline - now;
}

long long
budget_cap(long long stage_deadline, long long now, long long cap_ms)
{
	return budget_min(stage_deadline, budget_deadline(now, cap_ms));
}

bool
budget_nests(long long inner_ms, long long outer_ms, long long margin_ms)
{
	if (inner_ms < 0)
		inner_ms = 0;
	if (margin_ms < 0)
		margin_ms = 0;
	/* inner + margin <= outer, written so that nothing overflows. */
	return inner_ms <= outer_ms && margin_ms <= outer_ms - inner_ms;
}

bool
budget_check_nested(const char *inner_name, long long inner_ms, const char *outer_name,
                    long long outer_ms, long long margin_ms, strbuf *err)
{
	if (budget_nests(inner_ms, outer_ms, margin_ms))
		return true;
	strbuf_printf(
	        err, "%s = %lld ms does not fit in %s (%lld ms) with a margin of %lld ms",
	        inner_name, inner_ms, outer_name, outer_ms,
	        margin_ms < 0 ? 0 : margin_ms);
	return false;
}
