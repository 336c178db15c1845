/* conf - main.cf-style configuration snapshots; see conf.h. */
#include "config.h"

#include "conf.h"
#include "conf-int.h"
#include "budget.h"
#include "log.h"
#include "names.h"
#include "expand.h"
#include "history-store.h"
#include "rules.h"
#include "mastercf.h"
#include "scanio.h"
#include "sockspec.h"
#include "stress.h"
#include "stage.h"
#include "textfile.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define STRESS_NAME "stress"

/* Files included in files included in ... the main file, at most. */
#define INCLUDE_MAX_DEPTH 8


static bool valid_socket(const char *value, strbuf *why);
static bool valid_hostport(const char *value, strbuf *why);
static bool valid_nonempty(const char *value, strbuf *why);
static bool valid_header_name(const char *value, strbuf *why);
static bool valid_action(const char *value, strbuf *why);
static bool valid_mode(const char *value, strbuf *why);
static bool valid_control_socket(const char *value, strbuf *why);
static bool valid_overload_action(const char *value, strbuf *why);
static bool valid_overload_reply(const char *value, strbuf *why);
static bool valid_stress_sources(const char *value, strbuf *why);
static bool valid_service_limits(const char *value, strbuf *why);
static bool valid_stress_socket(const char *value, strbuf *why);
static bool valid_forged(const char *value, strbuf *why);
static bool valid_scanner_socket(const char *value, strbuf *why);
static bool valid_abs_dir(const char *value, strbuf *why);

