/* control - the control socket's commands; see control.h. */
#include "config.h"

#include "control.h"

#include <string.h>
#include <strings.h>

#define MAX_WORDS 3 /* one more than any verb takes: "too many" is then known */

/* The verbs: one row each. */
static const struct verb_desc {
	const char *name;
	enum control_verb verb;
	int args; /* exactly this many */
	const char *usage;
	const char *doc;
} verbs[] = {
        {"status", CONTROL_STATUS, 0, "status", "uptime, config, sessions, stress state"},
        {"stress", CONTROL_STRESS, 1, "stress on|off|auto",
         "force the personality of new sessions; auto: stress_sources decide"},
        {"reload", CONTROL_RELOAD, 0, "reload", "load the configuration again"},
        {"stats", CONTROL_STATS, 0, "stats", "the statistics line"},
        {"help", CONTROL_HELP, 0, "help", "this list"},
};

#define N_VERBS (sizeof verbs / sizeof verbs[0])

static const struct {
	const char *name;
	enum stress_force force;
} forces[] = {
        {"on", STRESS_FORCE_ON},
        {"off", STRESS_FORCE_OFF},
        {"auto", STRESS_FORCE_NONE},
};

typedef struct word {
	const char *p;
	size_t n;
} word;

/* Quote at most CONTROL_ECHO_MAX bytes of a word (printable: checked before). */
static void
put_word(strbuf *b, const word *w)
{
	size_t n = w->n < CONTROL_ECHO_MAX ? w->n : CONTROL_ECHO_MAX;

	strbuf_putc(b, '\'');
	strbuf_append(b, w->p, n);
	strbuf_puts(b, n < w->n ? "...'" : "'");
}

static bool
word_is(const word *w, const char *name)
{
	return strlen(name) == w->n && strncasecmp(w->p, name, w->n) == 0;
}

/* The line without its newline; false on a byte no command has. */
static bool
check_bytes(const char *line, size_t *len, strbuf *why)
{
	size_t n = *len;

	if (n > 0 && line[n - 1] == '\n')
		n--;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (n > CONTROL_LINE_MAX) {
		strbuf_printf(why, "command longer than %d bytes", CONTROL_LINE_MAX);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\0') {
			strbuf_printf(why, "NUL byte at offset %zu of the command", i);
			return false;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			strbuf_printf(
			        why,
			        "control character 0x%02x at offset %zu of the command",
			        c, i);
			return false;
		}
	}
	*len = n;
	return true;
}

/* Split on spaces and tabs; returns the count, MAX_WORDS when there are more. */
static size_t
split(const char *line, size_t len, word *w)
{
	size_t n = 0, i = 0;

	while (n < MAX_WORDS) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		w[n].p = line + i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		w[n].n = (size_t)(line + i - w[n].p);
		n++;
	}
	return n;
}

static const struct verb_desc *
find_verb(const word *w)
{
	for (size_t i = 0; i < N_VERBS; i++)
		if (word_is(w, verbs[i].name))
			return &verbs[i];
	return NULL;
}

static bool
parse_force(const word *w, enum stress_force *out)
{
	for (size_t i = 0; i < sizeof forces / sizeof forces[0]; i++)
		if (word_is(w, forces[i].name)) {
			*out = forces[i].force;
			return true;
		}
	return false;
}

bool
control_parse(const char *line, size_t len, control_cmd *cmd, strbuf *why)
{
	word w[MAX_WORDS];
	const struct verb_desc *v;
	size_t n;

	memset(cmd, 0, sizeof *cmd);
	if (!check_bytes(line, &len, why))
		return false;
	n = split(line, len, w);
	if (n == 0) {
		strbuf_puts(why, "empty command: try help");
		return false;
	}
	if ((v = find_verb(&w[0])) == NULL) {
		strbuf_puts(why, "unknown command ");
		put_word(why, &w[0]);
		strbuf_puts(why, ": try help");
		return false;
	}
	if (n - 1 != (size_t)v->args) {
		strbuf_printf(why, "%s takes %s: %s", v->name,
		              v->args == 0 ? "no argument" : "one argument", v->usage);
		return false;
	}
	cmd->verb = v->verb;
	if (v->verb == CONTROL_STRESS && !parse_force(&w[1], &cmd->force)) {
		strbuf_puts(why, "bad argument ");
		put_word(why, &w[1]);
		strbuf_printf(why, ": %s", v->usage);
		return false;
	}
	return true;
}

