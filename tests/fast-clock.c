/*
 * fast-clock.so - an LD_PRELOAD library for the fuzz targets: every read of
 * CLOCK_MONOTONIC returns a time 31 s later than the read before, so every
 * budget (the longest default is 30 s) runs out at its first check, as it
 * would on a machine too loaded to keep up. fuzz.sh runs fuzz_session with
 * it as the target fuzz_session_fast_clock: the paths of a budget that ran
 * out are fuzzed on every input, not only when the machine is slow.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>

#define STEP_SEC 31

int clock_gettime(clockid_t id, struct timespec *ts);

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	static __thread time_t ahead; /* per thread: no data race to report */
	int rc;

	if (real == NULL)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	rc = real(id, ts);
	if (rc == 0 && id == CLOCK_MONOTONIC) {
		ahead += STEP_SEC;
		ts->tv_sec += ahead;
	}
	return rc;
}
