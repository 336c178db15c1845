/*
 * session - one SMTP session as the milter sees it, with no libmilter in sight
 *
 * The daemon's callbacks translate MTA events into the session_on_*() calls
 * below and turn the reply each one fills back into SMFIS_* codes and
 * smfi_setreply(); everything that decides is here and in rules, testable
 * without a socket. Life cycle:
 *
 *   session_create(conf, rt, name, addr)  at connect; takes a conf
 *                                     reference, so the session keeps the
 *                                     snapshot it started on across reloads,
 *                                     and one of the daemon's runtime (the
 *                                     DNS provider, runtime.h; NULL: DNS
 *                                     checks are skipped)
 *   session_set_macros(s, fn, ctx)    how to read the MTA's macros
 *   session_on_connect(s, reply)      picks the personality (stress macro or
 *                                     -o stress=...), runs the connect rules
 *   session_on_helo / _mail / _rcpt / _data / _header / _eoh / _body
 *   session_on_eom(s, reply, changes) the message's changes: forged stress
 *                                     headers to delete, headers to add, a
 *                                     quarantine reason
 *   session_on_abort(s)               message aborted
 *   session_free(s)                   at close; drops the conf reference
 *
 * Every verdict (reject, tempfail, discard, accept by a rule) and every
 * message's end is logged, one Postfix-style line naming the rule, the stress
 * state and its source, and the milliseconds spent inside the milter.
 *
 * Replies. A stage whose reply the MTA does not wait for (negotiated NR_*,
 * see session_protocol) never gets a reply: rules that could reply there are
 * why the stage is not negotiated away. Session limits (error_limit,
 * rcpt_limit) answer like Postfix: 452 4.5.3 for a recipient past the limit,
 * and once error_limit rejections were issued, 421 4.7.0 at the next stage
 * that can reply, which makes Postfix hang up. A 452 (come back with the
 * other recipients) is not counted, as Postfix does not count its own.
 *
 * Expensive checks (DNSBL, body) follow rules_eval(): a stage gets its
 * budget (connect_budget, ...; body_budget for the whole body), its DNS
 * lookups run in parallel within it, and what was skipped (under stress,
 * every expensive check of the calm personality's rules at a stage the
 * session reached, whatever their mode; a suspended zone, a lookup that ran
 * out of time) is logged, counted and listed in the stress header
 * ("; skipped=dnsbl,body", grammar in milter-stress.conf(5)) for content
 * filters after the queue. A stage whose budget ran out takes budget_action,
 * one whose lookups failed takes dns_error_action (continue or tempfail 451
 * 4.3.0). The body is scanned up to body_scan_limit; then, or as soon as
 * nothing more can change a verdict, the milter asks the MTA to skip the
 * rest.
 *
 * DELAYED STAGES. Connect and HELO wait for their lookups at most
 * session_stage_wait. A rule that needs an answer not in by then stops
 * its stage, which answers continue; that stage's remaining rules, and the
 * HELO stage's after it (its lookups sent at HELO), are decided in file
 * order at the start of the next MAIL FROM (or of a second HELO), each
 * lookup waiting at most until its own stage's deadline, and the first
 * verdict is MAIL FROM's reply. Negotiation keeps MAIL FROM's reply on
 * when that can happen. A session that ends first abandons them. Why: a
 * libmilter worker blocked for a whole budget makes a burst of sessions
 * queue behind it (doc/ARCHITECTURE.md F19).
 *
 * Concurrency: a session is used by one callback at a time (libmilter
 * serialises a connection's callbacks, though on varying threads). Sessions
 * share the read-only conf snapshot and the runtime, whose DNS provider any
 * number of them call at once.
 */
#ifndef MS_SESSION_H
#define MS_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "rules.h"
#include "runtime.h"
#include "strbuf.h"
#include "stress.h"

typedef struct session session;

enum session_answer {
	SESSION_CONTINUE, /* go on (or no reply, at an NR_* stage) */
	SESSION_ACCEPT,   /* nothing more to do for this session/message */
	SESSION_TEMPFAIL, /* with code/ecode/text when code[0] != '\0' */
	SESSION_REJECT,
	SESSION_DISCARD,
	SESSION_SKIP, /* body: send no more of it (SMFIP_SKIP) */
};

