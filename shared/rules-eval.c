/* rules-eval - a stage's rules against a session, expensive checks through providers; see
 * rules.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "budget.h"
#include "provider.h"
#include "rules-int.h"

/* One evaluation of a stage. */
typedef struct eval_ctx {
	const rules_table *t;
	enum stage stage;
	const rules_facts *f;
	const rules_expensive *x;
	rules_eval_info *info;
	/* What each DNS row looks up, NULL for nothing (unknown, not a name). */
	const char *subject[RULES_MAX_CHECKS];
	strbuf subject_buf[RULES_MAX_CHECKS];
	dnsbl_query *q;
	size_t n_q;
	provider_call *call; /* q[]'s lookups, from the DNS provider */
	bool *waited;        /* q[i] is in: the provider's wait() returned for it */
	/* The current rule's first listing, for $rbl_*. */
	const dnsbl_query *hit;
	const check_desc *hit_kind;
	long long pause_after; /* a lookup not in by then pauses the run; see rules.h */
	bool blocked;
} eval_ctx;

/* A stage's evaluation that may pause and go on later; see rules.h. */
struct rules_run {
	eval_ctx e;
	rules_expensive x; /* the caller's, copied: e.x points here */
	size_t next;       /* the rule to try next */
};

enum tri { T_NO, T_YES, T_UNKNOWN };

static void
find_subjects(eval_ctx *e)
{
	for (unsigned k = 0; k < rules_n_checks; k++)
		if (rules_checks[k].subject != NULL)
			e->subject[k] = rules_checks[k].subject(e->f, &e->subject_buf[k]);
}

/* Under stress only a rule in MODE stress runs its expensive checks. */
static bool
runs_expensive(const rule *r, bool stressed)
{
	return !stressed || r->mode == MODE_STRESS;
}

static dnsbl_query *
find_query(const eval_ctx *e, enum dnsbl_kind qkind, const char *subject,
           const char *zone)
{
	size_t i;

	for (i = 0; i < e->n_q; i++)
		if (e->q[i].kind == qkind && strcmp(e->q[i].zone, zone) == 0 &&
		    strcasecmp(e->q[i].subject, subject) == 0)
			return &e->q[i];
	return NULL;
}

/* Every lookup the stage's runnable rules need, each name and zone once. */
static void
collect_queries(eval_ctx *e)
{
	const rules_table *t = e->t;
	size_t i, j, k;

	for (i = 0; i < t->stage_n[e->stage]; i++) {
		const rule *r = t->stage_v[e->stage][i];

		if (!(r->costs & RULES_COST_DNSBL) || !runs_expensive(r, e->f->stressed))
			continue;
		for (j = 0; j < r->n_checks; j++) {
			const check *ck = &r->checks[j];
			const check_desc *d = &rules_checks[ck->kind];
			const char *subject = e->subject[ck->kind];

			if (!(d->cost & RULES_COST_DNSBL) || subject == NULL)
				continue;
			for (k = 0; k < ck->n_values; k++) {
				if (find_query(e, d->qkind, subject, ck->v[k].s) != NULL)
					continue;
				e->q = rules_grow(e->q, e->n_q, sizeof *e->q);
				/* No filter: each value applies its own. */
				dnsbl_query_init(&e->q[e->n_q], d->qkind, subject,
				                 ck->v[k].s, NULL);
				/* The list's reason costs a second round trip. */
				e->q[e->n_q++].no_txt = !t->want_rbl_reason;
			}
		}
	}
}

/* Sends all of them at once; each is waited for when a rule needs it. */
static void
start_queries(eval_ctx *e)
{
	if (e->n_q == 0)
		return;
	e->waited = ms_xcalloc(e->n_q, sizeof *e->waited);
	e->call = e->x->dns->start(e->x->dns->self, e->q, e->n_q, e->x->deadline_ms);
	e->info->queries += (unsigned)e->n_q;
}

