/*
 * Unit tests for expand: every form set and not set, nesting, $$, unknown
 * names, syntax errors with their columns, recursion, loops and depth.
 */
#include "config.h"

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expand.h"
#include "strbuf.h"

#define CHAIN_LEN 41

/* c0 -> $c1 -> ... -> $c40 -> "end": deep but loop-free. */
static char chain[CHAIN_LEN][16];

static const struct var {
	const char *name;
	const char *value;
} vars[] = {
        {"a", "x"},     {"e", ""},           {"s", "yes"},
        {"b", "$a$a"},  {"ref_e", "$e"},     {"cond", "${s?{on}:{off}}"},
        {"l1", "$l2"},  {"l2", "$l1"},       {"self", "${self}"},
        {"bad", "${a"}, {"unk", "ok $nope"}, {"dollar", "$$a"},
};

static const char *
lookup(void *ctx, const char *name)
{
	size_t i;
	int n;

	(void)ctx;
	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (strcmp(vars[i].name, name) == 0)
			return vars[i].value;
	if (name[0] == 'c' && sscanf(name + 1, "%d", &n) == 1 && n >= 0 && n < CHAIN_LEN)
		return chain[n];
	return NULL;
}

#define ALL (EXPAND_RECURSE | EXPAND_UNKNOWN_IS_ERROR)
#define LAX EXPAND_RECURSE          /* unknown names are simply not set */
#define RAW EXPAND_UNKNOWN_IS_ERROR /* looked-up values are literal */

typedef struct xcase {
	const char *in;
	unsigned flags;
	const char *want; /* NULL: an error is expected */
	size_t column;    /* of the error */
	const char *msg;  /* a substring of the error message */
	bool nested;
} xcase;

