/*
 * session-int - what the files of the session module share, nothing else sees
 *
 * DESCRIPTION
 *	The session module (session.h is its contract) is four files, one job
 *	each, over struct session below:
 *
 *	session.c		the life cycle, negotiation and the session_on_*()
 *				events the daemon's callbacks call
 *	session-verdict.c	rule evaluation: a stage's rules, its verdict and
 *				reply, the delayed (held) stages, the counters
 *	session-persona.c	the stress decision at connect and negotiation,
 *				client history, personality rules
 *	session-log.c		the verdict log line and the reply as it logs
 *
 *	Only shared/session*.c include this header. Its functions are named
 *	sess_*, session.h's session_*. A session is used by one callback at
 *	a time (session.h), so nothing here locks.
 */
#ifndef MS_SESSION_INT_H
#define MS_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "bodyscan.h"
#include "msgscan.h"
#include "personality.h"
#include "rules.h"
#include "session.h"
#include "stage.h"
#include "strbuf.h"
#include "stress.h"

/* Delayed stages at once: connect and HELO (DELAYED STAGES). */
#define HELD_MAX 2

typedef struct taglist {
	session_header_change *v;
	size_t n, cap;
} taglist;

struct session {
	conf *conf;
	runtime *rt; /* the daemon's: the DNS provider; may be NULL */
	const struct conf_values *params;
	const rules_table *rules;
	stress_state stress; /* the personality in use: stress.c's, or a personality rule's */
	personality persona; /* why: the stress decision, the client, the rule */
	bool msg_refused;    /* the message in progress was refused (client history) */
	session_macro_fn macro;
	void *macro_ctx;
	unsigned long proto;
	char *client_name;
	char *client_addr;
	char *daemon_name; /* Postfix's {daemon_name}, read at connect */
	int load_slot;     /* where the load counts this session (load.h); -1: not */
	bool preset;       /* the personality was known at negotiation: */
	stress_state preset_stress;
	char *helo;
	unsigned errors;       /* rejections issued in this session */
	bool hung_up;          /* a 421 went out: Postfix has hung up */
	bool session_accepted; /* accept at connect/helo: no more rules */
	taglist session_tags;  /* from connect and helo rules: every message */
	/* The message in progress. */
	bool in_message;
	bool message_accepted;
	bool message_logged; /* a verdict already ended it in the log */
	bool body_seen;
	enum stage stage;
	const rule *current_rule; /* for $rule while a template expands */
	char *queue_id;
	char *from;
	char *first_rcpt;
	char *rcpt;    /* the current recipient, at rcpt */
	size_t n_rcpt; /* recipients accepted so far */
	size_t n_over; /* recipients rcpt_limit answered in this message */
	size_t n_forged;
	const rules_header *header; /* the current header, at header */
	rules_header *headers;
	size_t n_headers, cap_headers;
	taglist tags;
	char *quarantine;
	unsigned skipped_session; /* RULES_COST_* not run at connect/helo */
	unsigned skipped;         /* ... and in this message */
	bodyscan *scan;           /* this message's body scanner, when rules read it */
	long long body_deadline;
	bool body_done;              /* scanned all we will: skip the rest */
	msgscan *mscan;              /* the message for the content scanners, or NULL */
	strbuf var_buf;              /* a scanner's template variable, formatted */
	const rules_eval_info *info; /* while a verdict's template expands: $rbl_* */
	/* Connect and HELO stages handed on to MAIL FROM (DELAYED STAGES). */
	struct held_stage {
		enum stage stage;
		rules_run *run;
		rules_eval_info info;
	} held[HELD_MAX];
	size_t n_held;
	/* Time spent inside callbacks since the last message ended. */
	long long busy_ns;
	struct timespec entered;
	bool inside;             /* between session_enter() and session_leave() */
	const char *accepted_by; /* the rule that accepted the session or message */
};

/* session.c */

/* Frees *slot and stores a copy of value (NULL stays NULL). */
void sess_replace(char **slot, const char *value);
/* May this stage of personality p be delayed to MAIL FROM at all? */
bool sess_may_delay_stage(const struct conf_values *p, enum stage stage);
/* Takes the queue id from the MTA's macro "i" once it is sent. */
void sess_pick_up_queue_id(session *s);
/* Time spent inside callbacks for this message, the current one included. */
long long sess_busy_ns(const session *s);

/* session-verdict.c */

/* A message ends (eom or abort): counts it and what it skipped. */
void sess_count_message(const session *s);
/* Fills r with an answer, a code, an enhanced code and a text. */
void sess_set_reply(session_reply *r, enum session_answer answer, const char *code,
                    const char *ecode, const char *text);
/* A reject or tempfail went out: logs, counts, notes it for error_limit and history. */
void sess_issued(session *s, const char *rule_id, const session_reply *r);
/* Counts a tempfail that goes out without a log line of its own. */
void sess_tempfail_unlogged(const session *s, const char *rule_id);
/* The session's facts as the rules read them. */
void sess_fill_facts(const session *s, rules_facts *f);
/* Abandons the delayed stages from the from-th on. */
void sess_drop_held(session *s, size_t from);
/* Runs one stage: delayed stages, limits, rules, verdict; times it. */
void sess_run_stage(session *s, enum stage stage, session_reply *r);

/* session-persona.c */

/* A transaction's outcome (accepted or refused) to client history; never waits. */
void sess_note_history(session *s, bool accepted);
/* Marks the client known or unknown from its history, within the read budget. */
void sess_read_history(session *s);
/* A matching personality rule at this stage may switch the personality. */
void sess_choose_personality(session *s, enum stage stage);
/* The stress decision at connect: macro, switch, -o stress=, load. */
stress_state sess_decide_stress(session *s);

/* session-log.c */

/* Logs a verdict: "QID: stress=... stage=S [rule=R] action=A client=... ms=N". */
void sess_log_line(const session *s, const char *stage, const char *rule_id,
                   const char *action);
/* The answer's name as the log says it: "reject", "tempfail", ... */
const char *sess_answer_name(enum session_answer a);
/* The reply as the log says it: answer, code, enhanced code. */
void sess_describe_reply(const session_reply *r, strbuf *out);

#endif
