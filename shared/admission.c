/* admission - the cap on concurrent sessions; see admission.h. */
#include "config.h"

#include "admission.h"
#include "log.h"
#include "strbuf.h"
#include "protocol.h"
#include "stage.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* What a connection past the cap is told when overload_reply cannot be read. */
#define ADMISSION_FALLBACK_CODE "421"
#define ADMISSION_FALLBACK_ECODE "4.7.0"
#define ADMISSION_FALLBACK_TEXT "Too many sessions, try again later"

#define ADMISSION_NEVER LLONG_MIN

struct admission {
	atomic_ullong active;
	atomic_ullong peak;
	atomic_ullong overloaded;
	atomic_ullong unreported; /* overloads since the last warning */
	atomic_llong warned_at;   /* ms of the last warning, or ADMISSION_NEVER */
};

admission *
admission_create(void)
{
	admission *a = ms_xcalloc(1, sizeof *a);

	atomic_init(&a->active, 0);
	atomic_init(&a->peak, 0);
	atomic_init(&a->overloaded, 0);
	atomic_init(&a->unreported, 0);
	atomic_init(&a->warned_at, ADMISSION_NEVER);
	return a;
}

void
admission_free(admission *a)
{
	free(a);
}

const struct conf_values *
admission_params(const conf *c)
{
	bool stressed = false;

	conf_stress_forced(c, &stressed);
	return conf_personality(c, stressed);
}

/* One more counted session, unless max are: compare and swap, never above. */
static bool
take_slot(admission *a, unsigned long long max)
{
	unsigned long long n = atomic_load_explicit(&a->active, memory_order_relaxed);

	do {
		if (n >= max)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
	        &a->active, &n, n + 1, memory_order_relaxed, memory_order_relaxed));
	n++;
	unsigned long long peak = atomic_load_explicit(&a->peak, memory_order_relaxed);
	while (n > peak && !atomic_compare_exchange_weak_explicit(&a->peak, &peak, n,
	                                                          memory_order_relaxed,
	                                                          memory_order_relaxed))
		;
	return true;
}

/* The first overload warns at once, later ones once per ADMISSION_WARN_MS. */
static void
note_overload(admission *a, const struct conf_values *p, long long now_ms)
{
	long long last = atomic_load_explicit(&a->warned_at, memory_order_relaxed);
	unsigned long long n;
	const char *what = strcmp(p->overload_action, "accept") == 0
	                           ? "accepted unfiltered"
	                           : "tempfailed";

	atomic_fetch_add_explicit(&a->overloaded, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->unreported, 1, memory_order_relaxed);
	if (last != ADMISSION_NEVER && now_ms - last < ADMISSION_WARN_MS)
		return;
	/* One thread wins the right to report; the others' overloads wait. */
	if (!atomic_compare_exchange_strong_explicit(&a->warned_at, &last, now_ms,
	                                             memory_order_relaxed,
	                                             memory_order_relaxed))
		return;
	n = atomic_exchange_explicit(&a->unreported, 0, memory_order_relaxed);
	if (last == ADMISSION_NEVER)
		log_msg(LOG_WARNING,
		        "max_sessions=%lld reached: new sessions are %s "
		        "(overload_action=%s) "
		        "without rules until some end",
		        p->max_sessions, what, p->overload_action);
	else
		log_msg(LOG_WARNING,
		        "max_sessions=%lld reached: %llu session%s %s in the last %lld s",
		        p->max_sessions, n, n == 1 ? "" : "s", what,
		        (now_ms - last + 500) / 1000);
}

bool
admission_enter(admission *a, admission_ticket *t, const struct conf_values *p,
                long long now_ms)
{
	switch (t->state) {
	case ADMISSION_IN:
		return true;
	case ADMISSION_OVER:
	case ADMISSION_LEFT:
		return false;
	case ADMISSION_NEW:
		break;
	}
	if (take_slot(a, (unsigned long long)p->max_sessions)) {
		t->state = ADMISSION_IN;
		return true;
	}
	t->state = ADMISSION_OVER;
	note_overload(a, p, now_ms);
	return false;
}

void
admission_leave(admission *a, admission_ticket *t)
{
	bool counted = t->state == ADMISSION_IN;

	t->state = ADMISSION_LEFT;
	if (!counted)
		return;
	if (atomic_fetch_sub_explicit(&a->active, 1, memory_order_relaxed) == 0) {
		/* Only a counted ticket leaves: a bug, not an input, got here. */
		ms_panic("session count below zero");
	}
}

unsigned long
admission_overload_protocol(void)
{
	/* Only connect, where the answer goes; nothing else is even sent. */
	unsigned long flags = PROTO_P_NOUNKNOWN | PROTO_P_NR_UNKN;

	for (int st = STAGE_CONNECT + 1; st < STAGE_N; st++)
		flags |= stage_get((enum stage)st)->skip_flag | stage_get((enum stage)st)->nr_flag;
	return flags;
}

void
admission_overload_reply(const struct conf_values *p, session_reply *r)
{
	strbuf why = STRBUF_INIT;

	strbuf_reset(&r->text);
	if (strcmp(p->overload_action, "accept") == 0) {
		r->answer = SESSION_ACCEPT;
		r->code[0] = r->ecode[0] = '\0';
		return;
	}
	r->answer = SESSION_TEMPFAIL;
	/* Checked at load, so this fails only on a bug. */
	if (!rules_parse_reply(RULES_TEMPFAIL, p->overload_reply, r->code, r->ecode,
	                       &r->text, &why)) {
		snprintf(r->code, sizeof r->code, "%s", ADMISSION_FALLBACK_CODE);
		snprintf(r->ecode, sizeof r->ecode, "%s", ADMISSION_FALLBACK_ECODE);
		strbuf_reset(&r->text);
		strbuf_puts(&r->text, ADMISSION_FALLBACK_TEXT);
	}
	strbuf_free(&why);
}

void
admission_get_counts(const admission *a, admission_counts *out)
{
	admission *m = (admission *)a; /* atomic loads need a non-const object */

	out->active = atomic_load_explicit(&m->active, memory_order_relaxed);
	out->peak = atomic_load_explicit(&m->peak, memory_order_relaxed);
	out->overloaded = atomic_load_explicit(&m->overloaded, memory_order_relaxed);
}
