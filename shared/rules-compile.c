/* rules-compile - parsed rules into the tables of both personalities; see rules-int.h. */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "rules-int.h"
#include "textfile.h"

/*
 * Hostile headers meet administrators' regexes here: bound the work one
 * match may do, well below PCRE2's default of ten million.
 */
#define RE_MATCH_LIMIT 1000000

/* msg NULL: a problem reported elsewhere, which still fails the rule. */
static void
add_problem(cctx *c, const char *file, unsigned line, size_t col, char *msg)
{
	problem *p;

	c->ps->v = rules_grow(c->ps->v, c->ps->n, sizeof *c->ps->v);
	p = &c->ps->v[c->ps->n++];
	p->file = ms_xstrdup(file);
	p->line = line;
	p->col = col;
	p->msg = msg;
}

static char *message(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *
message(const char *fmt, va_list ap)
{
	strbuf msg = STRBUF_INIT;

	strbuf_vprintf(&msg, fmt, ap);
	return strbuf_detach(&msg);
}

/* A problem at a column of the rule's own line. */
void
rules_problem_at(cctx *c, size_t col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_problem(c, c->pr->file, c->pr->line, col, message(fmt, ap));
	va_end(ap);
}

/* A problem offset bytes into a word that came from w. */
void
rules_problem_in(cctx *c, const where *w, size_t offset, const char *fmt, ...)
{
	size_t col = w->col == 0 ? 0 : w->verbatim ? w->col + offset : w->col;
	va_list ap;

	va_start(ap, fmt);
	add_problem(c, w->file, w->line, col, message(fmt, ap));
	va_end(ap);
}

static void
problem_silent(cctx *c)
{
	add_problem(c, c->pr->file, c->pr->line, 0, NULL);
}

static void
problems_free(problems *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		free(ps->v[i].file);
		free(ps->v[i].msg);
	}
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

/* A token's text expanded with the parameters, blanks at its ends dropped. */
static bool
expand_token(cctx *c, const rtoken *t, strbuf *out)
{
	expand_error e = EXPAND_ERROR_INIT;
	strbuf x = STRBUF_INIT;
	const char *s, *end;
	bool ok = true;

	if (c->env->expand == NULL) {
		strbuf_puts(&x, t->text);
	} else if (expand_str(&x, t->text, c->env->expand, c->env->expand_ctx, &e) < 0) {
		if (e.nested)
			problem_silent(c);
		else
			rules_problem_at(c, rules_token_column(t, e.column), "%s",
			                 strbuf_str(&e.msg));
		ok = false;
	}
	if (ok) {
		for (s = strbuf_str(&x); rules_is_blank(*s); s++)
			;
		for (end = s + strlen(s); end > s && rules_is_blank(end[-1]); end--)
			;
		strbuf_append(out, s, (size_t)(end - s));
	}
	strbuf_free(&x);
	expand_error_free(&e);
	return ok;
}

static value *
new_value(check *ck)
{
	ck->v = rules_grow(ck->v, ck->n_values, sizeof *ck->v);
	return &ck->v[ck->n_values++];
}

static bool
is_action_word(const char *w)
{
	rtoken t = {(char *)w, NULL, 0, false, false};

	return rules_action_of(&t) >= 0;
}

/* For the dump: quoted when it would not read back as the same one word. */
static void
put_word(strbuf *b, const char *w, bool was_quoted)
{
	const char *p;
	bool quote = was_quoted || *w == '\0' || *w == '/' || *w == '!' || *w == '"' ||
	             is_action_word(w) || strcmp(w, "and") == 0;

	for (p = w; *p && !quote; p++)
		quote = rules_is_blank(*p) || *p == '"' || *p == '\\';
	if (!quote) {
		strbuf_puts(b, w);
		return;
	}
	strbuf_putc(b, '"');
	for (p = w; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_putc(b, '\\');
		strbuf_putc(b, *p);
	}
	strbuf_putc(b, '"');
}

/* file:PATH: one value per line. */
static bool
file_values(cctx *c, check *ck, const char *name, const where *w)
{
	strbuf text = STRBUF_INIT, why = STRBUF_INIT;
	char *path = textfile_path(c->pr->file, name);
	const char *p, *nl, *s, *e;
	unsigned lineno = 0;
	bool ok = true;

	if (*name == '\0' || !textfile_read(path, true, &text, &why)) {
		rules_problem_in(c, w, 0, "file:%s: %s", name,
		                 *name == '\0' ? "expected a file name"
		                               : strbuf_str(&why));
		ok = false;
	} else if (memchr(text.s, '\0', text.len) != NULL) {
		rules_problem_in(c, w, 0, "file:%s: the file has a NUL byte", name);
		ok = false;
	}
	for (p = strbuf_str(&text); ok && *p; p = *nl ? nl + 1 : nl) {
		where lw = {path, ++lineno, 0, false};
		value v;

		nl = p + strcspn(p, "\n");
		for (s = p; s < nl && rules_is_blank(*s); s++)
			;
		for (e = nl; e > s && rules_is_blank(e[-1]); e--)
			;
		if (s == e || *s == '#')
			continue;
		{
			char *word = ms_xstrndup(s, (size_t)(e - s));

			if (rules_value_parse(c, &rules_checks[ck->kind], word, &lw, &v))
				*new_value(ck) = v;
			else
				ok = false;
			free(word);
		}
	}
	free(path);
	strbuf_free(&text);
	strbuf_free(&why);
	return ok;
}

/* One value token: expanded, split, each word parsed. */
static bool
token_values(cctx *c, check *ck, const rtoken *t, strbuf *shown)
{
	where w = {c->pr->file, c->pr->line, t->col, !t->quoted};
	strbuf x = STRBUF_INIT;
	const char *p;
	bool ok = true;
	value v;

	if (t->regex) {
		strbuf_printf(shown, " %s", t->text);
		if (!rules_value_parse(c, &rules_checks[ck->kind], t->text, &w, &v))
			return false;
		*new_value(ck) = v;
		return true;
	}
	if (!expand_token(c, t, &x))
		return false;
	/* Offsets inside an expanded word are not columns of the line. */
	if (strchr(t->text, '$') != NULL)
		w.verbatim = false;
	for (p = strbuf_str(&x); *p || t->quoted; p += strspn(p, " \t")) {
		size_t n = t->quoted ? strlen(p) : strcspn(p, " \t");
		char *word = ms_xstrndup(p, n);

		strbuf_putc(shown, ' ');
		if (!t->quoted && strncmp(word, "file:", 5) == 0) {
			put_word(shown, word, false);
			ok = file_values(c, ck, word + 5, &w) && ok;
		} else {
			if (rules_checks[ck->kind].cost & RULES_COST_DNSBL)
				rules_lower_zone(word);
			put_word(shown, word, t->quoted);
			if (rules_value_parse(c, &rules_checks[ck->kind], word, &w, &v))
				*new_value(ck) = v;
			else
				ok = false;
		}
		free(word);
		p += n;
		if (t->quoted)
			break;
	}
	strbuf_free(&x);
	return ok;
}

static bool
parse_count_value(const char *s, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!rules_is_digit(*s))
		return false;
	for (; rules_is_digit(*s); s++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return false;
		v = v * 10 + (unsigned)(*s - '0');
	}
	*out = v;
	return *s == '\0';
}

