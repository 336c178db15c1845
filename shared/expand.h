/*
 * expand - Postfix main.cf-style $name expansion
 *
 * SYNOPSIS
 *	expand_str(out, in, ops, ctx, err) appends the expansion of the
 *	NUL-terminated text in to out. Names are looked up through
 *	ops->lookup(ctx, name). Used for parameter values at load time and
 *	for reply templates ($client_addr) at run time.
 *
 * FORMS
 *	$name, ${name}, $(name)	the value of name
 *	${name?value}		value when name is set, else nothing
 *	${name:value}		value when name is not set, else nothing
 *	${name?{a}}, ${name:{b}}	the same, braced
 *	${name?{a}:{b}}		a when name is set, else b (Postfix 3.5 form);
 *				whitespace is allowed around the name, the braces
 *				and the ':', as Postfix allows it
 *	$$			a literal '$'
 *	Names are [A-Za-z0-9_]+. "Set" means defined and non-empty. The
 *	values a, b and value are themselves expanded (they may nest); only
 *	the branch taken is expanded, but every branch is syntax-checked and,
 *	with EXPAND_UNKNOWN_IS_ERROR, checked for unknown names. Conditionals
 *	nest at most EXPAND_MAX_NEST deep, so hostile text cannot exhaust a
 *	worker thread's stack.
 *
 * RECURSION
 *	With EXPAND_RECURSE a looked-up value is expanded in turn (main.cf
 *	semantics), and "set" is decided on the expanded value; a name that
 *	refers back to itself through any chain is reported as a loop, and
 *	chains deeper than EXPAND_MAX_DEPTH are refused. So is an expansion
 *	that produces more than EXPAND_MAX_WORK bytes and names looked up in
 *	all: values that each name the next several times (a = $b$b, b =
 *	$c$c, ...) would otherwise grow exponentially. Unlike Postfix,
 *	which tests the raw text, ${x?...} with x = ${stress?{yes}} follows
 *	the personality. Never set EXPAND_RECURSE when values come from the
 *	network (a HELO name, a sender): a client could then inject $names.
 *
 * ERRORS
 *	On error expand_str() returns -1, the content of out is unspecified
 *	(discard it), and err (when not NULL) holds the first problem:
 *	column is the 1-based byte offset in `in' where it starts, msg a
 *	sentence without position. A problem inside a looked-up value is
 *	reported at the column of the reference that led there, with msg
 *	"in the value of $b, column N: ..." and nested set, so a caller that
 *	also checks $b on its own can avoid reporting it twice. Loops,
 *	excessive depth and excessive size are not nested: they belong to the
 *	reference. Nothing is printed.
 *
 * CONCURRENCY
 *	All functions are re-entrant and keep no global state: any number of
 *	threads may expand at once, each with its own out, err and ctx. The
 *	lookup must be safe for the way ctx is shared, and the string it
 *	returns must stay valid until expand_str() returns.
 */
#ifndef MS_EXPAND_H
#define MS_EXPAND_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define EXPAND_MAX_DEPTH 32 /* nested looked-up values, with EXPAND_RECURSE */
#define EXPAND_MAX_NEST 64  /* conditionals inside conditionals */
#define EXPAND_MAX_WORK (1 << 16) /* bytes + names, with EXPAND_RECURSE */

enum {
	EXPAND_RECURSE = 1 << 0,          /* expand looked-up values too */
	EXPAND_UNKNOWN_IS_ERROR = 1 << 1, /* else an unknown name is unset */
};

/* The raw value of name, or NULL when name is not defined. */
typedef const char *(*expand_lookup_fn)(void *ctx, const char *name);

/* Optional: word the "unknown name" error for name into msg (empty). */
typedef void (*expand_unknown_fn)(void *ctx, const char *name, strbuf *msg);

typedef struct expand_ops {
	expand_lookup_fn lookup;   /* NULL: no name is defined */
	expand_unknown_fn unknown; /* NULL: "unknown name $x" */
	unsigned flags;            /* EXPAND_* */
} expand_ops;

typedef struct expand_error {
	size_t column; /* 1-based byte offset into the input */
	bool nested;   /* the problem is inside a looked-up value */
	strbuf msg;    /* what is wrong, without the column */
} expand_error;

#define EXPAND_ERROR_INIT                                                                \
	{                                                                                \
		0, false, STRBUF_INIT                                                    \
	}

void expand_error_free(expand_error *err);

/* 0 on success, -1 with err filled in (see ERRORS). */
int expand_str(strbuf *out, const char *in, const expand_ops *ops, void *ctx,
               expand_error *err);

#endif
