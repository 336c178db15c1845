/*
 * budget - deadlines in milliseconds on the monotonic clock
 *
 * SYNOPSIS
 *	long long deadline = budget_deadline(budget_now_ms(), stage_ms);
 *	...
 *	long long left = budget_left(deadline);	0 once it has passed
 *
 * A deadline is an absolute CLOCK_MONOTONIC time in milliseconds, so it can
 * be handed down through nested calls (a stage's budget, then the part of it
 * a DNS lookup may use) without each level re-reading the clock and drifting.
 * The arithmetic saturates: a huge budget ("no limit", LLONG_MAX) never wraps
 * into the past, and a negative one is "already expired".
 *
 * Stage budgets nest: a check gets the earlier of its stage's deadline and
 * its own cap (budget_cap), and at config load every budget must fit, with
 * a margin, inside the Postfix timeout that bounds its stage
 * (budget_check_nested): milter_command_timeout for connect to DATA,
 * milter_content_timeout for headers, body and end of message. A milter
 * that overruns them is dropped by Postfix for the session.
 *
 * CONCURRENCY
 *	No state: every function may run on any thread.
 */
#ifndef MS_BUDGET_H
#define MS_BUDGET_H

#include <stdbool.h>

#include "strbuf.h"

/* Postfix's defaults for the timeouts that bound a milter's stages. */
#define BUDGET_POSTFIX_COMMAND_MS 30000LL  /* milter_command_timeout */
#define BUDGET_POSTFIX_CONTENT_MS 300000LL /* milter_content_timeout */

/* Monotonic now, in milliseconds. */
long long budget_now_ms(void);

/* now + ms, saturated at LLONG_MAX; ms <= 0 gives now. */
long long budget_deadline(long long now, long long ms);

/* Milliseconds until deadline, 0 when it has passed. */
long long budget_left(long long deadline);

bool budget_expired(long long deadline);

/* The earlier of two deadlines: an inner step never outlives its stage. */
long long budget_min(long long a, long long b);

/* budget_left() with the caller's now: deadline - now, never negative. */
long long budget_left_at(long long deadline, long long now);

/* A check's deadline: the earlier of its stage's and now + cap_ms. */
long long budget_cap(long long stage_deadline, long long now, long long cap_ms);

/*
 * Whether inner_ms plus margin_ms fits in outer_ms, without overflow;
 * negative values count as 0. budget_check_nested() also writes
 * "INNER = N ms does not fit in OUTER (M ms) with a margin of K ms" to err
 * when it does not.
 */
bool budget_nests(long long inner_ms, long long outer_ms, long long margin_ms);
bool budget_check_nested(const char *inner_name, long long inner_ms,
                         const char *outer_name, long long outer_ms, long long margin_ms,
                         strbuf *err);

#endif
