/*
 * Tests for the rspamd client.
 *
 * Always: the reply parser on every reply shape rspamd 3.4 gives (captured
 * from it) and on malformed ones, each refusal with its reason; the
 * endpoint syntax; and the client's faults against sockets of our own: a
 * port where nothing listens (an error at once), a listener that never
 * answers (a timeout at the deadline, a cancel within the poll interval),
 * a deadline already past, a spool file shorter than announced.
 *
 * With RSPAMD_ENDPOINT set (tests/rspamd-client.sh starts a private rspamd,
 * tests/rspamd-lib.sh, and sets RSPAMD_ENDPOINT, RSPAMD_SOCK and
 * RSPAMD_PIDS): a clean message, GTUBE, the settings id, the envelope,
 * every endpoint form, a 10 MiB message read from a file, many threads at
 * once, then rspamd stopped (SIGSTOP: timeout, cancel) and killed during a
 * scan and after (an error, at once). The timings are printed for the note.
 */
#include "config.h"

#include "unit.h"
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "rspamd.h"
#include "strbuf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the parser ---- */

#define CLEAN_REPLY                                                                         \
	"{\"is_skipped\":false,\"score\":0.0,\"required_score\":15.0,\"action\":\"no action\"," \
	"\"symbols\":{},\"messages\":{},\"message-id\":\"1@example.org\",\"time_real\":0.074542}"
#define GTUBE_REPLY                                                                          \
	"{\"is_skipped\":true,\"score\":15.0,\"required_score\":15.0,\"action\":\"reject\","    \
	"\"symbols\":{\"GTUBE\":{\"name\":\"GTUBE\",\"score\":0.0,\"metric_score\":0.0}},"    \
	"\"messages\":{\"smtp_message\":\"Gtube pattern\"},\"message-id\":\"undef\","         \
	"\"time_real\":0.000375}"
#define LIGHT_REPLY                                                                          \
	"{\"is_skipped\":false,\"score\":0.0,\"required_score\":null,\"action\":\"no action\"," \
	"\"symbols\":{\"MS_LIGHT\":{\"name\":\"MS_LIGHT\",\"score\":0.0,\"metric_score\":0.0}}," \
	"\"messages\":{},\"message-id\":\"1@example.org\",\"time_real\":0.000405}"