/* ---- answers ---- */

/* Each line of text (the last newline optional) as "error: LINE\n". */
static void
put_error_lines(strbuf *out, const char *text)
{
	while (*text != '\0') {
		size_t n = strcspn(text, "\n");

		strbuf_puts(out, "error: ");
		strbuf_append(out, text, n);
		strbuf_putc(out, '\n');
		text += n + (text[n] == '\n');
	}
}

/*
 * Control characters an op may have let through (a file name) become '?';
 * newlines too unless keep_lines: a text that is one line stays one.
 */
static void
scrub(strbuf *b, bool keep_lines)
{
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->s[i];

		if ((c < 0x20 && !(c == '\n' && keep_lines)) || c == 0x7f)
			b->s[i] = '?';
	}
}

static void
put_duration(strbuf *out, long long ms)
{
	long long s = ms / 1000;

	if (s >= 86400)
		strbuf_printf(out, "%lldd ", s / 86400);
	if (s >= 3600)
		strbuf_printf(out, "%lldh ", s / 3600 % 24);
	if (s >= 60)
		strbuf_printf(out, "%lldm ", s / 60 % 60);
	strbuf_printf(out, "%llds", s % 60);
}

static void
put_stress(strbuf *out, const control_status *st)
{
	strbuf_puts(out, "stress:     ");
	if (st->pinned)
		strbuf_printf(out,
		              "%s: forced by -o stress=%s (until a restart without it)\n",
		              st->pinned_stressed ? "on" : "off",
		              st->pinned_stressed ? "yes" : "");
	else if (st->force != STRESS_FORCE_NONE)
		strbuf_printf(out, "%s: forced by control (stress auto undoes it)\n",
		              stress_force_name(st->force));
	else if (st->sources.len == 0 || strcmp(strbuf_str(&st->sources), "macro") == 0)
		strbuf_printf(out, "auto: from the %s macro\n",
		              strbuf_str(&st->stress_macro));
	else /* the levels are on the next lines */
		strbuf_printf(out, "auto: from stress_sources = %s\n",
		              strbuf_str(&st->sources));
}

