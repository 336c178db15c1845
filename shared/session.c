/* session - per-connection state, rule evaluation and verdict lines; see session.h. */
#include "config.h"

#include "session.h"
#include "bodyscan.h"
#include "budget.h"
#include "load.h"
#include "log.h"
#include "metrics.h"
#include "personality.h"
#include "msgscan.h"
#include "protocol.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Postfix's own wording for the limits it enforces. */
#define SESSION_ERROR_LIMIT_CODE "421"
#define SESSION_ERROR_LIMIT_ECODE "4.7.0"
#define SESSION_ERROR_LIMIT_TEXT "Error: too many errors"
#define SESSION_RCPT_LIMIT_CODE "452"
#define SESSION_RCPT_LIMIT_ECODE "4.5.3"
#define SESSION_RCPT_LIMIT_TEXT "Error: too many recipients"
/* A check that could not finish: Postfix's wording for a failed lookup. */
#define SESSION_UNSURE_CODE "451"
#define SESSION_UNSURE_ECODE "4.3.0"
#define SESSION_UNSURE_TEXT "Temporary lookup failure"
/* Body scanning: lines up to 64 KiB whole, longer ones in overlapping pieces. */
#define SESSION_BODY_LINE_CAP 65536
#define SESSION_BODY_OVERLAP 1024

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

/* Counters over every session; relaxed atomics: they are statistics. */
static unsigned long long session_n_messages, session_n_rejected, session_n_tempfailed,
        session_n_discarded, session_n_skipped_dnsbl, session_n_skipped_body;

