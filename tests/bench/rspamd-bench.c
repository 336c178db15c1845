/*
 * rspamd-bench - latency of the rspamd client against a running rspamd
 *
 *	rspamd-bench ENDPOINT FILE CONCURRENCY COUNT [mem|fd] [SETTINGS-ID]
 *
 * COUNT scans of FILE (a whole message) on CONCURRENCY threads sharing one
 * client, from memory (mem, the default) or read from the file (fd, as a
 * spool file is); each with a 30 s deadline. Prints one line: scans that
 * gave a verdict, errors, p50, p99 and the longest latency in ms, and
 * scans per second. Exit status 1 when any scan failed.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "budget.h"
#include "rspamd.h"
#include "strbuf.h"

static rspamd_client *client;
static rspamd_request base;
static long count;
static atomic_long next, failed;
static double *lat; /* ms, one per scan */

static void *
worker(void *arg)
{
	strbuf why = STRBUF_INIT;
	long i;

	(void)arg;
	while ((i = atomic_fetch_add(&next, 1)) < count) {
		struct timespec a, b;
		rspamd_reply r;
		enum rspamd_status st;

		clock_gettime(CLOCK_MONOTONIC, &a);
		st = rspamd_scan(client, &base, budget_deadline(budget_now_ms(), 30000), NULL, &r, &why);
		clock_gettime(CLOCK_MONOTONIC, &b);
		lat[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		if (st != RSPAMD_OK) {
			if (atomic_fetch_add(&failed, 1) == 0)
				fprintf(stderr, "rspamd-bench: %s\n", strbuf_str(&why));
		}
		strbuf_reset(&why);
		rspamd_reply_free(&r);
	}
	strbuf_free(&why);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	strbuf why = STRBUF_INIT;
	struct stat st;
	pthread_t *th;
	long conc;
	int fd;
	long long t0, elapsed;
	char *mem = NULL;

	if (argc < 5 || argc > 7) {
		fprintf(stderr, "usage: rspamd-bench ENDPOINT FILE CONCURRENCY COUNT [mem|fd] [SETTINGS-ID]\n");
		return 2;
	}
	conc = atol(argv[3]);
	count = atol(argv[4]);
	if (conc < 1 || count < 1 || (fd = open(argv[2], O_RDONLY)) < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "rspamd-bench: bad concurrency or count, or cannot read %s\n", argv[2]);
		return 2;
	}
	base = (rspamd_request)RSPAMD_REQUEST_INIT;
	base.ip = "192.0.2.1", base.helo = "mx.example.org", base.from = "a@example.org";
	base.settings_id = argc > 6 ? argv[6] : NULL;
	if (argc > 5 && strcmp(argv[5], "fd") == 0) {
		base.fd = fd, base.fd_len = st.st_size;
	} else {
		mem = malloc((size_t)st.st_size + 1);
		if (mem == NULL || read(fd, mem, (size_t)st.st_size) != st.st_size) {
			fprintf(stderr, "rspamd-bench: reading %s failed\n", argv[2]);
			return 2;
		}
		base.mem = mem, base.mem_len = (size_t)st.st_size;
	}
	if (!rspamd_global_init(&why) || (client = rspamd_client_new(argv[1], &why)) == NULL) {
		fprintf(stderr, "rspamd-bench: %s\n", strbuf_str(&why));
		return 2;
	}
	lat = calloc((size_t)count, sizeof *lat);
	th = calloc((size_t)conc, sizeof *th);
	if (lat == NULL || th == NULL)
		return 2;
	t0 = budget_now_ms();
	for (long i = 0; i < conc; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (long i = 0; i < conc; i++)
		pthread_join(th[i], NULL);
	elapsed = budget_now_ms() - t0;
	qsort(lat, (size_t)count, sizeof *lat, cmp_double);
	printf("size=%lld c=%ld n=%ld ok=%ld errors=%ld p50=%.2fms p99=%.2fms max=%.2fms rate=%.0f/s\n",
	       (long long)st.st_size, conc, count, count - atomic_load(&failed), atomic_load(&failed),
	       lat[(count - 1) / 2], lat[(count * 99 - 1) / 100], lat[count - 1],
	       elapsed > 0 ? (double)count * 1000.0 / (double)elapsed : 0.0);
	rspamd_client_free(client);
	rspamd_global_cleanup();
	free(lat);
	free(th);
	free(mem);
	close(fd);
	strbuf_free(&why);
	return atomic_load(&failed) == 0 ? 0 : 1;
}
