/*
 * conf - main.cf-style configuration, loaded into immutable snapshots
 *
 * SYNOPSIS
 *	c = conf_load(path, overrides, n_overrides, err);
 *	v = conf_personality(c, stressed);   ... v->milter_timeout ...
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
 * OVERRIDES
 *	"name=value" strings (from -o) are applied after the file, in order;
 *	the last one wins. path NULL means schema defaults plus overrides.
 *
 * DIAGNOSTICS
 *	conf_load() returns NULL and appends to err (when not NULL) one line
 *	per problem, each ending in a newline, up to CONF_MAX_ERRORS lines:
 *	"FILE:LINE: message" (LINE is the first physical line of the logical
 *	line), "-o name=value: message", "default of name: message" or
 *	"FILE: cannot open: reason". A problem that shows in only one
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
 *	snapshot (conf_personality(), conf_path()) are valid while the caller
 *	holds a reference.
 */
#ifndef MS_CONF_H
#define MS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "params.h"
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
void conf_ref(conf *c);
void conf_unref(conf *c); /* frees at zero; NULL-safe */

/* The effective values under stress (stressed) or not. */
const struct conf_values *conf_personality(const conf *c, bool stressed);

/* True when -o stress=... was given; *stressed (if not NULL) = value != "". */
bool conf_stress_forced(const conf *c, bool *stressed);

/*
 * postconf-style "name = value" lines in schema order: the effective values
 * of one personality; times and sizes in the largest exact unit among
 * ms, s, h, d, w and k, m, g (600s, 1d, 256k), lists joined with ", ".
 */
void conf_dump(const conf *c, bool stressed, FILE *fp);

const char *conf_path(const conf *c); /* as given to conf_load(); NULL: none */

/* A troff .TP list of every parameter with its default and doc line. */
void conf_schema_write_man(FILE *fp);

#endif