static const struct pcase {
	const char *json;
	const char *action;  /* NULL: refused */
	double score, required; /* NAN: NAN */
	const char *symbols; /* accepted: the names, sorted, joined by ','; refused: the reason */
} pcases[] = {
        {CLEAN_REPLY, "no action", 0, 15, ""},
        {GTUBE_REPLY, "reject", 15, 15, "GTUBE"},
        {LIGHT_REPLY, "no action", 0, NAN, "MS_LIGHT"},
        {"{\"action\":\"soft reject\",\"score\":7,\"symbols\":{\"B\":{},\"A\":1,\"C_2\":[]}}",
         "soft reject", 7, NAN, "A,B,C_2"},
        {"{\"action\":\"add header\",\"score\":-1.5,\"required_score\":15}", "add header", -1.5, 15, ""},
        {" \n{\"action\":\"greylist\",\"score\":4.5,\"required_score\":15.0,\"symbols\":null}\n ",
         "greylist", 4.5, 15, ""},
        /* names not kept: too long, spaces, control and non-ASCII bytes */
        {"{\"action\":\"reject\",\"score\":1,\"symbols\":{\"A B\":1,\"\":1,\"\\u0001\":1,\"\xc3\xa9\":1,"
         "\"OK\":1}}",
         "reject", 1, NAN, "OK"},
        /* rspamd's error replies */
        {"{\"error\":\"invalid command\",\"error_domain\":\"protocol-error\"}", NULL, 0, 0,
         "rspamd answered an error: 'invalid command'"},
        {"{\"error\":42}", NULL, 0, 0, "rspamd answered an error: (not a string)"},
        {"{\"error\":\"it's\\nbad\"}", NULL, 0, 0, "rspamd answered an error: 'it?s?bad'"},
        /* malformed */
        {"", NULL, 0, 0, "rspamd reply refused: not JSON: it ends too soon at byte 0"},
        {"{\"action\":\"reject\"", NULL, 0, 0, "rspamd reply refused: not JSON: it ends too soon at byte 18"},
        {"[1,2]", NULL, 0, 0, "rspamd reply refused: not a JSON object"},
        {"{} x", NULL, 0, 0, "rspamd reply refused: not JSON: unexpected character at byte 3"},
        {"{}{}", NULL, 0, 0, "rspamd reply refused: not JSON: unexpected character at byte 2"},
        {"{\"action\":\"reject\",\"score\":NaN}", NULL, 0, 0,
         "rspamd reply refused: score is not a finite number"},
        {"{\"action\":\"reject\",\"score\":-Infinity}", NULL, 0, 0,
         "rspamd reply refused: score is not a finite number"},
        {"{\"action\":\"\xff\",\"score\":1}", NULL, 0, 0, "rspamd reply refused: not JSON: "},
        {"{}", NULL, 0, 0, "rspamd reply refused: action is missing or not a string"},
        {"{\"action\":1,\"score\":1}", NULL, 0, 0, "rspamd reply refused: action is missing or not a string"},
        {"{\"action\":\"\",\"score\":1}", NULL, 0, 0, "rspamd reply refused: action is empty or longer than 31 bytes"},
        {"{\"action\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"score\":1}", NULL, 0, 0,
         "rspamd reply refused: action is empty or longer than 31 bytes"},
        {"{\"action\":\"Reject\",\"score\":1}", NULL, 0, 0,
         "rspamd reply refused: action 'Reject' is not words of lower-case letters"},
        {"{\"action\":\"no  action\",\"score\":1}", NULL, 0, 0,
         "rspamd reply refused: action 'no  action' is not words of lower-case letters"},
        {"{\"action\":\" reject\",\"score\":1}", NULL, 0, 0,
         "rspamd reply refused: action ' reject' is not words of lower-case letters"},
        {"{\"action\":\"reject\\r\\nX: y\",\"score\":1}", NULL, 0, 0,
         "rspamd reply refused: action 'reject??X: y' is not words of lower-case letters"},
        {"{\"action\":\"reject\"}", NULL, 0, 0, "rspamd reply refused: score is missing"},
        {"{\"action\":\"reject\",\"score\":\"15\"}", NULL, 0, 0, "rspamd reply refused: score is not a number"},
        {"{\"action\":\"reject\",\"score\":null}", NULL, 0, 0, "rspamd reply refused: score is not a number"},
        {"{\"action\":\"reject\",\"score\":1e999}", NULL, 0, 0, "rspamd reply refused: score is not a finite number"},
        {"{\"action\":\"reject\",\"score\":1,\"required_score\":true}", NULL, 0, 0,
         "rspamd reply refused: required_score is not a number"},
        {"{\"action\":\"reject\",\"score\":1,\"symbols\":[\"A\"]}", NULL, 0, 0,
         "rspamd reply refused: symbols is not an object"},
        {"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]", NULL, 0, 0, "rspamd reply refused: not JSON: "},
};

static void
join_symbols(const rspamd_reply *r, strbuf *out)
{
	for (size_t i = 0; i < r->nsymbols; i++) {
		if (i > 0)
			strbuf_putc(out, ',');
		strbuf_puts(out, r->symbols[i]);
	}
}

static void
expect_number(double got, double want, const char *what)
{
	if (isnan(want))
		ck_assert_msg(isnan(got), "%s: %g, expected NAN", what, got);
	else
		ck_assert_msg(got == want, "%s: %g, expected %g", what, got, want);
}

