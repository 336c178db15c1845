/*
 * Unit tests for the content scanners' pieces: clamd's and spamd's reply
 * parsers (every reply form, table-driven), the spool (memory, then a
 * private file, then over its limit), and the scanners module against a
 * listener of our own that accepts and never answers: a scan ends at its
 * deadline, the cap lets no more connections in than it says, and the
 * breaker opens after its threshold, also when the scans got their
 * connection late, and fails scans at once.
 */
#include "config.h"

#include "unit.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "budget.h"
#include "clamd.h"
#include "scanners.h"
#include "spamd.h"
#include "spool.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- clamd ---- */

static const struct ccase {
	const char *reply;
	size_t len;       /* 0: strlen */
	int ok;           /* 1 clean, 2 infected, 0 refused */
	const char *what; /* the name, or a piece of the reason */
} ccases[] = {
        {"stream: OK", 11, 1, ""},
        {"stream: OK\n", 0, 1, ""},
        {"stream: Eicar-Signature FOUND", 30, 2, "Eicar-Signature"},
        {"stream: MilterStress.Test.Sig.UNOFFICIAL FOUND\n", 0, 2,
         "MilterStress.Test.Sig.UNOFFICIAL"},
        {"stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND", 0, 2,
         "Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68)"},
        {"/var/tmp/x: OK", 0, 1, ""},
        {"INSTREAM size limit exceeded. ERROR", 36, 0, "size limit exceeded"},
        {"stream: Can't allocate memory ERROR", 0, 0, "allocate memory"},
        {"UNKNOWN COMMAND", 0, 0, "unexpected reply"},
        {"COMMAND READ TIMED OUT", 0, 0, "unexpected reply"},
        {"", 0, 0, "empty reply"},
        {"stream: FOUND", 0, 0, "unexpected"},
        {"stream:  FOUND", 0, 0, "unexpected"},
        {"OK", 0, 0, "unexpected"},
        {"stream: OK\nstream: OK", 0, 0, "several lines"},
};

START_TEST(test_clamd_reply)
{
	const struct ccase *c = &ccases[_i];
	strbuf why = STRBUF_INIT;
	scan_result r;
	bool ok;

	scan_result_init(&r);
	ok = clamd_reply_parse(c->reply, c->len ? c->len : strlen(c->reply), &r, &why);
	ck_assert_msg(ok == (c->ok != 0), "'%s': %s", c->reply, strbuf_str(&why));
	if (ok) {
		ck_assert_int_eq(r.infected, c->ok == 2);
		ck_assert_str_eq(strbuf_str(&r.virus), c->what);
	} else {
		ck_assert_msg(strstr(strbuf_str(&why), c->what) != NULL, "'%s': %s",
		              c->reply, strbuf_str(&why));
	}
	scan_result_free(&r);
	strbuf_free(&why);
}
END_TEST

/* ---- spamd ---- */

static const struct scase {
	const char *reply;
	int ok; /* 1 accepted */
	bool spam;
	double score, required;
	const char *rules; /* accepted: joined by ','; refused: a piece of why */
} scases[] = {
        {"SPAMD/1.1 0 EX_OK\r\nContent-length: 28\r\nSpam: True ; 1005.2 / 5.0\r\n\r\n"
         "GTUBE,MISSING_DATE,NO_RELAYS",
         1, true, 1005.2, 5.0, "GTUBE,MISSING_DATE,NO_RELAYS"},
        {"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n", 1, false, -0.1, 5.0,
         ""},
        {"SPAMD/1.1 0 EX_OK\nspam: yes ; 6 / 5\n\nA, B\n", 1, true, 6, 5, "A,B"},
        {"SPAMD/1.1 0 EX_OK\r\nSpam: No ; 0.0 / 5.0\r\n", 1, false, 0, 5, ""},
        {"SPAMD/1.0 76 Bad header line: Content-length\r\n", 0, false, 0, 0,
         "76 Bad header line"},
        {"SPAMD/1.0 75 EX_TEMPFAIL\r\n", 0, false, 0, 0, "EX_TEMPFAIL"},
        {"SPAMD/1.1 0 EX_OK\r\n\r\nGTUBE", 0, false, 0, 0, "no Spam header"},
        {"SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n", 0, false, 0, 0, "bad Spam"},
        {"SPAMD/1.1 0 EX_OK\r\nSpam: True ; inf / 5\r\n\r\n", 0, false, 0, 0, "bad Spam"},
        {"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1 / 5 x\r\n\r\n", 0, false, 0, 0, "bad Spam"},
        {"SPAMD/1.1 0 EX_OK\r\nnonsense\r\n\r\n", 0, false, 0, 0, "bad header line"},
        {"HTTP/1.1 200 OK\r\n\r\n", 0, false, 0, 0, "not a SPAMD reply"},
        {"", 0, false, 0, 0, "empty reply"},
};