/* Waits for q (at most until the deadline) the first time a rule needs it. */
static void
need_query(eval_ctx *e, const dnsbl_query *q)
{
	rules_eval_info *info = e->info;
	size_t i = (size_t)(q - e->q);
	long long t0;

	if (e->waited[i])
		return;
	if (e->pause_after != RULES_NO_PAUSE &&
	    !e->x->dns->ready(e->call, i, e->pause_after)) {
		e->blocked = true;
		return;
	}
	t0 = budget_now_ms();
	e->x->dns->wait(e->call, i);
	info->dns_ms += budget_now_ms() - t0;
	e->waited[i] = true;
	switch (q->status) {
	case DNSBL_TIMEOUT:
		if (info->timed_out == 0)
			strbuf_printf(&info->timeout_what, "%s after %lld ms", q->zone,
			              q->ms);
		info->timed_out |= RULES_COST_DNSBL;
		break;
	case DNSBL_ERROR:
		if (info->failed == 0)
			strbuf_printf(&info->failed_what, "%s (%s)", q->zone,
			              q->err.len > 0 ? strbuf_str(&q->err) : "error");
		info->failed |= RULES_COST_DNSBL;
		break;
	case DNSBL_SKIPPED:
		info->skipped |= RULES_COST_DNSBL;
		break;
	default:
		break;
	}
}

/* A listing counts when one of its A records passes the value's filter. */
static enum tri
zone_result(const dnsbl_query *q, const value *v)
{
	unsigned i;

	switch (q->status) {
	case DNSBL_LISTED:
		if (v->filter == NULL)
			return T_YES;
		for (i = 0; i < q->naddr; i++)
			if (dnsbl_filter_match(v->filter, q->addr[i]))
				return T_YES;
		return T_NO;
	case DNSBL_NOT_LISTED:
		return T_NO;
	default:
		return T_UNKNOWN;
	}
}

static enum tri
dns_check(eval_ctx *e, const rule *r, const check *ck)
{
	const check_desc *d = &rules_checks[ck->kind];
	const char *subject = e->subject[ck->kind];
	enum tri res = T_NO;
	size_t i;

	if (e->x == NULL || e->x->dns == NULL || !runs_expensive(r, e->f->stressed)) {
		e->info->skipped |= RULES_COST_DNSBL;
		return T_UNKNOWN;
	}
	if (subject == NULL)
		return T_NO;
	for (i = 0; i < ck->n_values; i++) {
		const dnsbl_query *q = find_query(e, d->qkind, subject, ck->v[i].s);
		enum tri one = T_UNKNOWN;

		if (q != NULL) {
			need_query(e, q);
			if (e->blocked)
				return T_UNKNOWN;
			one = zone_result(q, &ck->v[i]);
		}

		if (one == T_YES) {
			if (e->hit == NULL && !ck->negate) {
				e->hit = q;
				e->hit_kind = d;
			}
			return T_YES;
		}
		if (one == T_UNKNOWN)
			res = T_UNKNOWN;
	}
	return res;
}

static enum tri
body_check(eval_ctx *e, const rule *r, const check *ck)
{
	size_t i;

	if (e->x == NULL || e->x->body == NULL || !runs_expensive(r, e->f->stressed)) {
		e->info->skipped |= RULES_COST_BODY;
		return T_UNKNOWN;
	}
	for (i = 0; i < ck->n_values; i++)
		if (bodyscan_matched(e->x->body, ck->v[i].body_idx))
			return T_YES;
	return T_NO;
}

/* A scanner's result, or unknown: skipped, timed out or failed, as info says. */
static enum tri
scan_check(eval_ctx *e, const rule *r, const check *ck)
{
	const check_desc *d = &rules_checks[ck->kind];
	const scan_result *res;

	if (e->x == NULL || e->x->scan == NULL || !runs_expensive(r, e->f->stressed)) {
		e->info->skipped |= d->cost;
		return T_UNKNOWN;
	}
	res = &e->x->scan[d->scan];
	switch (res->status) {
	case SCAN_OK:
		return d->scan_match(e->t, res, ck) ? T_YES : T_NO;
	case SCAN_TIMEOUT:
		e->info->timed_out |= d->cost;
		break;
	case SCAN_ERROR:
		e->info->failed |= d->cost;
		break;
	default:
		e->info->skipped |= d->cost;
		break;
	}
	return T_UNKNOWN;
}