static void
count(unsigned long long *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

void
session_get_counts(session_counts *out)
{
	out->messages = __atomic_load_n(&session_n_messages, __ATOMIC_RELAXED);
	out->rejected = __atomic_load_n(&session_n_rejected, __ATOMIC_RELAXED);
	out->tempfailed = __atomic_load_n(&session_n_tempfailed, __ATOMIC_RELAXED);
	out->discarded = __atomic_load_n(&session_n_discarded, __ATOMIC_RELAXED);
	out->skipped_dnsbl = __atomic_load_n(&session_n_skipped_dnsbl, __ATOMIC_RELAXED);
	out->skipped_body = __atomic_load_n(&session_n_skipped_body, __ATOMIC_RELAXED);
}

/* A message ends (eom or abort): count it and what it skipped. */
static void
count_message(const session *s)
{
	unsigned skipped = s->skipped | s->skipped_session;

	if (!s->in_message)
		return;
	count(&session_n_messages);
	if (skipped & RULES_COST_DNSBL)
		count(&session_n_skipped_dnsbl);
	if (skipped & RULES_COST_BODY)
		count(&session_n_skipped_body);
}

/* ---- small helpers ---- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? ms_xstrdup(s) : NULL;
}

static void
replace(char **slot, const char *value)
{
	char *old = *slot;

	*slot = dup_or_null(value);
	free(old);
}

static void
taglist_add(taglist *l, const char *name, const char *value)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = ms_xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n].name = ms_xstrdup(name);
	l->v[l->n].value = ms_xstrdup(value);
	l->n++;
}

static void
taglist_clear(taglist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].value);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void
headers_clear(session *s)
{
	for (size_t i = 0; i < s->n_headers; i++) {
		free((char *)s->headers[i].name);
		free((char *)s->headers[i].value);
	}
	free(s->headers);
	s->headers = NULL;
	s->n_headers = s->cap_headers = 0;
}

static void
headers_add(session *s, const char *name, const char *value)
{
	if (s->n_headers == s->cap_headers) {
		s->cap_headers = s->cap_headers ? s->cap_headers * 2 : 16;
		s->headers = ms_xrealloc(s->headers, s->cap_headers * sizeof *s->headers);
	}
	s->headers[s->n_headers].name = ms_xstrdup(name);
	s->headers[s->n_headers].value = ms_xstrdup(value);
	s->n_headers++;
}

void
session_reply_init(session_reply *r)
{
	r->answer = SESSION_CONTINUE;
	r->code[0] = '\0';
	r->ecode[0] = '\0';
	strbuf_init(&r->text);
}

void
session_reply_free(session_reply *r)
{
	strbuf_free(&r->text);
}

void
session_changes_init(session_changes *c)
{
	memset(c, 0, sizeof *c);
}

void
session_changes_free(session_changes *c)
{
	for (size_t i = 0; i < c->n_add; i++) {
		free(c->add[i].name);
		free(c->add[i].value);
	}
	free(c->add);
	free(c->quarantine);
	memset(c, 0, sizeof *c);
}

/* ---- negotiation ---- */

/*
 * Can this stage hand its rules on to MAIL FROM (DELAYED STAGES)? A
 * session-wide stage whose wait is shorter than its budget.
 */
static bool
may_delay_stage(const struct conf_values *p, enum stage stage)
{
	return stage_get(stage)->session_wide &&
	       p->session_stage_wait < stage_budget(p, stage);
}

/* Does the milter look for forged copies of its header (stress_header_forged)? */
static bool
reads_forged(const struct conf_values *p)
{
	return p->stress_header[0] != '\0' && strcmp(p->stress_header_forged, "postfix") != 0;
}

unsigned long
session_protocol(const conf *c)
{
	return session_protocol_known(c, -1);
}

unsigned long
session_protocol_known(const conf *c, int known)
{
	bool forced_value;
	bool forced = conf_stress_forced(c, &forced_value);

	/* Known at negotiation, unless a personality rule may still switch it. */
	if (!forced && known >= 0 && !rules_may_switch(conf_rules(c, known > 0), known > 0)) {
		forced = true;
		forced_value = known > 0;
	}
	bool used[STAGE_N] = {false}, reply[STAGE_N] = {false};
	bool want_headers = false;
	unsigned long flags = PROTO_P_NOUNKNOWN;

	for (int p = 0; p < 2; p++) {
		bool stressed = p == 1;

		if (forced && stressed != forced_value)
			continue;
		const rules_table *t = conf_rules(c, stressed);
		for (int st = 0; st < STAGE_N; st++) {
			used[st] |= rules_stage_used(t, (enum stage)st);
			reply[st] |= rules_stage_may_reply(t, (enum stage)st);
		}
		want_headers |= rules_need_header_set(t) || reads_forged(conf_personality(c, stressed));
		/* rcpt_limit can answer every recipient. */
		reply[STAGE_RCPT] |= conf_personality(c, stressed)->rcpt_limit > 0;
		/* A delayed connect or HELO stage answers at MAIL FROM. */
		for (int st = STAGE_CONNECT; st <= STAGE_HELO; st++)
			if (may_delay_stage(conf_personality(c, stressed), (enum stage)st) &&
			    rules_stage_expensive(t, (enum stage)st, stressed))
				used[STAGE_MAIL] = reply[STAGE_MAIL] = true;
		if (rules_scans(t) != 0) {
			/* The scanners read the whole message; SKIP ends it early
			   (under stress, or past scan_size_limit). */
			want_headers = true;
			used[STAGE_EOH] = used[STAGE_EOM] = true;
		}
		if (rules_body_set(t) != NULL || rules_scans(t) != 0) {
			/* Body rules read chunks, and SKIP is a reply. */
			used[STAGE_BODY] = true;
			reply[STAGE_BODY] = true;
			flags |= PROTO_P_SKIP;
		}
	}
	used[STAGE_HEADER] |= want_headers;
	for (int st = 0; st < STAGE_N; st++) {
		const stage_desc *d = stage_get((enum stage)st);

		if (!used[st] && d->skippable)
			flags |= d->skip_flag;
		else if (!reply[st])
			flags |= d->nr_flag;
	}
	return flags;
}

unsigned long
session_actions(void)
{
	return PROTO_F_ADDHDRS | PROTO_F_CHGHDRS | rules_milter_flags();
}

/* ---- life cycle ---- */

session *
session_create(conf *c, runtime *rt, const char *client_name, const char *client_addr)
{
	session *s = ms_xcalloc(1, sizeof *s);

	conf_ref(c);
	s->conf = c;
	runtime_ref(rt);
	s->rt = rt;
	s->params = conf_personality(c, false);
	s->rules = conf_rules(c, false);
	s->client_name = dup_or_null(client_name);
	s->client_addr = dup_or_null(client_addr);
	s->stage = STAGE_CONNECT;
	s->load_slot = -1;
	return s;
}

static void log_line(const session *s, const char *stage, const char *rule_id,
                     const char *action);

/*
 * rcpt_limit answers each recipient past it, and a bot may send a thousand:
 * the first answer is logged as a verdict, the others in one line when the
 * recipients end (at DATA or with the message).
 */
static void
rcpt_limit_summary(session *s)
{
	strbuf action = STRBUF_INIT;

	if (s->n_over > 1) {
		strbuf_printf(&action, "tempfail %s %s (%zu more recipient%s)",
		              SESSION_RCPT_LIMIT_CODE, SESSION_RCPT_LIMIT_ECODE,
		              s->n_over - 1, s->n_over > 2 ? "s" : "");
		log_line(s, "rcpt", "rcpt_limit", action.s);
		strbuf_free(&action);
	}
	s->n_over = 0;
}

static void note_history(session *s, bool accepted);

static void
end_message(session *s)
{
	rcpt_limit_summary(s);
	if (s->msg_refused)
		note_history(s, false);
	s->in_message = false;
	if (s->message_accepted)
		s->accepted_by = NULL;
	s->message_accepted = false;
	s->message_logged = false;
	s->body_seen = false;
	s->skipped = 0;
	bodyscan_free(s->scan);
	s->scan = NULL;
	s->body_done = false;
	msgscan_free(s->mscan);
	s->mscan = NULL;
	s->n_rcpt = 0;
	s->n_forged = 0;
	s->busy_ns = 0;
	s->header = NULL;
	replace(&s->queue_id, NULL);
	replace(&s->from, NULL);
	replace(&s->first_rcpt, NULL);
	replace(&s->rcpt, NULL);
	replace(&s->quarantine, NULL);
	headers_clear(s);
	taglist_clear(&s->tags);
}

static void drop_held(session *s, size_t from);

void
session_free(session *s)
{
	if (s == NULL)
		return;
	end_message(s);
	drop_held(s, 0);
	taglist_clear(&s->session_tags);
	free(s->client_name);
	free(s->client_addr);
	free(s->daemon_name);
	free(s->helo);
	load_end(runtime_load(s->rt), s->load_slot, budget_now_ms());
	strbuf_free(&s->var_buf);
	conf_unref(s->conf);
	runtime_unref(s->rt);
	free(s);
}

void
session_set_macros(session *s, session_macro_fn fn, void *ctx)
{
	s->macro = fn;
	s->macro_ctx = ctx;
}

void
session_set_protocol(session *s, unsigned long proto)
{
	s->proto = proto;
}

void
session_enter(session *s)
{
	clock_gettime(CLOCK_MONOTONIC, &s->entered);
	s->inside = true;
}

static long long
since_entered_ns(const session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - s->entered.tv_sec) * 1000000000LL +
	       (now.tv_nsec - s->entered.tv_nsec);
}

void
session_leave(session *s)
{
	s->busy_ns += since_entered_ns(s);
	s->inside = false;
}

/* A verdict logged inside a callback counts that callback's time so far. */
static long long
busy_ns(const session *s)
{
	return s->busy_ns + (s->inside ? since_entered_ns(s) : 0);
}

const struct conf_values *
session_params(const session *s)
{
	return s->params;
}

static const char *
macro(const session *s, const char *name)
{
	return s->macro != NULL ? s->macro(s->macro_ctx, name) : NULL;
}

/* The queue id arrives with RCPT or later (Postfix opens the file late). */
static void
pick_up_queue_id(session *s)
{
	const char *qid = macro(s, "i");

	if (qid != NULL && qid[0] != '\0' &&
	    (s->queue_id == NULL || strcmp(s->queue_id, qid) != 0))
		replace(&s->queue_id, qid);
}

/* ---- log lines ---- */

void
session_format_client(const session *s, strbuf *out)
{
	strbuf_printf(out, "%s[%s]", s->client_name ? s->client_name : "unknown",
	              s->client_addr ? s->client_addr : "unknown");
}