#define CONF_DESC(n, t, d, lo, hi, v, doc)                                               \
	{#n, t, d, lo, hi, v, doc, offsetof(struct conf_values, n)},

static const param_desc schema[] = {CONF_PARAMS(CONF_DESC)};

#define N_PARAMS (sizeof schema / sizeof schema[0])

/* The expanded text of every parameter, for templates at run time. */
typedef struct pers_text {
	char *v[N_PARAMS];
} pers_text;

struct conf {
	atomic_uint refs;
	char *path;
	bool forced;
	bool forced_stressed;
	struct conf_values pers[2]; /* [0] normal, [1] stress */
	pers_text text[2];
	rules_table *rules[2];
	char *where[N_PARAMS]; /* where a value was set: "FILE:LINE"; NULL: default */
};

/* Where a raw value came from, for the prefix of its error messages. */
typedef enum origin_kind {
	FROM_DEFAULT,
	FROM_FILE,     /* a line of the file */
	FROM_PATH,     /* the file as a whole */
	FROM_OVERRIDE, /* a -o argument */
} origin_kind;

typedef struct origin {
	origin_kind kind;
	unsigned line;        /* FROM_FILE */
	const char *override; /* FROM_OVERRIDE */
	const char *file;     /* FROM_FILE: an included file; NULL: the main one */
	size_t column;        /* FROM_FILE: 0, or a rule's column */
} origin;

/* A file being read, for include loops. */
typedef struct file_id {
	bool known;
	dev_t dev;
	ino_t ino;
} file_id;

typedef struct loader {
	const char *path;
	strbuf *err;
	size_t n_err;
	bool failed;
	char *raw[N_PARAMS]; /* NULL: the schema default */
	origin from[N_PARAMS];
	bool forced;
	bool forced_stressed;
	rules_source *rules;
	file_id reading[INCLUDE_MAX_DEPTH + 1]; /* [depth]: the files being read */
	char **names;                           /* of included files, for origins */
	size_t n_names;
} loader;

/* The parameters as one personality sees them while loading. */
typedef struct param_view {
	const loader *ld;
	const char *stress; /* $stress */
} param_view;


static size_t
rtrim_len(const char *s, size_t len)
{
	while (len > 0 && conf_is_space(s[len - 1]))
		len--;
	return len;
}

static const char *
skip_blanks(const char *s)
{
	while (conf_is_blank(*s))
		s++;
	return s;
}

/* Diagnostics. */

static void
put_origin(strbuf *b, const loader *ld, const origin *o)
{
	switch (o->kind) {
	case FROM_FILE:
		strbuf_printf(b, "%s:%u:", o->file != NULL ? o->file : ld->path, o->line);
		if (o->column > 0)
			strbuf_printf(b, "%zu:", o->column);
		strbuf_putc(b, ' ');
		break;
	case FROM_PATH:
		strbuf_printf(b, "%s: ", ld->path);
		break;
	case FROM_OVERRIDE:
		strbuf_printf(b, "-o %s: ", o->override);
		break;
	case FROM_DEFAULT:
		/* The message itself starts with the parameter name. */
		strbuf_puts(b, "default of ");
		break;
	}
}

static void report(loader *ld, const origin *o, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
report(loader *ld, const origin *o, const char *fmt, ...)
{
	va_list ap;

	ld->failed = true;
	if (ld->err == NULL || ld->n_err > CONF_MAX_ERRORS)
		return;
	if (ld->n_err++ == CONF_MAX_ERRORS) {
		strbuf_printf(ld->err, "too many errors; only the first %d are shown\n",
		              CONF_MAX_ERRORS);
		return;
	}
	put_origin(ld->err, ld, o);
	va_start(ap, fmt);
	strbuf_vprintf(ld->err, fmt, ap);
	va_end(ap);
	strbuf_putc(ld->err, '\n');
}

/* Parameter names. */

static int
find_param(const char *name)
{
	size_t i;

	for (i = 0; i < N_PARAMS; i++)
		if (strcmp(schema[i].name, name) == 0)
			return (int)i;
	return -1;
}

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, d;
	size_t *row = ms_xcalloc(lb + 1, sizeof *row);

	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	d = row[lb];
	free(row);
	return d;
}

static const char *
closer(const char *name, const char *cand, const char *best, size_t *best_d)
{
	size_t d = edit_distance(name, cand);

	if (d < *best_d) {
		*best_d = d;
		return cand;
	}
	return best;
}

/* A known name a typo away from name, or NULL; only close ones help. */
static const char *
closest_param(const char *name, bool with_stress)
{
	size_t len = strlen(name), best_d = SIZE_MAX, limit, i;
	const char *best = NULL;

	if (len > 64)
		return NULL;
	for (i = 0; i < N_PARAMS; i++)
		best = closer(name, schema[i].name, best, &best_d);
	if (with_stress)
		best = closer(name, STRESS_NAME, best, &best_d);
	limit = len >= 8 ? 2 : 1;
	return best_d <= limit && best_d < len ? best : NULL;
}

/* The line reader: Postfix's logical lines, knowing nothing of "name = value". */

typedef void (*logical_line_fn)(void *arg, const char *text, unsigned line);

/*
 * Calls fn once per logical line of the len bytes at text, with its first
 * physical line number. Blank and comment lines are skipped, also inside a
 * continued line (as Postfix does); continuation lines are joined with one
 * space; trailing whitespace goes. A logical line that begins with
 * whitespace can only be an orphan continuation at the top of the file: fn
 * gets it as is and decides.
 */
static void
read_logical_lines(const char *text, size_t len, logical_line_fn fn, void *arg)
{
	strbuf cur = STRBUF_INIT;
	unsigned lineno = 0, first = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *phys = p;
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		size_t plen = rtrim_len(phys, n), lead = 0;

		p = nl != NULL ? nl + 1 : end;
		lineno++;
		while (lead < plen && conf_is_blank(phys[lead]))
			lead++;
		if (lead >= plen || phys[lead] == '#')
			continue;
		if (lead > 0 && first != 0) {
			strbuf_putc(&cur, ' ');
			strbuf_append(&cur, phys + lead, plen - lead);
			continue;
		}
		if (first != 0)
			fn(arg, strbuf_str(&cur), first);
		strbuf_reset(&cur);
		strbuf_append(&cur, phys, plen);
		first = lineno;
	}
	if (first != 0)
		fn(arg, strbuf_str(&cur), first);
	strbuf_free(&cur);
}

/* "name = value" handling, shared by the file and -o. */

/* Split "name = value"; false when there is no name or no '='. */
static bool
split_assignment(const char *text, char **name, char **value)
{
	size_t n = strcspn(text, " \t=");
	const char *p = skip_blanks(text + n);

	if (n == 0 || *p != '=')
		return false;
	p = skip_blanks(p + 1);
	*name = ms_xstrndup(text, n);
	*value = ms_xstrndup(p, rtrim_len(p, strlen(p)));
	return true;
}

