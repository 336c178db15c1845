/* rules-syntax - the rule lexer and parser: a logical line into a prule; see rules-int.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules-int.h"

const char *const rules_op_names[OP_N] = {"<", "<=", ">", ">=", "==", "!="};

void *
rules_grow(void *v, size_t n, size_t size)
{
	if (n > 0 && (n & (n - 1)) != 0)
		return v;
	if (n > SIZE_MAX / 2 / size)
		ms_panic("array of %zu elements of %zu bytes is too large", n, size);
	return ms_xrealloc(v, (n > 0 ? 2 * n : 1) * size);
}

static bool
word_is(const rtoken *t, const char *word)
{
	return t->text != NULL && !t->quoted && !t->regex && strcmp(t->text, word) == 0;
}

/* Ends a check's values: an action word or "and", unquoted. */
static bool
ends_values(const rtoken *t)
{
	return rules_action_of(t) >= 0 || word_is(t, "and");
}

void
rules_rtoken_free(rtoken *t)
{
	free(t->text);
	free(t->raw);
	memset(t, 0, sizeof *t);
}

/* The column of byte offset (1-based) of t->text in the logical line. */
size_t
rules_token_column(const rtoken *t, size_t offset)
{
	size_t i = 0, o;

	if (offset == 0)
		return t->col;
	if (!t->quoted || t->raw == NULL)
		return t->col + offset - 1;
	/* Walk the escapes: \" and \\ are two bytes as written, one in text. */
	for (o = 1; o < offset && t->raw[i] != '\0'; o++)
		i += t->raw[i] == '\\' && (t->raw[i + 1] == '"' || t->raw[i + 1] == '\\')
		             ? 2
		             : 1;
	return t->col + 1 + i;
}

/* The lexer: one logical line, token by token. */

typedef struct lexer {
	const char *line;
	const char *p;
	const char *file;
	unsigned lineno;
	rules_report_fn report;
	void *ctx;
	bool failed;
} lexer;

static void lex_error(lexer *lx, size_t col, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
lex_error(lexer *lx, size_t col, const char *fmt, ...)
{
	strbuf msg = STRBUF_INIT;
	va_list ap;

	if (lx->failed)
		return;
	lx->failed = true;
	va_start(ap, fmt);
	strbuf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (lx->report != NULL)
		lx->report(lx->ctx, lx->file, lx->lineno, col, strbuf_str(&msg));
	strbuf_free(&msg);
}

static size_t
col_of(const lexer *lx, const char *p)
{
	return (size_t)(p - lx->line) + 1;
}

static void
skip_blanks(lexer *lx)
{
	while (rules_is_blank(*lx->p))
		lx->p++;
}

/* The close that balances the open at p[0], or NULL. */
static const char *
balanced(const char *p)
{
	char open = *p, close = open == '{' ? '}' : ')';
	int level = 0;

	for (; *p; p++) {
		if (*p == open)
			level++;
		else if (*p == close && --level == 0)
			return p;
	}
	return NULL;
}

static bool
lex_quoted(lexer *lx, rtoken *t)
{
	const char *start = lx->p + 1, *q;
	strbuf text = STRBUF_INIT;

	for (q = start; *q != '"'; q++) {
		if (*q == '\0') {
			strbuf_free(&text);
			lex_error(lx, col_of(lx, lx->p),
			          "missing '\"' to close this string");
			return false;
		}
		if (*q == '\\' && (q[1] == '"' || q[1] == '\\'))
			q++;
		strbuf_putc(&text, *q);
	}
	if (q[1] != '\0' && !rules_is_blank(q[1])) {
		strbuf_free(&text);
		lex_error(lx, col_of(lx, q + 1),
		          "expected white space after the closing '\"'");
		return false;
	}
	t->quoted = true;
	t->text = strbuf_detach(&text);
	t->raw = ms_xstrndup(start, (size_t)(q - start));
	lx->p = q + 1;
	return true;
}

static bool
lex_regex(lexer *lx, rtoken *t)
{
	const char *q;

	for (q = lx->p + 1; *q != '/'; q++) {
		if (*q == '\0') {
			lex_error(lx, col_of(lx, lx->p),
			          "missing '/' to close this regex");
			return false;
		}
		if (*q == '\\' && q[1] != '\0')
			q++;
	}
	for (q++; *q != '\0' && !rules_is_blank(*q); q++) {
		if (strchr("imsx", *q) == NULL) {
			if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))
				lex_error(
				        lx, col_of(lx, q),
				        "unknown regex flag '%c': expected i, m, s or x",
				        *q);
			else
				lex_error(lx, col_of(lx, q),
				          "expected white space after the regex's "
				          "closing '/'");
			return false;
		}
	}
	t->regex = true;
	t->text = ms_xstrndup(lx->p, (size_t)(q - lx->p));
	lx->p = q;
	return true;
}