/* Postfix shows addresses in angle brackets; libmilter passes them as sent. */
static void
put_addr(strbuf *out, const char *key, const char *addr)
{
	if (addr == NULL)
		return;
	if (addr[0] == '<')
		strbuf_printf(out, " %s=%s", key, addr);
	else
		strbuf_printf(out, " %s=<%s>", key, addr);
}

/* "QID: stress=yes(macro) stage=S [rule=R] action=A client=... ms=N" */
static void
log_line(const session *s, const char *stage, const char *rule_id, const char *action)
{
	strbuf out = STRBUF_INIT;

	strbuf_printf(&out, "%s: stress=", s->queue_id ? s->queue_id : "NOQUEUE");
	personality_format_log(&s->stress, &s->persona, &out);
	strbuf_printf(&out, " stage=%s", stage);
	if (rule_id != NULL)
		strbuf_printf(&out, " rule=%s", rule_id);
	strbuf_printf(&out, " action=%s client=", action);
	session_format_client(s, &out);
	if (s->helo != NULL)
		strbuf_printf(&out, " helo=<%s>", s->helo);
	put_addr(&out, "from", s->from);
	put_addr(&out, "to", s->rcpt != NULL ? s->rcpt : s->first_rcpt);
	if (s->n_rcpt > 1)
		strbuf_printf(&out, " nrcpt=%zu", s->n_rcpt);
	if ((s->skipped | s->skipped_session) != 0) {
		strbuf_puts(&out, " skipped=");
		rules_format_costs(s->skipped | s->skipped_session, &out);
	}
	msgscan_format_log(s->mscan, &out);
	strbuf_printf(&out, " ms=%.3f", (double)busy_ns(s) / 1e6);
	log_msg(LOG_INFO, "%s", out.s);
	strbuf_free(&out);
}

static const char *
answer_name(enum session_answer a)
{
	static const char *const names[] = {
	        [SESSION_CONTINUE] = "continue", [SESSION_ACCEPT] = "accept",
	        [SESSION_TEMPFAIL] = "tempfail", [SESSION_REJECT] = "reject",
	        [SESSION_DISCARD] = "discard",   [SESSION_SKIP] = "skip",
	};

	return names[a];
}

static void
describe_reply(const session_reply *r, strbuf *out)
{
	strbuf_puts(out, answer_name(r->answer));
	if (r->code[0] != '\0')
		strbuf_printf(out, " %s", r->code);
	if (r->ecode[0] != '\0')
		strbuf_printf(out, " %s", r->ecode);
}

/* ---- rule evaluation ---- */

static const char *
template_var(void *ctx, const char *name)
{
	session *s = ctx;
	const char *v;

	if (strcmp(name, "client_addr") == 0)
		return s->client_addr ? s->client_addr : "unknown";
	if (strcmp(name, "client_name") == 0)
		return s->client_name ? s->client_name : "unknown";
	if (strcmp(name, "helo_name") == 0)
		return s->helo;
	if (strcmp(name, "sender") == 0)
		return s->from;
	if (strcmp(name, "recipient") == 0)
		return s->rcpt;
	if (strcmp(name, "queue_id") == 0)
		return s->queue_id;
	if (strcmp(name, "rule") == 0)
		return s->current_rule ? rule_name(s->current_rule) : NULL;
	if (strcmp(name, "stage") == 0)
		return stage_name(s->stage);
	if (strcmp(name, "stress") == 0)
		return s->stress.stressed ? "yes" : "";
	if (s->info != NULL && strncmp(name, "rbl_", 4) == 0) {
		if (strcmp(name, "rbl_domain") == 0)
			return strbuf_str(&s->info->rbl_domain);
		if (strcmp(name, "rbl_what") == 0)
			return strbuf_str(&s->info->rbl_what);
		if (strcmp(name, "rbl_reason") == 0)
			return strbuf_str(&s->info->rbl_reason);
		if (strcmp(name, "rbl_class") == 0)
			return strbuf_str(&s->info->rbl_class);
	}
	if ((v = msgscan_var(s->mscan, name, &s->var_buf)) != NULL)
		return v;
	return conf_param_text(s->conf, s->stress.stressed, name);
}

static void
expand_for(session *s, const rule *r, const char *tmpl, strbuf *out)
{
	s->current_rule = r;
	rules_expand_text(tmpl, template_var, s, out);
	s->current_rule = NULL;
}

static bool
can_reply(const session *s, enum stage stage)
{
	return (s->proto & stage_get(stage)->nr_flag) == 0;
}

static void
set_reply(session_reply *r, enum session_answer answer, const char *code,
          const char *ecode, const char *text)
{
	r->answer = answer;
	snprintf(r->code, sizeof r->code, "%s", code);
	snprintf(r->ecode, sizeof r->ecode, "%s", ecode);
	strbuf_reset(&r->text);
	strbuf_puts(&r->text, text);
}

/* A reject or tempfail went out: log it and count it against error_limit. */
static void
issued(session *s, const char *rule_id, const session_reply *r)
{
	strbuf action = STRBUF_INIT;

	describe_reply(r, &action);
	log_line(s, stage_name(s->stage), rule_id, action.s);
	strbuf_free(&action);
	metrics_verdict(s->stage, answer_name(r->answer), rule_id);
	/*
	 * 452 asks the client to send the other recipients later; like Postfix
	 * (smtpd_recipient_overshoot_limit) we do not hold it against the client.
	 */
	if ((r->answer == SESSION_TEMPFAIL || r->answer == SESSION_REJECT) &&
	    strcmp(r->code, "452") != 0)
		s->errors++;
	if (r->answer != SESSION_CONTINUE && r->answer != SESSION_ACCEPT &&
	    strcmp(r->code, "452") != 0) {
		/* One refusal per message, or per session before MAIL FROM. */
		if (stage_get(s->stage)->session_wide && !s->in_message)
			note_history(s, false);
		else
			s->msg_refused = true;
	}
	if (r->answer == SESSION_REJECT)
		count(&session_n_rejected);
	else if (r->answer == SESSION_TEMPFAIL)
		count(&session_n_tempfailed);
	else if (r->answer == SESSION_DISCARD)
		count(&session_n_discarded);
	if (strcmp(r->code, "421") == 0 || strcmp(r->code, "521") == 0)
		s->hung_up = true;
}