static void
set_stress(loader *ld, const origin *o, const char *value)
{
	if (o->kind != FROM_OVERRIDE) {
		report(ld, o,
		       "'stress' is a pseudo-parameter; use -o stress=yes to force "
		       "the stress personality");
		return;
	}
	/* Postfix would take any non-empty value, "no" included, as stress. */
	if (*value != '\0' && strcasecmp(value, "yes") != 0) {
		report(ld, o,
		       "stress must be 'yes' or empty (-o stress= forces the "
		       "normal personality)");
		return;
	}
	ld->forced = true;
	ld->forced_stressed = *value != '\0';
}

static void
report_unknown(loader *ld, const origin *o, const char *name)
{
	const char *guess = closest_param(name, false);

	if (guess != NULL)
		report(ld, o, "unknown parameter '%s'; did you mean '%s'?", name, guess);
	else
		report(ld, o, "unknown parameter '%s'", name);
}

/* Takes ownership of value. */
static void
assign(loader *ld, const origin *o, const char *name, char *value)
{
	int i;

	if (strcmp(name, STRESS_NAME) == 0) {
		set_stress(ld, o, value);
		free(value);
		return;
	}
	if ((i = find_param(name)) < 0) {
		report_unknown(ld, o, name);
		free(value);
		return;
	}
	free(ld->raw[i]);
	ld->raw[i] = value;
	ld->from[i] = *o;
}

static void
assign_text(loader *ld, const origin *o, const char *text, const char *expected)
{
	char *name, *value;

	if (!split_assignment(text, &name, &value)) {
		report(ld, o, "expected '%s'", expected);
		return;
	}
	assign(ld, o, name, value);
	free(name);
}

/* One file (the main one or an include) as it is being read. */
typedef struct reading {
	loader *ld;
	const char *file; /* NULL: the main file */
	unsigned depth;   /* 0: the main file */
} reading;

static void read_text(loader *ld, const char *file, const char *text, size_t len,
                      unsigned depth);

static void
report_rule(void *ctx, const char *file, unsigned line, size_t column, const char *msg)
{
	origin o = {FROM_FILE, line, NULL, file, column};

	report(ctx, &o, "%s", msg);
}

static const char *
keep_name(loader *ld, char *name)
{
	ld->names = ms_xrealloc(ld->names, (ld->n_names + 1) * sizeof *ld->names);
	ld->names[ld->n_names++] = name;
	return name;
}

static bool
same_file(const file_id *a, const struct stat *st)
{
	return a->known && a->dev == st->st_dev && a->ino == st->st_ino;
}

/* include PATH: the same syntax, relative to the including file's directory. */
static void
include(reading *rd, const origin *o, const char *arg)
{
	loader *ld = rd->ld;
	const char *including = rd->file != NULL ? rd->file : ld->path;
	strbuf text = STRBUF_INIT, why = STRBUF_INIT;
	size_t n = strlen(arg);
	struct stat st;
	char *name, *path;
	unsigned i;

	if (n >= 2 && arg[0] == '"' && arg[n - 1] == '"') {
		arg++;
		n -= 2;
	}
	if (n == 0) {
		report(ld, o, "include needs a file name");
		return;
	}
	if (rd->depth >= INCLUDE_MAX_DEPTH) {
		report(ld, o, "include: files nested deeper than %d levels",
		       INCLUDE_MAX_DEPTH);
		return;
	}
	name = ms_xstrndup(arg, n);
	path = textfile_path(including, name);
	free(name);
	if (stat(path, &st) == 0) {
		for (i = 0; i <= rd->depth; i++) {
			if (same_file(&ld->reading[i], &st)) {
				report(ld, o,
				       "include %s: a loop: that file is being read",
				       path);
				free(path);
				return;
			}
		}
		ld->reading[rd->depth + 1] = (file_id){true, st.st_dev, st.st_ino};
	} else {
		ld->reading[rd->depth + 1].known = false;
	}
	if (!textfile_read(path, true, &text, &why)) {
		report(ld, o, "include %s: %s", path, strbuf_str(&why));
		free(path);
	} else {
		read_text(ld, keep_name(ld, path), strbuf_str(&text), text.len,
		          rd->depth + 1);
	}
	strbuf_free(&text);
	strbuf_free(&why);
}

