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

/* See budget.h for why a sixth. */
#define MARGIN_DIVISOR 6

long long
budget_margin(long long outer_ms)
{
	return outer_ms > 0 ? outer_ms / MARGIN_DIVISOR : 0;
}

bool
budget_nests(long long inner_ms, long long outer_ms)
{
	if (inner_ms < 0)
		inner_ms = 0;
	/* inner + margin <= outer, written so that nothing overflows. */
	return inner_ms <= outer_ms && budget_margin(outer_ms) <= outer_ms - inner_ms;
}

struct timespec
budget_timespec(long long deadline)
{
	return (struct timespec){.tv_sec = (time_t)(deadline / 1000),
	                         .tv_nsec = (long)(deadline % 1000) * 1000000L};
}