/* A tempfail that goes out without a line of its own. */
static void
tempfail_unlogged(const session *s, const char *rule_id)
{
	count(&session_n_tempfailed);
	metrics_verdict(s->stage, "tempfail", rule_id);
}

static void
log_dry_run(session *s, const rule *r)
{
	const rules_action *a = rule_action(r);
	strbuf action = STRBUF_INIT;

	strbuf_printf(&action, "log(would %s", rules_action_name(a->would));
	if (a->code[0] != '\0')
		strbuf_printf(&action, " %s", a->code);
	if (a->ecode[0] != '\0')
		strbuf_printf(&action, " %s", a->ecode);
	strbuf_putc(&action, ')');
	log_line(s, stage_name(s->stage), rule_name(r), action.s);
	strbuf_free(&action);
}

static void
collect_tag(session *s, const rule *r)
{
	const rules_action *a = rule_action(r);
	strbuf value = STRBUF_INIT;
	bool session_wide = stage_get(s->stage)->session_wide;

	expand_for(s, r, a->text, &value);
	taglist_add(session_wide ? &s->session_tags : &s->tags, a->tag_name, value.s);
	strbuf_free(&value);
}

static void
collect_quarantine(session *s, const rule *r)
{
	strbuf reason = STRBUF_INIT;

	expand_for(s, r, rule_action(r)->text, &reason);
	replace(&s->quarantine, reason.s);
	strbuf_free(&reason);
}

/* Every rule tried: traced at -vv; tag, quarantine and log act here. */
static bool
visit(void *ctx, const rule *r, bool matched)
{
	session *s = ctx;

	log_debug(2, "%s: trace: stage=%s rule=%s %s",
	          s->queue_id ? s->queue_id : "NOQUEUE", stage_name(s->stage),
	          rule_name(r), matched ? "matched" : "no match");
	if (!matched)
		return false;
	switch (rule_action(r)->kind) {
	case RULES_TAG:
		collect_tag(s, r);
		break;
	case RULES_QUARANTINE:
		collect_quarantine(s, r);
		break;
	case RULES_LOG:
		log_dry_run(s, r);
		break;
	default:
		break;
	}
	return false;
}

static void
fill_facts(const session *s, rules_facts *f)
{
	memset(f, 0, sizeof *f);
	f->stressed = s->stress.stressed;
	f->client_addr = s->client_addr;
	f->client_name = s->client_name;
	f->daemon_name = s->daemon_name;
	f->history = s->persona.client != NULL ? s->persona.client : "unknown";
	f->helo = s->helo;
	f->sender = s->from;
	f->recipient = s->rcpt;
	f->rcpt_count = s->n_rcpt + (s->rcpt != NULL);
	f->header = s->header;
	f->headers = s->headers;
	f->n_headers = s->n_headers;
	f->macro = s->macro;
	f->macro_ctx = s->macro_ctx;
}

/* Nothing more to decide, but is the end of message still needed? */
static enum session_answer
accepted_answer(const session *s)
{
	bool eom_work = s->params->stress_header[0] != '\0' || s->session_tags.n > 0 ||
	                s->tags.n > 0 || s->quarantine != NULL;

	return eom_work ? SESSION_CONTINUE : SESSION_ACCEPT;
}

/*
 * After connect or HELO with no verdict: can anything later still act? If
 * not (no rule of this personality at a later stage, no recipient limit,
 * nothing to do at end of message), accept now and the MTA stops calling
 * us for the whole session.
 */
static bool
nothing_left(const session *s)
{
	if (accepted_answer(s) != SESSION_ACCEPT || s->params->rcpt_limit > 0)
		return false;
	for (int st = (int)s->stage + 1; st < STAGE_N; st++)
		if (rules_stage_used(s->rules, (enum stage)st))
			return false;
	return true;
}

static void
apply_verdict(session *s, const rule *hit, session_reply *r)
{
	const rules_action *a = rule_action(hit);

	switch (a->kind) {
	case RULES_ACCEPT:
		if (stage_get(s->stage)->session_wide)
			s->session_accepted = true;
		else
			s->message_accepted = true;
		s->accepted_by = rule_name(hit);
		r->answer = accepted_answer(s);
		metrics_verdict(s->stage, "accept", s->accepted_by);
		/* Logged with the message at eom, unless the MTA stops calling now. */
		if (r->answer == SESSION_ACCEPT || log_verbose() >= 1)
			log_line(s, stage_name(s->stage), rule_name(hit), "accept");
		return;
	case RULES_TEMPFAIL:
	case RULES_REJECT: {
		strbuf text = STRBUF_INIT;

		expand_for(s, hit, a->text, &text);
		set_reply(r, a->kind == RULES_REJECT ? SESSION_REJECT : SESSION_TEMPFAIL,
		          a->code, a->ecode, text.s);
		strbuf_free(&text);
		issued(s, rule_name(hit), r);
		return;
	}
	case RULES_DISCARD:
		r->answer = SESSION_DISCARD;
		issued(s, rule_name(hit), r);
		return;
	default: /* continue: this stage is done, the next ones still run */
		return;
	}
}

/*
 * One stage: the session limits first, then the rules. A stage that cannot
 * reply still runs its rules for tag, quarantine and log.
 */
/* What the stage's expensive checks may use: DNS, the time, the body. */
static void
expensive_for(session *s, enum stage stage, rules_expensive *x)
{
	memset(x, 0, sizeof *x);
	/* The resolver starts a thread: only when some check will use it. */
	if (rules_stage_expensive(s->rules, stage, s->stress.stressed))
		x->dns = runtime_dns(s->rt);
	x->deadline_ms = stage == STAGE_BODY && s->body_deadline != 0
	                         ? s->body_deadline
	                         : budget_deadline(budget_now_ms(),
	                                           stage_budget(s->params, stage));
	x->body = s->scan;
	if (stage == STAGE_EOM)
		x->scan = msgscan_results(s->mscan);
}