/* A rule (first word a stage), include PATH, or name = value. */
static void
file_line(void *arg, const char *text, unsigned line)
{
	reading *rd = arg;
	loader *ld = rd->ld;
	origin o = {FROM_FILE, line, NULL, rd->file, 0};
	size_t n = strcspn(text, " \t=");
	const char *rest = skip_blanks(text + n);
	enum stage stage;

	if (conf_is_blank(text[0])) {
		report(ld, &o, "logical line must not start with whitespace");
		return;
	}
	if (*rest != '=') {
		if (stage_parse(text, n, &stage)) {
			if (!rules_source_add(ld->rules,
			                      rd->file != NULL ? rd->file : ld->path,
			                      line, text, report_rule, ld))
				ld->failed = true;
			return;
		}
		if (n == 7 && strncmp(text, "include", 7) == 0) {
			include(rd, &o, rest);
			return;
		}
	}
	assign_text(ld, &o, text, "name = value");
}

/* The whole text of a file; it must be text. */
static void
read_text(loader *ld, const char *file, const char *text, size_t len, unsigned depth)
{
	reading rd = {ld, file, depth};
	const char *nul = memchr(text, '\0', len), *p;
	origin o = {FROM_FILE, 1, NULL, file, 0};

	if (nul != NULL) {
		for (p = text; p < nul; p++)
			o.line += *p == '\n';
		report(ld, &o, "a NUL byte: this is not a text file");
		return;
	}
	read_logical_lines(text, len, file_line, &rd);
}

/* Evaluation of the personalities. */

static const char *
raw_value(const loader *ld, size_t i)
{
	return ld->raw[i] != NULL ? ld->raw[i] : schema[i].def;
}

static const char *
lookup_param(void *ctx, const char *name)
{
	const param_view *view = ctx;
	int i;

	if (strcmp(name, STRESS_NAME) == 0)
		return view->stress;
	i = find_param(name);
	return i < 0 ? NULL : raw_value(view->ld, (size_t)i);
}

static void
describe_unknown(void *ctx, const char *name, strbuf *msg)
{
	const char *guess = closest_param(name, true);

	(void)ctx;
	strbuf_printf(msg, "unknown parameter $%s", name);
	if (guess != NULL)
		strbuf_printf(msg, "; did you mean $%s?", guess);
}

static const expand_ops param_expand = {lookup_param, describe_unknown,
                                        EXPAND_RECURSE | EXPAND_UNKNOWN_IS_ERROR};

static void *
field_of(struct conf_values *v, const param_desc *p)
{
	return (char *)v + p->offset;
}

static const void *
const_field_of(const struct conf_values *v, const param_desc *p)
{
	return (const char *)v + p->offset;
}

/* The expanded text without the blanks expansion may leave at its ends. */
static char *
trimmed_copy(const strbuf *b)
{
	const char *s = skip_blanks(strbuf_str(b));

	return ms_xstrndup(s, rtrim_len(s, strlen(s)));
}

static bool
validate(const param_desc *p, const char *value, strbuf *msg)
{
	strbuf why = STRBUF_INIT;
	bool ok = p->valid == NULL || p->valid(value, &why);

	if (!ok)
		strbuf_printf(msg, "%s: %s", p->name, strbuf_str(&why));
	strbuf_free(&why);
	return ok;
}

/*
 * Expand, type-check and validate parameter i into v. False when it is
 * bad; msg stays empty when the problem lies in another parameter's value,
 * which is reported where that value came from.
 */
static bool
eval_param(const param_view *view, size_t i, struct conf_values *v, char **text_out,
           strbuf *msg)
{
	const param_desc *p = &schema[i];
	expand_error e = EXPAND_ERROR_INIT;
	strbuf text = STRBUF_INIT;
	char *value;
	bool ok;

	if (expand_str(&text, raw_value(view->ld, i), &param_expand, (void *)view, &e) <
	    0) {
		if (!e.nested)
			strbuf_printf(msg, "%s: column %zu: %s", p->name, e.column,
			              strbuf_str(&e.msg));
		strbuf_free(&text);
		expand_error_free(&e);
		return false;
	}
	value = trimmed_copy(&text);
	ok = conf_value_parse(p, value, field_of(v, p), msg) && validate(p, value, msg);
	*text_out = value;
	strbuf_free(&text);
	expand_error_free(&e);
	return ok;
}