START_TEST(test_parse)
{
	const struct pcase *c = &pcases[_i];
	rspamd_reply r;
	strbuf why = STRBUF_INIT, names = STRBUF_INIT;
	bool ok = rspamd_reply_parse(c->json, strlen(c->json), &r, &why);

	if (c->action == NULL) {
		ck_assert_msg(!ok, "accepted: %s", c->json);
		ck_assert_msg(strncmp(strbuf_str(&why), c->symbols, strlen(c->symbols)) == 0,
		              "why '%s', expected '%s...'", strbuf_str(&why), c->symbols);
		ck_assert_ptr_null(r.symbols);
		ck_assert_uint_eq(r.nsymbols, 0);
		ck_assert_str_eq(r.action, "");
	} else {
		ck_assert_msg(ok, "refused %s: %s", c->json, strbuf_str(&why));
		ck_assert_str_eq(r.action, c->action);
		expect_number(r.score, c->score, "score");
		expect_number(r.required, c->required, "required");
		join_symbols(&r, &names);
		ck_assert_str_eq(strbuf_str(&names), c->symbols);
		for (size_t i = 0; i < r.nsymbols; i++)
			ck_assert(rspamd_reply_has_symbol(&r, r.symbols[i]));
		ck_assert(!rspamd_reply_has_symbol(&r, "NOT_THERE"));
	}
	rspamd_reply_free(&r);
	ck_assert_uint_eq(r.nsymbols, 0);
	strbuf_free(&why);
	strbuf_free(&names);
}
END_TEST