/* Remember what was skipped, and say when time ran out or DNS failed. */
static void
note_expensive(session *s, enum stage stage, const rules_eval_info *info)
{
	unsigned lost = info->skipped | info->timed_out | info->failed;

	if (stage_get(stage)->session_wide)
		s->skipped_session |= lost;
	else
		s->skipped |= lost;
	if (info->timed_out & RULES_COST_DNSBL)
		metrics_budget_expired(stage);
	if (info->timed_out & RULES_COST_DNSBL)
		log_msg(LOG_WARNING, "%s: stage=%s budget ran out: %s",
		        s->queue_id ? s->queue_id : "NOQUEUE", stage_name(stage),
		        strbuf_str(&info->timeout_what));
	if (info->failed & RULES_COST_DNSBL)
		log_msg(LOG_WARNING, "%s: stage=%s DNS lookup failed: %s",
		        s->queue_id ? s->queue_id : "NOQUEUE", stage_name(stage),
		        strbuf_str(&info->failed_what));
}

/* No verdict, but a check could not finish: budget_action / dns_error_action. */
static void
unsure(session *s, enum stage stage, const rules_eval_info *info, session_reply *r)
{
	const char *why = NULL;

	if (((info->timed_out | info->failed) & RULES_COST_SCAN) &&
	    strcmp(s->params->scan_error_action, "tempfail") == 0)
		why = "scan_error_action";
	else if ((info->timed_out & ~RULES_COST_SCAN) &&
	         strcmp(s->params->budget_action, "tempfail") == 0)
		why = "budget_action";
	else if ((info->failed & ~RULES_COST_SCAN) &&
	         strcmp(s->params->dns_error_action, "tempfail") == 0)
		why = "dns_error_action";
	if (why == NULL || !can_reply(s, stage))
		return;
	set_reply(r, SESSION_TEMPFAIL, SESSION_UNSURE_CODE, SESSION_UNSURE_ECODE,
	          SESSION_UNSURE_TEXT);
	issued(s, why, r);
}

/*
 * A stage's rules are decided (hit, or NULL): what was lost, the verdict or
 * budget_action, and for a session-wide stage at its own callback with
 * nothing delayed, whether anything is left to do at all.
 */
static void
conclude(session *s, enum stage stage, const rule *hit, rules_eval_info *info,
         session_reply *r)
{
	note_expensive(s, stage, info);
	s->info = info; /* $rbl_* for the verdict's text */
	if (hit == NULL) {
		unsure(s, stage, info, r);
	} else if (!can_reply(s, stage)) {
		/*
		 * Negotiation keeps NR off where a rule may reply: a bug if seen.
		 * continue ends the stage without a reply, so it may match here.
		 */
		if (rule_action(hit)->kind != RULES_CONTINUE)
			log_msg(LOG_WARNING, "rule %s matched at stage %s, which cannot reply",
				rule_name(hit), stage_name(stage));
	} else {
		apply_verdict(s, hit, r);
	}
	s->info = NULL;
	if (r->answer == SESSION_CONTINUE && s->stage == stage && s->n_held == 0 &&
	    stage_get(stage)->session_wide && can_reply(s, stage) &&
	    nothing_left(s)) {
		s->session_accepted = true;
		r->answer = SESSION_ACCEPT;
		log_line(s, stage_name(stage), "nothing_left", "accept");
		metrics_verdict(stage, "accept", "nothing_left");
	}
	if (r->answer != SESSION_CONTINUE && r->answer != SESSION_ACCEPT &&
	    stage != STAGE_RCPT && s->in_message)
		s->message_logged = true;
}

/* Abandons the delayed stages from the from-th on. */
static void
drop_held(session *s, size_t from)
{
	for (size_t i = from; i < s->n_held; i++) {
		rules_run_end(s->held[i].run);
		rules_eval_info_free(&s->held[i].info);
	}
	if (from < s->n_held)
		s->n_held = from;
}

/*
 * The delayed stages, in order, as if each were at its own callback but
 * waiting for its answers (each up to its own stage's deadline, which ran
 * from its callback); the first verdict, or an accept, ends them. The
 * reply goes out with the stage that called (MAIL FROM, or a second HELO).
 */
static void
decide_held(session *s, session_reply *r)
{
	enum stage now = s->stage;
	size_t i;

	for (i = 0; i < s->n_held; i++) {
		struct held_stage *h = &s->held[i];
		const rule *hit;
		rules_facts f;

		s->stage = h->stage;
		fill_facts(s, &f);
		s->info = &h->info; /* $rbl_* for tags in visit() */
		hit = rules_run_go(h->run, &f, RULES_NO_PAUSE, visit, s, NULL);
		rules_run_end(h->run);
		h->run = NULL;
		conclude(s, h->stage, hit, &h->info, r);
		rules_eval_info_free(&h->info);
		if (r->answer != SESSION_CONTINUE || s->session_accepted || s->hung_up) {
			i++;
			break;
		}
	}
	/* What no verdict needs any more is abandoned, as at the end of a stage. */
	drop_held(s, i);
	s->n_held = 0;
	s->stage = now;
}

/*
 * Keeps a connect or HELO stage's run for MAIL FROM; its lookups are out.
 * Its info is already the next free slot's (next_held_info()).
 */
static void
hold(session *s, enum stage stage, rules_run *run, const char *why)
{
	struct held_stage *h = &s->held[s->n_held++];

	h->stage = stage;
	h->run = run;
	metrics_stage_delayed(stage);
	log_debug(1, "%s: stage=%s delayed to mail: %s",
	          s->queue_id ? s->queue_id : "NOQUEUE", stage_name(stage), why);
}

static bool
is_held(const session *s, enum stage stage)
{
	for (size_t i = 0; i < s->n_held; i++)
		if (s->held[i].stage == stage)
			return true;
	return false;
}

/*
 * May this stage hand its rules on to MAIL FROM instead of waiting? A
 * session-wide stage that can reply, when MAIL FROM can (negotiation makes
 * it so when session_stage_wait is shorter than the stage's budget and
 * connect or HELO has expensive rules).
 */