static enum tri
check_eval(eval_ctx *e, const rule *r, const check *ck)
{
	const check_desc *d = &rules_checks[ck->kind];
	check_in in = {e->t, r->stage, e->f, NULL};

	if (d->cost & RULES_COST_SCAN)
		return scan_check(e, r, ck);
	if (d->cost & RULES_COST_DNSBL)
		return dns_check(e, r, ck);
	if (d->cost & RULES_COST_BODY)
		return body_check(e, r, ck);
	if (d->fact != RULES_NO_FACT)
		in.fact = *(const char *const *)(const void *)((const char *)e->f +
		                                               d->fact);
	return d->match(&in, ck) ? T_YES : T_NO;
}

/* An unknown check fails its rule, negated or not. */
static bool
rule_matches(eval_ctx *e, const rule *r)
{
	size_t i;

	e->hit = NULL;
	for (i = 0; i < r->n_checks; i++) {
		enum tri m = check_eval(e, r, &r->checks[i]);

		if (e->blocked)
			return false;
		if (m == T_UNKNOWN || (m == T_YES) == r->checks[i].negate)
			return false;
	}
	return true;
}

static void
set_rbl_vars(const eval_ctx *e)
{
	rules_eval_info *info = e->info;
	const dnsbl_query *q = e->hit;

	strbuf_reset(&info->rbl_domain);
	strbuf_reset(&info->rbl_what);
	strbuf_reset(&info->rbl_reason);
	strbuf_reset(&info->rbl_class);
	/* Strings even when empty: a var() may hand them out as they are. */
	strbuf_append(&info->rbl_domain, "", 0);
	strbuf_append(&info->rbl_what, "", 0);
	strbuf_append(&info->rbl_reason, "", 0);
	strbuf_append(&info->rbl_class, "", 0);
	if (q == NULL)
		return;
	strbuf_puts(&info->rbl_domain, q->zone);
	strbuf_puts(&info->rbl_what, q->subject);
	strbuf_puts(&info->rbl_reason, strbuf_str(&q->txt));
	strbuf_puts(&info->rbl_class, e->hit_kind->rbl_class);
}

void
rules_eval_info_init(rules_eval_info *info)
{
	memset(info, 0, sizeof *info);
	strbuf_init(&info->timeout_what);
	strbuf_init(&info->failed_what);
	strbuf_init(&info->rbl_domain);
	strbuf_init(&info->rbl_what);
	strbuf_init(&info->rbl_reason);
	strbuf_init(&info->rbl_class);
}

void
rules_eval_info_free(rules_eval_info *info)
{
	strbuf_free(&info->timeout_what);
	strbuf_free(&info->failed_what);
	strbuf_free(&info->rbl_domain);
	strbuf_free(&info->rbl_what);
	strbuf_free(&info->rbl_reason);
	strbuf_free(&info->rbl_class);
	rules_eval_info_init(info);
}

static void
info_reset(rules_eval_info *info)
{
	eval_ctx none = {.info = info};

	info->skipped = info->timed_out = info->failed = info->queries = 0;
	info->dns_ms = 0;
	strbuf_reset(&info->timeout_what);
	strbuf_append(&info->timeout_what, "", 0);
	strbuf_reset(&info->failed_what);
	strbuf_append(&info->failed_what, "", 0);
	set_rbl_vars(&none);
}