/* A score: a decimal, maybe negative ("8", "-1.5"); no exponent, no inf. */
static bool
parse_score_value(const char *s, double *out)
{
	char *end;
	size_t i = (*s == '-' || *s == '+');

	if (!rules_is_digit(s[i]) || strspn(s + i, "0123456789.") != strlen(s + i))
		return false;
	*out = strtod(s, &end);
	return *end == '\0';
}

static bool
valid_macro_name(const char *s)
{
	size_t n = strlen(s);

	if (n > 2 && s[0] == '{' && s[n - 1] == '}') {
		s++;
		n -= 2;
	}
	return n > 0 && strcspn(s, " \t{}") == n;
}

/* As libmilter names macros: one letter bare, longer names in braces. */
static char *
macro_name(const char *s)
{
	strbuf b = STRBUF_INIT;

	if (s[0] == '{' || s[1] == '\0')
		return ms_xstrdup(s);
	strbuf_printf(&b, "{%s}", s);
	return strbuf_detach(&b);
}

/* The expanded argument of rcpt_count, macro or header. */
static bool
check_arg(cctx *c, const pcheck *pc, check *ck, strbuf *shown)
{
	strbuf x = STRBUF_INIT;
	const char *s;
	bool ok;

	if (!expand_token(c, &pc->arg, &x))
		return false;
	s = strbuf_str(&x);
	switch (rules_checks[pc->kind].syntax) {
	case CS_COUNT:
		if (!(ok = parse_count_value(s, &ck->n)))
			rules_problem_at(c, pc->arg.col,
			                 "rcpt_count: expected a whole number, not '%s'",
			                 s);
		strbuf_printf(shown, " %s %s", rules_op_names[pc->op], s);
		break;
	case CS_SCORE:
		if (!(ok = parse_score_value(s, &ck->x)))
			rules_problem_at(c, pc->arg.col,
			                 "%s: expected a number such as 8 or 7.5, not '%s'",
			                 rules_checks[pc->kind].name, s);
		strbuf_printf(shown, " %s %s", rules_op_names[pc->op], s);
		break;
	case CS_MACRO:
		if (!(ok = valid_macro_name(s)))
			rules_problem_at(
			        c, pc->arg.col,
			        "macro: bad macro name '%s': expected a name such as i, "
			        "auth_type or {auth_type}",
			        s);
		else
			ck->name = macro_name(s);
		strbuf_printf(shown, " %s", ok ? ck->name : s);
		break;
	case CS_NAMED:
		ok = strcmp(s, "*") == 0 || names_header(s);
		if (!ok)
			rules_problem_at(
			        c, pc->arg.col,
			        "header: bad header name '%s': expected printable ASCII "
			        "without spaces or ':', or *",
			        s);
		else if (strcmp(s, "*") != 0)
			ck->name = ms_xstrdup(s);
		strbuf_printf(shown, " %s", s);
		break;
	default:
		ms_panic("check %s has no argument", rules_checks[pc->kind].name);
	}
	strbuf_free(&x);
	return ok;
}