static bool
may_delay(const session *s, enum stage stage)
{
	return may_delay_stage(s->params, stage) && can_reply(s, stage) &&
	       can_reply(s, STAGE_MAIL) && s->n_held < HELD_MAX;
}

/*
 * One stage: the session limits first, then the rules. A stage that cannot
 * reply still runs its rules for tag, quarantine and log.
 */
static void
decide_stage(session *s, enum stage stage, session_reply *r)
{
	const rule *hit;
	rules_facts f;
	rules_expensive x;
	rules_eval_info own, *info = &own;
	rules_run *run;
	bool follow, delay, paused = false;

	s->stage = stage;
	pick_up_queue_id(s);
	if (s->hung_up)
		return;
	/* MAIL FROM, or a stage come again (a second HELO): delayed ones first. */
	if (s->n_held > 0 && (!stage_get(stage)->session_wide || is_held(s, stage))) {
		decide_held(s, r);
		if (r->answer != SESSION_CONTINUE || s->hung_up)
			return;
	}
	if (s->errors >= (unsigned long long)s->params->error_limit &&
	    can_reply(s, stage)) {
		set_reply(r, SESSION_TEMPFAIL, SESSION_ERROR_LIMIT_CODE,
		          SESSION_ERROR_LIMIT_ECODE, SESSION_ERROR_LIMIT_TEXT);
		issued(s, "error_limit", r);
		return;
	}
	if (s->session_accepted || s->message_accepted) {
		r->answer = accepted_answer(s);
		return;
	}
	fill_facts(s, &f);
	/* An earlier stage waits: this one's rules come after it, at MAIL FROM
	   (even rules that cannot reply: a welcome list before them wins). */
	follow = s->n_held > 0 && stage_get(stage)->session_wide &&
	         s->n_held < HELD_MAX &&
	         rules_stage_used(s->rules, stage);
	delay = follow || may_delay(s, stage);
	if (delay) /* the run points at its info: where it will stay if held */
		info = &s->held[s->n_held].info;
	rules_eval_info_init(info);
	expensive_for(s, stage, &x);
	run = rules_run_start(s->rules, stage, &f, &x, info);
	if (follow) {
		hold(s, stage, run, "an earlier stage is delayed");
		return;
	}
	s->info = info; /* $rbl_* for tags in visit() */
	hit = rules_run_go(run, &f,
	                   delay ? budget_deadline(budget_now_ms(),
	                                           s->params->session_stage_wait)
	                         : RULES_NO_PAUSE,
	                   visit, s, &paused);
	s->info = NULL;
	if (paused) {
		hold(s, stage, run, "a lookup is not in yet");
		return;
	}
	rules_run_end(run);
	conclude(s, stage, hit, info, r);
	rules_eval_info_free(info);
}

/*
 * Under stress, the expensive checks the calm personality has at a stage the
 * session reached did not run, whatever their rule's mode: say so in the
 * header, the log line and the counters (milter-stress.conf(5), "The stress
 * header").
 */
static void
note_calm_skipped(session *s, enum stage stage)
{
	unsigned calm;

	if (!s->stress.stressed)
		return;
	calm = rules_calm_costs(conf_rules(s->conf, false), stage);
	if (stage_get(stage)->session_wide)
		s->skipped_session |= calm;
	else
		s->skipped |= calm;
}

static void
run_stage(session *s, enum stage stage, session_reply *r)
{
	long long t0 = metrics_now_ns();

	note_calm_skipped(s, stage);
	decide_stage(s, stage, r);
	metrics_stage_time(stage, metrics_now_ns() - t0);
}

/* ---- client history and the personality table ---- */

/* A transaction's outcome to the write-behind queue; never waits. */
static void
note_history(session *s, bool accepted)
{
	const history_provider *hp = runtime_history(s->rt);
	history_delta d = {accepted ? 1 : 0, accepted ? 0 : 1};

	s->msg_refused = false;
	if (hp != NULL && s->client_addr != NULL)
		hp->note(hp->self, s->client_addr, &d);
}

/* known or unknown, within history_read_budget, with this personality's thresholds. */
static void
read_history(session *s)
{
	const history_provider *hp = runtime_history(s->rt);
	const struct conf_values *p = s->params;
	history_thresholds t = {p->history_known_messages, p->history_known_refusals,
	                        p->history_known_time / 1000};
	history_record rec;

	if (hp == NULL)
		return;
	s->persona.client =
	        hp->lookup(hp->self, s->client_addr,
	                   budget_deadline(budget_now_ms(), p->history_read_budget),
	                   &rec) == HISTORY_FOUND &&
	                        history_known(&rec, (uint64_t)time(NULL), &t)
	                ? "known"
	                : "unknown";
}

/*
 * The personality table of the current personality at connect (or at MAIL
 * FROM, for the rest of the session): a matching personality rule that
 * names the other personality switches the session to it. -o stress=...
 * pins one personality in both slots of the snapshot, so there is nothing
 * to switch to.
 */
static void
choose_personality(session *s, enum stage stage)
{
	rules_facts f;
	const rule *r;
	bool to, forced;

	if (conf_stress_forced(s->conf, &forced))
		return;
	fill_facts(s, &f);
	if ((r = rules_personality(s->rules, stage, &f)) == NULL)
		return;
	to = rule_action(r)->to_stress;
	log_debug(1, "%s: personality rule %s matched at %s: %s",
	          s->queue_id ? s->queue_id : "NOQUEUE", rule_name(r), stage_name(stage),
	          to ? "stress" : "normal");
	if (to == s->stress.stressed)
		return;
	s->stress.stressed = to;
	s->params = conf_personality(s->conf, to);
	s->rules = conf_rules(s->conf, to);
	s->persona.rule = rule_name(r);
	s->persona.at = stage;
}

/* ---- events ---- */

/* stress_sources of a snapshot (validated at load). */
static unsigned
stress_sources_of(const conf *c)
{
	const char *text = conf_param_text(c, false, "stress_sources");
	strbuf why = STRBUF_INIT;
	unsigned mask = 0;

	(void)stress_sources_parse(text != NULL ? text : "", &mask, &why);
	strbuf_free(&why);
	return mask;
}