START_TEST(test_spamd_reply)
{
	const struct scase *c = &scases[_i];
	strbuf why = STRBUF_INIT, rules = STRBUF_INIT;
	scan_result r;
	bool ok;

	scan_result_init(&r);
	ok = spamd_reply_parse(c->reply, strlen(c->reply), &r, &why);
	ck_assert_msg(ok == (c->ok != 0), "'%s': %s", c->reply, strbuf_str(&why));
	if (ok) {
		ck_assert_int_eq(r.spam, c->spam);
		ck_assert(fabs(r.score - c->score) < 1e-9);
		ck_assert(fabs(r.required - c->required) < 1e-9);
		for (size_t i = 0; i < r.nsymbols; i++)
			strbuf_printf(&rules, "%s%s", i ? "," : "", r.symbols[i]);
		ck_assert_str_eq(strbuf_str(&rules), c->rules);
	} else {
		ck_assert_msg(strstr(strbuf_str(&why), c->rules) != NULL, "'%s': %s",
		              c->reply, strbuf_str(&why));
	}
	scan_result_free(&r);
	strbuf_free(&why);
	strbuf_free(&rules);
}
END_TEST

/* ---- spool ---- */

static void
read_back(const spool *sp, strbuf *out)
{
	char buf[7]; /* small: many reads */
	strbuf why = STRBUF_INIT;
	long long off = 0;
	ssize_t n;

	while ((n = spool_read(sp, off, buf, sizeof buf, &why)) > 0) {
		strbuf_append(out, buf, (size_t)n);
		off += n;
	}
	ck_assert_msg(n == 0, "%s", strbuf_str(&why));
	strbuf_free(&why);
}

START_TEST(test_spool)
{
	spool *sp = spool_create(10, 100, unit_tmpdir());
	strbuf back = STRBUF_INIT;
	size_t len;

	spool_write(sp, "Subject: x\r\n", 12); /* past 10 bytes: to a file */
	ck_assert_ptr_null(spool_mem(sp, &len));
	ck_assert_int_ge(spool_fd(sp), 0);
	spool_write(sp, "\r\nbody\r\n", 8);
	ck_assert_int_eq(spool_size(sp), 20);
	read_back(sp, &back);
	ck_assert_str_eq(back.s, "Subject: x\r\n\r\nbody\r\n");
	ck_assert(!spool_over(sp));
	ck_assert_ptr_null(spool_error(sp));
	spool_write(
	        sp,
	        "0123456789012345678901234567890123456789012345678901234567890123456789"
	        "0123456789",
	        80); /* 100: at the limit */
	ck_assert(!spool_over(sp));
	spool_write(sp, "x", 1);
	ck_assert(spool_over(sp));
	ck_assert_int_eq(spool_fd(sp), -1);
	ck_assert_int_eq(spool_size(sp), 101);
	spool_free(sp);

	sp = spool_create(1024, 100, unit_tmpdir());
	spool_write(sp, "small", 5);
	ck_assert_str_eq(spool_mem(sp, &len), "small");
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(spool_fd(sp), -1);
	spool_free(sp);

	sp = spool_create(0, 100, "/nonexistent-dir");
	spool_write(sp, "x", 1);
	ck_assert_ptr_nonnull(spool_error(sp));
	ck_assert_msg(strstr(spool_error(sp), "/nonexistent-dir") != NULL, "%s",
	              spool_error(sp));
	spool_free(sp);
	strbuf_free(&back);
}
END_TEST

