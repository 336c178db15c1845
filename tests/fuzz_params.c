/*
 * fuzz_params - libFuzzer target: parameters and their expansion.
 *
 * Every input is used two ways.
 *
 * 1. As a config file, through conf_load_text() (with no override, with
 *    -o stress=yes or with -o stress=, by the input's length mod 3):
 *    logical lines and continuations, "name = value", unknown names,
 *    include, the expansion of every parameter in both personalities
 *    ($name, ${name?{a}:{b}}, loops, depth) and the typed values (times,
 *    sizes, integers, booleans, lists) with their bounds and validators.
 *    When it loads, the dump of each personality, read back as -o
 *    name=value overrides (with '$' written "$$"), must load and dump the
 *    same: every type prints in a form that reads back as the same value.
 *
 * 2. Line by line, through expand_str() against a fixed table of names
 *    (set, empty, chains, loops, conditionals, a chain past the depth
 *    limit, values that fan out), with each combination of EXPAND_RECURSE
 *    and EXPAND_UNKNOWN_IS_ERROR. An error must name a column inside the
 *    line and say something; a success must not depend on being asked
 *    twice, must survive dropping UNKNOWN_IS_ERROR with the same output,
 *    and its output with every '$' doubled must expand back to itself.
 *
 * include lines read files relative to the current directory (the runner
 * starts the target in its corpus directory); nothing is written.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "expand.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- 1. the config file ---- */

/* The parameter lines of conf_dump() (not the rules), in a new string. */
static char *
dump_params(const conf *c, bool stressed)
{
	char *buf = NULL, *rules;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		abort();
	conf_dump(c, stressed, fp);
	if (fclose(fp) != 0)
		abort();
	/* A line of its own (a value may hold the same text). */
	if ((rules = strstr(buf, "\n# rules\n")) != NULL)
		rules[1] = '\0';
	return buf;
}

static void
put_escaped(strbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '$')
			strbuf_putc(b, '$');
		strbuf_putc(b, *s);
	}
}

/* Load the dumped "name = value" lines as -o overrides; the dump must not change. */
static void
check_dump_reads_back(const conf *c, bool stressed)
{
	char *dump = dump_params(c, stressed), *again, *line, *next;
	char *lines = ms_xstrdup(dump);
	size_t n = 0, cap = 2; /* stress=..., and one per line */
	char **ovr;
	strbuf err = STRBUF_INIT;
	conf *c2;

	for (const char *p = dump; *p != '\0'; p++)
		cap += *p == '\n';
	ovr = calloc(cap, sizeof *ovr);
	if (ovr == NULL)
		abort();
	ovr[n++] = ms_xstrdup(stressed ? "stress=yes" : "stress=");
	for (line = lines; *line != '\0'; line = next) {
		char *nl = strchr(line, '\n'), *eq = strstr(line, " =");
		strbuf o = STRBUF_INIT;

		next = nl != NULL ? nl + 1 : line + strlen(line);
		if (nl != NULL)
			*nl = '\0';
		if (eq == NULL || n == cap) {
			fprintf(stderr, "unexpected dump line '%s'\n", line);
			abort();
		}
		strbuf_append(&o, line, (size_t)(eq - line));
		strbuf_putc(&o, '=');
		put_escaped(&o, eq[2] == ' ' ? eq + 3 : eq + 2);
		ovr[n++] = strbuf_detach(&o);
	}
	if ((c2 = conf_load_text("dump", "", 0, ovr, n, &err)) == NULL) {
		fprintf(stderr, "the dump does not load again:\n%s%s", dump,
		        strbuf_str(&err));
		abort();
	}
	again = dump_params(c2, stressed);
	if (strcmp(dump, again) != 0) {
		fprintf(stderr, "dump:\n%s\nloaded again:\n%s", dump, again);
		abort();
	}
	conf_unref(c2);
	free(dump);
	free(again);
	free(lines);
	while (n > 0)
		free(ovr[--n]);
	free(ovr);
	strbuf_free(&err);
}

static void
load_config(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	static char *const forced[] = {(char *)"stress=yes", (char *)"stress="};
	strbuf err = STRBUF_INIT;
	conf *c;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	c = conf_load_text("fuzz.conf", (const char *)data, size, forced + size % 3 % 2,
	                   size % 3 != 0, &err);
	if (c == NULL) {
		if (err.len == 0 || err.s[err.len - 1] != '\n') {
			fprintf(stderr,
			        "a failed load must say why, one line each: '%s'\n",
			        strbuf_str(&err));
			abort();
		}
	} else {
		conf_dump(c, false, devnull);
		check_dump_reads_back(c, false);
		check_dump_reads_back(c, true);
		conf_unref(c);
	}
	strbuf_free(&err);
}

