/*
 * probe-bench - milter-probe --bench: many transactions at once, measured
 *
 * DESCRIPTION
 *	C threads play N transactions in all (or as many as fit in D
 *	seconds), each on its own connection, as Postfix opens one per SMTP
 *	session; --bench-vary-client gives each its own IPv6 client and
 *	--cut-after cuts transaction k after k mod (BYTES+1) bytes. At the
 *	end: throughput, latency from connect to the final verdict, verdict
 *	counts, errors, our own CPU time and a machine-readable BENCH line;
 *	with --bench-transcript, one line per transaction in a file.
 *
 *	The threads share only the struct bench below, under its mutex.
 *	See probe.h.
 */
#include "config.h"

#include "budget.h"
#include "names.h"
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

typedef struct bench {
	const probe_opts *opts;
	pthread_mutex_t lock;
	unsigned long next; /* transactions handed out */
	double *latency_ms; /* one per transaction, in completion order */
	double *reply_ms;   /* its slowest reply, in the same order */
	const char *slowest_stage; /* where the slowest reply of all was */
	double slowest_ms;
	unsigned long cap;  /* room in latency_ms */
	long long deadline; /* --bench C,Ds: none after it (budget.h); 0: none */
	unsigned long done;
	unsigned long errors;
	unsigned long verdicts[PROBE_NVERDICT];
} bench;

/*
 * Transaction k comes from the IPv6 client whose last 32 bits are k, so
 * every DNSBL lookup misses the milter's cache, as in a flood of new clients.
 */
static void
vary_client(probe_opts *opts, unsigned long k)
{
	unsigned char a[16];

	if (inet_pton(AF_INET6, opts->client_addr, a) != 1)
		return;
	names_put32(a + 12, (uint32_t)k);
	inet_ntop(AF_INET6, a, opts->client_addr, sizeof opts->client_addr);
}

/*
 * Turn the stage lines of transaction k into its --bench-transcript line:
 * "k: line | line | ... | result: ..." (or "| error" when it failed).
 */
static void
transcript_line(strbuf *lines, unsigned long k, bool done, probe_verdict v,
                const char *stage)
{
	strbuf t = STRBUF_INIT;
	const char *p = strbuf_str(lines);

	strbuf_printf(&t, "%lu: ", k);
	for (; *p != '\0'; p++)
		if (*p != '\n')
			strbuf_putc(&t, *p);
		else
			strbuf_puts(&t, " | ");
	if (done)
		probe_put_result(&t, v, stage);
	else
		strbuf_puts(&t, "error");
	strbuf_putc(&t, '\n');
	strbuf_reset(lines);
	strbuf_append(lines, t.s, t.len);
	strbuf_free(&t);
}

