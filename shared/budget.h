/*
 * budget - deadlines in milliseconds on the monotonic clock
 *
 * SYNOPSIS
 *	long long deadline = budget_deadline(budget_now_ms(), stage_ms);
 *	...
 *	long long left = budget_left(deadline);	0 once it has passed
 *
 *	if (!budget_nests(stage_ms, postfix_timeout_ms)) ... refuse the config
 *
 * A deadline is an absolute CLOCK_MONOTONIC time in milliseconds, so it can
 * be handed down through nested calls (a stage's budget, then the part of it
 * a DNS lookup may use) without each level re-reading the clock and drifting.
 * The arithmetic saturates: a huge budget ("no limit", LLONG_MAX) never wraps
 * into the past, and a negative one is "already expired".
 *
 * A stage's budget nests in the Postfix timeout that bounds its stage
 * (milter_command_timeout from connect to DATA, milter_content_timeout for
 * headers, body and end of message; stage.h): past it Postfix gives up on
 * the milter, applies milter_default_action and does not ask it again in
 * that session. conf checks at load that every budget leaves
 * budget_margin() of its timeout free: our clock starts when a callback
 * does, and Postfix's when it sent the command, so the margin has to cover
 * what our budget never sees, libmilter's queue before the callback and,
 * after the deadline, ending the checks and writing the reply, on a host
 * that is busiest exactly when budgets run out. It is a sixth of the
 * timeout: 5 s of Postfix's 30 s, 50 s of its 300 s (what the schema's
 * bounds allowed before this check existed), and it shrinks with a
 * timeout a site lowered, so that some budget always fits.
 *
 * CONCURRENCY
 *	No state: every function may run on any thread.
 */
#ifndef MS_BUDGET_H
#define MS_BUDGET_H

#include <stdbool.h>
#include <time.h>

/* Monotonic now, in milliseconds. */
long long budget_now_ms(void);

/* now + ms, saturated at LLONG_MAX; ms <= 0 gives now. */
long long budget_deadline(long long now, long long ms);

/* Milliseconds until deadline, 0 when it has passed. */
long long budget_left(long long deadline);

bool budget_expired(long long deadline);

/* deadline as a timespec for pthread_cond_timedwait() on a condition
   variable whose clock is CLOCK_MONOTONIC (pthread_condattr_setclock). */
struct timespec budget_timespec(long long deadline);

/* The part of outer_ms a budget inside it must leave free; 0 for outer <= 0. */
long long budget_margin(long long outer_ms);

/* Whether inner_ms plus budget_margin(outer_ms) fits in outer_ms; a
   negative inner counts as 0. */
bool budget_nests(long long inner_ms, long long outer_ms);

#endif