static void
lex_word(lexer *lx, rtoken *t)
{
	const char *q = lx->p, *close;

	while (*q != '\0' && !rules_is_blank(*q)) {
		/* A ${...} keeps its spaces: ${stress?{a b}:{c}} is one token. */
		if (q[0] == '$' && (q[1] == '{' || q[1] == '(') &&
		    (close = balanced(q + 1)) != NULL) {
			q = close + 1;
			continue;
		}
		q++;
	}
	t->text = ms_xstrndup(lx->p, (size_t)(q - lx->p));
	lx->p = q;
}

/* 1: a token in t; 0: end of line; -1: error (reported). */
static int
lex_next(lexer *lx, rtoken *t)
{
	memset(t, 0, sizeof *t);
	skip_blanks(lx);
	if (*lx->p == '\0')
		return 0;
	t->col = col_of(lx, lx->p);
	if (*lx->p == '"')
		return lex_quoted(lx, t) ? 1 : -1;
	if (*lx->p == '/')
		return lex_regex(lx, t) ? 1 : -1;
	lex_word(lx, t);
	return 1;
}

/* The next token without consuming it; see lex_next(). */
static int
lex_peek(lexer *lx, rtoken *t)
{
	const char *save = lx->p;
	int rc = lex_next(lx, t);

	lx->p = save;
	return rc;
}

static bool
at_end(lexer *lx)
{
	skip_blanks(lx);
	return *lx->p == '\0';
}

/* TEXT: the rest of the line, one quoted string or the words as written. */
static bool
lex_text(lexer *lx, rtoken *t)
{
	memset(t, 0, sizeof *t);
	skip_blanks(lx);
	if (*lx->p == '\0')
		return true;
	t->col = col_of(lx, lx->p);
	if (*lx->p == '"') {
		if (!lex_quoted(lx, t))
			return false;
		if (!at_end(lx)) {
			lex_error(lx, col_of(lx, lx->p),
			          "text after the quoted TEXT: quote all of it or none");
			rules_rtoken_free(t);
			return false;
		}
		return true;
	}
	t->text = ms_xstrdup(lx->p);
	lx->p += strlen(lx->p);
	return true;
}

/* The parser: a logical line into a prule. */

static void
paction_free(paction *a)
{
	rules_rtoken_free(&a->code);
	rules_rtoken_free(&a->ecode);
	rules_rtoken_free(&a->tag);
	rules_rtoken_free(&a->text);
}

static void
prule_free(prule *r)
{
	size_t i, j;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_checks; i++) {
		rules_rtoken_free(&r->checks[i].arg);
		for (j = 0; j < r->checks[i].n_values; j++)
			rules_rtoken_free(&r->checks[i].values[j]);
		free(r->checks[i].values);
	}
	free(r->checks);
	paction_free(&r->action);
	free(r->file);
	free(r->name);
	free(r);
}

static bool
valid_rule_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > RULES_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789_.:-") == n;
}