typedef struct session_reply {
	enum session_answer answer;
	char code[4];
	char ecode[12]; /* "" = none */
	strbuf text;    /* plain text; the caller escapes it for libmilter */
} session_reply;

void session_reply_init(session_reply *r);
void session_reply_free(session_reply *r);

typedef struct session_header_change {
	char *name;
	char *value;
} session_header_change;

typedef struct session_changes {
	const char *forged_name; /* delete copies 1..n_forged of this header */
	size_t n_forged;
	session_header_change *add; /* headers to add, in order */
	size_t n_add;
	char *quarantine; /* NULL: none */
} session_changes;

void session_changes_init(session_changes *c);
void session_changes_free(session_changes *c);

/*
 * The SMFIP_* protocol flags (values as in mproto.h) a connection should
 * ask for: stages no rule of either personality needs are turned off, and
 * stages where nothing can ever reply get "no reply". Negotiation comes
 * before the stress macro, so unless -o stress=... forces one personality,
 * both count.
 */
unsigned long session_protocol(const conf *c);

/*
 * The personality when it is known before connect, hence at negotiation:
 * -o stress=..., the runtime switch, a load source that stresses every
 * service (load_check_all()), or stress_sources empty (calm). Then the
 * session negotiates only what that personality needs:
 * session_protocol_known(c, st.stressed), and session_preset_stress()
 * keeps it for the session whatever connect brings; only a personality
 * rule of that personality may still switch it to the other
 * (rules_may_switch()), and then the session negotiates the union.
 * Otherwise (known -1) the union, as session_protocol().
 */
bool session_known_at_negotiation(const conf *c, runtime *rt, stress_state *st);
unsigned long session_protocol_known(const conf *c, int known);

/*
 * The PROTO_F_* modifications a session may make: add and change headers
 * (the stress header, and removing a forged copy of it) and whatever the
 * actions of the rule language need (rules_milter_flags()).
 */
unsigned long session_actions(void);

/* rt, name and addr may be NULL (no DNS; unknown); name and addr are copied. */
session *session_create(conf *c, runtime *rt, const char *client_name,
                        const char *client_addr);
void session_free(session *s); /* NULL-safe */

/* The MTA's macros, by name ("{stress}", "i"); NULL when not sent. */
typedef const char *(*session_macro_fn)(void *ctx, const char *name);
void session_set_macros(session *s, session_macro_fn fn, void *ctx);
/* The personality negotiation already chose (session_known_at_negotiation). */
void session_preset_stress(session *s, stress_state st);
/* The NR_* flags agreed for this connection: no reply at those stages. */
void session_set_protocol(session *s, unsigned long proto);

void session_enter(session *s);
void session_leave(session *s);

void session_on_connect(session *s, session_reply *r);
void session_on_helo(session *s, const char *helo, session_reply *r);
void session_on_mail(session *s, const char *from, session_reply *r);
void session_on_rcpt(session *s, const char *rcpt, session_reply *r);
void session_on_data(session *s, session_reply *r);
void session_on_header(session *s, const char *name, const char *value,
		       session_reply *r);
void session_on_eoh(session *s, session_reply *r);
void session_on_body(session *s, const unsigned char *chunk, size_t len,
		     session_reply *r);
void session_on_eom(session *s, session_reply *r, session_changes *changes);
void session_on_abort(session *s);

/* The parameters of this session's personality. */
const struct conf_values *session_params(const session *s);

/*
 * Counters over all sessions since start (atomic; any thread): the daemon
 * logs them at stop and on reload.
 */
typedef struct session_counts {
	unsigned long long messages;      /* ended at eom or aborted */
	unsigned long long rejected;      /* reject replies (any stage) */
	unsigned long long tempfailed;    /* tempfail replies, limits included */
	unsigned long long discarded;
	unsigned long long skipped_dnsbl; /* messages whose DNS checks did not all run */
	unsigned long long skipped_body;  /* messages whose body checks did not run */
} session_counts;

void session_get_counts(session_counts *out);

/* The client as Postfix logs it: name[addr]. */
void session_format_client(const session *s, strbuf *out);

#endif
