/*
 * conf - main.cf-style configuration, loaded into immutable snapshots
 *
 * SYNOPSIS
 *	c = conf_load(path, overrides, n_overrides, err);
 *	v = conf_personality(c, stressed);   ... v->milter_timeout ...
 *	t = conf_rules(c, stressed);         ... rules_eval(t, ...) ...
 *	conf_ref(c); ... conf_unref(c);
 *
 * FILE SYNTAX (as Postfix main.cf)
 *	"name = value"; whitespace around '=' is optional, trailing
 *	whitespace of the value is dropped. A line that starts with
 *	whitespace continues the logical line before it (joined with one
 *	space). Blank lines and lines whose first non-blank character is '#'
 *	are ignored, also inside a continued line. A name given twice: the
 *	last one wins. Values are expanded as by expand.h with $other
 *	parameters (their raw values, expanded in turn) and the
 *	pseudo-parameter $stress. The parameters are listed in params.h.
 *
 *	A logical line whose first word is a stage name (connect helo mail
 *	rcpt data header eoh body eom) is a rule: see rules.h for its
 *	syntax. "include PATH" reads another file with the same syntax, at
 *	that point: PATH is relative to the directory of the including file,
 *	must be a regular file, and includes nest at most 8 deep; a file
 *	that includes itself, directly or not, is refused. A file with a NUL
 *	byte is refused.
 *
 * TYPES
 *	STRING	the expanded text
 *	LIST	items separated by commas and/or whitespace; empty items dropped
 *	BOOL	yes or no, in any case
 *	INT	a decimal integer (long long)
 *	SIZE	a number with an optional suffix k, m or g (powers of 1024, any
 *		case); stored in bytes
 *	TIME	a number with an optional unit ms, s, m, h, d or w (no unit:
 *		seconds); stored in milliseconds
 *	INT, SIZE and TIME are checked against the schema's bounds.
 *
 * PERSONALITIES
 *	Every parameter is evaluated twice at load time: with $stress = "yes"
 *	(the stress personality) and with $stress = "" (normal). The
 *	pseudo-parameter cannot be set in the file; "-o stress=yes" or
 *	"-o stress=" forces one value for both personalities (as master.cf
 *	does for smtpd), and conf_stress_forced() says so. Any other value
 *	of stress is refused, because Postfix would take "no" as stress.
 *
 * BUDGETS
 *	Every stage budget (connect_budget ... eom_budget) must fit, in each
 *	personality, in the Postfix timeout that bounds its stage
 *	(milter_command_timeout or milter_content_timeout; stage.h) with the
 *	margin budget.h explains. One that does not is an error at the
 *	budget's line, or at the timeout's when the budget is a default.
 *
 * OVERRIDES
 *	"name=value" strings (from -o) are applied after the file, in order;
 *	the last one wins. path NULL means schema defaults plus overrides.
 *
 * DIAGNOSTICS
 *	conf_load() returns NULL and appends to err (when not NULL) one line
 *	per problem, each ending in a newline, up to CONF_MAX_ERRORS lines:
 *	"FILE:LINE: message" (LINE is the first physical line of the logical
 *	line; FILE the included file when the problem is there),
 *	"FILE:LINE:COLUMN: message" for rules (COLUMN is the byte in the
 *	logical line, continuation lines joined with one space), "-o
 *	name=value: message", "default of name: message" or "FILE: cannot
 *	open: reason". A problem that shows in only one
 *	personality ends in "(in the stress personality)" or "(in the normal
 *	personality)". Nothing is printed or logged.
 *
 * CONCURRENCY
 *	conf_load() keeps no global state and may run on any thread. A
 *	snapshot is never modified after conf_load() returns, so any number
 *	of threads read it without locks. conf_ref()/conf_unref() are atomic:
 *	sessions take a reference when they start and drop it when they end,
 *	so a reload can publish a new snapshot while old sessions finish on
 *	theirs; the last conf_unref() frees it. Pointers obtained from a
 *	snapshot (conf_personality(), conf_rules(), conf_param_text(),
 *	conf_path()) are valid while the caller holds a reference.
 */
#ifndef MS_CONF_H
#define MS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "params.h"
#include "rules.h"
#include "strbuf.h"

#define CONF_MAX_ERRORS 50

typedef struct conf conf; /* opaque */

typedef struct conf_list {
	size_t n;
	char **v; /* n items, then NULL */
} conf_list;

#define CONF_CTYPE_CONF_STRING const char *
#define CONF_CTYPE_CONF_LIST conf_list
#define CONF_CTYPE_CONF_BOOL bool
#define CONF_CTYPE_CONF_INT long long
#define CONF_CTYPE_CONF_SIZE long long
#define CONF_CTYPE_CONF_TIME long long
#define CONF_FIELD(name, type, def, min, max, valid, doc) CONF_CTYPE_##type name;

/* One typed field per parameter of params.h, named like it. */
struct conf_values {
	CONF_PARAMS(CONF_FIELD)
};

conf *conf_load(const char *path, char *const *overrides, size_t n_overrides,
                strbuf *err);
/*
 * The same with the file's len bytes at text (they may hold anything; a
 * NUL byte is an error); name is the file's name for messages and the
 * directory includes are relative to. No file is read but the includes.
 */
conf *conf_load_text(const char *name, const char *text, size_t len,
                     char *const *overrides, size_t n_overrides, strbuf *err);
void conf_ref(conf *c);
void conf_unref(conf *c); /* frees at zero; NULL-safe */

/* The effective values under stress (stressed) or not. */
const struct conf_values *conf_personality(const conf *c, bool stressed);

/* The rules of a personality; never NULL (maybe empty). */
const rules_table *conf_rules(const conf *c, bool stressed);

/* A parameter's expanded text in a personality ("600s"); NULL: no such one. */
const char *conf_param_text(const conf *c, bool stressed, const char *name);

/*
 * Where a parameter's value was set, for a warning about it found after
 * loading: "FILE:LINE" or "-o name=value"; NULL for a default (or no such
 * parameter).
 */
const char *conf_param_origin(const conf *c, const char *name);

/* True when -o stress=... was given; *stressed (if not NULL) = value != "". */
bool conf_stress_forced(const conf *c, bool *stressed);

/*
 * postconf-style "name = value" lines in schema order: the effective values
 * of one personality; times and sizes in the largest exact unit among
 * ms, s, h, d, w and k, m, g (600s, 1d, 256k), lists joined with ", ".
 * Then, when the personality has rules, a line "# rules" and rules_dump().
 */
void conf_dump(const conf *c, bool stressed, FILE *fp);

const char *conf_path(const conf *c); /* as given to conf_load(); NULL: none */

/* A troff .TP list of every parameter with its default and doc line. */
void conf_schema_write_man(FILE *fp);

#endif