/* From rule run->next on, in file order, until a verdict, a stop or a pause. */
static const rule *
eval_rules(struct rules_run *run, rules_visit_fn visit, void *ctx)
{
	eval_ctx *e = &run->e;
	const rules_table *t = e->t;

	for (; run->next < t->stage_n[e->stage]; run->next++) {
		const rule *r = t->stage_v[e->stage][run->next];
		bool matched = rule_matches(e, r), stop;

		if (e->blocked) /* tried again from its first check when it goes on */
			return NULL;
		if (matched)
			set_rbl_vars(e);
		stop = visit != NULL && visit(ctx, r, matched);
		if (matched && rules_actions[r->action.kind].verdict) {
			run->next = t->stage_n[e->stage];
			return r;
		}
		if (stop) {
			run->next = t->stage_n[e->stage];
			return NULL;
		}
	}
	return NULL;
}

/* Collects the stage's lookups and sends them; false when there is nothing to run. */
static bool
run_init(struct rules_run *run, const rules_table *t, enum stage stage,
         const rules_facts *f, const rules_expensive *x, rules_eval_info *info)
{
	eval_ctx *e = &run->e;

	info_reset(info);
	memset(run, 0, sizeof *run);
	if (t == NULL || f == NULL || (unsigned)stage >= STAGE_N)
		return false;
	e->t = t;
	e->stage = stage;
	e->f = f;
	e->info = info;
	if (x != NULL) {
		run->x = *x;
		e->x = &run->x;
	}
	for (size_t i = 0; i < RULES_MAX_CHECKS; i++)
		strbuf_init(&e->subject_buf[i]);
	if (e->x != NULL && e->x->dns != NULL) {
		find_subjects(e);
		collect_queries(e);
		start_queries(e);
	}
	e->f = NULL; /* the caller's facts are good for one call */
	return true;
}

static const rule *
run_go(struct rules_run *run, const rules_facts *f, long long pause_after,
       rules_visit_fn visit, void *ctx, bool *paused)
{
	eval_ctx *e = &run->e;
	const rule *r;

	e->f = f;
	e->pause_after = pause_after;
	e->blocked = false;
	r = eval_rules(run, visit, ctx);
	e->f = NULL;
	if (paused != NULL)
		*paused = e->blocked;
	return r;
}

/* The rules are decided: what no rule waited for is abandoned. */
static void
run_free(struct rules_run *run)
{
	eval_ctx *e = &run->e;

	if (e->call != NULL)
		e->x->dns->finish(e->call);
	free(e->waited);
	for (size_t i = 0; i < e->n_q; i++)
		dnsbl_query_free(&e->q[i]);
	free(e->q);
	if (e->t != NULL)
		for (size_t i = 0; i < RULES_MAX_CHECKS; i++)
			strbuf_free(&e->subject_buf[i]);
	memset(run, 0, sizeof *run);
}

const rule *
rules_eval(const rules_table *t, enum stage stage, const rules_facts *f,
           const rules_expensive *x, rules_eval_info *info, rules_visit_fn visit,
           void *ctx)
{
	rules_eval_info mine;
	struct rules_run run;
	const rule *r = NULL;

	if (info == NULL) {
		rules_eval_info_init(&mine);
		info = &mine;
	}
	if (run_init(&run, t, stage, f, x, info))
		r = run_go(&run, f, RULES_NO_PAUSE, visit, ctx, NULL);
	run_free(&run);
	if (info == &mine)
		rules_eval_info_free(&mine);
	return r;
}

rules_run *
rules_run_start(const rules_table *t, enum stage stage, const rules_facts *f,
                const rules_expensive *x, rules_eval_info *info)
{
	rules_run *run = ms_xcalloc(1, sizeof *run);

	if (!run_init(run, t, stage, f, x, info)) {
		free(run);
		return NULL;
	}
	return run;
}

const rule *
rules_run_go(rules_run *run, const rules_facts *f, long long pause_after,
             rules_visit_fn visit, void *ctx, bool *paused)
{
	if (paused != NULL)
		*paused = false;
	if (run == NULL)
		return NULL;
	return run_go(run, f, pause_after, visit, ctx, paused);
}

void
rules_run_end(rules_run *run)
{
	if (run == NULL)
		return;
	run_free(run);
	free(run);
}

