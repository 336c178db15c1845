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

int unit_run(Suite *s);

/*
 * The same inside a fresh directory: unit_tmpdir() names it while the suite
 * runs (tests write their config files there); it and everything in it are
 * removed afterwards.
 */
int unit_run_in_tmpdir(Suite *s, const char *prefix);
const char *unit_tmpdir(void);

#endif