/* Each line of text, indented under a heading. */
static void
put_lines(strbuf *out, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strcspn(p, "\n");

		strbuf_printf(out, "            %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

static void
format_status(const control_status *st, strbuf *out)
{
	strbuf_printf(out, "milter-stress %s, pid %ld, up ",
	              st->version ? st->version : "?", st->pid);
	put_duration(out, st->uptime_ms);
	strbuf_printf(out, "\nconfig:     %s, generation %lu (%lu reload%s)\n",
	              st->config.len > 0 ? strbuf_str(&st->config) : "(defaults)",
	              st->generation, st->generation > 0 ? st->generation - 1 : 0,
	              st->generation == 2 ? "" : "s");
	strbuf_printf(out,
	              "sessions:   now %llu, peak %llu, cap %lld (max_sessions), "
	              "turned away %llu\n",
	              st->sessions_now, st->sessions_peak, st->max_sessions,
	              st->overloaded);
	put_stress(out, st);
	if (st->load.len > 0) {
		strbuf_printf(out, "load:       stress_sources = %s; levels (source, service, "
		                   "load/limit, state):\n",
		              strbuf_str(&st->sources));
		put_lines(out, strbuf_str(&st->load));
	}
	strbuf_printf(out, "dnsbl:      %u suspended zone%s%s%s\n", st->suspended_zones,
	              st->suspended_zones == 1 ? "" : "s", st->zones.len > 0 ? ": " : "",
	              strbuf_str(&st->zones));
	if (st->busiest.len == 0) {
		strbuf_puts(out, "rules:      no verdict yet\n");
	} else {
		strbuf_puts(out, "rules:      the busiest (verdicts, stage, action, rule):\n");
		put_lines(out, strbuf_str(&st->busiest));
	}
	strbuf_printf(out, "%s\n", strbuf_str(&st->stats));
}

static void
run_status(const control_ops *ops, void *ctx, strbuf *out)
{
	control_status st;

	memset(&st, 0, sizeof st);
	strbuf_init(&st.config);
	strbuf_init(&st.stress_macro);
	strbuf_init(&st.stats);
	strbuf_init(&st.zones);
	strbuf_init(&st.busiest);
	strbuf_init(&st.load);
	strbuf_init(&st.sources);
	ops->status(ctx, &st);
	scrub(&st.sources, false);
	scrub(&st.load, true);
	scrub(&st.config, false);
	scrub(&st.stress_macro, false);
	scrub(&st.stats, false);
	scrub(&st.zones, false);
	scrub(&st.busiest, true);
	format_status(&st, out);
	strbuf_free(&st.config);
	strbuf_free(&st.stress_macro);
	strbuf_free(&st.stats);
	strbuf_free(&st.zones);
	strbuf_free(&st.busiest);
	strbuf_free(&st.load);
	strbuf_free(&st.sources);
}

static void
put_help(strbuf *out)
{
	for (size_t i = 0; i < N_VERBS; i++)
		strbuf_printf(out, "%-20s %s\n", verbs[i].usage, verbs[i].doc);
}

/* Runs a parsed command: false with the reason in err. */
static bool
run(const control_cmd *cmd, const control_ops *ops, void *ctx, strbuf *out, strbuf *err)
{
	unsigned long gen = 0;

	switch (cmd->verb) {
	case CONTROL_STATUS:
		run_status(ops, ctx, out);
		return true;
	case CONTROL_STRESS:
		if (!ops->stress(ctx, cmd->force, err))
			return false;
		if (cmd->force == STRESS_FORCE_NONE)
			strbuf_puts(out,
			            "ok: stress auto: stress_sources decide for new "
			            "sessions\n");
		else
			strbuf_printf(out, "ok: stress %s for new sessions\n",
			              stress_force_name(cmd->force));
		return true;
	case CONTROL_RELOAD:
		if (!ops->reload(ctx, &gen, err)) {
			strbuf_printf(
			        err,
			        "%sreload failed; configuration generation %lu is kept",
			        err->len > 0 && err->s[err->len - 1] != '\n' ? "\n" : "",
			        gen);
			return false;
		}
		strbuf_printf(out, "ok: reloaded, generation %lu\n", gen);
		return true;
	case CONTROL_STATS: {
		strbuf line = STRBUF_INIT;

		ops->stats(ctx, &line);
		scrub(&line, false);
		strbuf_printf(out, "%s\n", strbuf_str(&line));
		strbuf_free(&line);
		return true;
	}
	case CONTROL_HELP:
		put_help(out);
		return true;
	}
	ms_panic("control: verb %d without a handler", (int)cmd->verb);
	return false;
}

bool
control_handle(const char *line, size_t len, const control_ops *ops, void *ctx,
               strbuf *answer)
{
	strbuf err = STRBUF_INIT, out = STRBUF_INIT;
	control_cmd cmd;
	bool ok = control_parse(line, len, &cmd, &err) && run(&cmd, ops, ctx, &out, &err);

	if (ok) {
		scrub(&out, true);
		strbuf_append(answer, out.s, out.len);
	} else {
		if (err.len == 0)
			strbuf_puts(&err, "failed");
		scrub(&err, true);
		put_error_lines(answer, err.s);
	}
	strbuf_free(&err);
	strbuf_free(&out);
	return ok;
}
