/*
 * session-persona - which personality a session has; see session-int.h.
 *
 * The stress decision at connect (the stress macro, the runtime switch,
 * -o stress=, the load of the client's service, as stress_sources says), or
 * before it at negotiation when it cannot change; the client's history
 * (known or unknown, and each transaction's outcome written behind); and
 * the personality rules that may switch the session to the other
 * personality at connect or MAIL FROM.
 */
#include "config.h"

#include "session-int.h"
#include "budget.h"
#include "load.h"
#include "log.h"

#include <stdint.h>
#include <time.h>

/* ---- client history and the personality table ---- */

/* A transaction's outcome to the write-behind queue; never waits. */
void
sess_note_history(session *s, bool accepted)
{
	const history_provider *hp = runtime_history(s->rt);
	history_delta d = {accepted ? 1 : 0, accepted ? 0 : 1};

	s->msg_refused = false;
	if (hp != NULL && s->client_addr != NULL)
		hp->note(hp->self, s->client_addr, &d);
}

/* known or unknown, within history_read_budget, with this personality's thresholds. */
void
sess_read_history(session *s)
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
void
sess_choose_personality(session *s, enum stage stage)
{
	rules_facts f;
	const rule *r;
	bool to, forced;

	if (conf_stress_forced(s->conf, &forced))
		return;
	sess_fill_facts(s, &f);
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

/* ---- the stress decision ---- */

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
stress_state
sess_decide_stress(session *s)
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