static const xcase cases[] = {
        /* literal text */
        {"", ALL, "", 0, NULL, false},
        {"plain text", ALL, "plain text", 0, NULL, false},
        {"a}b{c", ALL, "a}b{c", 0, NULL, false},
        /* $name, ${name}, $(name) */
        {"$a", ALL, "x", 0, NULL, false},
        {"${a}", ALL, "x", 0, NULL, false},
        {"$(a)", ALL, "x", 0, NULL, false},
        {"${ a }", ALL, "x", 0, NULL, false},
        {"$a.$a-${a}$(a)", ALL, "x.x-xx", 0, NULL, false},
        {"$a{b}", ALL, "x{b}", 0, NULL, false},
        {"[$e]", ALL, "[]", 0, NULL, false},
        /* $$ */
        {"$$", ALL, "$", 0, NULL, false},
        {"$$a", ALL, "$a", 0, NULL, false},
        {"a$$$a", ALL, "a$x", 0, NULL, false},
        {"100$$", ALL, "100$", 0, NULL, false},
        {"$dollar", ALL, "$a", 0, NULL, false},
        /* old forms */
        {"${a?yes}", ALL, "yes", 0, NULL, false},
        {"${e?yes}", ALL, "", 0, NULL, false},
        {"${a:no}", ALL, "", 0, NULL, false},
        {"${e:no}", ALL, "no", 0, NULL, false},
        {"$(a?yes)", ALL, "yes", 0, NULL, false},
        {"$(e:no)", ALL, "no", 0, NULL, false},
        {"${a?x:y}", ALL, "x:y", 0, NULL, false},
        {"${a?x{y}}", ALL, "x{y}", 0, NULL, false},
        {"${a?yes}${e:no}", ALL, "yesno", 0, NULL, false},
        /* braced forms */
        {"${a?{yes}}", ALL, "yes", 0, NULL, false},
        {"${e?{yes}}", ALL, "", 0, NULL, false},
        {"${a:{no}}", ALL, "", 0, NULL, false},
        {"${e:{no}}", ALL, "no", 0, NULL, false},
        {"${a?{y}:{n}}", ALL, "y", 0, NULL, false},
        {"${e?{y}:{n}}", ALL, "n", 0, NULL, false},
        {"${a ? {y} : {n}}", ALL, "y", 0, NULL, false},
        {"${e?{y}\t:\t{n} }", ALL, "n", 0, NULL, false},
        {"$(a?{y}:{n})", ALL, "y", 0, NULL, false},
        {"$(e?{y}:{n})", ALL, "n", 0, NULL, false},
        {"${e?{y}:n}", ALL, "n", 0, NULL, false},
        {"${a?{}:{n}}", ALL, "", 0, NULL, false},
        {"${e?{y}:{}}", ALL, "", 0, NULL, false},
        {"${a?{{x}}}", ALL, "{x}", 0, NULL, false},
        {"${a?{x:y}}", ALL, "x:y", 0, NULL, false},
        {"${a?{ x }}", ALL, " x ", 0, NULL, false},
        /* nesting */
        {"${s?{${a}}:{$b}}", ALL, "x", 0, NULL, false},
        {"${e?{${a}}:{$b}}", ALL, "xx", 0, NULL, false},
        {"${a?{${e?{1}:{${a?{2}}}}}}", ALL, "2", 0, NULL, false},
        {"${a?{$$}:{x}}", ALL, "$", 0, NULL, false},
        /* recursion: looked-up values are expanded, "set" follows that */
        {"$b", ALL, "xx", 0, NULL, false},
        {"$cond", ALL, "on", 0, NULL, false},
        {"${ref_e?{set}:{unset}}", ALL, "unset", 0, NULL, false},
        {"${b?{set}:{unset}}", ALL, "set", 0, NULL, false},
        {"$c9", ALL, "end", 0, NULL, false},
        /* without recursion looked-up values are literal */
        {"$b", RAW, "$a$a", 0, NULL, false},
        {"${ref_e?{set}:{unset}}", RAW, "set", 0, NULL, false},
        {"$self", RAW, "${self}", 0, NULL, false},
        /* unknown names */
        {"$nope", ALL, NULL, 1, "unknown name $nope", false},
        {"x${nope}", ALL, NULL, 2, "unknown name $nope", false},
        {"${nope?{a}}", ALL, NULL, 1, "unknown name $nope", false},
        {"${a?{x}:{$nope}}", ALL, NULL, 10, "unknown name $nope", false},
        {"[$nope]", LAX, "[]", 0, NULL, false},
        {"${nope?{a}:{b}}", LAX, "b", 0, NULL, false},
        {"${nope:{b}}", LAX, "b", 0, NULL, false},
        /* syntax */
        {"$", ALL, NULL, 1, "'$' at the end", false},
        {"ab$", ALL, NULL, 3, "'$' at the end", false},
        {"$ x", ALL, NULL, 1, "'$' must be followed by a name", false},
        {"a$-", ALL, NULL, 2, "'$' must be followed by a name", false},
        {"${}", ALL, NULL, 1, "missing name after '${'", false},
        {"$()", ALL, NULL, 1, "missing name after '$('", false},
        {"${?{x}}", ALL, NULL, 1, "missing name after '${'", false},
        {"${a", ALL, NULL, 1, "missing '}' to close '${'", false},
        {"x$(a", ALL, NULL, 2, "missing ')' to close '$('", false},
        {"${a.b}", ALL, NULL, 4, "unexpected '.' in a name", false},
        {"${a?{x}", ALL, NULL, 1, "missing '}' to close '${'", false},
        {"${a?{x", ALL, NULL, 5, "missing '}' to close '{'", false},
        {"${a?{x}:{y", ALL, NULL, 9, "missing '}' to close '{'", false},
        {"${a?{x}junk}", ALL, NULL, 8, "expected ':' or '}'", false},
        {"${e:{x}:{y}}", ALL, NULL, 8, "unexpected text after '}'", false},
        {"${a?{x}:{y}z}", ALL, NULL, 12, "unexpected text after '}'", false},
        {"x${a?{$}}", ALL, NULL, 7, "'$' at the end", false},
        {"${e?{$ }:{y}}", ALL, NULL, 6, "must be followed", false},
        /* loops and depth: reported at the reference, not nested */
        {"$l1", ALL, NULL, 1, "expansion loop: $l1 -> $l2 -> $l1", false},
        {"x $self", ALL, NULL, 3, "expansion loop: $self -> $self", false},
        {"${l2?{a}}", ALL, NULL, 1, "expansion loop: $l2 -> $l1 -> $l2", false},
        {"$c8", ALL, NULL, 1, "nested deeper than 32 levels", false},
        /* problems inside a looked-up value */
        {"ab$bad", ALL, NULL, 3,
         "in the value of $bad, column 1: missing '}' to close '${'", true},
        {"${unk}", ALL, NULL, 1, "in the value of $unk, column 4: unknown name $nope",
         true},
        {"$unk", LAX, "ok ", 0, NULL, false},
};

