/*
 * Unit tests for the control socket's commands (control): every verb, wrong
 * arity, case, whitespace, overlong lines, NUL and control bytes, the empty
 * line; the answers of each command through fake ops.
 */
#include "config.h"

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "strbuf.h"

/* What the fake ops saw and how they answer. */
struct fake {
	int calls;
	enum stress_force force;
	bool refuse; /* stress() and reload() fail */
	enum stress_force switch_now;
	const char *sources; /* stress_sources; NULL: not set */
};

static void
fake_status(void *ctx, control_status *st)
{
	struct fake *f = ctx;

	f->calls++;
	st->version = "9.9";
	st->pid = 42;
	st->uptime_ms = 90061000; /* 1d 1h 1m 1s */
	strbuf_puts(&st->config, "/etc/ms.conf");
	st->generation = 3;
	st->sessions_now = 2;
	st->sessions_peak = 7;
	st->max_sessions = 4000;
	st->force = f->switch_now;
	strbuf_puts(&st->stress_macro, "{stress}");
	st->suspended_zones = 1;
	strbuf_puts(&st->zones, "zen.example.org");
	strbuf_puts(&st->busiest, "12 connect reject listed\n3 rcpt tempfail \x1b[2J\n");
	strbuf_puts(&st->stats, "statistics: messages=5\nerror: forged");
	if (f->sources != NULL) {
		strbuf_puts(&st->sources, f->sources);
		strbuf_puts(&st->load, "sessions smtpd 8/10 stress (3 s)");
	}
}

static bool
fake_stress(void *ctx, enum stress_force force, strbuf *err)
{
	struct fake *f = ctx;

	f->calls++;
	f->force = force;
	if (f->refuse)
		strbuf_puts(err, "pinned by -o stress=yes");
	return !f->refuse;
}

static bool
fake_reload(void *ctx, unsigned long *gen, strbuf *err)
{
	struct fake *f = ctx;

	f->calls++;
	*gen = f->refuse ? 3 : 4;
	if (f->refuse)
		strbuf_puts(err,
		            "ms.conf:7: unknown parameter 'x'\nms.conf:9: bad value\n");
	return !f->refuse;
}

static void
fake_stats(void *ctx, strbuf *line)
{
	struct fake *f = ctx;

	f->calls++;
	strbuf_puts(line, "statistics: messages=5");
}

static const control_ops ops = {fake_status, fake_stress, fake_reload, fake_stats};

#define L(s) s, sizeof s - 1 /* a literal with its NULs */