/* More symbols than kept, names at and past the length cap, a NUL byte, a reply too long. */
START_TEST(test_parse_bounds)
{
	strbuf j = STRBUF_INIT, why = STRBUF_INIT;
	rspamd_reply r;
	char name[RSPAMD_SYMBOL_NAME_MAX + 2];

	strbuf_puts(&j, "{\"action\":\"reject\",\"score\":1,\"symbols\":{");
	for (int i = 0; i < RSPAMD_SYMBOLS_MAX + 10; i++)
		strbuf_printf(&j, "%s\"S%04d\":{\"score\":1}", i ? "," : "", i);
	memset(name, 'L', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	strbuf_printf(&j, ",\"%s\":1}}", name); /* one byte too long */
	ck_assert_msg(rspamd_reply_parse(j.s, j.len, &r, &why), "%s", strbuf_str(&why));
	ck_assert_uint_eq(r.nsymbols, RSPAMD_SYMBOLS_MAX);
	ck_assert_uint_eq(r.symbols_dropped, 11);
	ck_assert_str_eq(r.symbols[0], "S0000");
	ck_assert(rspamd_reply_has_symbol(&r, "S0255"));
	ck_assert(!rspamd_reply_has_symbol(&r, "S0256"));
	rspamd_reply_free(&r);

	strbuf_reset(&j);
	name[RSPAMD_SYMBOL_NAME_MAX] = '\0'; /* just fits */
	strbuf_printf(&j, "{\"action\":\"reject\",\"score\":1,\"symbols\":{\"%s\":1}}", name);
	ck_assert(rspamd_reply_parse(j.s, j.len, &r, &why));
	ck_assert_uint_eq(r.nsymbols, 1);
	ck_assert_uint_eq(r.symbols_dropped, 0);
	rspamd_reply_free(&r);

	ck_assert(!rspamd_reply_parse("{\"a\":\0}", 7, &r, &why));
	ck_assert_str_eq(strbuf_str(&why), "rspamd reply refused: a NUL byte");
	strbuf_reset(&why);

	strbuf_reset(&j);
	strbuf_puts(&j, "{\"action\":\"reject\",\"score\":1,\"x\":\"");
	while (j.len < RSPAMD_REPLY_MAX)
		strbuf_puts(&j, "xxxxxxxxxxxxxxxx");
	strbuf_puts(&j, "\"}");
	ck_assert(!rspamd_reply_parse(j.s, j.len, &r, &why));
	ck_assert_str_eq(strbuf_str(&why), "rspamd reply refused: longer than 1048576 bytes");
	strbuf_free(&j);
	strbuf_free(&why);
}
END_TEST

/* ---- endpoints ---- */

static const struct ecase {
	const char *endpoint;
	const char *why; /* NULL: accepted; else the start of the reason */
} ecases[] = {
        {"inet:127.0.0.1:11333", NULL},
        {"inet:11333@127.0.0.1", NULL},
        {"inet:11333", NULL},
        {"inet6:11333@::1", NULL},
        {"inet:[::1]:11333", NULL},
        {"unix:/run/rspamd/rspamd.sock", NULL},
        {"/run/rspamd/rspamd.sock", NULL},
        {"http://127.0.0.1:11333", NULL},
        {"http://127.0.0.1:11333/", NULL},
        {"http://[::1]:11333", NULL},
        {"http://localhost:11333", NULL},
        {"http://127.0.0.1", "bad socket '127.0.0.1': "},
        {"http://", "bad socket '': "},
        {"inet:0@127.0.0.1", "bad socket 'inet:0@127.0.0.1': the port must be a number 1..65535"},
        {"fd:3", "rspamd endpoint 'fd:3': not a unix or TCP socket"},
        {"unix:relative", "bad socket 'unix:relative': the path must be absolute"},
        {"inet:11333@no-such-host.invalid", "rspamd endpoint 'inet:11333@no-such-host.invalid': "},
};

START_TEST(test_endpoint)
{
	const struct ecase *c = &ecases[_i];
	strbuf why = STRBUF_INIT;
	rspamd_client *cl = rspamd_client_new(c->endpoint, &why);

	if (c->why == NULL) {
		ck_assert_msg(cl != NULL, "%s refused: %s", c->endpoint, strbuf_str(&why));
	} else {
		ck_assert_msg(cl == NULL, "%s accepted", c->endpoint);
		ck_assert_msg(strncmp(strbuf_str(&why), c->why, strlen(c->why)) == 0,
		              "why '%s', expected '%s...'", strbuf_str(&why), c->why);
	}
	rspamd_client_free(cl);
	strbuf_free(&why);
}
END_TEST

/* ---- faults against sockets of our own ---- */

static const char clean_msg[] = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\r\n"
                                "Message-ID: <1@example.org>\r\n\r\nJust a clean message.\r\n";
static const char gtube_msg[] =
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\n"
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";

/* A TCP socket on 127.0.0.1 and a port of its own, listening or not; the port in *ep. */
static int
own_socket(bool listening, char *ep, size_t epsize)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 64), 0);
	snprintf(ep, epsize, "inet:127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

static rspamd_client *
client(const char *ep)
{
	strbuf why = STRBUF_INIT;
	rspamd_client *c = rspamd_client_new(ep, &why);

	ck_assert_msg(c != NULL, "%s: %s", ep, strbuf_str(&why));
	strbuf_free(&why);
	return c;
}

typedef struct outcome {
	enum rspamd_status st;
	long long ms;
	rspamd_reply r;
	strbuf why;
} outcome;

static void
scan(rspamd_client *c, const rspamd_request *rq, long long budget_ms, const atomic_bool *cancel,
     outcome *o)
{
	long long t0 = budget_now_ms();

	strbuf_init(&o->why);
	o->st = rspamd_scan(c, rq, budget_deadline(t0, budget_ms), cancel, &o->r, &o->why);
	o->ms = budget_now_ms() - t0;
	if (o->st != RSPAMD_OK) {
		ck_assert_ptr_null(o->r.symbols);
		ck_assert_str_eq(o->r.action, "");
		ck_assert_msg(o->why.len > 0, "status %s without a reason", rspamd_status_name(o->st));
	}
}

static void
outcome_free(outcome *o)
{
	rspamd_reply_free(&o->r);
	strbuf_free(&o->why);
}

static void
expect_status(const outcome *o, enum rspamd_status st, const char *why)
{
	ck_assert_msg(o->st == st, "status %s (%s), expected %s", rspamd_status_name(o->st),
	              strbuf_str(&o->why), rspamd_status_name(st));
	if (why != NULL)
		ck_assert_msg(strstr(strbuf_str(&o->why), why) != NULL, "why '%s' lacks '%s'",
		              strbuf_str(&o->why), why);
}

/* How late a timeout may come, and a cancel be seen: loaded CI machines, sanitizers. */
#define LATE_MS 100

START_TEST(test_nothing_listens)
{
	char ep[64];
	int fd = own_socket(false, ep, sizeof ep);
	rspamd_client *c = client(ep);
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	outcome o;

	rq.mem = clean_msg, rq.mem_len = strlen(clean_msg);
	scan(c, &rq, 5000, NULL, &o);
	expect_status(&o, RSPAMD_ERROR, "rspamd: ");
	ck_assert_int_lt(o.ms, LATE_MS);
	outcome_free(&o);
	rspamd_client_free(c);
	close(fd);
}
END_TEST

START_TEST(test_silent_timeout)
{
	char ep[64];
	int fd = own_socket(true, ep, sizeof ep);
	rspamd_client *c = client(ep);
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	outcome o;

	rq.mem = clean_msg, rq.mem_len = strlen(clean_msg);
	scan(c, &rq, 300, NULL, &o);
	expect_status(&o, RSPAMD_TIMEOUT, "no reply within the deadline (300 ms)");
	ck_assert_int_ge(o.ms, 299);
	ck_assert_int_lt(o.ms, 300 + LATE_MS);
	outcome_free(&o);

	scan(c, &rq, 0, NULL, &o); /* no time left: nothing is sent */
	expect_status(&o, RSPAMD_TIMEOUT, "no time left");
	ck_assert_int_lt(o.ms, 5);
	outcome_free(&o);
	rspamd_client_free(c);
	close(fd);
}
END_TEST

typedef struct canceller {
	atomic_bool flag;
	int after_ms;
	pthread_t th;
} canceller;

static void *
cancel_later(void *arg)
{
	canceller *k = arg;

	usleep((useconds_t)k->after_ms * 1000);
	atomic_store(&k->flag, true);
	return NULL;
}

static void
cancel_start(canceller *k, int after_ms)
{
	atomic_init(&k->flag, false);
	k->after_ms = after_ms;
	ck_assert_int_eq(pthread_create(&k->th, NULL, cancel_later, k), 0);
}

START_TEST(test_silent_cancel)
{
	char ep[64];
	int fd = own_socket(true, ep, sizeof ep);
	rspamd_client *c = client(ep);
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	canceller k;
	outcome o;

	rq.mem = clean_msg, rq.mem_len = strlen(clean_msg);
	cancel_start(&k, 100);
	scan(c, &rq, 5000, &k.flag, &o);
	pthread_join(k.th, NULL);
	expect_status(&o, RSPAMD_CANCELLED, "scan cancelled");
	ck_assert_int_ge(o.ms, 99);
	ck_assert_int_lt(o.ms, 100 + RSPAMD_CANCEL_POLL_MS + LATE_MS);
	outcome_free(&o);

	scan(c, &rq, 5000, &k.flag, &o); /* set before: nothing is sent */
	expect_status(&o, RSPAMD_CANCELLED, "before it started");
	outcome_free(&o);
	rspamd_client_free(c);
	close(fd);
}
END_TEST

/* A request that cannot be sent: no message, a spool file shorter than announced. */
START_TEST(test_bad_request)
{
	char ep[64];
	int fd = own_socket(true, ep, sizeof ep);
	rspamd_client *c = client(ep);
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	FILE *f = tmpfile();
	outcome o;

	scan(c, &rq, 1000, NULL, &o);
	expect_status(&o, RSPAMD_ERROR, "no message to scan");
	outcome_free(&o);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(clean_msg, f), 0);
	fflush(f);
	rq.fd = fileno(f);
	rq.fd_len = (long long)strlen(clean_msg) + 100;
	scan(c, &rq, 1000, NULL, &o);
	expect_status(&o, RSPAMD_ERROR, "the message file ended after");
	ck_assert_int_lt(o.ms, LATE_MS);
	outcome_free(&o);
	fclose(f);
	rspamd_client_free(c);
	close(fd);
}
END_TEST