/* Is the unquoted token a CODE or ECODE? A digit first, or one ${...}. */
static bool
looks_like_code(const rtoken *t)
{
	const char *close;

	if (t->text == NULL || t->quoted || t->regex)
		return false;
	if (rules_is_digit(t->text[0]))
		return true;
	if (t->text[0] != '$' || (t->text[1] != '{' && t->text[1] != '('))
		return false;
	close = balanced(t->text + 1);
	return close != NULL && close[1] == '\0';
}

static bool parse_action(lexer *lx, prule *r, rtoken *word, bool inner);

/* Is the next token a CODE or ECODE? Only a bare word can be one. */
static bool
code_follows(lexer *lx)
{
	rtoken t;
	bool yes;

	skip_blanks(lx);
	/* Not lex_peek() on a quote or slash: a TEXT such as "/tmp is full" is no regex.
	 */
	if (!rules_is_digit(*lx->p) && *lx->p != '$')
		return false;
	lex_peek(lx, &t);
	yes = looks_like_code(&t);
	rules_rtoken_free(&t);
	return yes;
}

/* CODE and ECODE, if the next tokens are such; then the TEXT. */
static bool
parse_reply(lexer *lx, paction *a)
{
	if (code_follows(lx)) {
		lex_next(lx, &a->code);
		if (code_follows(lx))
			lex_next(lx, &a->ecode);
	}
	return lex_text(lx, &a->text);
}

static bool
parse_action_args(lexer *lx, prule *r, paction *a)
{
	const action_desc *d = &rules_actions[a->would];

	if (!d->before_mail && stage_get(r->stage)->session_wide) {
		lex_error(lx, a->col,
		          "%s is not possible at %s (Postfix refuses it before MAIL "
		          "FROM); use reject or tempfail",
		          d->name, stage_name(r->stage));
		return false;
	}
	switch (d->args) {
	case A_NONE:
		if (!at_end(lx)) {
			lex_error(lx, col_of(lx, lx->p), "unexpected text after '%s'",
			          d->name);
			return false;
		}
		return true;
	case A_REPLY:
		return parse_reply(lx, a);
	case A_TEXT:
		if (!lex_text(lx, &a->text))
			return false;
		if (a->text.text == NULL) {
			lex_error(lx, col_of(lx, lx->p), "%s needs a TEXT: the reason",
			          d->name);
			return false;
		}
		return true;
	case A_TAG:
		if (lex_next(lx, &a->tag) <= 0 || !lex_text(lx, &a->text)) {
			lex_error(lx, col_of(lx, lx->p),
			          "%s needs a header NAME and a TEXT", d->name);
			return false;
		}
		if (a->text.text == NULL) {
			lex_error(lx, col_of(lx, lx->p),
			          "%s needs a TEXT after the header name", d->name);
			return false;
		}
		return true;
	case A_PERSONALITY:
		if (r->stage != STAGE_CONNECT && r->stage != STAGE_MAIL) {
			lex_error(lx, a->col,
			          "personality is decided at connect (or at mail, for the "
			          "rest of the session), not at %s",
			          stage_name(r->stage));
			return false;
		}
		if (lex_next(lx, &a->tag) <= 0 || a->tag.quoted || a->tag.regex ||
		    (strcmp(a->tag.text, "normal") != 0 && strcmp(a->tag.text, "stress") != 0)) {
			lex_error(lx, a->tag.col ? a->tag.col : col_of(lx, lx->p),
			          "personality takes normal or stress");
			return false;
		}
		if (!at_end(lx)) {
			lex_error(lx, col_of(lx, lx->p), "unexpected text after '%s'",
			          a->tag.text);
			return false;
		}
		return true;
	case A_LOG:
		break;
	}
	ms_panic("action %s has no argument syntax", d->name);
	return false;
}

