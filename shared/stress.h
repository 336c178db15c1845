/*
 * stress - which personality a session gets, and where that came from
 *
 * A session is stressed when the operator forced it at start (-o stress=yes;
 * -o stress= forces it off), or else when the operator forced it at runtime
 * through the control socket (milter-stress-ctl stress on|off; the daemon's
 * runtime keeps that switch, runtime.h), or else when the MTA's stress macro
 * (stress_macro, default "{stress}") has one of the stress_values. The
 * decision is made once, at connect, and recorded with its source so logs and
 * the stress header can say why. The macro's value is per smtpd process, not
 * per client (ARCHITECTURE.md F2).
 *
 * -o stress=... comes first because it pins the configuration itself: its
 * snapshot holds that one personality's parameters in both slots, and
 * negotiation asks only for what that personality needs. The runtime switch
 * changes neither, so it can only pick between the two personalities a
 * snapshot has (the control socket refuses it under -o stress=...).
 *
 * Before the decision the personality is not known, so stress_macro and
 * stress_values are read from the normal personality.
 *
 * Concurrency: pure functions over an immutable conf snapshot; any thread.
 */
#ifndef MS_STRESS_H
#define MS_STRESS_H

#include <stdbool.h>

#include "conf.h"
#include "strbuf.h"

enum stress_source {
	STRESS_SRC_NONE,   /* the MTA sent no stress macro */
	STRESS_SRC_MACRO,  /* the MTA's macro decided */
	STRESS_SRC_FORCED, /* -o stress=... decided */
	STRESS_SRC_CONTROL, /* the runtime switch (control socket) decided */
	STRESS_SRC_SESSIONS, /* the sessions of the service against its limit (load.h) */
	STRESS_SRC_LATENCY,  /* the early stages' latency (load.h) */
	STRESS_SRC_ENDPOINT, /* the session came to stress_socket */
	STRESS_SRC_N
};

/* The runtime switch: new sessions' personality, whatever the macro says. */
enum stress_force {
	STRESS_FORCE_NONE, /* auto: the macro decides */
	STRESS_FORCE_ON,
	STRESS_FORCE_OFF,
};

typedef struct stress_state {
	bool stressed;
	enum stress_source source;
} stress_state;

/* The MTA's macro called name ("{stress}"); NULL when it was not sent. */
typedef const char *(*stress_macro_fn)(void *ctx, const char *name);

/*
 * Reads the macro that stress_macro names through fn (NULL: no macros) unless
 * -o stress=... or the runtime switch (force) decides first.
 */
stress_state stress_decide(const conf *c, enum stress_force force, stress_macro_fn fn,
                           void *ctx);

/*
 * stress_sources: which sources may stress a session, as a mask of
 * STRESS_USE_*. The words are macro, sessions and latency, separated by
 * commas and/or whitespace; false with why on another word.
 */
#define STRESS_USE_MACRO 1u
#define STRESS_USE_SESSIONS 2u
#define STRESS_USE_LATENCY 4u
bool stress_sources_parse(const char *text, unsigned *mask, strbuf *why);

/*
 * What stress_decide() said, with stress_sources applied: when the macro
 * decided (or nothing did) and macro is not a source, the macro says
 * nothing; then a stressed load source (load_src: STRESS_SRC_SESSIONS or
 * STRESS_SRC_LATENCY) stresses a session the macro left calm. -o stress=
 * and the runtime switch still decide alone.
 */
stress_state stress_with_load(stress_state st, unsigned sources, bool load_stressed,
                              enum stress_source load_src);

/* "on", "off", "auto". */
const char *stress_force_name(enum stress_force force);

const char *stress_source_name(enum stress_source src);

/* Log form: "yes(macro)", "no(none)", ... */
void stress_format_log(const stress_state *st, strbuf *out);

/*
 * Header value form: "yes (source=macro)"; "no" when the macro said no; and
 * "no (source=none)" / "no (source=forced)" otherwise, so a missing macro is
 * visible downstream.
 */
void stress_format_header(const stress_state *st, strbuf *out);

#endif