START_TEST(test_cases)
{
	const xcase *t = &cases[_i];
	expand_ops ops = {lookup, NULL, t->flags};
	expand_error err = EXPAND_ERROR_INIT;
	strbuf out = STRBUF_INIT;
	int rc = expand_str(&out, t->in, &ops, NULL, &err);

	if (t->want != NULL) {
		ck_assert_msg(rc == 0, "'%s': unexpected error at %zu: %s", t->in,
		              err.column, strbuf_str(&err.msg));
		ck_assert_str_eq(strbuf_str(&out), t->want);
	} else {
		ck_assert_msg(rc == -1, "'%s': no error, got '%s'", t->in,
		              strbuf_str(&out));
		ck_assert_msg(strstr(strbuf_str(&err.msg), t->msg) != NULL,
		              "'%s': message '%s' lacks '%s'", t->in,
		              strbuf_str(&err.msg), t->msg);
		ck_assert_uint_eq(err.column, t->column);
		ck_assert_int_eq(err.nested, t->nested);
	}
	strbuf_free(&out);
	expand_error_free(&err);
}
END_TEST

START_TEST(test_appends)
{
	expand_ops ops = {lookup, NULL, ALL};
	strbuf out = STRBUF_INIT;

	strbuf_puts(&out, "pre:");
	ck_assert_int_eq(expand_str(&out, "$a", &ops, NULL, NULL), 0);
	ck_assert_str_eq(strbuf_str(&out), "pre:x");
	strbuf_free(&out);
}
END_TEST

START_TEST(test_null_err)
{
	expand_ops ops = {lookup, NULL, ALL};
	strbuf out = STRBUF_INIT;

	ck_assert_int_eq(expand_str(&out, "${a", &ops, NULL, NULL), -1);
	strbuf_free(&out);
}
END_TEST

START_TEST(test_err_reused)
{
	expand_ops ops = {lookup, NULL, ALL};
	expand_error err = EXPAND_ERROR_INIT;
	strbuf out = STRBUF_INIT;

	ck_assert_int_eq(expand_str(&out, "ab$bad", &ops, NULL, &err), -1);
	ck_assert(err.nested);
	ck_assert_int_eq(expand_str(&out, "$", &ops, NULL, &err), -1);
	ck_assert(!err.nested);
	ck_assert_uint_eq(err.column, 1);
	ck_assert_ptr_null(strstr(strbuf_str(&err.msg), "bad"));
	strbuf_reset(&out);
	ck_assert_int_eq(expand_str(&out, "ok", &ops, NULL, &err), 0);
	ck_assert_uint_eq(err.column, 0);
	ck_assert_str_eq(strbuf_str(&err.msg), "");
	strbuf_free(&out);
	expand_error_free(&err);
}
END_TEST

static void
word_unknown(void *ctx, const char *name, strbuf *msg)
{
	strbuf_printf(msg, "%s: no macro $%s", (const char *)ctx, name);
}

START_TEST(test_unknown_hook)
{
	expand_ops ops = {lookup, word_unknown, ALL};
	expand_error err = EXPAND_ERROR_INIT;
	strbuf out = STRBUF_INIT;

	ck_assert_int_eq(expand_str(&out, "x $zz", &ops, "reply", &err), -1);
	ck_assert_str_eq(strbuf_str(&err.msg), "reply: no macro $zz");
	ck_assert_uint_eq(err.column, 3);
	strbuf_free(&out);
	expand_error_free(&err);
}
END_TEST

START_TEST(test_no_lookup)
{
	expand_ops lax = {NULL, NULL, 0}, strict = {NULL, NULL, ALL};
	strbuf out = STRBUF_INIT;

	ck_assert_int_eq(expand_str(&out, "a${x:{b}}$$", &lax, NULL, NULL), 0);
	ck_assert_str_eq(strbuf_str(&out), "ab$");
	ck_assert_int_eq(expand_str(&out, "$x", &strict, NULL, NULL), -1);
	strbuf_free(&out);
}
END_TEST