static void *
bench_worker(void *arg)
{
	bench *b = arg;
	strbuf lines = STRBUF_INIT;

	for (;;) {
		probe_verdict v = PROBE_ACCEPT;
		const char *stage = "eom";
		probe_txn_stats st = {0, NULL};
		struct timespec t0;
		double ms;
		int rc;

		probe_opts local = *b->opts;
		unsigned long k;

		pthread_mutex_lock(&b->lock);
		if (b->next >= b->opts->bench_n ||
		    (b->deadline != 0 && budget_expired(b->deadline))) {
			pthread_mutex_unlock(&b->lock);
			strbuf_free(&lines);
			return NULL;
		}
		k = b->next++;
		pthread_mutex_unlock(&b->lock);
		if (local.bench_vary)
			vary_client(&local, k);
		if (local.cut)
			local.cut_after = k % (b->opts->cut_after + 1);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = probe_txn_run(&local, &v, &stage,
		                   b->opts->bench_transcript ? &lines : NULL, &st);
		ms = probe_ms_since(&t0);
		if (b->opts->bench_transcript != NULL)
			transcript_line(&lines, k, rc == PROBE_EXIT_DONE, v, stage);
		pthread_mutex_lock(&b->lock);
		if (b->done == b->cap) {
			b->cap *= 2;
			b->latency_ms = ms_xrealloc(b->latency_ms,
			                            b->cap * sizeof *b->latency_ms);
			b->reply_ms = ms_xrealloc(b->reply_ms, b->cap * sizeof *b->reply_ms);
		}
		b->reply_ms[b->done] = st.slowest_reply_ms;
		if (st.slowest_stage != NULL && st.slowest_reply_ms > b->slowest_ms) {
			b->slowest_ms = st.slowest_reply_ms;
			b->slowest_stage = st.slowest_stage;
		}
		b->latency_ms[b->done++] = ms;
		if (rc != PROBE_EXIT_DONE)
			b->errors++;
		else
			b->verdicts[v]++;
		if (b->opts->bench_transcript != NULL)
			fputs(strbuf_str(&lines), b->opts->bench_transcript);
		pthread_mutex_unlock(&b->lock);
		strbuf_reset(&lines);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
percentile(const double *sorted, unsigned long n, double p)
{
	unsigned long i;

	if (n == 0)
		return 0;
	i = (unsigned long)(p * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

int
probe_bench_run(const probe_opts *opts)
{
	bench b;
	pthread_t *tids = ms_xcalloc(opts->bench_conc, sizeof *tids);
	pthread_attr_t attr;
	struct rusage ru;
	struct rlimit rl;
	struct timespec t0;
	double secs, cpu, mps, p50, p90, p99, max, r50, r99, rmax;

	memset(&b, 0, sizeof b);
	b.opts = opts;
	pthread_mutex_init(&b.lock, NULL);
	b.cap = opts->bench_n < 65536 ? opts->bench_n : 65536;
	b.latency_ms = ms_xcalloc(b.cap, sizeof *b.latency_ms);
	b.reply_ms = ms_xcalloc(b.cap, sizeof *b.reply_ms);
	/* Thousands of sessions: small stacks, and a descriptor each. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
	    rl.rlim_cur < (rlim_t)opts->bench_conc + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* budget_now_ms() drops the fraction of a millisecond that t0 keeps: one
	   more, so that a run of D seconds never measures 0.999 D. */
	if (opts->bench_secs > 0)
		b.deadline = budget_deadline(budget_now_ms() + 1,
		                             (long long)(opts->bench_secs * 1e3));
	for (unsigned i = 0; i < opts->bench_conc; i++)
		if (pthread_create(&tids[i], &attr, bench_worker, &b) != 0) {
			fprintf(stderr, "%s: cannot start thread %u\n", PROBE_NAME, i);
			exit(PROBE_EXIT_FAIL);
		}
	pthread_attr_destroy(&attr);
	for (unsigned i = 0; i < opts->bench_conc; i++)
		pthread_join(tids[i], NULL);
	secs = probe_ms_since(&t0) / 1e3;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	      ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
	qsort(b.latency_ms, b.done, sizeof *b.latency_ms, cmp_double);
	mps = secs > 0 ? (double)b.done / secs : 0.0;
	p50 = percentile(b.latency_ms, b.done, 0.50);
	p90 = percentile(b.latency_ms, b.done, 0.90);
	p99 = percentile(b.latency_ms, b.done, 0.99);
	max = b.done ? b.latency_ms[b.done - 1] : 0.0;
	qsort(b.reply_ms, b.done, sizeof *b.reply_ms, cmp_double);
	r50 = percentile(b.reply_ms, b.done, 0.50);
	r99 = percentile(b.reply_ms, b.done, 0.99);
	rmax = b.done ? b.reply_ms[b.done - 1] : 0.0;
	printf("bench: %lu transactions, %u at once, %.2f s: %.1f msg/s\n", b.done,
	       opts->bench_conc, secs, mps);
	printf("bench: latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n", p50, p90, p99,
	       max);
	/* The MTA waits for each reply: the budget bounds this one. */
	printf("bench: slowest reply per transaction ms p50 %.2f p99 %.2f max %.2f (%s)\n",
	       r50, r99, rmax, b.slowest_stage != NULL ? b.slowest_stage : "-");
	printf("bench: verdicts");
	for (int v = PROBE_NONE; v < PROBE_NVERDICT; v++)
		if (b.verdicts[v] > 0)
			printf(" %s=%lu", probe_verdict_name(v), b.verdicts[v]);
	printf(", errors=%lu, probe cpu %.2f s\n", b.errors, cpu);
	printf("BENCH conc=%u n=%lu errors=%lu secs=%.3f mps=%.1f p50=%.3f p90=%.3f "
	       "p99=%.3f max=%.3f cpu=%.3f reply_p99=%.3f reply_max=%.3f\n",
	       opts->bench_conc, b.done, b.errors, secs, mps, p50, p90, p99, max, cpu,
	       r99, rmax);
	free(b.latency_ms);
	free(b.reply_ms);
	free(tids);
	pthread_mutex_destroy(&b.lock);
	if (opts->bench_transcript != NULL && fclose(opts->bench_transcript) != 0) {
		fprintf(stderr, "%s: --bench-transcript: %s\n", PROBE_NAME,
		        strerror(errno));
		return PROBE_EXIT_FAIL;
	}
	return b.errors == 0 ? PROBE_EXIT_DONE : PROBE_EXIT_FAIL;
}