static enum stress_source
load_stress_source(const load_verdict *v)
{
	return v->source == LOAD_LATENCY ? STRESS_SRC_LATENCY : STRESS_SRC_SESSIONS;
}

/* At connect: the macro, the switch, -o stress=, and the load of its service. */
static stress_state
decide_stress(session *s)
{
	stress_state st = stress_decide(s->conf, runtime_stress(s->rt), s->macro, s->macro_ctx);
	load_verdict v;
	bool on = load_check(runtime_load(s->rt), s->daemon_name, budget_now_ms(), &v);

	return stress_with_load(st, stress_sources_of(s->conf), on, load_stress_source(&v));
}

bool
session_known_at_negotiation(const conf *c, runtime *rt, stress_state *st)
{
	enum stress_force force = runtime_stress(rt);
	unsigned sources = stress_sources_of(c);
	load_verdict v;
	bool forced;

	if (conf_stress_forced(c, &forced)) {
		*st = (stress_state){forced, STRESS_SRC_FORCED};
		return true;
	}
	if (force != STRESS_FORCE_NONE) {
		*st = (stress_state){force == STRESS_FORCE_ON, STRESS_SRC_CONTROL};
		return true;
	}
	if ((sources & (STRESS_USE_SESSIONS | STRESS_USE_LATENCY)) &&
	    load_check_all(runtime_load(rt), budget_now_ms(), &v)) {
		*st = (stress_state){true, load_stress_source(&v)};
		return true;
	}
	if (sources == 0) {
		*st = (stress_state){false, STRESS_SRC_NONE};
		return true;
	}
	return false;
}

void
session_preset_stress(session *s, stress_state st)
{
	s->preset = true;
	s->preset_stress = st;
}

void
session_on_connect(session *s, session_reply *r)
{
	s->daemon_name = dup_or_null(macro(s, "{daemon_name}"));
	s->load_slot = load_begin(runtime_load(s->rt), s->daemon_name, budget_now_ms());
	s->stress = s->preset ? s->preset_stress : decide_stress(s);
	s->persona.decided = s->stress;
	metrics_session(s->stress.stressed, s->stress.source);
	s->params = conf_personality(s->conf, s->stress.stressed);
	s->rules = conf_rules(s->conf, s->stress.stressed);
	read_history(s);
	choose_personality(s, STAGE_CONNECT);
	if (log_verbose() >= 1) {
		strbuf line = STRBUF_INIT;

		strbuf_puts(&line, "connect from ");
		session_format_client(s, &line);
		strbuf_puts(&line, " stress=");
		personality_format_log(&s->stress, &s->persona, &line);
		log_msg(LOG_INFO, "%s", line.s);
		strbuf_free(&line);
	}
	run_stage(s, STAGE_CONNECT, r);
}

void
session_on_helo(session *s, const char *helo, session_reply *r)
{
	replace(&s->helo, helo);
	run_stage(s, STAGE_HELO, r);
}

/* The scanners this message's end-of-message rules will ask, with a socket. */
static unsigned
scans_wanted(const session *s)
{
	unsigned kinds = rules_stage_scans(s->rules, STAGE_EOM, s->stress.stressed);
	const scan_provider *p;

	if (kinds == 0 || s->session_accepted || s->message_accepted ||
	    (p = runtime_scan(s->rt)) == NULL)
		return 0;
	return kinds & p->configured(p->self);
}

static void
scan_start(session *s)
{
	unsigned kinds = scans_wanted(s);

	if (kinds != 0)
		s->mscan = msgscan_start(kinds, (size_t)s->params->scan_spool_memory,
		                         s->params->scan_size_limit,
		                         s->params->scan_spool_directory);
}

void
session_on_mail(session *s, const char *from, session_reply *r)
{
	long long busy = s->busy_ns;

	end_message(s);
	s->busy_ns = busy; /* time spent before MAIL belongs to this message */
	s->in_message = true;
	replace(&s->from, from);
	if (s->persona.rule == NULL || s->persona.at != STAGE_MAIL)
		choose_personality(s, STAGE_MAIL);
	run_stage(s, STAGE_MAIL, r);
	if (r->answer == SESSION_CONTINUE)
		scan_start(s);
}

void
session_on_rcpt(session *s, const char *rcpt, session_reply *r)
{
	replace(&s->rcpt, rcpt);
	s->stage = STAGE_RCPT;
	if (!s->hung_up && !s->session_accepted && !s->message_accepted &&
	    s->params->rcpt_limit > 0 &&
	    s->n_rcpt >= (unsigned long long)s->params->rcpt_limit) {
		pick_up_queue_id(s);
		set_reply(r, SESSION_TEMPFAIL, SESSION_RCPT_LIMIT_CODE,
		          SESSION_RCPT_LIMIT_ECODE, SESSION_RCPT_LIMIT_TEXT);
		if (s->n_over++ == 0)
			issued(s, "rcpt_limit", r);
		else /* logged by rcpt_limit_summary() */
			tempfail_unlogged(s, "rcpt_limit");
	} else {
		run_stage(s, STAGE_RCPT, r);
	}
	if (r->answer == SESSION_CONTINUE || r->answer == SESSION_ACCEPT) {
		if (s->n_rcpt++ == 0)
			replace(&s->first_rcpt, rcpt);
		if (s->mscan != NULL)
			msgscan_rcpt(s->mscan, rcpt);
	}
	replace(&s->rcpt, NULL);
}

void
session_on_data(session *s, session_reply *r)
{
	rcpt_limit_summary(s);
	run_stage(s, STAGE_DATA, r);
}

void
session_on_header(session *s, const char *name, const char *value, session_reply *r)
{
	const char *ours = s->params->stress_header;
	rules_header h = {name, value};

	if (reads_forged(s->params) && strcasecmp(name, ours) == 0)
		s->n_forged++;
	if (rules_need_header_set(s->rules))
		headers_add(s, name, value);
	if (s->mscan != NULL)
		msgscan_header(s->mscan, name, value);
	s->header = &h;
	run_stage(s, STAGE_HEADER, r);
	s->header = NULL;
}

