/*
 * unit - the one main loop of every Check unit test program
 *
 * Each tests/check_MODULE.c defines Suite *MODULE_suite(void) and a main that
 * returns unit_run(MODULE_suite()): runs the suite, prints Check's summary,
 * and gives the exit status automake's test driver reads.
 */
#ifndef MS_TESTS_UNIT_H
#define MS_TESTS_UNIT_H

#include <check.h>
#include <sys/types.h>

#include "conf.h"
#include "strbuf.h"

int unit_run(Suite *s);

/*
 * The same inside a fresh directory: unit_tmpdir() names it while the suite
 * runs (tests write their config files there); it and everything in it are
 * removed afterwards.
 */
int unit_run_in_tmpdir(Suite *s, const char *prefix);
const char *unit_tmpdir(void);

/*
 * The schema's defaults with up to two "name=value" overrides, as -o gives
 * them (NULL: none); a configuration that does not load fails the test.
 */
conf *unit_conf(const char *o1, const char *o2);
/* The same from text written to a file in unit_tmpdir(), as the daemon reads it. */
conf *unit_conf_text(const char *text, const char *o1, const char *o2);

/* The MTA's macros a session test sets (NULL: not sent), for session_set_macros(). */
typedef struct unit_macros {
	const char *stress; /* {stress} */
	const char *auth;   /* {auth_authen} */
	const char *qid;    /* i */
} unit_macros;
const char *unit_macro(void *ctx, const char *name);

/* Append every log line to *into from now on, one per line; NULL: stop. */
void unit_log_capture(strbuf *into);

/*
 * A private DNS server for the tests that look things up: dnsmasq on
 * 127.0.0.1 and a free port, with no config file, resolv.conf or hosts
 * file, and extra_args (NULL-terminated; records such as
 * "--host-record=2.0.0.127.bl.test,127.0.0.2") after its own options.
 * Returns its pid, ready for queries, and its port in *port; a dnsmasq
 * that is missing or does not start ends the program (set
 * DNSBL_TEST_VERBOSE to see its complaints). Call it from the parent of
 * Check's forks (an unchecked fixture); unit_dnsmasq_stop() ends it.
 */
pid_t unit_dnsmasq_start(const char *const *extra_args, int *port);
void unit_dnsmasq_stop(pid_t pid); /* pid <= 0: nothing */

/* A UDP socket bound to 127.0.0.1 and a free port (in *port), close-on-exec:
   a server that never answers, unless its owner reads it. */
int unit_udp_socket(int *port);

#endif
