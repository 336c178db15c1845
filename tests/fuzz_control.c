/*
 * fuzz_control - libFuzzer target: the control socket's commands.
 *
 * Every input is one command line as a client could send it (any bytes, any
 * length: the daemon hands over up to CONTROL_LINE_MAX + 2 bytes, the
 * target more). It goes through control_handle() with fake ops whose
 * stress() and reload() fail or not by the input's length, and the answer
 * must keep control.h's promises: complete lines, all "error: " exactly
 * when it failed, no NUL or control byte but the newlines, and at most
 * CONTROL_ECHO_MAX bytes of a word quoted back. control_parse() must agree
 * with control_handle() on what parses, and parse the same line twice the
 * same way.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fail_ops; /* stress() and reload() fail */
static int op_calls;

static void
f_status(void *ctx, control_status *st)
{
	(void)ctx;
	op_calls++;
	st->version = "0";
	strbuf_puts(&st->config, "/etc/a\nb.conf"); /* a newline must not split */
	st->generation = 1;
	strbuf_puts(&st->stress_macro, "{stress}");
	strbuf_puts(&st->stats, "statistics: x\r\n");
}

static bool
f_stress(void *ctx, enum stress_force force, strbuf *err)
{
	(void)ctx;
	(void)force;
	op_calls++;
	if (fail_ops)
		strbuf_puts(err, "refused\x01");
	return !fail_ops;
}

static bool
f_reload(void *ctx, unsigned long *gen, strbuf *err)
{
	(void)ctx;
	op_calls++;
	*gen = 7;
	if (fail_ops)
		strbuf_puts(err, "a.conf:1: bad\na.conf:2: worse\n");
	return !fail_ops;
}

static void
f_stats(void *ctx, strbuf *line)
{
	(void)ctx;
	op_calls++;
	strbuf_puts(line, "statistics: y");
}

static const control_ops ops = {f_status, f_stress, f_reload, f_stats};

static void
bad(const char *what, const strbuf *answer)
{
	fprintf(stderr, "%s; answer:\n%s\n", what, strbuf_str(answer));
	abort();
}

static void
check_answer(bool ok, const strbuf *a)
{
	const char *p = a->s, *end = a->s + a->len;

	if (a->len == 0 || a->s[a->len - 1] != '\n')
		bad("no answer, or not complete lines", a);
	for (size_t i = 0; i < a->len; i++) {
		unsigned char c = (unsigned char)a->s[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			bad("a control byte in the answer", a);
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		bool err = strncmp(p, "error: ", 7) == 0;

		if (err != !ok)
			bad(ok ? "an error line in a success"
			       : "a failure line without error: ",
			    a);
		if (!ok && (size_t)(nl - p) > 7 + 100 + CONTROL_ECHO_MAX + 3 + 60)
			bad("an error line longer than a reason and a quoted word", a);
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	strbuf answer = STRBUF_INIT, why = STRBUF_INIT, why2 = STRBUF_INIT;
	control_cmd cmd, cmd2;
	bool parsed, parsed2, ok;

	fail_ops = size % 2 == 1;
	op_calls = 0;
	parsed = control_parse((const char *)data, size, &cmd, &why);
	parsed2 = control_parse((const char *)data, size, &cmd2, &why2);
	if (parsed != parsed2 || (parsed && memcmp(&cmd, &cmd2, sizeof cmd) != 0) ||
	    strcmp(strbuf_str(&why), strbuf_str(&why2)) != 0)
		bad("two parses differ", &why);
	if (!parsed && (why.len == 0 || strchr(why.s, '\n') != NULL))
		bad("a parse failure without one line of reason", &why);
	ok = control_handle((const char *)data, size, &ops, NULL, &answer);
	check_answer(ok, &answer);
	if (!parsed && (ok || op_calls != 0))
		bad("a line that does not parse ran a command", &answer);
	if (parsed && cmd.verb != CONTROL_HELP && op_calls != 1)
		bad("a command did not run exactly one op", &answer);
	strbuf_free(&answer);
	strbuf_free(&why);
	strbuf_free(&why2);
	return 0;
}