/* ---- the scanners against a listener that never answers ---- */

static int
silent_listener(char *path, size_t size)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(path, size, "%s/silent.sock", unit_tmpdir());
	ck_assert_uint_lt(strlen(path), sizeof sun.sun_path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	unlink(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	return fd;
}

typedef struct run {
	scanners *sc;
	const scan_message *m;
	long long budget;
	scan_result res[SCAN_N];
} run;

static void *
run_clamd(void *arg)
{
	run *r = arg;
	long long dl[SCAN_N];
	const scan_provider *p = scanners_provider(r->sc);

	for (int k = 0; k < SCAN_N; k++) {
		scan_result_init(&r->res[k]);
		dl[k] = budget_deadline(budget_now_ms(), r->budget);
	}
	p->scan(p->self, SCAN_BIT(SCAN_CLAMD), r->m, dl, r->res);
	return NULL;
}

/* A scanners module with clamd on a silent listener, and a message. */
typedef struct silent {
	char path[256], ep[300];
	int lfd;
	scanners *sc;
	spool *sp;
	scan_message m;
} silent;

static void
silent_open(silent *f, unsigned clamd_cap)
{
	scanners_config cfg = {.max_connections = {clamd_cap, 1, 1},
	                       .breaker_threshold = 3,
	                       .breaker_ms = 60000};
	strbuf why = STRBUF_INIT;

	f->lfd = silent_listener(f->path, sizeof f->path);
	f->sc = scanners_create();
	f->sp = spool_create(1024, 1 << 20, unit_tmpdir());
	f->m = (scan_message){.spool = f->sp};
	snprintf(f->ep, sizeof f->ep, "unix:%s", f->path);
	cfg.endpoint[SCAN_CLAMD] = f->ep;
	ck_assert_msg(scanners_configure(f->sc, &cfg, &why), "%s", strbuf_str(&why));
	spool_write(f->sp, "Subject: x\r\n\r\nx\r\n", 17);
	strbuf_free(&why);
}

static void
silent_close(silent *f)
{
	scanners_free(f->sc);
	spool_free(f->sp);
	close(f->lfd);
	unlink(f->path);
}

START_TEST(test_scanners_silent)
{
	silent f;
	scanners *sc;
	scanners_config cfg = {.max_connections = {2, 1, 1},
	                       .breaker_threshold = 3,
	                       .breaker_ms = 60000};
	strbuf why = STRBUF_INIT;
	run runs[4];
	pthread_t th[4];
	scanners_stats st;
	long long t0;

	silent_open(&f, 2);
	sc = f.sc;
	ck_assert_uint_eq(scanners_provider(sc)->configured(scanners_provider(sc)->self),
	                  SCAN_BIT(SCAN_CLAMD));

	/* Four at once, a cap of two: two reach the listener, two wait. */
	t0 = budget_now_ms();
	for (int i = 0; i < 4; i++) {
		runs[i] = (run){sc, &f.m, 300, {{0}}};
		pthread_create(&th[i], NULL, run_clamd, &runs[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_lt(budget_now_ms() - t0, 1000);
	scanners_get_stats(sc, SCAN_CLAMD, &st);
	ck_assert_uint_eq(st.peak, 2);
	ck_assert_uint_eq(st.busy, 0);
	ck_assert_uint_eq(st.timeouts, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(runs[i].res[SCAN_CLAMD].status, SCAN_TIMEOUT);
		ck_assert_int_eq(runs[i].res[SCAN_SPAMD].status, SCAN_NOT_RUN);
		ck_assert_int_ge(runs[i].res[SCAN_CLAMD].ms, 250);
		for (int k = 0; k < SCAN_N; k++)
			scan_result_free(&runs[i].res[k]);
	}
	/* The two that held a connection count against the scanner; the two
	   that waited count only if they got one before their deadline (the
	   scanner had then answered nothing for a whole budget). So the breaker
	   is open now or after one more timeout, and scans fail at once. */
	runs[0] = (run){sc, &f.m, 200, {{0}}};
	run_clamd(&runs[0]);
	ck_assert(runs[0].res[SCAN_CLAMD].status == SCAN_TIMEOUT ||
	          runs[0].res[SCAN_CLAMD].status == SCAN_ERROR);
	scan_result_free(&runs[0].res[SCAN_CLAMD]);
	t0 = budget_now_ms();
	runs[0] = (run){sc, &f.m, 200, {{0}}};
	run_clamd(&runs[0]);
	ck_assert_int_eq(runs[0].res[SCAN_CLAMD].status, SCAN_ERROR);
	ck_assert_msg(strstr(strbuf_str(&runs[0].res[SCAN_CLAMD].why), "suspended") !=
	                      NULL,
	              "%s", strbuf_str(&runs[0].res[SCAN_CLAMD].why));
	ck_assert_int_lt(budget_now_ms() - t0, 50);
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&runs[0].res[k]);

	/* A reload without the socket: not configured, skipped. */
	cfg.endpoint[SCAN_CLAMD] = "";
	ck_assert(scanners_configure(sc, &cfg, &why));
	runs[0] = (run){sc, &f.m, 200, {{0}}};
	run_clamd(&runs[0]);
	ck_assert_int_eq(runs[0].res[SCAN_CLAMD].status, SCAN_SKIPPED);
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&runs[0].res[k]);
	/* A bad endpoint is refused, and changes nothing. */
	cfg.endpoint[SCAN_SPAMD] = "fd:3";
	ck_assert(!scanners_configure(sc, &cfg, &why));
	ck_assert_msg(strstr(strbuf_str(&why), "spamd") != NULL, "%s", strbuf_str(&why));

	silent_close(&f);
	strbuf_free(&why);
}
END_TEST

/*
 * A hung scanner under load: every scan but the first gets its connection
 * late, after waiting for it most of its budget. It still counts against
 * the scanner, since the scanner has answered nothing for a whole budget.
 */
START_TEST(test_scanners_hung_late_slot)
{
	silent f;
	scanners *sc;
	run runs[2];
	pthread_t th[2];

	silent_open(&f, 1);
	sc = f.sc;

	/* The first holds the connection 300 ms; the second waits for it about
	   280 ms of its 500 and holds it for the 220 left: less than half. */
	runs[0] = (run){sc, &f.m, 300, {{0}}};
	pthread_create(&th[0], NULL, run_clamd, &runs[0]);
	usleep(20 * 1000);
	runs[1] = (run){sc, &f.m, 500, {{0}}};
	pthread_create(&th[1], NULL, run_clamd, &runs[1]);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(runs[i].res[SCAN_CLAMD].status, SCAN_TIMEOUT);
		for (int k = 0; k < SCAN_N; k++)
			scan_result_free(&runs[i].res[k]);
	}
	/* The third timeout opens the breaker: the late one counted. */
	runs[0] = (run){sc, &f.m, 200, {{0}}};
	run_clamd(&runs[0]);
	ck_assert_int_eq(runs[0].res[SCAN_CLAMD].status, SCAN_TIMEOUT);
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&runs[0].res[k]);
	runs[0] = (run){sc, &f.m, 200, {{0}}};
	run_clamd(&runs[0]);
	ck_assert_msg(runs[0].res[SCAN_CLAMD].status == SCAN_ERROR &&
	                      strstr(strbuf_str(&runs[0].res[SCAN_CLAMD].why), "suspended"),
	              "the breaker did not open: %s", strbuf_str(&runs[0].res[SCAN_CLAMD].why));
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&runs[0].res[k]);
	silent_close(&f);
}
END_TEST