static void
report_param(loader *ld, size_t i, const strbuf *normal, const strbuf *stress)
{
	origin o = ld->from[i];

	if (ld->raw[i] == NULL)
		o.kind = FROM_DEFAULT;
	if (normal->len > 0 && stress->len > 0 && strcmp(normal->s, stress->s) == 0) {
		report(ld, &o, "%s", normal->s);
		return;
	}
	if (normal->len > 0)
		report(ld, &o, "%s (in the normal personality)", normal->s);
	if (stress->len > 0)
		report(ld, &o, "%s (in the stress personality)", stress->s);
}

/* $stress of personality p: "yes" or "", or what -o stress=... forced. */
static const char *
stress_value(const loader *ld, int p)
{
	if (ld->forced)
		return ld->forced_stressed ? "yes" : "";
	return p ? "yes" : "";
}

static void
evaluate(loader *ld, conf *c)
{
	strbuf msg[2][N_PARAMS];
	size_t i;
	int p;

	for (p = 0; p < 2; p++) {
		param_view view = {ld, stress_value(ld, p)};

		for (i = 0; i < N_PARAMS; i++) {
			strbuf_init(&msg[p][i]);
			if (!eval_param(&view, i, &c->pers[p], &c->text[p].v[i],
			                &msg[p][i]))
				ld->failed = true;
		}
	}
	for (i = 0; i < N_PARAMS; i++) {
		report_param(ld, i, &msg[0][i], &msg[1][i]);
		strbuf_free(&msg[0][i]);
		strbuf_free(&msg[1][i]);
	}
}

/* A stage before st has the same budget and timeout: checked there. */
static bool
budget_seen(enum stage st)
{
	const stage_desc *d = stage_get(st);

	for (int i = 0; i < (int)st; i++) {
		const stage_desc *e = stage_get((enum stage)i);

		if (strcmp(e->budget, d->budget) == 0 &&
		    strcmp(e->timeout, d->timeout) == 0)
			return true;
	}
	return false;
}

static void
check_budget(const struct conf_values *v, enum stage st, strbuf *msg)
{
	const stage_desc *d = stage_get(st);
	long long budget = stage_budget(v, st), timeout = stage_timeout(v, st);

	if (budget_nests(budget, timeout))
		return;
	strbuf_printf(msg, "%s = ", d->budget);
	conf_format_time(msg, budget);
	strbuf_printf(msg, " does not fit in %s = ", d->timeout);
	conf_format_time(msg, timeout);
	strbuf_puts(msg, ": at most ");
	conf_format_time(msg, timeout - budget_margin(timeout));
	strbuf_puts(msg, ", to answer ");
	conf_format_time(msg, budget_margin(timeout));
	strbuf_puts(msg, " before Postfix gives up on the milter");
}

/*
 * Every stage budget fits in the Postfix timeout of its stage (budget.h),
 * in each personality. A budget that does not is reported at its own line,
 * or at the timeout's when it is a default that a lowered timeout broke.
 */
static void
check_budgets(loader *ld, const conf *c)
{
	for (int st = 0; st < STAGE_N; st++) {
		const stage_desc *d = stage_get((enum stage)st);
		strbuf msg[2] = {STRBUF_INIT, STRBUF_INIT};
		size_t budget = (size_t)find_param(d->budget);
		size_t timeout = (size_t)find_param(d->timeout);

		if (budget_seen((enum stage)st))
			continue;
		check_budget(&c->pers[0], (enum stage)st, &msg[0]);
		check_budget(&c->pers[1], (enum stage)st, &msg[1]);
		report_param(ld,
		             ld->raw[budget] == NULL && ld->raw[timeout] != NULL ? timeout
		                                                                 : budget,
		             &msg[0], &msg[1]);
		strbuf_free(&msg[0]);
		strbuf_free(&msg[1]);
	}
}