const rule *
rules_personality(const rules_table *t, enum stage stage, const rules_facts *f)
{
	eval_ctx e;

	if (t == NULL || (unsigned)stage >= STAGE_N)
		return NULL;
	memset(&e, 0, sizeof e);
	e.t = t;
	e.stage = stage;
	e.f = f;
	for (size_t i = 0; i < t->stage_n[stage]; i++) {
		const rule *r = t->stage_v[stage][i];

		if (r->action.kind == RULES_PERSONALITY && rule_matches(&e, r))
			return r;
	}
	return NULL;
}

bool
rules_may_switch(const rules_table *t, bool stressed)
{
	if (t == NULL)
		return false;
	for (int st = 0; st < STAGE_N; st++)
		for (size_t i = 0; i < t->stage_n[st]; i++) {
			const rule *r = t->stage_v[st][i];

			if (r->action.kind == RULES_PERSONALITY && r->action.to_stress != stressed)
				return true;
		}
	return false;
}

const bodyscan_set *
rules_body_set(const rules_table *t)
{
	return t != NULL ? t->body : NULL;
}

bool
rules_stage_expensive(const rules_table *t, enum stage stage, bool stressed)
{
	size_t i;

	if (t == NULL || (unsigned)stage >= STAGE_N)
		return false;
	for (i = 0; i < t->stage_n[stage]; i++)
		if (t->stage_v[stage][i]->costs != 0 &&
		    runs_expensive(t->stage_v[stage][i], stressed))
			return true;
	return false;
}

/* Questions about a table. */

static unsigned
rule_scans(const rule *r)
{
	unsigned bits = 0;

	for (unsigned k = 0; k < SCAN_N; k++)
		if (r->costs & RULES_COST_OF_SCAN(k))
			bits |= SCAN_BIT(k);
	return bits;
}

unsigned
rules_stage_scans(const rules_table *t, enum stage stage, bool stressed)
{
	unsigned bits = 0;

	if (t == NULL || (unsigned)stage >= STAGE_N)
		return 0;
	for (size_t i = 0; i < t->stage_n[stage]; i++)
		if (runs_expensive(t->stage_v[stage][i], stressed))
			bits |= rule_scans(t->stage_v[stage][i]);
	return bits;
}

unsigned
rules_scans(const rules_table *t)
{
	unsigned bits = 0;

	for (size_t i = 0; t != NULL && i < t->n; i++)
		bits |= rule_scans(t->v[i]);
	return bits;
}

void
rules_format_costs(unsigned costs, strbuf *out)
{
	static const char *const names[] = {"dnsbl", "body", "clamd", "spamd", "rspamd"};
	const char *sep = "";

	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		if (costs & (1u << i)) {
			strbuf_printf(out, "%s%s", sep, names[i]);
			sep = ",";
		}
}

unsigned
rules_calm_costs(const rules_table *t, enum stage stage)
{
	return t != NULL && (unsigned)stage < STAGE_N ? t->calm_costs[stage] : 0;
}

bool
rules_stage_used(const rules_table *t, enum stage stage)
{
	return t != NULL && (unsigned)stage < STAGE_N && t->stage_n[stage] > 0;
}

bool
rules_stage_may_reply(const rules_table *t, enum stage stage)
{
	return t != NULL && (unsigned)stage < STAGE_N && t->may_reply[stage];
}

bool
rules_need_header_set(const rules_table *t)
{
	return t != NULL && t->need_header_set;
}

size_t
rules_count(const rules_table *t)
{
	return t != NULL ? t->n : 0;
}

const rule *
rules_rule(const rules_table *t, size_t i)
{
	if (t == NULL || i >= t->n)
		ms_panic("rule %zu of %zu", i, rules_count(t));
	return t->v[i];
}

enum stage
rule_stage(const rule *r)
{
	return r->stage;
}

const char *
rule_name(const rule *r)
{
	return r->name;
}

const rules_action *
rule_action(const rule *r)
{
	return &r->action;
}