static bool
compile_check(cctx *c, const pcheck *pc, check *ck, strbuf *shown)
{
	bool ok = true;
	size_t i;

	ck->kind = pc->kind;
	ck->negate = pc->negate;
	ck->presence = (rules_checks[pc->kind].syntax == CS_MACRO ||
	                rules_checks[pc->kind].syntax == CS_OPTIONAL) &&
	               pc->n_values == 0;
	ck->op = pc->op;
	strbuf_printf(shown, "%s%s", pc->negate ? "!" : "", rules_checks[pc->kind].name);
	if (pc->arg.text != NULL && !check_arg(c, pc, ck, shown))
		ok = false;
	for (i = 0; i < pc->n_values; i++)
		if (!token_values(c, ck, &pc->values[i], shown))
			ok = false;
	return ok;
}

/* A check's verdict at a column: the reason in why becomes the problem. */
static bool
reported(cctx *c, size_t col, bool ok, strbuf *why)
{
	if (!ok)
		rules_problem_at(c, col, "%s", strbuf_str(why));
	strbuf_free(why);
	return ok;
}

static bool
valid_code(cctx *c, size_t col, enum rules_action_kind kind, const char *s)
{
	strbuf why = STRBUF_INIT;

	return reported(c, col, rules_code_ok(kind, s, &why), &why);
}

static bool
valid_ecode(cctx *c, size_t col, const char *code, const char *s)
{
	strbuf why = STRBUF_INIT;

	return reported(c, col, rules_ecode_ok(code, s, &why), &why);
}

/* CODE and ECODE of tempfail and reject, with the defaults. */
static bool
compile_codes(cctx *c, const paction *pa, rules_action *a)
{
	strbuf x = STRBUF_INIT, y = STRBUF_INIT;
	const char *code, *ecode = NULL;
	char *sp;
	bool ok = false;

	if (pa->code.text == NULL) {
		snprintf(a->code, sizeof a->code, "%s",
		         rules_actions[pa->would].default_code);
		snprintf(a->ecode, sizeof a->ecode, "%s",
		         rules_actions[pa->would].default_ecode);
		return true;
	}
	if (!expand_token(c, &pa->code, &x))
		goto out;
	code = strbuf_str(&x);
	/* ${stress?{421 4.7.0}:{450 4.7.1}} gives both at once. */
	if ((sp = strpbrk(x.s != NULL ? x.s : "", " \t")) != NULL) {
		*sp++ = '\0';
		ecode = sp + strspn(sp, " \t");
		if (pa->ecode.text != NULL || strpbrk(ecode, " \t") != NULL) {
			rules_problem_at(
			        c, pa->code.col,
			        "expected one reply code and at most one enhanced "
			        "status code");
			goto out;
		}
	}
	if (!valid_code(c, pa->code.col, pa->would, code))
		goto out;
	if (pa->ecode.text != NULL) {
		if (!expand_token(c, &pa->ecode, &y))
			goto out;
		ecode = strbuf_str(&y);
		if (strpbrk(ecode, " \t") != NULL) {
			rules_problem_at(c, pa->ecode.col,
			                 "expected one enhanced status code, not '%s'",
			                 ecode);
			goto out;
		}
	}
	if (ecode != NULL && *ecode != '\0' &&
	    !valid_ecode(c, pa->ecode.text != NULL ? pa->ecode.col : pa->code.col, code,
	                 ecode))
		goto out;
	/* Both were checked: they fit. */
	snprintf(a->code, sizeof a->code, "%s", code);
	if (ecode != NULL)
		snprintf(a->ecode, sizeof a->ecode, "%s", ecode);
	ok = true;
out:
	strbuf_free(&x);
	strbuf_free(&y);
	return ok;
}