/* stress_leave above stress_enter would leave stress before entering it. */
static void
check_stress_levels(loader *ld, const conf *c)
{
	strbuf msg[2] = {STRBUF_INIT, STRBUF_INIT};
	size_t leave = (size_t)find_param("stress_leave");

	for (int p = 0; p < 2; p++)
		if (c->pers[p].stress_leave > c->pers[p].stress_enter)
			strbuf_printf(&msg[p], "stress_leave = %lld is above stress_enter = %lld",
			              c->pers[p].stress_leave, c->pers[p].stress_enter);
	report_param(ld, leave, &msg[0], &msg[1]);
	strbuf_free(&msg[0]);
	strbuf_free(&msg[1]);
}

static void
free_values(struct conf_values *v)
{
	size_t i;

	for (i = 0; i < N_PARAMS; i++) {
		void *f = field_of(v, &schema[i]);

		if (schema[i].type == CONF_STRING)
			free((void *)*(const char **)f);
		else if (schema[i].type == CONF_LIST)
			conf_list_free(f);
	}
}

static const char *
text_lookup(void *ctx, const char *name)
{
	const pers_text *t = ctx;
	int i = find_param(name);

	return i < 0 ? NULL : t->v[i];
}

/* Both personalities' rule tables, once the parameters are known. */
static void
compile_rules(loader *ld, conf *c)
{
	param_view views[2] = {{ld, stress_value(ld, 0)}, {ld, stress_value(ld, 1)}};
	rules_env env[2];
	int p;

	for (p = 0; p < 2; p++)
		env[p] = (rules_env){*views[p].stress != '\0', &param_expand, &views[p],
		                     text_lookup, &c->text[p]};
	if (!rules_compile(ld->rules, env, c->rules, report_rule, ld))
		ld->failed = true;
}

static void
conf_free(conf *c)
{
	size_t i;
	int p;

	for (p = 0; p < 2; p++) {
		rules_table_free(c->rules[p]);
		for (i = 0; i < N_PARAMS; i++)
			free(c->text[p].v[i]);
	}
	free_values(&c->pers[0]);
	free_values(&c->pers[1]);
	for (i = 0; i < N_PARAMS; i++)
		free(c->where[i]);
	free(c->path);
	free(c);
}

/* Where parameter i was set, as a message prefix without ": "; NULL: default. */
static char *
origin_text(const loader *ld, size_t i)
{
	strbuf b = STRBUF_INIT;

	if (ld->raw[i] == NULL)
		return NULL;
	put_origin(&b, ld, &ld->from[i]);
	while (b.len > 0 && (b.s[b.len - 1] == ' ' || b.s[b.len - 1] == ':'))
		b.s[--b.len] = '\0';
	return strbuf_detach(&b);
}

/*
 * The common part of conf_load() and conf_load_text(): name NULL means no
 * file; read_error says why the file could not be read.
 */
static conf *
load(const char *name, const char *text, size_t len, const char *read_error,
     char *const *overrides, size_t n_overrides, strbuf *err)
{
	loader ld = {.path = name, .err = err};
	struct stat st;
	conf *c;
	size_t i;

	ld.rules = rules_source_create();
	if (read_error != NULL) {
		origin o = {FROM_PATH, 0, NULL, NULL, 0};

		report(&ld, &o, "%s", read_error);
	} else if (name != NULL && text != NULL) {
		/* Known when the name is a file, so that it cannot include itself. */
		if (stat(name, &st) == 0)
			ld.reading[0] = (file_id){true, st.st_dev, st.st_ino};
		read_text(&ld, NULL, text, len, 0);
	}
	for (i = 0; i < n_overrides; i++) {
		origin o = {FROM_OVERRIDE, 0, overrides[i], NULL, 0};

		assign_text(&ld, &o, overrides[i], "name=value");
	}
	c = ms_xcalloc(1, sizeof *c);
	evaluate(&ld, c);
	/* Only values that all loaded can be compared. */
	if (!ld.failed) {
		check_budgets(&ld, c);
		check_stress_levels(&ld, c);
	}
	compile_rules(&ld, c);
	for (i = 0; i < N_PARAMS; i++)
		c->where[i] = origin_text(&ld, i);
	for (i = 0; i < N_PARAMS; i++)
		free(ld.raw[i]);
	for (i = 0; i < ld.n_names; i++)
		free(ld.names[i]);
	free(ld.names);
	rules_source_free(ld.rules);
	if (ld.failed) {
		/* Every failure is reported where it starts; never fail silently. */
		if (ld.n_err == 0 && err != NULL)
			strbuf_puts(err, "configuration error\n");
		conf_free(c);
		return NULL;
	}
	atomic_init(&c->refs, 1);
	c->path = name != NULL ? ms_xstrdup(name) : NULL;
	c->forced = ld.forced;
	c->forced_stressed = ld.forced_stressed;
	return c;
}