static const struct parse_case {
	const char *line;
	size_t len;
	bool ok;
	enum control_verb verb;
	enum stress_force force;
	const char *why; /* a substring of the reason */
} parse_cases[] = {
        {L("status"), true, CONTROL_STATUS, STRESS_FORCE_NONE, NULL},
        {L("status\n"), true, CONTROL_STATUS, STRESS_FORCE_NONE, NULL},
        {L("status\r\n"), true, CONTROL_STATUS, STRESS_FORCE_NONE, NULL},
        {L("  \tSTATUS \t "), true, CONTROL_STATUS, STRESS_FORCE_NONE, NULL},
        {L("Stats"), true, CONTROL_STATS, STRESS_FORCE_NONE, NULL},
        {L("reload"), true, CONTROL_RELOAD, STRESS_FORCE_NONE, NULL},
        {L("help"), true, CONTROL_HELP, STRESS_FORCE_NONE, NULL},
        {L("stress on"), true, CONTROL_STRESS, STRESS_FORCE_ON, NULL},
        {L("stress   OFF\n"), true, CONTROL_STRESS, STRESS_FORCE_OFF, NULL},
        {L("STRESS\tAuto"), true, CONTROL_STRESS, STRESS_FORCE_NONE, NULL},
        /* arity */
        {L("stress"), false, 0, 0, "stress takes one argument: stress on|off|auto"},
        {L("stress on off"), false, 0, 0, "stress takes one argument"},
        {L("status now"), false, 0, 0, "status takes no argument"},
        {L("reload a b c d"), false, 0, 0, "reload takes no argument"},
        {L("stats x"), false, 0, 0, "stats takes no argument"},
        /* bad words */
        {L("stress yes"), false, 0, 0, "bad argument 'yes': stress on|off|auto"},
        {L("stress onn"), false, 0, 0, "bad argument 'onn'"},
        {L("stop"), false, 0, 0, "unknown command 'stop': try help"},
        {L("statu"), false, 0, 0, "unknown command 'statu'"},
        {L("status2"), false, 0, 0, "unknown command 'status2'"},
        {L("0123456789012345678901234567890123456789"), false, 0, 0,
         "unknown command '01234567890123456789012345678901...'"},
        /* empty */
        {L(""), false, 0, 0, "empty command"},
        {L("\n"), false, 0, 0, "empty command"},
        {L(" \t \r\n"), false, 0, 0, "empty command"},
        /* bytes */
        {L("status\0"), false, 0, 0, "NUL byte at offset 6"},
        {L("\0status"), false, 0, 0, "NUL byte at offset 0"},
        {L("stress o\0n"), false, 0, 0, "NUL byte at offset 8"},
        {L("status\n\n"), false, 0, 0, "control character 0x0a at offset 6"},
        {L("status\nreload"), false, 0, 0, "control character 0x0a"},
        {L("sta\rtus"), false, 0, 0, "control character 0x0d"},
        {L("status\x1b[2J"), false, 0, 0, "control character 0x1b"},
        {L("status\x7f"), false, 0, 0, "control character 0x7f"},
        {L("stress \xc3\xa9"), false, 0, 0, "bad argument"},
};

START_TEST(test_parse)
{
	const struct parse_case *tc = &parse_cases[_i];
	strbuf why = STRBUF_INIT;
	control_cmd cmd;
	bool ok = control_parse(tc->line, tc->len, &cmd, &why);

	ck_assert_msg(ok == tc->ok, "case %d: ok %d, why '%s'", _i, ok, strbuf_str(&why));
	if (ok) {
		ck_assert_int_eq(cmd.verb, tc->verb);
		ck_assert_int_eq(cmd.force, tc->force);
		ck_assert_uint_eq(why.len, 0);
	} else {
		ck_assert_msg(strstr(strbuf_str(&why), tc->why) != NULL,
		              "case %d: why '%s', expected '%s'", _i, strbuf_str(&why),
		              tc->why);
		ck_assert_ptr_null(strchr(strbuf_str(&why), '\n'));
	}
	strbuf_free(&why);
}
END_TEST

/* Lines of CONTROL_LINE_MAX bytes parse (as anything); one more does not. */
START_TEST(test_overlong)
{
	size_t n = CONTROL_LINE_MAX + 2;
	char *line = malloc(n);
	strbuf why = STRBUF_INIT;
	control_cmd cmd;

	ck_assert_ptr_nonnull(line);
	memset(line, ' ', n);
	memcpy(line, "status", 6);
	ck_assert(control_parse(line, CONTROL_LINE_MAX, &cmd, &why));
	line[CONTROL_LINE_MAX] = '\n';
	ck_assert(control_parse(line, CONTROL_LINE_MAX + 1, &cmd, &why));
	ck_assert(!control_parse(line, CONTROL_LINE_MAX + 2, &cmd, &why));
	ck_assert_str_eq(strbuf_str(&why), "command longer than 1024 bytes");
	line[CONTROL_LINE_MAX] = ' ';
	ck_assert(!control_parse(line, CONTROL_LINE_MAX + 1, &cmd, &why));
	free(line);
	strbuf_free(&why);
}
END_TEST