/* ---- against a real rspamd (RSPAMD_ENDPOINT) ---- */

static const char *
live_endpoint(void)
{
	return getenv("RSPAMD_ENDPOINT");
}

static void
live_scan(const char *ep, rspamd_request *rq, const char *msg, long long budget_ms, outcome *o)
{
	rspamd_client *c = client(ep);

	if (msg != NULL)
		rq->mem = msg, rq->mem_len = strlen(msg);
	scan(c, rq, budget_ms, NULL, o);
	rspamd_client_free(c);
	fprintf(stderr, "rspamd scan %s: %s %s %.1f/%.1f in %lld ms\n", ep, rspamd_status_name(o->st),
	        o->r.action, o->r.score, o->r.required, o->ms);
}

START_TEST(test_live_clean)
{
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	outcome o;

	live_scan(live_endpoint(), &rq, clean_msg, 5000, &o);
	expect_status(&o, RSPAMD_OK, NULL);
	ck_assert_str_eq(o.r.action, "no action");
	ck_assert(o.r.score < o.r.required);
	ck_assert(o.r.required == 15.0);
	ck_assert(!rspamd_reply_has_symbol(&o.r, "MS_LIGHT"));
	outcome_free(&o);
}
END_TEST

START_TEST(test_live_gtube)
{
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	outcome o;

	live_scan(live_endpoint(), &rq, gtube_msg, LLONG_MAX, &o); /* no limit */
	expect_status(&o, RSPAMD_OK, NULL);
	ck_assert_str_eq(o.r.action, "reject");
	ck_assert(o.r.score >= o.r.required);
	ck_assert(rspamd_reply_has_symbol(&o.r, "GTUBE"));
	outcome_free(&o);
}
END_TEST