conf *
conf_load(const char *path, char *const *overrides, size_t n_overrides, strbuf *err)
{
	strbuf text = STRBUF_INIT, why = STRBUF_INIT;
	conf *c;

	if (path == NULL)
		return load(NULL, NULL, 0, NULL, overrides, n_overrides, err);
	if (textfile_read(path, false, &text, &why))
		c = load(path, strbuf_str(&text), text.len, NULL, overrides, n_overrides,
		         err);
	else
		c = load(path, NULL, 0, strbuf_str(&why), overrides, n_overrides, err);
	strbuf_free(&text);
	strbuf_free(&why);
	return c;
}

conf *
conf_load_text(const char *name, const char *text, size_t len, char *const *overrides,
               size_t n_overrides, strbuf *err)
{
	if (text == NULL) {
		text = "";
		len = 0;
	}
	return load(name, text, len, NULL, overrides, n_overrides, err);
}

void
conf_ref(conf *c)
{
	if (atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed) == 0)
		ms_panic("reference to a freed snapshot");
}

void
conf_unref(conf *c)
{
	unsigned old;

	if (c == NULL)
		return;
	old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
	if (old == 0)
		ms_panic("snapshot freed twice");
	if (old == 1)
		conf_free(c);
}

const struct conf_values *
conf_personality(const conf *c, bool stressed)
{
	return &c->pers[stressed ? 1 : 0];
}

bool
conf_stress_forced(const conf *c, bool *stressed)
{
	if (stressed != NULL)
		*stressed = c->forced_stressed;
	return c->forced;
}

const char *
conf_path(const conf *c)
{
	return c->path;
}

const rules_table *
conf_rules(const conf *c, bool stressed)
{
	return c->rules[stressed ? 1 : 0];
}

const char *
conf_param_text(const conf *c, bool stressed, const char *name)
{
	return text_lookup((void *)&c->text[stressed ? 1 : 0], name);
}

const char *
conf_param_origin(const conf *c, const char *name)
{
	long i = find_param(name);

	return i < 0 ? NULL : c->where[i];
}

void
conf_dump(const conf *c, bool stressed, FILE *fp)
{
	const struct conf_values *v = conf_personality(c, stressed);
	strbuf line = STRBUF_INIT;
	size_t i;

	for (i = 0; i < N_PARAMS; i++) {
		strbuf_reset(&line);
		conf_value_format(&line, &schema[i], const_field_of(v, &schema[i]));
		fprintf(fp, "%s =%s%s\n", schema[i].name, line.len ? " " : "",
		        strbuf_str(&line));
	}
	strbuf_free(&line);
	if (rules_count(conf_rules(c, stressed)) > 0) {
		fputs("# rules\n", fp);
		rules_dump(conf_rules(c, stressed), fp);
	}
}

/* Text safe inside a troff line; at_start: s begins an output line. */
static void
troff_puts(FILE *fp, const char *s, bool at_start)
{
	if (at_start && (*s == '.' || *s == '\''))
		fputs("\\&", fp);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", fp);
		else
			fputc(*s, fp);
	}
}

void
conf_schema_write_man(FILE *fp)
{
	size_t i;

	for (i = 0; i < N_PARAMS; i++) {
		fputs(".TP\n\\fB", fp);
		troff_puts(fp, schema[i].name, false);
		fputs("\\fR (default: ", fp);
		if (schema[i].def[0] != '\0') {
			fputs("\\fI", fp);
			troff_puts(fp, schema[i].def, false);
			fputs("\\fR", fp);
		} else {
			fputs("empty", fp);
		}
		fputs(")\n", fp);
		troff_puts(fp, schema[i].doc, true);
		fputc('\n', fp);
	}
}
/* Validators named in params.h. */

static bool
valid_nonempty(const char *value, strbuf *why)
{
	if (*value != '\0')
		return true;
	strbuf_puts(why, "must not be empty");
	return false;
}