/* Deep nesting is refused, not recursed into. */
START_TEST(test_deep_nesting)
{
	expand_ops ops = {lookup, NULL, ALL};
	expand_error err = EXPAND_ERROR_INIT;
	strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	int levels = _i == 0 ? EXPAND_MAX_NEST : 100000;
	int i;

	for (i = 0; i < levels; i++)
		strbuf_puts(&in, "${a?{");
	strbuf_puts(&in, "deep");
	for (i = 0; i < levels; i++)
		strbuf_puts(&in, "}}");
	if (_i == 0) {
		ck_assert_int_eq(expand_str(&out, in.s, &ops, NULL, &err), 0);
		ck_assert_str_eq(strbuf_str(&out), "deep");
	} else {
		ck_assert_int_eq(expand_str(&out, in.s, &ops, NULL, &err), -1);
		ck_assert_ptr_nonnull(strstr(strbuf_str(&err.msg), "nested deeper"));
		ck_assert_uint_eq(err.column, 5 * EXPAND_MAX_NEST + 1);
	}
	strbuf_free(&in);
	strbuf_free(&out);
	expand_error_free(&err);
}
END_TEST

/*
 * Values that each name the next one twice: fN = $fN+1$fN+1 doubles the
 * output at each step, gN = ${gN+1?{x}}${gN+1?{x}} the work of deciding
 * "set" (the output stays empty). 2^30 either way, unless bounded.
 */
#define FAN_LEN 30
static char fan[2][FAN_LEN][40];

static const char *
fan_lookup(void *ctx, const char *name)
{
	int n;
	char k;

	(void)ctx;
	if (sscanf(name, "%c%d", &k, &n) != 2 || (k != 'f' && k != 'g') || n < 0 ||
	    n > FAN_LEN)
		return NULL;
	if (n == FAN_LEN)
		return k == 'f' ? "ab" : "";
	return fan[k == 'g'][n];
}

static const struct fan_case {
	const char *in;
	size_t want_len; /* 0: refused as too large */
} fan_cases[] = {
        {"$f0", 0},
        {"x ${g0?{y}:{n}}", 0},
        {"$f20", 2 << 10},
        {"${g20?{y}:{n}}", 1},
};

START_TEST(test_fan_out)
{
	const struct fan_case *tc = &fan_cases[_i];
	expand_ops ops = {fan_lookup, NULL, ALL};
	expand_error err = EXPAND_ERROR_INIT;
	strbuf out = STRBUF_INIT;
	int i, rc;

	for (i = 0; i < FAN_LEN; i++) {
		snprintf(fan[0][i], sizeof fan[0][i], "$f%d$f%d", i + 1, i + 1);
		snprintf(fan[1][i], sizeof fan[1][i], "${g%d?{x}}${g%d?{x}}", i + 1,
		         i + 1);
	}
	rc = expand_str(&out, tc->in, &ops, NULL, &err);
	if (tc->want_len > 0) {
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(out.len, tc->want_len);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_msg(strstr(strbuf_str(&err.msg), "expansion too large") != NULL,
		              "message: %s", strbuf_str(&err.msg));
		ck_assert_uint_eq(err.column, strchr(tc->in, '$') - tc->in + 1);
		ck_assert(!err.nested);
	}
	strbuf_free(&out);
	expand_error_free(&err);
}
END_TEST

static void
make_chain(void)
{
	int i;

	for (i = 0; i < CHAIN_LEN - 1; i++)
		snprintf(chain[i], sizeof chain[i], "$c%d", i + 1);
	snprintf(chain[CHAIN_LEN - 1], sizeof chain[0], "end");
}

Suite *expand_suite(void);

Suite *
expand_suite(void)
{
	Suite *s = suite_create("expand");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, make_chain, NULL);
	tcase_add_loop_test(tc, test_cases, 0, sizeof cases / sizeof cases[0]);
	tcase_add_test(tc, test_appends);
	tcase_add_test(tc, test_null_err);
	tcase_add_test(tc, test_err_reused);
	tcase_add_test(tc, test_unknown_hook);
	tcase_add_test(tc, test_no_lookup);
	tcase_add_loop_test(tc, test_deep_nesting, 0, 2);
	tcase_add_loop_test(tc, test_fan_out, 0, sizeof fan_cases / sizeof fan_cases[0]);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(expand_suite());
}
