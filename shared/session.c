/* session - per-connection state, negotiation and the MTA's events; see session.h. */
#include "config.h"

#include "session-int.h"
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

/* Postfix's own wording for the limit it enforces. */
#define SESSION_RCPT_LIMIT_CODE "452"
#define SESSION_RCPT_LIMIT_ECODE "4.5.3"
#define SESSION_RCPT_LIMIT_TEXT "Error: too many recipients"
/* Body scanning: lines up to 64 KiB whole, longer ones in overlapping pieces. */
#define SESSION_BODY_LINE_CAP 65536
#define SESSION_BODY_OVERLAP 1024

/* ---- small helpers ---- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? ms_xstrdup(s) : NULL;
}

void
sess_replace(char **slot, const char *value)
{
	char *old = *slot;

	*slot = dup_or_null(value);
	free(old);
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
bool
sess_may_delay_stage(const struct conf_values *p, enum stage stage)
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
			if (sess_may_delay_stage(conf_personality(c, stressed), (enum stage)st) &&
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
		sess_log_line(s, "rcpt", "rcpt_limit", action.s);
		strbuf_free(&action);
	}
	s->n_over = 0;
}

static void
end_message(session *s)
{
	rcpt_limit_summary(s);
	if (s->msg_refused)
		sess_note_history(s, false);
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
	sess_replace(&s->queue_id, NULL);
	sess_replace(&s->from, NULL);
	sess_replace(&s->first_rcpt, NULL);
	sess_replace(&s->rcpt, NULL);
	sess_replace(&s->quarantine, NULL);
	headers_clear(s);
	taglist_clear(&s->tags);
}

void
session_free(session *s)
{
	if (s == NULL)
		return;
	end_message(s);
	sess_drop_held(s, 0);
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
long long
sess_busy_ns(const session *s)
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
void
sess_pick_up_queue_id(session *s)
{
	const char *qid = macro(s, "i");

	if (qid != NULL && qid[0] != '\0' &&
	    (s->queue_id == NULL || strcmp(s->queue_id, qid) != 0))
		sess_replace(&s->queue_id, qid);
}

/* ---- events ---- */

void
session_on_connect(session *s, session_reply *r)
{
	s->daemon_name = dup_or_null(macro(s, "{daemon_name}"));
	s->load_slot = load_begin(runtime_load(s->rt), s->daemon_name, budget_now_ms());
	s->stress = s->preset ? s->preset_stress : sess_decide_stress(s);
	s->persona.decided = s->stress;
	metrics_session(s->stress.stressed, s->stress.source);
	s->params = conf_personality(s->conf, s->stress.stressed);
	s->rules = conf_rules(s->conf, s->stress.stressed);
	sess_read_history(s);
	sess_choose_personality(s, STAGE_CONNECT);
	if (log_verbose() >= 1) {
		strbuf line = STRBUF_INIT;

		strbuf_puts(&line, "connect from ");
		session_format_client(s, &line);
		strbuf_puts(&line, " stress=");
		personality_format_log(&s->stress, &s->persona, &line);
		log_msg(LOG_INFO, "%s", line.s);
		strbuf_free(&line);
	}
	sess_run_stage(s, STAGE_CONNECT, r);
}

void
session_on_helo(session *s, const char *helo, session_reply *r)
{
	sess_replace(&s->helo, helo);
	sess_run_stage(s, STAGE_HELO, r);
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
	sess_replace(&s->from, from);
	if (s->persona.rule == NULL || s->persona.at != STAGE_MAIL)
		sess_choose_personality(s, STAGE_MAIL);
	sess_run_stage(s, STAGE_MAIL, r);
	if (r->answer == SESSION_CONTINUE)
		scan_start(s);
}

void
session_on_rcpt(session *s, const char *rcpt, session_reply *r)
{
	sess_replace(&s->rcpt, rcpt);
	s->stage = STAGE_RCPT;
	if (!s->hung_up && !s->session_accepted && !s->message_accepted &&
	    s->params->rcpt_limit > 0 &&
	    s->n_rcpt >= (unsigned long long)s->params->rcpt_limit) {
		sess_pick_up_queue_id(s);
		sess_set_reply(r, SESSION_TEMPFAIL, SESSION_RCPT_LIMIT_CODE,
		               SESSION_RCPT_LIMIT_ECODE, SESSION_RCPT_LIMIT_TEXT);
		if (s->n_over++ == 0)
			sess_issued(s, "rcpt_limit", r);
		else /* logged by rcpt_limit_summary() */
			sess_tempfail_unlogged(s, "rcpt_limit");
	} else {
		sess_run_stage(s, STAGE_RCPT, r);
	}
	if (r->answer == SESSION_CONTINUE || r->answer == SESSION_ACCEPT) {
		if (s->n_rcpt++ == 0)
			sess_replace(&s->first_rcpt, rcpt);
		if (s->mscan != NULL)
			msgscan_rcpt(s->mscan, rcpt);
	}
	sess_replace(&s->rcpt, NULL);
}

void
session_on_data(session *s, session_reply *r)
{
	rcpt_limit_summary(s);
	sess_run_stage(s, STAGE_DATA, r);
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
	sess_run_stage(s, STAGE_HEADER, r);
	s->header = NULL;
}

void
session_on_eoh(session *s, session_reply *r)
{
	sess_run_stage(s, STAGE_EOH, r);
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
		sess_run_stage(s, STAGE_BODY, r);
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

	sess_pick_up_queue_id(s);
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
	sess_run_stage(s, STAGE_EOM, r);
	if (r->answer == SESSION_CONTINUE || r->answer == SESSION_ACCEPT) {
		collect_changes(s, changes);
		r->answer = SESSION_ACCEPT;
		sess_note_history(s, true);
		sess_log_line(s, "eom", s->accepted_by,
		              changes->quarantine ? "quarantine" : "accept");
		/* An accept by a rule was counted at its stage. */
		if (s->accepted_by == NULL)
			metrics_verdict(STAGE_EOM,
			                changes->quarantine ? "quarantine" : "accept", NULL);
	}
	sess_count_message(s);
	end_message(s);
}

void
session_on_abort(session *s)
{
	rcpt_limit_summary(s);
	if (s->in_message && !s->message_logged)
		sess_log_line(s, stage_name(s->stage), NULL, "aborted");
	sess_count_message(s);
	end_message(s);
}
