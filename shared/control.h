/*
 * control - the control socket's commands: parsing and answers, no sockets
 *
 * SYNOPSIS
 *	ok = control_handle(line, len, &ops, ctx, &answer);
 *	ok = control_parse(line, len, &cmd, &why);
 *
 * DESCRIPTION
 *	milter-stress-ctl(1) writes one command line to the control socket
 *	(control_socket); the daemon answers with lines and closes. A line
 *	is at most CONTROL_LINE_MAX bytes before its newline (one "\n" or
 *	"\r\n" at the end is dropped); words are separated by spaces or
 *	tabs; verbs and arguments are case-insensitive. Commands:
 *
 *	status			one screen for a person: uptime, config and
 *				its generation, sessions, the stress state,
 *				suspended DNSBL zones, the statistics line
 *	stress on|off|auto	the personality of new sessions; auto: the
 *				MTA's stress macro decides again
 *	reload			as SIGUSR1, but the answer says how it went
 *	stats			the statistics line SIGUSR1 logs
 *	help			the commands
 *
 *	control_handle() parses a line and runs the command through ops,
 *	which the daemon provides (a test or a fuzzer provides fakes), and
 *	fills answer with complete lines, each ending in "\n". A success
 *	answers lines of which none starts with "error:"; a failure (a
 *	command that does not parse, or an op that failed) answers only
 *	lines that start with "error: " and returns false. An answer never
 *	holds a NUL or another control character but the newlines, and
 *	never more than CONTROL_ECHO_MAX bytes of what the client sent.
 *
 *	control_parse() is the parser alone: on false it appends one line's
 *	reason to why, without "error: " and without a newline.
 *
 * CONCURRENCY
 *	No state of its own; the ops decide what runs at the same time
 *	(the daemon serves one command at a time).
 */
#ifndef MS_CONTROL_H
#define MS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"
#include "stress.h"

#define CONTROL_LINE_MAX 1024 /* bytes of a command, its newline not counted */
#define CONTROL_ECHO_MAX 32   /* bytes of a bad word quoted in an error */

enum control_verb {
	CONTROL_STATUS,
	CONTROL_STRESS,
	CONTROL_RELOAD,
	CONTROL_STATS,
	CONTROL_HELP,
};

typedef struct control_cmd {
	enum control_verb verb;
	enum stress_force force; /* CONTROL_STRESS: the argument */
} control_cmd;

bool control_parse(const char *line, size_t len, control_cmd *cmd, strbuf *why);

/* What the status screen shows; control_handle() inits and frees the strbufs. */
typedef struct control_status {
	const char *version;
	long pid;
	long long uptime_ms;
	strbuf config;            /* the file; empty: the defaults */
	unsigned long generation; /* 1 at start, one more per reload */
	unsigned long long sessions_now, sessions_peak, overloaded;
	long long max_sessions;
	enum stress_force force;      /* the runtime switch */
	bool pinned, pinned_stressed; /* -o stress=... given, and its value */
	strbuf stress_macro;          /* "{stress}" */
	unsigned suspended_zones;
	strbuf zones;   /* the suspended zones' names, space-separated */
	strbuf busiest; /* "COUNT STAGE ACTION RULE" lines, most first */
	strbuf stats;   /* the statistics line */
	strbuf load;    /* load_status(): one line per level, the transitions */
	strbuf sources; /* stress_sources */
} control_status;

/*
 * The daemon's side. stress() and reload() return false with one or more
 * lines (without "error: ") in err; reload() sets *generation to the
 * generation in use afterwards, whether it failed or not.
 */
typedef struct control_ops {
	void (*status)(void *ctx, control_status *st);
	bool (*stress)(void *ctx, enum stress_force force, strbuf *err);
	bool (*reload)(void *ctx, unsigned long *generation, strbuf *err);
	void (*stats)(void *ctx, strbuf *line);
} control_ops;

bool control_handle(const char *line, size_t len, const control_ops *ops, void *ctx,
                    strbuf *answer);

#endif