static const struct answer_case {
	const char *line;
	bool refuse;
	enum stress_force switch_now;
	bool ok;
	int calls;
	const char *answer; /* exact */
} answer_cases[] = {
        {"stress on", false, 0, true, 1, "ok: stress on for new sessions\n"},
        {"stress off", false, 0, true, 1, "ok: stress off for new sessions\n"},
        {"stress auto", false, 0, true, 1,
         "ok: stress auto: stress_sources decide for new sessions\n"},
        {"stress on", true, 0, false, 1, "error: pinned by -o stress=yes\n"},
        {"reload", false, 0, true, 1, "ok: reloaded, generation 4\n"},
        {"reload", true, 0, false, 1,
         "error: ms.conf:7: unknown parameter 'x'\n"
         "error: ms.conf:9: bad value\n"
         "error: reload failed; configuration generation 3 is kept\n"},
        {"stats", false, 0, true, 1, "statistics: messages=5\n"},
        {"status", false, STRESS_FORCE_NONE, true, 1,
         "milter-stress 9.9, pid 42, up 1d 1h 1m 1s\n"
         "config:     /etc/ms.conf, generation 3 (2 reloads)\n"
         "sessions:   now 2, peak 7, cap 4000 (max_sessions), turned away 0\n"
         "stress:     auto: from the {stress} macro\n"
         "dnsbl:      1 suspended zone: zen.example.org\n"
         "rules:      the busiest (verdicts, stage, action, rule):\n"
         "            12 connect reject listed\n"
         "            3 rcpt tempfail ?[2J\n"
         "statistics: messages=5?error: forged\n"},
        {"status", false, STRESS_FORCE_ON, true, 1, NULL},
        {"help", false, 0, true, 0, NULL},
        {"bogus", false, 0, false, 0, "error: unknown command 'bogus': try help\n"},
        {"", false, 0, false, 0, "error: empty command: try help\n"},
};

START_TEST(test_answer)
{
	const struct answer_case *tc = &answer_cases[_i];
	struct fake f = {0, STRESS_FORCE_NONE, tc->refuse, tc->switch_now, NULL};
	strbuf out = STRBUF_INIT;
	bool ok = control_handle(tc->line, strlen(tc->line), &ops, &f, &out);

	ck_assert_msg(ok == tc->ok, "case %d: '%s'", _i, strbuf_str(&out));
	ck_assert_int_eq(f.calls, tc->calls);
	if (tc->answer != NULL)
		ck_assert_str_eq(strbuf_str(&out), tc->answer);
	ck_assert(out.len > 0 && out.s[out.len - 1] == '\n');
	ck_assert_int_eq(strncmp(out.s, "error: ", 7) == 0, !ok);
	strbuf_free(&out);
}
END_TEST

/* The switch shows in the status screen; help lists every verb. */
START_TEST(test_screens)
{
	struct fake f = {0, STRESS_FORCE_NONE, false, STRESS_FORCE_OFF, NULL};
	strbuf out = STRBUF_INIT;

	ck_assert(control_handle("status", 6, &ops, &f, &out));
	ck_assert_ptr_nonnull(strstr(out.s, "stress:     off: forced by control"));
	strbuf_reset(&out);
	/* With a load source, the auto line names stress_sources, not the macro. */
	f.switch_now = STRESS_FORCE_NONE;
	f.sources = "macro, sessions";
	ck_assert(control_handle("status", 6, &ops, &f, &out));
	ck_assert_ptr_nonnull(strstr(out.s, "stress:     auto: from stress_sources = macro, sessions\n"
	                                    "load:       stress_sources = macro, sessions;"));
	strbuf_reset(&out);
	ck_assert(control_handle("help", 4, &ops, &f, &out));
	ck_assert_ptr_nonnull(strstr(out.s, "stress on|off|auto"));
	ck_assert_ptr_nonnull(strstr(out.s, "\nreload"));
	ck_assert_ptr_nonnull(strstr(out.s, "\nstats"));
	ck_assert_ptr_nonnull(strstr(out.s, "status"));
	strbuf_free(&out);
}
END_TEST

static Suite *
control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse, 0,
	                    sizeof parse_cases / sizeof parse_cases[0]);
	tcase_add_test(tc, test_overlong);
	tcase_add_loop_test(tc, test_answer, 0,
	                    sizeof answer_cases / sizeof answer_cases[0]);
	tcase_add_test(tc, test_screens);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(control_suite());
}