/* ---- 2. expand_str() on each line ---- */

#define CHAIN_LEN 40 /* c0 -> c1 -> ... -> c39: deeper than EXPAND_MAX_DEPTH */

static const struct var {
	const char *name;
	const char *value;
} vars[] = {
        {"a", "x"},
        {"e", ""},
        {"s", "yes"},
        {"stress", ""},
        {"b", "$a$a"},
        {"ref_e", "$e"},
        {"cond", "${s?{on}:{off}}"},
        {"old", "${s?on}${e:off}"},
        {"l1", "$l2"},
        {"l2", "${e?{x}:{$l1}}"},
        {"self", "${self}"},
        {"bad", "${a"},
        {"unk", "ok $nope"},
        {"dollar", "$$a"},
        {"space", " ${ a } "},
        {"f1", "$f2$f2$f2$f2"},
        {"f2", "$f3$f3$f3$f3"},
        {"f3", "${s?{$b}:{$e}}"},
        {"c40", "end"},
};

static char chain[CHAIN_LEN][16];

static const char *
lookup(void *ctx, const char *name)
{
	size_t i;
	char *end;
	long n;

	(void)ctx;
	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (strcmp(vars[i].name, name) == 0)
			return vars[i].value;
	if (name[0] == 'c' && name[1] >= '0' && name[1] <= '9') {
		n = strtol(name + 1, &end, 10);
		if (*end == '\0' && n >= 0 && n < CHAIN_LEN)
			return chain[n];
	}
	return NULL;
}

static int
expand(strbuf *out, const char *in, unsigned flags, expand_error *e)
{
	expand_ops ops = {lookup, NULL, flags};

	strbuf_reset(out);
	return expand_str(out, in, &ops, NULL, e);
}

static void
bad(const char *what, const char *in, unsigned flags, const expand_error *e)
{
	fprintf(stderr, "%s: flags %u, input '%s', column %zu, message '%s'\n", what,
	        flags, in, e->column, strbuf_str(&e->msg));
	abort();
}

static void
check_expand(const char *in)
{
	strbuf out = STRBUF_INIT, again = STRBUF_INIT, esc = STRBUF_INIT;
	expand_error e = EXPAND_ERROR_INIT, e2 = EXPAND_ERROR_INIT;
	unsigned flags;
	int rc;

	for (flags = 0; flags < 4; flags++) {
		rc = expand(&out, in, flags, &e);
		if (expand(&again, in, flags, &e2) != rc ||
		    (rc == 0 && strcmp(strbuf_str(&out), strbuf_str(&again)) != 0))
			bad("not the same twice", in, flags, &e);
		if (rc < 0) {
			if (e.column < 1 || e.column > strlen(in) || e.msg.len == 0)
				bad("error without a column in the input or a message",
				    in, flags, &e);
			if (e.nested && !(flags & EXPAND_RECURSE))
				bad("nested error without EXPAND_RECURSE", in, flags, &e);
			continue;
		}
		if (flags & EXPAND_UNKNOWN_IS_ERROR) {
			if (expand(&again, in, flags & ~EXPAND_UNKNOWN_IS_ERROR, &e2) <
			            0 ||
			    strcmp(strbuf_str(&out), strbuf_str(&again)) != 0)
				bad("UNKNOWN_IS_ERROR changed a success", in, flags, &e2);
		}
		strbuf_reset(&esc);
		put_escaped(&esc, strbuf_str(&out));
		if (expand(&again, strbuf_str(&esc), 0, &e2) < 0 ||
		    strcmp(strbuf_str(&out), strbuf_str(&again)) != 0)
			bad("the output with $$ does not expand to itself", in, flags,
			    &e2);
	}
	strbuf_free(&out);
	strbuf_free(&again);
	strbuf_free(&esc);
	expand_error_free(&e);
	expand_error_free(&e2);
}

static void
expand_lines(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *line = ms_xstrndup(p, n); /* a NUL byte ends the line early */

		check_expand(line);
		free(line);
		p += n + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int i;

	if (chain[0][0] == '\0')
		for (i = 0; i < CHAIN_LEN; i++)
			snprintf(chain[i], sizeof chain[i], "$c%d", i + 1);
	load_config(data, size);
	expand_lines(data, size);
	return 0;
}
