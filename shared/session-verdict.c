/*
 * session-verdict - rule evaluation of a session; see session-int.h.
 *
 * A stage runs: the delayed (held) connect and HELO stages first, the
 * session limits (error_limit), then the stage's rules with their
 * expensive checks within its budget; a matching rule's verdict becomes
 * the reply, tag, quarantine and log act as the rules are tried, and a
 * check that could not finish takes budget_action, dns_error_action or
 * scan_error_action. Connect and HELO may hand their run on to MAIL FROM
 * (DELAYED STAGES in session.h). Also here: the counters over every
 * session (session_get_counts()).
 */
#include "config.h"

#include "session-int.h"
#include "budget.h"
#include "log.h"
#include "metrics.h"
#include "msgscan.h"

#include <stdio.h>
#include <string.h>

/* Postfix's own wording for the limit it enforces. */
#define SESSION_ERROR_LIMIT_CODE "421"
#define SESSION_ERROR_LIMIT_ECODE "4.7.0"
#define SESSION_ERROR_LIMIT_TEXT "Error: too many errors"
/* A check that could not finish: Postfix's wording for a failed lookup. */
#define SESSION_UNSURE_CODE "451"
#define SESSION_UNSURE_ECODE "4.3.0"
#define SESSION_UNSURE_TEXT "Temporary lookup failure"

/* ---- counters ---- */

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
void
sess_count_message(const session *s)
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

void
sess_set_reply(session_reply *r, enum session_answer answer, const char *code,
               const char *ecode, const char *text)
{
	r->answer = answer;
	snprintf(r->code, sizeof r->code, "%s", code);
	snprintf(r->ecode, sizeof r->ecode, "%s", ecode);
	strbuf_reset(&r->text);
	strbuf_puts(&r->text, text);
}

/* A reject or tempfail went out: log it and count it against error_limit. */
void
sess_issued(session *s, const char *rule_id, const session_reply *r)
{
	strbuf action = STRBUF_INIT;

	sess_describe_reply(r, &action);
	sess_log_line(s, stage_name(s->stage), rule_id, action.s);
	strbuf_free(&action);
	metrics_verdict(s->stage, sess_answer_name(r->answer), rule_id);
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
			sess_note_history(s, false);
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
void
sess_tempfail_unlogged(const session *s, const char *rule_id)
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
	sess_log_line(s, stage_name(s->stage), rule_name(r), action.s);
	strbuf_free(&action);
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
	sess_replace(&s->quarantine, reason.s);
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

void
sess_fill_facts(const session *s, rules_facts *f)
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
			sess_log_line(s, stage_name(s->stage), rule_name(hit), "accept");
		return;
	case RULES_TEMPFAIL:
	case RULES_REJECT: {
		strbuf text = STRBUF_INIT;

		expand_for(s, hit, a->text, &text);
		sess_set_reply(r,
		               a->kind == RULES_REJECT ? SESSION_REJECT : SESSION_TEMPFAIL,
		               a->code, a->ecode, text.s);
		strbuf_free(&text);
		sess_issued(s, rule_name(hit), r);
		return;
	}
	case RULES_DISCARD:
		r->answer = SESSION_DISCARD;
		sess_issued(s, rule_name(hit), r);
		return;
	default: /* continue: this stage is done, the next ones still run */
		return;
	}
}

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
	sess_set_reply(r, SESSION_TEMPFAIL, SESSION_UNSURE_CODE, SESSION_UNSURE_ECODE,
	               SESSION_UNSURE_TEXT);
	sess_issued(s, why, r);
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
		sess_log_line(s, stage_name(stage), "nothing_left", "accept");
		metrics_verdict(stage, "accept", "nothing_left");
	}
	if (r->answer != SESSION_CONTINUE && r->answer != SESSION_ACCEPT &&
	    stage != STAGE_RCPT && s->in_message)
		s->message_logged = true;
}

/* Abandons the delayed stages from the from-th on. */
void
sess_drop_held(session *s, size_t from)
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
		sess_fill_facts(s, &f);
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
	sess_drop_held(s, i);
	s->n_held = 0;
	s->stage = now;
}

/*
 * Keeps a connect or HELO stage's run for MAIL FROM; its lookups are out.
 * Its info is already the next free slot's (decide_stage() ran it there).
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
	return sess_may_delay_stage(s->params, stage) && can_reply(s, stage) &&
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
	sess_pick_up_queue_id(s);
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
		sess_set_reply(r, SESSION_TEMPFAIL, SESSION_ERROR_LIMIT_CODE,
		               SESSION_ERROR_LIMIT_ECODE, SESSION_ERROR_LIMIT_TEXT);
		sess_issued(s, "error_limit", r);
		return;
	}
	if (s->session_accepted || s->message_accepted) {
		r->answer = accepted_answer(s);
		return;
	}
	sess_fill_facts(s, &f);
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

void
sess_run_stage(session *s, enum stage stage, session_reply *r)
{
	long long t0 = metrics_now_ns();

	note_calm_skipped(s, stage);
	decide_stage(s, stage, r);
	metrics_stage_time(stage, metrics_now_ns() - t0);
}
