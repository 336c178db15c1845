/*
 * history-read - what a client history read costs: history_lookup() as a
 * session makes it at connect, through the real cache, thread and store.
 *
 *	history-read SPEC N
 *
 * Writes N clients (192.0.2.x style keys in 10.0.0.0/8) through the
 * write-behind queue, waits for them, then times N lookups of clients with
 * the cache off (every lookup reads the store: LMDB on the caller's thread,
 * Redis through the history's thread) and N with the cache on (all hits),
 * half of them of clients the store has, half of clients it has not.
 * Prints p50, p99 and max in microseconds for each. Not part of make check.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "history.h"

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
addr(unsigned i, char *buf, size_t n)
{
	snprintf(buf, n, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static void
run(history *h, unsigned n, const char *what)
{
	double *t = calloc(n, sizeof *t);
	unsigned unavailable = 0;
	char a[32];

	for (unsigned i = 0; i < n; i++) {
		history_record r;
		double t0 = now_us();

		addr(i % 2 == 0 ? i / 2 : n + i, a, sizeof a);
		if (history_lookup(h, a, budget_deadline(budget_now_ms(), 1000), &r) ==
		    HISTORY_UNAVAILABLE)
			unavailable++;
		t[i] = now_us() - t0;
	}
	qsort(t, n, sizeof *t, cmp);
	printf("%s: %u reads: p50 %.1f us, p99 %.1f us, max %.1f us, unavailable %u\n", what, n,
	       t[n / 2], t[n * 99 / 100], t[n - 1], unavailable);
	free(t);
}

int
main(int argc, char **argv)
{
	history_config hc = {0};
	history_delta d = {1, 0};
	history *h;
	unsigned n;
	char a[32];

	if (argc != 3 || (n = (unsigned)atoi(argv[2])) < 100) {
		fprintf(stderr, "usage: history-read SPEC N (N >= 100)\n");
		return 2;
	}
	hc.spec = argv[1];
	hc.store.map_size = 1ULL << 30;
	hc.store.max_age = hc.store.window_s = 30 * 86400;
	hc.store.timeout_ms = 1000;
	hc.cache_size = 0;
	hc.cache_ttl_ms = 60000;
	hc.v6_prefix = 64;
	hc.queue_max = 10000000;
	h = history_create();
	history_configure(h, &hc);
	history_start(h);
	for (unsigned i = 0; i < n / 2; i++) {
		addr(i, a, sizeof a);
		history_note(h, a, &d);
	}
	if (!history_flush(h, budget_deadline(budget_now_ms(), 600000))) {
		fprintf(stderr, "history-read: the writes did not finish\n");
		return 1;
	}
	run(h, n, "store (cache off)");
	hc.cache_size = n * 2;
	history_configure(h, &hc);
	run(h, n, "warming the cache");
	run(h, n, "cache hits");
	history_free(h);
	return 0;
}