/*
 * A hung scanner, its one connection held: the scans that wait for it in
 * vain count against it once it has answered nothing for a whole budget of
 * its own, measured from when it was asked while idle, not from its last
 * reply: a scanner idle for an hour is not hung.
 */
START_TEST(test_scanners_hung_waiters)
{
	silent f;
	scan_message quick;
	run holder, waiters[3];
	pthread_t th[4];

	silent_open(&f, 1);
	usleep(1100 * 1000); /* idle longer than the waiters' own budget */
	holder = (run){f.sc, &f.m, 1500, {{0}}};
	pthread_create(&th[3], NULL, run_clamd, &holder);
	usleep(20 * 1000);
	/* Three messages with 200 ms left, whose scanner budget is 1 s: their
	   waits end long before the scanner has been silent for 1 s. */
	quick = f.m;
	quick.budget_ms[SCAN_CLAMD] = 1000;
	for (int i = 0; i < 3; i++) {
		waiters[i] = (run){f.sc, &quick, 200, {{0}}};
		pthread_create(&th[i], NULL, run_clamd, &waiters[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(waiters[i].res[SCAN_CLAMD].status, SCAN_TIMEOUT);
		for (int k = 0; k < SCAN_N; k++)
			scan_result_free(&waiters[i].res[k]);
	}
	/* So the breaker is still closed: the next one waits, too. */
	waiters[0] = (run){f.sc, &quick, 100, {{0}}};
	run_clamd(&waiters[0]);
	ck_assert_msg(strstr(strbuf_str(&waiters[0].res[SCAN_CLAMD].why), "busy") != NULL,
	              "%s", strbuf_str(&waiters[0].res[SCAN_CLAMD].why));
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&waiters[0].res[k]);
	/* Past 1 s of silence three more waits in vain open it. */
	usleep(800 * 1000);
	for (int i = 0; i < 3; i++) {
		waiters[i] = (run){f.sc, &quick, 50, {{0}}};
		run_clamd(&waiters[i]);
		ck_assert_msg(waiters[i].res[SCAN_CLAMD].status == SCAN_TIMEOUT, "%d: %s", i,
		              strbuf_str(&waiters[i].res[SCAN_CLAMD].why));
		for (int k = 0; k < SCAN_N; k++)
			scan_result_free(&waiters[i].res[k]);
	}
	waiters[0] = (run){f.sc, &f.m, 100, {{0}}};
	run_clamd(&waiters[0]);
	ck_assert_msg(waiters[0].res[SCAN_CLAMD].status == SCAN_ERROR &&
	                      strstr(strbuf_str(&waiters[0].res[SCAN_CLAMD].why), "suspended"),
	              "the breaker did not open: %s",
	              strbuf_str(&waiters[0].res[SCAN_CLAMD].why));
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&waiters[0].res[k]);
	pthread_join(th[3], NULL);
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&holder.res[k]);
	silent_close(&f);
}
END_TEST

static Suite *
scan_suite(void)
{
	Suite *s = suite_create("scan");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_clamd_reply, 0, (int)N(ccases));
	tcase_add_loop_test(tc, test_spamd_reply, 0, (int)N(scases));
	tcase_add_test(tc, test_spool);
	tcase_add_test(tc, test_scanners_silent);
	tcase_add_test(tc, test_scanners_hung_late_slot);
	tcase_add_test(tc, test_scanners_hung_waiters);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_in_tmpdir(scan_suite(), "check_scan");
}