/* Templates. */

static const char *
template_check_lookup(void *ctx, const char *name)
{
	const rules_env *env = ctx;

	if (rules_is_template_var(name))
		return "";
	if (env->expand == NULL || env->expand->lookup == NULL)
		return NULL;
	return env->expand->lookup(env->expand_ctx, name);
}

static void
template_unknown(void *ctx, const char *name, strbuf *msg)
{
	size_t i;

	(void)ctx;
	strbuf_printf(msg, "unknown name $%s in the text: expected a parameter or", name);
	for (i = 0; rules_template_vars[i] != NULL; i++)
		strbuf_printf(msg, "%s $%s", i == 0 ? "" : ",", rules_template_vars[i]);
}

static const char *
template_size_lookup(void *ctx, const char *name)
{
	const rules_env *env = ctx;

	if (rules_is_template_var(name) || env->param == NULL)
		return "";
	return env->param(env->param_ctx, name);
}

/* Syntax and names of a TEXT, and what it costs before any session variable. */
static bool
check_template(cctx *c, const rtoken *t, bool reply)
{
	static const expand_ops checking = {template_check_lookup, template_unknown,
	                                    EXPAND_UNKNOWN_IS_ERROR};
	static const expand_ops sizing = {template_size_lookup, NULL, 0};
	expand_error e = EXPAND_ERROR_INIT;
	strbuf x = STRBUF_INIT;
	bool ok = true;

	if (expand_str(&x, t->text, &checking, (void *)c->env, &e) < 0) {
		rules_problem_at(c, rules_token_column(t, e.column), "%s",
		                 strbuf_str(&e.msg));
		ok = false;
	}
	strbuf_reset(&x);
	if (ok && expand_str(&x, t->text, &sizing, (void *)c->env, NULL) == 0) {
		if (strpbrk(strbuf_str(&x), "\r\n") != NULL) {
			rules_problem_at(c, t->col, "the text must not contain CR or LF");
			ok = false;
		} else if (reply && x.len > RULES_TEXT_MAX) {
			rules_problem_at(c, t->col,
			                 "the text is %zu bytes long before its session "
			                 "variables; "
			                 "a reply text takes at most %d",
			                 x.len, RULES_TEXT_MAX);
			ok = false;
		}
	}
	strbuf_free(&x);
	expand_error_free(&e);
	return ok;
}

static void
show_text(strbuf *shown, const rtoken *t)
{
	strbuf_putc(shown, ' ');
	if (t->quoted)
		strbuf_printf(shown, "\"%s\"", t->raw);
	else
		strbuf_puts(shown, t->text);
}

static bool
compile_action(cctx *c, const paction *pa, rule *r, strbuf *shown)
{
	rules_action *a = &r->action;
	strbuf x = STRBUF_INIT;
	bool ok = true;

	a->kind = pa->kind;
	a->would = pa->would;
	const action_desc *d = &rules_actions[pa->would];

	strbuf_printf(shown, " %s%s", pa->kind == RULES_LOG ? "log " : "", d->name);
	if (d->args == A_REPLY) {
		if (!compile_codes(c, pa, a))
			return false;
		strbuf_printf(shown, " %s%s%s", a->code, *a->ecode ? " " : "", a->ecode);
		if (pa->text.text == NULL) {
			r->text = ms_xstrdup(d->default_text);
			strbuf_printf(shown, " \"%s\"", r->text);
		}
	}
	if (d->args == A_TAG) {
		if (!expand_token(c, &pa->tag, &x))
			return false;
		if (!names_header(strbuf_str(&x))) {
			rules_problem_at(
			        c, pa->tag.col,
			        "tag: bad header name '%s': expected printable ASCII "
			        "without "
			        "spaces or ':'",
			        strbuf_str(&x));
			ok = false;
		}
		strbuf_printf(shown, " %s", strbuf_str(&x));
		r->tag_name = strbuf_detach(&x);
	}
	if (d->args == A_PERSONALITY) {
		a->to_stress = strcmp(pa->tag.text, "stress") == 0;
		strbuf_printf(shown, " %s", pa->tag.text);
	}
	if (pa->text.text != NULL) {
		show_text(shown, &pa->text);
		if (!check_template(c, &pa->text, d->args == A_REPLY))
			ok = false;
		r->text = ms_xstrdup(pa->text.text);
	}
	a->text = r->text;
	a->tag_name = r->tag_name;
	strbuf_free(&x);
	return ok;
}