static bool
valid_header_name(const char *value, strbuf *why)
{
	/* Empty turns the header off. */
	if (*value == '\0' || names_header(value))
		return true;
	strbuf_printf(why, "bad header name '%s': expected printable ASCII without spaces or ':'",
	              value);
	return false;
}

/* socket: the one syntax (sockspec.h); Postfix's inet:host:port is refused. */
static bool
valid_socket(const char *value, strbuf *why)
{
	sockspec ss;

	return sockspec_parse(value, 0, &ss, why);
}

/* metrics_listen: empty (off) or HOST:PORT (sockspec.h). */
static bool
valid_hostport(const char *value, strbuf *why)
{
	sockspec ss;

	return value[0] == '\0' || sockspec_parse_hostport(value, &ss, why);
}

/* Empty (none), or a unix socket in the socket syntax. */
static bool
valid_control_socket(const char *value, strbuf *why)
{
	sockspec ss;

	if (value[0] == '\0')
		return true;
	if (!sockspec_parse(value, 0, &ss, why))
		return false;
	if (ss.family != AF_UNIX) {
		strbuf_printf(why, "'%s' is not a unix socket: expected unix:/path or /path",
		              value);
		return false;
	}
	return true;
}

/* An action that is a or b. */
static bool
valid_choice(const char *value, const char *a, const char *b, strbuf *why)
{
	if (strcmp(value, a) == 0 || strcmp(value, b) == 0)
		return true;
	strbuf_printf(why, "bad action '%s': expected %s or %s", value, a, b);
	return false;
}

/* budget_action, dns_error_action: what a stage does when it cannot decide. */
static bool
valid_action(const char *value, strbuf *why)
{
	return valid_choice(value, "continue", "tempfail", why);
}

/* socket_mode: octal permission bits. */
static bool
valid_mode(const char *value, strbuf *why)
{
	size_t n = strspn(value, "01234567");

	if (n == 0 || n > 4 || value[n] != '\0' || strtol(value, NULL, 8) > 0777) {
		strbuf_printf(why,
		              "bad mode '%s': expected octal permissions such as 0660",
		              value);
		return false;
	}
	return true;
}

static bool
valid_overload_action(const char *value, strbuf *why)
{
	return valid_choice(value, "tempfail", "accept", why);
}

/* clamd_socket, ...: empty, or an endpoint a scanner can be reached at. */
static bool
valid_scanner_socket(const char *value, strbuf *why)
{
	if (*value == '\0')
		return true;
	/* rspamd's client also takes a URL; it checks it at configuration. */
	if (strncmp(value, "http://", 7) == 0)
		return true;
	return scanio_check(value, why);
}

static bool
valid_abs_dir(const char *value, strbuf *why)
{
	if (value[0] == '/')
		return true;
	strbuf_printf(why, "bad directory '%s': expected an absolute path", value);
	return false;
}

/* Checked like a rule's tempfail reply: Postfix drops a malformed one. */
static bool
valid_overload_reply(const char *value, strbuf *why)
{
	char code[4], ecode[12];
	strbuf text = STRBUF_INIT;
	bool ok = rules_parse_reply(RULES_TEMPFAIL, value, code, ecode, &text, why);

	strbuf_free(&text);
	return ok;
}

/* stress_sources: macro, sessions, latency (stress.h). */
static bool
valid_stress_sources(const char *value, strbuf *why)
{
	unsigned mask;

	return stress_sources_parse(value, &mask, why);
}

/* service_limits: auto or SERVICE=N, ... (mastercf.h). */
static bool
valid_service_limits(const char *value, strbuf *why)
{
	mastercf_limits_list l;
	bool is_auto;

	if (!mastercf_parse_limits(value, &is_auto, &l, why))
		return false;
	mastercf_limits_free(&l);
	return true;
}

/* stress_socket: empty (none) or a socket in the socket syntax. */
static bool
valid_stress_socket(const char *value, strbuf *why)
{
	return value[0] == '\0' || valid_socket(value, why);
}

/* stress_header_forged: who removes forged copies of the stress header. */
static bool
valid_forged(const char *value, strbuf *why)
{
	if (strcmp(value, "remove") == 0 || strcmp(value, "postfix") == 0)
		return true;
	strbuf_printf(why, "bad value '%s': expected remove or postfix", value);
	return false;
}