/* The whole envelope, the settings id among it; strange values are sent, not refused. */
START_TEST(test_live_envelope)
{
	static const char *const rcpt[] = {"b@example.org", "c@example.org", "d\r\nX-Evil: 1@example.org"};
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	outcome o;

	rq.ip = "192.0.2.1", rq.helo = "mx\x01.example.org", rq.from = "";
	rq.rcpt = rcpt, rq.nrcpt = N(rcpt);
	rq.queue_id = "4ZQ1x2y3z", rq.user = "alice", rq.hostname = "mx.example.org";
	rq.settings_id = "milter-stress-light";
	live_scan(live_endpoint(), &rq, clean_msg, 5000, &o);
	expect_status(&o, RSPAMD_OK, NULL);
	ck_assert_str_eq(o.r.action, "no action");
	ck_assert(rspamd_reply_has_symbol(&o.r, "MS_LIGHT"));
	outcome_free(&o);

	rq.settings_id = "no-such-settings";
	live_scan(live_endpoint(), &rq, clean_msg, 5000, &o);
	expect_status(&o, RSPAMD_OK, NULL);
	ck_assert(!rspamd_reply_has_symbol(&o.r, "MS_LIGHT"));
	outcome_free(&o);
}
END_TEST

/* The same rspamd through the unix socket and as http://. */
START_TEST(test_live_endpoints)
{
	const char *ep = live_endpoint(), *sock = getenv("RSPAMD_SOCK");
	strbuf alt = STRBUF_INIT;
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	outcome o;

	ck_assert_ptr_nonnull(sock);
	strbuf_printf(&alt, "unix:%s", sock);
	live_scan(strbuf_str(&alt), &rq, gtube_msg, 5000, &o);
	expect_status(&o, RSPAMD_OK, NULL);
	ck_assert_str_eq(o.r.action, "reject");
	outcome_free(&o);

	ck_assert(strncmp(ep, "inet:", 5) == 0);
	strbuf_reset(&alt);
	strbuf_printf(&alt, "http://%s/", ep + 5);
	live_scan(strbuf_str(&alt), &rq, gtube_msg, 5000, &o);
	expect_status(&o, RSPAMD_OK, NULL);
	ck_assert_str_eq(o.r.action, "reject");
	outcome_free(&o);
	strbuf_free(&alt);
}
END_TEST

/*
 * 10 MiB read from a file (the spool): GTUBE in a small text part (rspamd
 * looks for it in small parts only), then a 10 MiB attachment; rspamd
 * parses the MIME structure only when the whole message arrived.
 */