static void
rule_free(rule *r)
{
	size_t i, j;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_checks; i++) {
		for (j = 0; j < r->checks[i].n_values; j++)
			rules_value_free(&r->checks[i].v[j]);
		free(r->checks[i].v);
		free(r->checks[i].name);
	}
	free(r->checks);
	free(r->name);
	free(r->text);
	free(r->tag_name);
	free(r->shown);
	free(r);
}

static rule *
compile_rule(cctx *c)
{
	const prule *pr = c->pr;
	rule *r = ms_xcalloc(1, sizeof *r);
	strbuf shown = STRBUF_INIT, name = STRBUF_INIT;
	bool ok = true;
	size_t i;

	r->table = c->t;
	r->stage = pr->stage;
	r->mode = pr->mode;
	strbuf_printf(&name, "%s:%u", pr->file, pr->line);
	strbuf_printf(&shown, "%s: %s %s", strbuf_str(&name), stage_name(pr->stage),
	              pr->mode == MODE_BOTH     ? "both"
	              : pr->mode == MODE_STRESS ? "stress"
	                                        : "normal");
	if (pr->name != NULL) {
		strbuf_printf(&shown, " name=%s", pr->name);
		strbuf_reset(&name);
		strbuf_puts(&name, pr->name);
	}
	r->name = strbuf_detach(&name);
	r->checks = ms_xcalloc(pr->n_checks, sizeof *r->checks);
	r->n_checks = pr->n_checks;
	for (i = 0; i < pr->n_checks; i++) {
		strbuf_puts(&shown, i == 0 ? " " : " and ");
		if (!compile_check(c, &pr->checks[i], &r->checks[i], &shown))
			ok = false;
		r->costs |= rules_checks[pr->checks[i].kind].cost;
	}
	if (!compile_action(c, &pr->action, r, &shown))
		ok = false;
	if (pr->action.would == RULES_PERSONALITY && r->costs != 0) {
		rules_problem_at(c, pr->action.col,
		                 "a personality rule takes cheap checks only (no DNS or body "
		                 "checks): it is decided before any budget");
		ok = false;
	}
	r->shown = strbuf_detach(&shown);
	if (!ok || c->ps->n > 0) {
		rule_free(r);
		return NULL;
	}
	return r;
}

/* Tables. */

static rules_table *
table_create(const rules_env *env)
{
	rules_table *t = ms_xcalloc(1, sizeof *t);

	t->stressed = env->stressed;
	if ((t->mctx = pcre2_match_context_create(NULL)) == NULL)
		ms_panic("out of memory");
	pcre2_set_match_limit(t->mctx, RE_MATCH_LIMIT);
	return t;
}

/* A body check's regexes into the table's list, each once. */
static void
add_body(rules_table *t, check *ck)
{
	size_t i, k;

	for (i = 0; i < ck->n_values; i++) {
		for (k = 0; k < t->n_body; k++)
			if (strcmp(t->body_pat[k], ck->v[i].s) == 0)
				break;
		if (k == t->n_body) {
			t->body_pat =
			        rules_grow(t->body_pat, t->n_body, sizeof *t->body_pat);
			t->body_pat[t->n_body++] = ck->v[i].s;
		}
		ck->v[i].body_idx = k;
	}
}

/* The one scanner set of a table; its regexes compiled once already. */
static bool
table_body_set(rules_table *t, rules_report_fn report, void *ctx)
{
	strbuf err = STRBUF_INIT;

	if (t->n_body == 0)
		return true;
	t->body = bodyscan_compile((const char *const *)t->body_pat, t->n_body, &err);
	if (t->body == NULL && report != NULL)
		report(ctx, "body", 0, 0, strbuf_str(&err));
	strbuf_free(&err);
	return t->body != NULL;
}