/* word is an action name; the rest of the line is its arguments. */
static bool
parse_action(lexer *lx, prule *r, rtoken *word, bool inner)
{
	paction *a = &r->action;
	int kind = rules_action_of(word);
	rtoken next;
	int rc;

	if (kind == RULES_LOG) {
		if (inner) {
			lex_error(lx, word->col, "log takes an action other than log");
			return false;
		}
		if ((rc = lex_next(lx, &next)) < 0)
			return false;
		if (rc == 0 || rules_action_of(&next) < 0) {
			lex_error(lx, rc == 0 ? col_of(lx, lx->p) : next.col,
			          "log needs the action it pretends to take (log reject "
			          "...)");
			rules_rtoken_free(&next);
			return false;
		}
		a->kind = RULES_LOG;
		a->col = word->col;
		rc = parse_action(lx, r, &next, true);
		rules_rtoken_free(&next);
		return rc;
	}
	if (!inner)
		a->kind = (enum rules_action_kind)kind;
	a->would = (enum rules_action_kind)kind;
	a->col = word->col;
	return parse_action_args(lx, r, a);
}

static void
list_kinds(strbuf *b)
{
	for (unsigned i = 0; i < rules_n_checks; i++)
		strbuf_put_item(b, i, rules_n_checks, rules_checks[i].name);
}

static bool
bad_check(lexer *lx, const rtoken *t)
{
	strbuf all = STRBUF_INIT;

	list_kinds(&all);
	if (rules_action_of(t) >= 0)
		lex_error(lx, t->col,
		          "expected a check before '%s' (write 'any' to match every "
		          "session)",
		          t->text);
	else
		lex_error(lx, t->col, "unknown check '%s': expected %s", t->text,
		          strbuf_str(&all));
	strbuf_free(&all);
	return false;
}

static bool
parse_values(lexer *lx, pcheck *c)
{
	rtoken t;
	int rc;

	while ((rc = lex_peek(lx, &t)) > 0 && !ends_values(&t)) {
		rules_rtoken_free(&t);
		c->values = rules_grow(c->values, c->n_values, sizeof *c->values);
		lex_next(lx, &c->values[c->n_values++]);
	}
	if (rc < 0)
		return false;
	if (c->n_values == 0) {
		lex_error(lx, rc > 0 ? t.col : col_of(lx, lx->p), "%s: expected %s",
		          rules_checks[c->kind].name, rules_checks[c->kind].expects);
		rules_rtoken_free(&t);
		return false;
	}
	rules_rtoken_free(&t);
	return true;
}

static int
find_op(const char *word)
{
	for (int i = 0; i < OP_N; i++)
		if (strcmp(rules_op_names[i], word) == 0)
			return i;
	return -1;
}

static bool
parse_count(lexer *lx, pcheck *c)
{
	const char *name = rules_checks[c->kind].name;
	rtoken t;
	int op, rc;

	if ((rc = lex_next(lx, &t)) <= 0 || (op = find_op(t.quoted ? "" : t.text)) < 0) {
		if (rc >= 0)
			lex_error(lx, rc > 0 ? t.col : col_of(lx, lx->p),
			          "%s: expected <, <=, >, >=, == or != and a number",
			          name);
		rules_rtoken_free(&t);
		return false;
	}
	rules_rtoken_free(&t);
	c->op = (enum cmp_op)op;
	if ((rc = lex_next(lx, &c->arg)) <= 0 || ends_values(&c->arg)) {
		if (rc >= 0)
			lex_error(lx, rc > 0 ? c->arg.col : col_of(lx, lx->p),
			          "%s: expected a number after '%s'", name,
			          rules_op_names[op]);
		return false;
	}
	return true;
}

