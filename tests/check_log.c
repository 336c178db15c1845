/*
 * Unit tests for log: ms_panic() names its caller and the values, reaches
 * stderr whole, and ends the process with SIGABRT (a core, a supervisor's
 * restart), even when the message does not fit its line.
 */
#include "config.h"

#include "unit.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strbuf.h"

typedef void (*child_fn)(void);

/* Runs fn in a child; its stderr into *err, its wait status returned. */
static int
run_child(child_fn fn, strbuf *err, pid_t *pid)
{
	int fds[2], status;
	struct rlimit no_core = {0, 0};
	char buf[512];
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	*pid = fork();
	ck_assert_int_ge(*pid, 0);
	if (*pid == 0) {
		/* The abort is expected: no core file in the build tree. */
		(void)setrlimit(RLIMIT_CORE, &no_core);
		if (dup2(fds[1], STDERR_FILENO) < 0)
			_exit(99);
		close(fds[0]);
		close(fds[1]);
		fn();
		_exit(98); /* ms_panic() returned */
	}
	close(fds[1]);
	while ((n = read(fds[0], buf, sizeof buf)) > 0)
		strbuf_append(err, buf, (size_t)n);
	close(fds[0]);
	ck_assert_int_eq(waitpid(*pid, &status, 0), *pid);
	return status;
}

static void
hit_an_invariant(void)
{
	ms_panic("bad %d", 7);
}

START_TEST(test_panic)
{
	strbuf err = STRBUF_INIT, want = STRBUF_INIT;
	pid_t pid;
	int status = run_child(hit_an_invariant, &err, &pid);

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	              "wait status 0x%x, stderr: %s", (unsigned)status, strbuf_str(&err));
	/* The ident is log.c's default: the child never called log_init(). */
	strbuf_printf(&want, "milter-stress[%ld]: panic: hit_an_invariant: bad 7\n",
	              (long)pid);
	ck_assert_str_eq(strbuf_str(&err), want.s);
	strbuf_free(&err);
	strbuf_free(&want);
}
END_TEST

static void
panic_at_length(void)
{
	static char big[4096];

	memset(big, 'x', sizeof big - 1);
	ms_panic("too long: %s", big);
}

START_TEST(test_panic_long)
{
	strbuf err = STRBUF_INIT;
	pid_t pid;
	int status = run_child(panic_at_length, &err, &pid);
	const char *s = strbuf_str(&err);

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	              "wait status 0x%x", (unsigned)status);
	/* Cut, on one line, and the caller still named. */
	ck_assert_ptr_nonnull(strstr(s, "]: panic: panic_at_length: too long: xxx"));
	ck_assert_ptr_eq(strchr(s, '\n'), s + err.len - 1);
	ck_assert_uint_lt(err.len, 1100);
	strbuf_free(&err);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_panic);
	tcase_add_test(tc, test_panic_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(log_suite());
}