void
session_on_eoh(session *s, session_reply *r)
{
	run_stage(s, STAGE_EOH, r);
}

/* Does any rule of this personality still need body bytes? */
static bool
body_wanted(const session *s)
{
	return rules_body_set(s->rules) != NULL && !s->session_accepted &&
	       !s->message_accepted &&
	       (rules_stage_expensive(s->rules, STAGE_BODY, s->stress.stressed) ||
	        rules_stage_expensive(s->rules, STAGE_EOM, s->stress.stressed));
}

static void
body_feed(session *s, const unsigned char *chunk, size_t len)
{
	if (s->scan == NULL) {
		s->scan = bodyscan_start(rules_body_set(s->rules),
		                         (size_t)s->params->body_scan_limit,
		                         SESSION_BODY_LINE_CAP, SESSION_BODY_OVERLAP);
		s->body_deadline =
		        budget_deadline(budget_now_ms(), s->params->body_budget);
	}
	if (bodyscan_feed(s->scan, chunk, len) != BODYSCAN_MORE) {
		s->body_done = true;
	} else if (budget_expired(s->body_deadline)) {
		bodyscan_stats st;

		bodyscan_get_stats(s->scan, &st);
		log_msg(LOG_WARNING,
		        "%s: stage=body budget ran out after %lld ms, %zu bytes",
		        s->queue_id ? s->queue_id : "NOQUEUE",
		        (long long)s->params->body_budget, (size_t)st.bytes);
		s->skipped |= RULES_COST_BODY;
		s->body_done = true;
		metrics_budget_expired(STAGE_BODY);
	}
}

void
session_on_body(session *s, const unsigned char *chunk, size_t len, session_reply *r)
{
	bool first = !s->body_seen;

	s->body_seen = true;
	if (!s->body_done && body_wanted(s))
		body_feed(s, chunk, len);
	else
		s->body_done = true;
	if (s->mscan != NULL && msgscan_wants_body(s->mscan))
		msgscan_body(s->mscan, chunk, len);
	/* Body rules run on the first chunk and whenever the scanner knows more. */
	if (first || s->scan != NULL)
		run_stage(s, STAGE_BODY, r);
	/* Negotiation asked for SKIP where body rules or scanners could read. */
	if (r->answer == SESSION_CONTINUE && s->body_done &&
	    (rules_body_set(s->rules) != NULL || rules_scans(s->rules) != 0) &&
	    (s->mscan == NULL || !msgscan_wants_body(s->mscan)))
		r->answer = SESSION_SKIP;
}

static void
add_change(session_changes *c, const char *name, const char *value)
{
	c->add = ms_xrealloc(c->add, (c->n_add + 1) * sizeof *c->add);
	c->add[c->n_add].name = ms_xstrdup(name);
	c->add[c->n_add].value = ms_xstrdup(value);
	c->n_add++;
}

static void
collect_changes(session *s, session_changes *c)
{
	const struct conf_values *p = s->params;

	if (p->stress_header[0] != '\0') {
		strbuf value = STRBUF_INIT;

		c->forged_name = p->stress_header;
		c->n_forged = s->n_forged;
		if (s->stress.stressed || p->stress_header_always ||
		    (s->skipped | s->skipped_session) != 0) {
			personality_format_header(&s->stress, &s->persona, &value);
			if ((s->skipped | s->skipped_session) != 0) {
				strbuf_puts(&value, "; skipped=");
				rules_format_costs(s->skipped | s->skipped_session, &value);
			}
			add_change(c, p->stress_header, value.s);
		}
		strbuf_free(&value);
	}
	for (size_t i = 0; i < s->session_tags.n; i++)
		add_change(c, s->session_tags.v[i].name, s->session_tags.v[i].value);
	for (size_t i = 0; i < s->tags.n; i++)
		add_change(c, s->tags.v[i].name, s->tags.v[i].value);
	c->quarantine = dup_or_null(s->quarantine);
}

/* Every scanner the eom rules ask, at once, within eom_budget. */
static void
scan_run(session *s)
{
	const struct conf_values *p = s->params;
	const long long budgets[SCAN_N] = {p->clamd_budget, p->spamd_budget,
	                                   p->rspamd_budget};
	msgscan_env env = {
	        .queue_id = s->queue_id,
	        .ip = s->client_addr,
	        .helo = s->helo,
	        .from = s->from,
	        .user = macro(s, "{auth_authen}"),
	        .hostname = s->client_name,
	        .settings_id = p->rspamd_settings_id,
	};
	unsigned lost;

	pick_up_queue_id(s);
	env.queue_id = s->queue_id;
	/* The scans block this worker: libmilter gets another (F19). */
	runtime_will_block(s->rt);
	msgscan_run(s->mscan, runtime_scan(s->rt), &env,
	            budget_deadline(budget_now_ms(), p->eom_budget), budgets);
	lost = msgscan_lost(s->mscan);
	for (unsigned k = 0; k < SCAN_N; k++)
		if (lost & SCAN_BIT(k))
			s->skipped |= RULES_COST_OF_SCAN(k);
}

void
session_on_eom(session *s, session_reply *r, session_changes *changes)
{
	if (s->scan != NULL && !s->body_done)
		bodyscan_finish(s->scan);
	if (s->mscan != NULL && !s->message_accepted && !s->session_accepted)
		scan_run(s);
	run_stage(s, STAGE_EOM, r);
	if (r->answer == SESSION_CONTINUE || r->answer == SESSION_ACCEPT) {
		collect_changes(s, changes);
		r->answer = SESSION_ACCEPT;
		note_history(s, true);
		log_line(s, "eom", s->accepted_by,
		         changes->quarantine ? "quarantine" : "accept");
		/* An accept by a rule was counted at its stage. */
		if (s->accepted_by == NULL)
			metrics_verdict(STAGE_EOM,
			                changes->quarantine ? "quarantine" : "accept", NULL);
	}
	count_message(s);
	end_message(s);
}

void
session_on_abort(session *s)
{
	rcpt_limit_summary(s);
	if (s->in_message && !s->message_logged)
		log_line(s, stage_name(s->stage), NULL, "aborted");
	count_message(s);
	end_message(s);
}