static bool
parse_check_args(lexer *lx, pcheck *c)
{
	const check_desc *d = &rules_checks[c->kind];
	int rc;

	if (d->syntax == CS_COUNT || d->syntax == CS_SCORE)
		return parse_count(lx, c);
	if (d->syntax == CS_OPTIONAL) {
		rtoken t;

		/* Without values: any. */
		bool none;

		if ((rc = lex_peek(lx, &t)) < 0)
			return false;
		none = rc == 0 || ends_values(&t);
		rules_rtoken_free(&t);
		if (none)
			return true;
	}
	if (d->syntax == CS_MACRO || d->syntax == CS_NAMED) {
		if ((rc = lex_next(lx, &c->arg)) <= 0 || c->arg.regex) {
			if (rc >= 0)
				lex_error(lx, rc > 0 ? c->arg.col : col_of(lx, lx->p),
				          "%s: expected a %s name first", d->name,
				          d->syntax == CS_MACRO ? "macro"
				                                : "header (or *)");
			return false;
		}
		if (d->syntax == CS_MACRO) {
			rtoken t;

			/* Without values: the macro is set. */
			if ((rc = lex_peek(lx, &t)) < 0)
				return false;
			if (rc == 0 || ends_values(&t)) {
				rules_rtoken_free(&t);
				return true;
			}
			rules_rtoken_free(&t);
		}
	}
	if (d->syntax != CS_NONE)
		return parse_values(lx, c);
	return true;
}

static bool
parse_check(lexer *lx, prule *r, rtoken *t)
{
	pcheck *c;
	const char *word = t->text;
	const check_desc *d;
	bool negate = false;
	int kind;

	if (word_is(t, "!") || word_is(t, "not")) {
		rules_rtoken_free(t);
		if (lex_next(lx, t) <= 0) {
			lex_error(lx, col_of(lx, lx->p),
			          "expected a check after the negation");
			return false;
		}
		negate = true;
		word = t->text;
	} else if (!t->quoted && !t->regex && word[0] == '!' && word[1] != '\0') {
		negate = true;
		word++;
	}
	if (t->quoted || t->regex || (kind = rules_check_find(word)) < 0)
		return bad_check(lx, t);
	d = &rules_checks[kind];
	if (r->stage < d->first || r->stage > d->last) {
		if (d->first == d->last)
			lex_error(lx, t->col, "%s cannot be seen at %s: only at %s",
			          d->name, stage_name(r->stage), stage_name(d->first));
		else
			lex_error(lx, t->col,
			          "%s cannot be seen at %s: it is known from %s on",
			          d->name, stage_name(r->stage), stage_name(d->first));
		return false;
	}
	r->checks = rules_grow(r->checks, r->n_checks, sizeof *r->checks);
	c = &r->checks[r->n_checks++];
	memset(c, 0, sizeof *c);
	c->kind = (unsigned)kind;
	c->negate = negate;
	c->col = t->col;
	if (!parse_check_args(lx, c))
		return false;
	if (d->syntax == CS_NONE) {
		rtoken next;
		int rc = lex_peek(lx, &next);
		bool bad = rc < 0 || (rc > 0 && !ends_values(&next));

		if (rc > 0 && bad)
			lex_error(lx, next.col, "%s takes no values", d->name);
		rules_rtoken_free(&next);
		if (bad)
			return false;
	}
	return true;
}

/* "stress" after the stage is the mode, unless a check would be missing. */
static bool
stress_is_mode(lexer *lx)
{
	const char *save = lx->p;
	rtoken t;
	int rc;

	lex_next(lx, &t); /* "stress" itself */
	rules_rtoken_free(&t);
	rc = lex_peek(lx, &t);
	lx->p = save;
	if (rc <= 0) {
		rules_rtoken_free(&t);
		return rc < 0; /* an error there is reported anyway */
	}
	rc = !ends_values(&t);
	rules_rtoken_free(&t);
	return rc;
}

