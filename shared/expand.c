/* expand - Postfix main.cf-style $name expansion; see expand.h. */
#include "config.h"

#include "expand.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A byte range of the text being expanded; not NUL-terminated. */
typedef struct span {
	const char *p;
	const char *end;
} span;

/* One parsed $reference. */
typedef struct ref {
	const char *at; /* the '$' */
	span name;
	char op;          /* 0, '?' or ':' */
	span a;           /* the value, or the "set" branch of ?{a}:{b} */
	span b;           /* the "not set" branch; b.p == NULL when absent */
	const char *next; /* first byte after the reference */
} ref;

typedef struct state {
	const expand_ops *ops;
	void *ctx;
	expand_error *err;
	bool dry;    /* checking pass: visit every branch, look nothing up deeply */
	bool failed; /* keep the first error only */
	size_t depth;
	char *stack[EXPAND_MAX_DEPTH]; /* names whose values are being expanded */
	size_t nest;                   /* conditional branches being expanded */
	size_t work;                   /* bytes produced and names looked up */
} state;

static int expand_text(state *st, strbuf *out, const char *start, span t);
static int fail_at(state *st, const char *start, const char *where, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail_ref(state *st, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static bool
is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *
scan_name(const char *p, const char *end)
{
	while (p < end && is_name_char(*p))
		p++;
	return p;
}

/* The close that balances an already open one, counting nested pairs. */
static const char *
match_close(const char *p, const char *end, char open, char close)
{
	int level = 0;

	for (; p < end; p++) {
		if (*p == open) {
			level++;
		} else if (*p == close) {
			if (level == 0)
				return p;
			level--;
		}
	}
	return NULL;
}

static void
emit(state *st, strbuf *out, const char *p, size_t n)
{
	if (!st->dry) {
		strbuf_append(out, p, n);
		st->work += n;
	}
}

/* A problem at `where' in the text that starts at `start'. */
static int
fail_at(state *st, const char *start, const char *where, const char *fmt, ...)
{
	size_t col = (size_t)(where - start) + 1;
	va_list ap;

	if (st->failed)
		return -1;
	st->failed = true;
	strbuf_reset(&st->err->msg);
	if (st->depth == 0) {
		st->err->column = col;
	} else {
		strbuf_printf(&st->err->msg, "in the value of $%s, column %zu: ",
		              st->stack[st->depth - 1], col);
		st->err->nested = true;
	}
	va_start(ap, fmt);
	strbuf_vprintf(&st->err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* A problem with a reference chain; eval_ref() adds the top-level column. */
static int
fail_ref(state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->failed)
		return -1;
	st->failed = true;
	strbuf_reset(&st->err->msg);
	va_start(ap, fmt);
	strbuf_vprintf(&st->err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

static void
describe_char(strbuf *b, char c)
{
	if (c > ' ' && c < 0x7f)
		strbuf_printf(b, "'%c'", c);
	else
		strbuf_printf(b, "byte 0x%02x", (unsigned char)c);
}

static int
fail_bad_char(state *st, const char *start, const char *where)
{
	strbuf what = STRBUF_INIT;
	int rc;

	describe_char(&what, *where);
	rc = fail_at(st, start, where, "unexpected %s in a name", strbuf_str(&what));
	strbuf_free(&what);
	return rc;
}

static int
fail_unclosed(state *st, const char *start, const ref *r)
{
	char open = r->at[1];

	return fail_at(st, start, r->at, "missing '%c' to close '$%c'",
	               open == '{' ? '}' : ')', open);
}

/* After "?" or ":": a braced value (with an optional ":{b}"), or a bare one. */
static int
parse_cond(state *st, const char *start, ref *r, const char *q, const char *end)
{
	char open = r->at[1], close = open == '{' ? '}' : ')';
	const char *v;

	q = skip_ws(q, end);
	if (q == end || *q != '{') {
		/* The old form: the value runs to the balancing close. */
		if ((v = match_close(q, end, open, close)) == NULL)
			return fail_unclosed(st, start, r);
		r->a = (span){q, v};
		r->next = v + 1;
		return 0;
	}
	if ((v = match_close(q + 1, end, '{', '}')) == NULL)
		return fail_at(st, start, q, "missing '}' to close '{'");
	r->a = (span){q + 1, v};
	q = skip_ws(v + 1, end);
	if (r->op == '?' && q < end && *q == ':') {
		q = skip_ws(q + 1, end);
		if (q < end && *q == '{') {
			if ((v = match_close(q + 1, end, '{', '}')) == NULL)
				return fail_at(st, start, q, "missing '}' to close '{'");
			r->b = (span){q + 1, v};
			q = skip_ws(v + 1, end);
		} else {
			if ((v = match_close(q, end, open, close)) == NULL)
				return fail_unclosed(st, start, r);
			r->b = (span){q, v};
			q = v;
		}
	}
	if (q == end)
		return fail_unclosed(st, start, r);
	if (*q != close)
		return fail_at(st, start, q, "unexpected text after '}': expected %s'%c'",
		               r->op == '?' && r->b.p == NULL ? "':' or " : "", close);
	r->next = q + 1;
	return 0;
}

/* ${name}, $(name), ${name?...}, ${name:...}; r->at points to the '$'. */
static int
parse_braced(state *st, const char *start, ref *r, const char *end)
{
	char close = r->at[1] == '{' ? '}' : ')';
	const char *q = skip_ws(r->at + 2, end);

	r->name.p = q;
	r->name.end = q = scan_name(q, end);
	q = skip_ws(q, end);
	if (q == end)
		return fail_unclosed(st, start, r);
	if (r->name.p == r->name.end && (*q == close || *q == '?' || *q == ':'))
		return fail_at(st, start, r->at, "missing name after '$%c'", r->at[1]);
	if (*q == close) {
		r->next = q + 1;
		return 0;
	}
	if (*q != '?' && *q != ':')
		return fail_bad_char(st, start, q);
	if (r->name.p == r->name.end)
		return fail_at(st, start, r->at, "missing name after '$%c'", r->at[1]);
	r->op = *q;
	return parse_cond(st, start, r, q + 1, end);
}

static const char *
lookup(state *st, const char *name)
{
	if (st->ops->lookup == NULL)
		return NULL;
	return st->ops->lookup(st->ctx, name);
}

/* 0 when unknown names are allowed (they are simply not set). */
static int
unknown_name(state *st, const char *start, const ref *r, const char *name)
{
	strbuf msg = STRBUF_INIT;
	int rc;

	if (!(st->ops->flags & EXPAND_UNKNOWN_IS_ERROR))
		return 0;
	if (st->ops->unknown != NULL)
		st->ops->unknown(st->ctx, name, &msg);
	if (msg.len == 0)
		strbuf_printf(&msg, "unknown name $%s", name);
	rc = fail_at(st, start, r->at, "%s", strbuf_str(&msg));
	strbuf_free(&msg);
	return rc;
}

/* The chain from the first time name was entered: "$a -> $b -> $a". */
static int
fail_loop(state *st, size_t first, const char *name)
{
	strbuf chain = STRBUF_INIT;
	size_t i;
	int rc;

	for (i = first; i < st->depth; i++)
		strbuf_printf(&chain, "$%s -> ", st->stack[i]);
	rc = fail_ref(st, "expansion loop: %s$%s", strbuf_str(&chain), name);
	strbuf_free(&chain);
	return rc;
}

/* Enter the value of name; a name already being expanded is a loop. */
static int
push(state *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->depth; i++)
		if (strcmp(st->stack[i], name) == 0)
			return fail_loop(st, i, name);
	if (st->depth == EXPAND_MAX_DEPTH)
		return fail_ref(st, "expansion nested deeper than %d levels at $%s",
		                EXPAND_MAX_DEPTH, name);
	st->stack[st->depth++] = ms_xstrdup(name);
	return 0;
}

static void
pop(state *st)
{
	free(st->stack[--st->depth]);
}

/* Append the value of name, itself expanded when the caller asked for that. */
static int
expand_value(state *st, strbuf *out, const char *name, const char *raw)
{
	int rc;

	if (!(st->ops->flags & EXPAND_RECURSE)) {
		strbuf_puts(out, raw);
		return 0;
	}
	if (push(st, name) < 0)
		return -1;
	rc = expand_text(st, out, raw, (span){raw, raw + strlen(raw)});
	pop(st);
	return rc;
}

static int
is_set(state *st, const char *name, const char *raw, bool *set)
{
	strbuf val = STRBUF_INIT;
	int rc;

	*set = false;
	if (raw == NULL)
		return 0;
	rc = expand_value(st, &val, name, raw);
	*set = val.len > 0;
	strbuf_free(&val);
	return rc;
}

static int
eval_plain(state *st, strbuf *out, const char *start, const ref *r, const char *name)
{
	const char *raw = lookup(st, name);

	if (raw == NULL)
		return unknown_name(st, start, r, name);
	if (st->dry)
		return 0;
	return expand_value(st, out, name, raw);
}

/* A branch of a conditional; the nesting bound keeps hostile text off the stack. */
static int
eval_branch(state *st, strbuf *out, const char *start, const ref *r, span branch)
{
	int rc;

	if (st->nest == EXPAND_MAX_NEST)
		return fail_at(st, start, r->at,
		               "conditionals nested deeper than %d levels",
		               EXPAND_MAX_NEST);
	st->nest++;
	rc = expand_text(st, out, start, branch);
	st->nest--;
	return rc;
}

static int
eval_cond(state *st, strbuf *out, const char *start, const ref *r, const char *name)
{
	const char *raw = lookup(st, name);
	const span *branch;
	bool set;

	if (raw == NULL && unknown_name(st, start, r, name) < 0)
		return -1;
	if (st->dry) {
		if (eval_branch(st, out, start, r, r->a) < 0)
			return -1;
		return r->b.p != NULL ? eval_branch(st, out, start, r, r->b) : 0;
	}
	if (is_set(st, name, raw, &set) < 0)
		return -1;
	if (r->op == '?')
		branch = set ? &r->a : &r->b;
	else
		branch = set ? NULL : &r->a;
	if (branch == NULL || branch->p == NULL)
		return 0;
	return eval_branch(st, out, start, r, *branch);
}

static int
eval_ref(state *st, strbuf *out, const char *start, const ref *r)
{
	char *name;
	int rc;

	/*
	 * Values that name others several times grow exponentially with the
	 * length of the chain (a = $b$b, b = $c$c, ...): a few hundred bytes of
	 * config would take hours and all memory. The whole work is bounded.
	 */
	if ((st->ops->flags & EXPAND_RECURSE) && ++st->work > EXPAND_MAX_WORK) {
		rc = fail_ref(st,
		              "expansion too large (over %d bytes and names): values "
		              "refer to others too many times",
		              EXPAND_MAX_WORK);
	} else {
		name = ms_xstrndup(r->name.p, (size_t)(r->name.end - r->name.p));
		if (r->op == 0)
			rc = eval_plain(st, out, start, r, name);
		else
			rc = eval_cond(st, out, start, r, name);
		free(name);
	}
	/* Errors found deeper are reported at the reference that led there. */
	if (rc < 0 && st->depth == 0 && st->err->column == 0)
		st->err->column = (size_t)(r->at - start) + 1;
	return rc;
}

/* at points to a '$'; returns the first byte after the reference, NULL on error. */
static const char *
expand_ref(state *st, strbuf *out, const char *start, const char *at, const char *end)
{
	ref r = {.at = at};

	if (at + 1 == end) {
		fail_at(st, start, at, "'$' at the end (write $$ for a literal '$')");
		return NULL;
	}
	if (at[1] == '$') {
		emit(st, out, "$", 1);
		return at + 2;
	}
	if (is_name_char(at[1])) {
		r.name = (span){at + 1, scan_name(at + 1, end)};
		r.next = r.name.end;
	} else if (at[1] == '{' || at[1] == '(') {
		if (parse_braced(st, start, &r, end) < 0)
			return NULL;
	} else {
		fail_at(st, start, at,
		        "'$' must be followed by a name, '{' or '(' "
		        "(write $$ for a literal '$')");
		return NULL;
	}
	return eval_ref(st, out, start, &r) < 0 ? NULL : r.next;
}

static int
expand_text(state *st, strbuf *out, const char *start, span t)
{
	const char *p = t.p;

	while (p < t.end) {
		const char *dollar = memchr(p, '$', (size_t)(t.end - p));

		if (dollar == NULL) {
			emit(st, out, p, (size_t)(t.end - p));
			return 0;
		}
		emit(st, out, p, (size_t)(dollar - p));
		if ((p = expand_ref(st, out, start, dollar, t.end)) == NULL)
			return -1;
	}
	return 0;
}

void
expand_error_free(expand_error *err)
{
	strbuf_free(&err->msg);
	err->column = 0;
	err->nested = false;
}

int
expand_str(strbuf *out, const char *in, const expand_ops *ops, void *ctx,
           expand_error *err)
{
	expand_error scratch = EXPAND_ERROR_INIT;
	span all = {in, in + strlen(in)};
	state st = {.ops = ops, .ctx = ctx, .err = err != NULL ? err : &scratch};
	int rc;

	st.err->column = 0;
	st.err->nested = false;
	strbuf_reset(&st.err->msg);

	/*
	 * A checking pass first, so that a mistake in a branch not taken
	 * today does not wait for the other personality to show up.
	 */
	st.dry = true;
	rc = expand_text(&st, out, in, all);
	if (rc == 0) {
		st.dry = false;
		rc = expand_text(&st, out, in, all);
	}
	expand_error_free(&scratch);
	return rc;
}