START_TEST(test_live_stream_fd)
{
	FILE *f = tmpfile();
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	outcome o;
	const char *gtube = strstr(gtube_msg, "\r\n\r\n") + 4;

	ck_assert_ptr_nonnull(f);
	fprintf(f, "From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\n"
	           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	           "--b\r\nContent-Type: text/plain\r\n\r\n%s--b\r\n"
	           "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
	        gtube);
	while (ftell(f) < 10 * 1024 * 1024)
		fputs("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n", f);
	fputs("--b--\r\n", f);
	fflush(f);
	rq.fd = fileno(f), rq.fd_len = ftell(f);
	fseek(f, 12345, SEEK_SET); /* the offset does not matter: pread() from 0 */
	live_scan(live_endpoint(), &rq, NULL, 30000, &o);
	expect_status(&o, RSPAMD_OK, NULL);
	ck_assert_str_eq(o.r.action, "reject");
	ck_assert(rspamd_reply_has_symbol(&o.r, "GTUBE"));
	outcome_free(&o);
	fclose(f);
}
END_TEST

#define THREADS 24
#define SCANS_PER_THREAD 10

typedef struct worker {
	rspamd_client *c;
	int id, wrong;
	pthread_t th;
	strbuf why;
} worker;

static void *
scan_many(void *arg)
{
	worker *w = arg;

	strbuf_init(&w->why);
	for (int i = 0; i < SCANS_PER_THREAD; i++) {
		bool gtube = (w->id + i) % 2 == 0;
		rspamd_request rq = RSPAMD_REQUEST_INIT;
		rspamd_reply r;
		enum rspamd_status st;

		rq.mem = gtube ? gtube_msg : clean_msg;
		rq.mem_len = strlen(rq.mem);
		rq.settings_id = i % 3 == 0 ? "milter-stress-light" : NULL;
		st = rspamd_scan(w->c, &rq, budget_deadline(budget_now_ms(), 20000), NULL, &r, &w->why);
		/* GTUBE ends the scan before the settings apply their symbol. */
		if (st != RSPAMD_OK || strcmp(r.action, gtube ? "reject" : "no action") != 0 ||
		    rspamd_reply_has_symbol(&r, "MS_LIGHT") != (rq.settings_id != NULL && !gtube)) {
			w->wrong++;
			strbuf_printf(&w->why, " [%s %s]", rspamd_status_name(st), r.action);
		}
		rspamd_reply_free(&r);
	}
	return NULL;
}

START_TEST(test_live_threads)
{
	rspamd_client *c = client(live_endpoint());
	worker w[THREADS];
	long long t0 = budget_now_ms();

	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){.c = c, .id = i};
		ck_assert_int_eq(pthread_create(&w[i].th, NULL, scan_many, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].th, NULL);
		ck_assert_msg(w[i].wrong == 0, "thread %d: %d wrong: %s", i, w[i].wrong, strbuf_str(&w[i].why));
		strbuf_free(&w[i].why);
	}
	fprintf(stderr, "rspamd: %d threads x %d scans on one client in %lld ms\n", THREADS,
	        SCANS_PER_THREAD, budget_now_ms() - t0);
	rspamd_client_free(c);
}
END_TEST

/* Every process of the rspamd (RSPAMD_PIDS: the main one first). */
static void
signal_rspamd(int sig, bool main_too)
{
	char *pids = ms_xstrdup(getenv("RSPAMD_PIDS") ? getenv("RSPAMD_PIDS") : "");
	char *save = NULL;
	bool first = true;

	for (char *p = strtok_r(pids, " \n", &save); p != NULL; p = strtok_r(NULL, " \n", &save)) {
		if (main_too || !first)
			kill((pid_t)atoi(p), sig);
		first = false;
	}
	free(pids);
}