static void
table_add(rules_table *t, rule *r)
{
	enum stage s = r->stage;
	size_t i;

	t->v = rules_grow(t->v, t->n, sizeof *t->v);
	t->v[t->n++] = r;
	t->stage_v[s] = rules_grow(t->stage_v[s], t->stage_n[s], sizeof *t->stage_v[s]);
	t->stage_v[s][t->stage_n[s]++] = r;
	if (rules_actions[r->action.kind].replies)
		t->may_reply[s] = true;
	if (r->mode & MODE_NORMAL)
		t->calm_costs[s] |= r->costs;
	/* A substring, so ${...} forms count too: at worst a TXT asked for nothing. */
	if (r->action.text != NULL && strstr(r->action.text, "rbl_reason") != NULL)
		t->want_rbl_reason = true;
	for (i = 0; i < r->n_checks; i++) {
		const check_desc *d = &rules_checks[r->checks[i].kind];

		if (d->header_set && s >= STAGE_EOH)
			t->need_header_set = true;
		if (d->cost & RULES_COST_BODY)
			add_body(t, &r->checks[i]);
	}
}

void
rules_table_free(rules_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		rule_free(t->v[i]);
	for (i = 0; i < STAGE_N; i++)
		free(t->stage_v[i]);
	free(t->v);
	free(t->body_pat);
	bodyscan_set_free(t->body);
	pcre2_match_context_free(t->mctx);
	free(t);
}

static bool
same_problem(const problem *a, const problem *b)
{
	return a->line == b->line && a->col == b->col && strcmp(a->file, b->file) == 0 &&
	       a->msg != NULL && b->msg != NULL && strcmp(a->msg, b->msg) == 0;
}

static bool
has_problem(const problems *ps, const problem *p)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (same_problem(&ps->v[i], p))
			return true;
	return false;
}

static void
report_one(const problem *p, const char *suffix, rules_report_fn report, void *ctx)
{
	strbuf msg = STRBUF_INIT;

	if (p->msg == NULL || report == NULL)
		return;
	strbuf_printf(&msg, "%s%s", p->msg, suffix);
	report(ctx, p->file, p->line, p->col, strbuf_str(&msg));
	strbuf_free(&msg);
}

static const char *
personality_suffix(const rules_env *env)
{
	return env->stressed ? " (in the stress personality)"
	                     : " (in the normal personality)";
}

/* Each problem once; one that only one of two personalities has says which. */
static void
report_problems(problems ps[2], const bool in[2], const rules_env env[2],
                rules_report_fn report, void *ctx)
{
	size_t i;
	int p;

	if (!in[0] || !in[1]) {
		for (p = 0; p < 2; p++)
			for (i = 0; i < ps[p].n; i++)
				report_one(&ps[p].v[i], "", report, ctx);
		return;
	}
	for (i = 0; i < ps[0].n; i++)
		report_one(&ps[0].v[i],
		           has_problem(&ps[1], &ps[0].v[i]) ? ""
		                                            : personality_suffix(&env[0]),
		           report, ctx);
	for (i = 0; i < ps[1].n; i++)
		if (!has_problem(&ps[0], &ps[1].v[i]))
			report_one(&ps[1].v[i], personality_suffix(&env[1]), report, ctx);
}

bool
rules_compile(const rules_source *src, const rules_env env[2], rules_table *out[2],
              rules_report_fn report, void *ctx)
{
	bool ok = true;
	size_t i;
	int p;

	for (p = 0; p < 2; p++)
		out[p] = table_create(&env[p]);
	for (i = 0; src != NULL && i < src->n; i++) {
		problems ps[2] = {{NULL, 0}, {NULL, 0}};
		bool in[2];

		for (p = 0; p < 2; p++) {
			cctx c = {src->v[i], &env[p], out[p], &ps[p]};
			rule *r;

			in[p] = (src->v[i]->mode &
			         (env[p].stressed ? MODE_STRESS : MODE_NORMAL)) != 0;
			if (!in[p])
				continue;
			if ((r = compile_rule(&c)) != NULL)
				table_add(out[p], r);
			else
				ok = false;
		}
		report_problems(ps, in, env, report, ctx);
		problems_free(&ps[0]);
		problems_free(&ps[1]);
	}
	for (p = 0; p < 2; p++)
		if (!table_body_set(out[p], report, ctx))
			ok = false;
	return ok;
}