/* MODE and name=NAME, in either order. */
static bool
parse_prefix(lexer *lx, prule *r)
{
	rtoken t;
	int rc;

	while ((rc = lex_peek(lx, &t)) > 0 && !t.quoted && !t.regex) {
		if ((word_is(&t, "normal") || word_is(&t, "both") ||
		     (word_is(&t, "stress") && stress_is_mode(lx))) &&
		    !r->mode_given) {
			r->mode = word_is(&t, "normal")   ? MODE_NORMAL
			          : word_is(&t, "stress") ? MODE_STRESS
			                                  : MODE_BOTH;
			r->mode_given = true;
		} else if (strncmp(t.text, "name=", 5) == 0 && r->name == NULL) {
			if (!valid_rule_name(t.text + 5)) {
				lex_error(lx, t.col + 5,
				          "bad rule name '%s': expected 1 to %d letters, "
				          "digits, '_', '.', ':' or '-'",
				          t.text + 5, RULES_NAME_MAX);
				rules_rtoken_free(&t);
				return false;
			}
			r->name = ms_xstrdup(t.text + 5);
		} else {
			break;
		}
		rules_rtoken_free(&t);
		lex_next(lx, &t);
		rules_rtoken_free(&t);
	}
	rules_rtoken_free(&t);
	return rc >= 0;
}

/* got: the word found instead, NULL at the end of the line. */
static void
expected_action(lexer *lx, size_t col, const char *got)
{
	strbuf all = STRBUF_INIT;

	rules_list_actions(&all);
	if (got == NULL)
		lex_error(lx, col, "expected 'and' or an action (%s)", strbuf_str(&all));
	else
		lex_error(lx, col, "expected 'and' or an action (%s), not '%s'",
		          strbuf_str(&all), got);
	strbuf_free(&all);
}

static bool
parse_rule(lexer *lx, prule *r)
{
	rtoken t;
	int rc;

	if (!parse_prefix(lx, r))
		return false;
	for (;;) {
		if ((rc = lex_next(lx, &t)) <= 0) {
			if (rc == 0)
				lex_error(lx, col_of(lx, lx->p),
				          "expected a check and an action (any reject, "
				          "client 192.0.2.1 accept, ...)");
			return false;
		}
		if (!parse_check(lx, r, &t))
			break;
		rules_rtoken_free(&t);
		if ((rc = lex_next(lx, &t)) <= 0) {
			if (rc == 0)
				expected_action(lx, col_of(lx, lx->p), NULL);
			return false;
		}
		if (word_is(&t, "and")) {
			rules_rtoken_free(&t);
			continue;
		}
		if (rules_action_of(&t) < 0) {
			expected_action(lx, t.col, t.text);
			break;
		}
		rc = parse_action(lx, r, &t, false);
		rules_rtoken_free(&t);
		return rc;
	}
	rules_rtoken_free(&t);
	return false;
}

rules_source *
rules_source_create(void)
{
	return ms_xcalloc(1, sizeof(rules_source));
}

void
rules_source_free(rules_source *src)
{
	size_t i;

	if (src == NULL)
		return;
	for (i = 0; i < src->n; i++)
		prule_free(src->v[i]);
	free(src->v);
	free(src);
}

bool
rules_source_add(rules_source *src, const char *file, unsigned line, const char *text,
                 rules_report_fn report, void *ctx)
{
	lexer lx = {text, text, file, line, report, ctx, false};
	prule *r = ms_xcalloc(1, sizeof *r);
	rtoken t;

	r->file = ms_xstrdup(file);
	r->line = line;
	r->mode = MODE_BOTH;
	if (lex_next(&lx, &t) <= 0 || t.quoted || t.regex ||
	    !stage_parse(t.text, strlen(t.text), &r->stage)) {
		strbuf all = STRBUF_INIT;

		stage_list(&all);
		lex_error(&lx, 1, "expected a stage (%s)", strbuf_str(&all));
		strbuf_free(&all);
		rules_rtoken_free(&t);
		prule_free(r);
		return false;
	}
	rules_rtoken_free(&t);
	if (!parse_rule(&lx, r) || lx.failed) {
		lex_error(&lx, col_of(&lx, lx.p), "bad rule");
		prule_free(r);
		return false;
	}
	src->v = rules_grow(src->v, src->n, sizeof *src->v);
	src->v[src->n++] = r;
	return true;
}