START_TEST(test_live_stopped)
{
	rspamd_client *c = client(live_endpoint());
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	canceller k;
	outcome o;

	rq.mem = clean_msg, rq.mem_len = strlen(clean_msg);
	signal_rspamd(SIGSTOP, true);
	scan(c, &rq, 300, NULL, &o);
	fprintf(stderr, "rspamd stopped: %s after %lld ms (deadline 300 ms)\n", rspamd_status_name(o.st), o.ms);
	expect_status(&o, RSPAMD_TIMEOUT, "no reply within the deadline");
	ck_assert_int_ge(o.ms, 299);
	ck_assert_int_lt(o.ms, 300 + LATE_MS);
	outcome_free(&o);

	cancel_start(&k, 100);
	scan(c, &rq, 5000, &k.flag, &o);
	pthread_join(k.th, NULL);
	fprintf(stderr, "rspamd stopped: %s after %lld ms (cancel at 100 ms)\n", rspamd_status_name(o.st), o.ms);
	expect_status(&o, RSPAMD_CANCELLED, NULL);
	ck_assert_int_lt(o.ms, 100 + RSPAMD_CANCEL_POLL_MS + LATE_MS);
	outcome_free(&o);
	signal_rspamd(SIGCONT, true);

	scan(c, &rq, 5000, NULL, &o); /* it answers again */
	expect_status(&o, RSPAMD_OK, NULL);
	outcome_free(&o);
	rspamd_client_free(c);
}
END_TEST

typedef struct killer {
	int after_ms;
	pthread_t th;
} killer;

static void *
kill_later(void *arg)
{
	killer *k = arg;

	usleep((useconds_t)k->after_ms * 1000);
	signal_rspamd(SIGKILL, true);
	return NULL;
}

/* Last: rspamd hung, then killed during the scan, then gone. */
START_TEST(test_live_killed)
{
	rspamd_client *c = client(live_endpoint());
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	killer k = {.after_ms = 200};
	outcome o;

	rq.mem = clean_msg, rq.mem_len = strlen(clean_msg);
	signal_rspamd(SIGSTOP, true);
	ck_assert_int_eq(pthread_create(&k.th, NULL, kill_later, &k), 0);
	scan(c, &rq, 5000, NULL, &o);
	pthread_join(k.th, NULL);
	fprintf(stderr, "rspamd killed 200 ms into a scan: %s after %lld ms: %s\n",
	        rspamd_status_name(o.st), o.ms, strbuf_str(&o.why));
	expect_status(&o, RSPAMD_ERROR, "rspamd: ");
	ck_assert_int_lt(o.ms, 200 + LATE_MS);
	outcome_free(&o);

	scan(c, &rq, 5000, NULL, &o);
	fprintf(stderr, "rspamd gone: %s after %lld ms: %s\n", rspamd_status_name(o.st), o.ms,
	        strbuf_str(&o.why));
	expect_status(&o, RSPAMD_ERROR, "rspamd: ");
	ck_assert_int_lt(o.ms, LATE_MS);
	outcome_free(&o);
	rspamd_client_free(c);
}
END_TEST

static Suite *
rspamd_suite(void)
{
	Suite *s = suite_create("rspamd");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse, 0, N(pcases));
	tcase_add_test(tc, test_parse_bounds);
	tcase_add_loop_test(tc, test_endpoint, 0, N(ecases));
	tcase_add_test(tc, test_nothing_listens);
	tcase_add_test(tc, test_silent_timeout);
	tcase_add_test(tc, test_silent_cancel);
	tcase_add_test(tc, test_bad_request);
	suite_add_tcase(s, tc);
	if (live_endpoint() != NULL) {
		TCase *live = tcase_create("live");

		tcase_set_timeout(live, 60);
		tcase_add_test(live, test_live_clean);
		tcase_add_test(live, test_live_gtube);
		tcase_add_test(live, test_live_envelope);
		tcase_add_test(live, test_live_endpoints);
		tcase_add_test(live, test_live_stream_fd);
		tcase_add_test(live, test_live_threads);
		tcase_add_test(live, test_live_stopped);
		tcase_add_test(live, test_live_killed); /* last: rspamd is gone after it */
		suite_add_tcase(s, live);
	}
	return s;
}

int
main(void)
{
	strbuf why = STRBUF_INIT;
	int rc;

	if (!rspamd_global_init(&why)) {
		fprintf(stderr, "%s\n", strbuf_str(&why));
		return EXIT_FAILURE;
	}
	rc = unit_run(rspamd_suite());
	rspamd_global_cleanup();
	strbuf_free(&why);
	return rc;
}
