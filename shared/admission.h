/*
 * admission - the cap on concurrent sessions (max_sessions)
 *
 * Debian's libmilter starts a worker thread for every busy session, without
 * limit, and a session whose worker cannot be created hangs (ARCHITECTURE.md F12).
 * The daemon therefore counts its own sessions, from negotiation to close,
 * and gives the ones past max_sessions almost nothing: a protocol with only
 * the connect stage (admission_overload_protocol) and, at connect, the
 * overload_action reply (admission_overload_reply), with no rule evaluated.
 * Below the cap nothing changes.
 *
 *   a = admission_create();
 *   admission_ticket t = ADMISSION_TICKET_INIT;     one per connection
 *   if (!admission_enter(a, &t, admission_params(conf), now_ms)) ...over
 *   admission_leave(a, &t);                         at close
 *
 * The ticket makes both idempotent: a connection is counted at most once
 * however often it enters, and uncounted only if it was counted. A close
 * without negotiation moves nothing; a negotiation without close happens
 * only when libmilter drops its sessions at stop, when the count no longer
 * matters. A connection past the cap is not counted: it ends as soon as
 * the MTA has its answer.
 *
 * Past the cap, admission_enter() logs one warning at once and then at most
 * one per ADMISSION_WARN_MS while the cap is hit: "max_sessions=N reached:
 * M sessions tempfailed in the last S s". admission_get_counts() gives the
 * sessions now, the peak and the overloads since start for the statistics
 * line.
 *
 * max_sessions, overload_action and overload_reply are read at negotiation,
 * before the MTA sends the stress macro: from the normal personality, or
 * from the forced one under -o stress=... (admission_params).
 *
 * Concurrency: every function may run on any thread at once. The count is a
 * lock-free atomic, never above the cap; a ticket belongs to one connection
 * (libmilter runs a connection's callbacks one at a time).
 */
#ifndef MS_ADMISSION_H
#define MS_ADMISSION_H

#include <stdbool.h>

#include "conf.h"
#include "session.h"

/* At most one overload warning per this many milliseconds. */
#define ADMISSION_WARN_MS 60000LL

typedef struct admission admission; /* opaque */

enum admission_state {
	ADMISSION_NEW,  /* not seen yet */
	ADMISSION_IN,   /* counted */
	ADMISSION_OVER, /* past the cap: not counted */
	ADMISSION_LEFT, /* closed */
};

typedef struct admission_ticket {
	enum admission_state state;
} admission_ticket;

/* clang-format off */
#define ADMISSION_TICKET_INIT {ADMISSION_NEW}
/* clang-format on */

admission *admission_create(void);
void admission_free(admission *a); /* NULL-safe */

/* The personality whose max_sessions and overload_* count at negotiation. */
const struct conf_values *admission_params(const conf *c);

/*
 * Count the connection if fewer than p->max_sessions are counted: true.
 * Otherwise count an overload (and maybe log the warning at now_ms, a
 * budget_now_ms() time): false. A ticket that entered before gives the same
 * answer again and changes nothing; a closed one is never admitted.
 */
bool admission_enter(admission *a, admission_ticket *t, const struct conf_values *p,
                     long long now_ms);

/* At close: uncount the connection if it was counted. */
void admission_leave(admission *a, admission_ticket *t);

/* The SMFIP_* flags (mproto.h values) for a connection past the cap. */
unsigned long admission_overload_protocol(void);

/*
 * Its answer at connect: tempfail with overload_reply (421 makes Postfix
 * hang up at once), or accept (the session goes on without this milter).
 */
void admission_overload_reply(const struct conf_values *p, session_reply *r);

typedef struct admission_counts {
	unsigned long long active;     /* counted now */
	unsigned long long peak;       /* most counted at once since start */
	unsigned long long overloaded; /* connections past the cap since start */
} admission_counts;

void admission_get_counts(const admission *a, admission_counts *out);

#endif
