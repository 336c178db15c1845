/*
 * Unit tests for the client history and the personality table: keys
 * (IPv6 prefixes), the record's wire forms, known and unknown at the
 * thresholds, the history module over the memory store with a fake clock
 * (write-behind, cache, an absent store), the LMDB store (a restart, a
 * damaged file moved aside, the sweep), and sessions whose personality a
 * personality rule decides: the header and log text, at connect and at MAIL
 * FROM.
 */
#include "config.h"

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "conf.h"
#include "history.h"
#include "personality.h"
#include "runtime.h"
#include "session.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define DAY 86400ULL

/* ---- keys ---- */

static const struct key_case {
	const char *addr;
	unsigned prefix;
	const char *key; /* NULL: no key */
} key_cases[] = {
        {"192.0.2.1", 64, "192.0.2.1"},
        {"[192.0.2.1]", 64, "192.0.2.1"},
        {"::ffff:192.0.2.9", 64, "192.0.2.9"},
        {"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
        {"2001:db8:1:2:ffff::1", 64, "2001:db8:1:2::/64"},
        {"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
        {"2001:db8:1:2:3:4:5:6", 56, "2001:db8:1::/56"},
        {"2001:db8:1:2ff:3:4:5:6", 56, "2001:db8:1:200::/56"},
        {"2001:db8::1", 128, "2001:db8::1/128"},
        {"IPv6:2001:db8::1", 64, "2001:db8::/64"},
        {"unknown", 64, NULL},
        {"", 64, NULL},
        {"192.0.2", 64, NULL},
};

START_TEST(test_key)
{
	const struct key_case *tc = &key_cases[_i];
	char key[HISTORY_KEY_MAX];
	bool ok = history_key(tc->addr, tc->prefix, key);

	ck_assert_msg(ok == (tc->key != NULL), "%s: %d", tc->addr, ok);
	if (ok)
		ck_assert_str_eq(key, tc->key);
}
END_TEST

/* ---- the record ---- */

START_TEST(test_record_codec)
{
	history_record r = {7, 2, 1000, 5000, 3000}, back;
	unsigned char buf[HISTORY_RECORD_SIZE], bad[HISTORY_RECORD_SIZE];
	strbuf why = STRBUF_INIT;

	history_record_encode(&r, buf);
	ck_assert(history_record_decode(buf, sizeof buf, &back, &why));
	ck_assert_mem_eq(&r, &back, sizeof r);
	ck_assert(!history_record_decode(buf, sizeof buf - 1, &back, &why));
	ck_assert_ptr_nonnull(strstr(strbuf_str(&why), "40 bytes"));
	memcpy(bad, buf, sizeof bad);
	bad[0] = 2;
	strbuf_reset(&why);
	ck_assert(!history_record_decode(bad, sizeof bad, &back, &why));
	ck_assert_ptr_nonnull(strstr(strbuf_str(&why), "version 2"));
	r.first_seen = 6000; /* after last seen */
	history_record_encode(&r, bad);
	strbuf_reset(&why);
	ck_assert(!history_record_decode(bad, sizeof bad, &back, &why));
	strbuf_free(&why);
}
END_TEST

static const struct fields_case {
	const char *pairs[12];
	bool ok;
	history_record want;
} fields_cases[] = {
        {{"a", "3", "r", "1", "f", "10", "l", "20", "w", "15"}, true, {3, 1, 10, 20, 15}},
        {{"l", "20", "a", "0", "x", "zz"}, true, {0, 0, 20, 20, 0}},
        {{"a", "3"}, false, {0}},
        {{"a", "3x", "l", "20"}, false, {0}},
        {{"a", "-1", "l", "20"}, false, {0}},
        {{"a", "99999999999999999999", "l", "20"}, false, {0}},
        {{"a", "1", "l", "20", "f", "30"}, false, {0}},
        {{"a", "", "l", "20"}, false, {0}},
};

START_TEST(test_record_fields)
{
	const struct fields_case *tc = &fields_cases[_i];
	const char *f[6], *v[6];
	size_t fl[6], vl[6], n = 0;
	history_record r;
	strbuf why = STRBUF_INIT;

	for (; n < 6 && tc->pairs[2 * n] != NULL; n++) {
		f[n] = tc->pairs[2 * n], fl[n] = strlen(f[n]);
		v[n] = tc->pairs[2 * n + 1], vl[n] = strlen(v[n]);
	}
	ck_assert_int_eq(history_record_parse_fields(f, fl, v, vl, n, &r, &why), tc->ok);
	if (tc->ok)
		ck_assert_mem_eq(&r, &tc->want, sizeof r);
	else
		ck_assert(why.len > 0);
	strbuf_free(&why);
}
END_TEST

START_TEST(test_record_window)
{
	history_record r = {0};
	history_delta ok = {1, 0}, bad = {0, 1};

	history_record_add(&r, &ok, 1000, 10 * DAY);
	ck_assert_uint_eq(r.first_seen, 1000);
	ck_assert_uint_eq(r.window_start, 1000);
	for (int i = 0; i < 9; i++)
		history_record_add(&r, &ok, 2000, 10 * DAY);
	history_record_add(&r, &bad, 3000, 10 * DAY);
	ck_assert_uint_eq(r.accepted, 10);
	ck_assert_uint_eq(r.refused, 1);
	/* A window later the counts are halved before the new one counts. */
	history_record_add(&r, &ok, 1000 + 10 * DAY, 10 * DAY);
	ck_assert_uint_eq(r.accepted, 6);
	ck_assert_uint_eq(r.refused, 0);
	ck_assert_uint_eq(r.window_start, 1000 + 10 * DAY);
	ck_assert_uint_eq(r.first_seen, 1000);
	ck_assert_uint_eq(r.last_seen, 1000 + 10 * DAY);
}
END_TEST

/* ---- known and unknown at the thresholds ---- */

static const struct known_case {
	history_record r;
	uint64_t now;
	bool known;
} known_cases[] = {
        /* N = 3 accepted, M = 10 %, D = 30 days */
        {{3, 0, 100, 200, 100}, 300, true},
        {{2, 0, 100, 200, 100}, 300, false},          /* one short of N */
        {{9, 1, 100, 200, 100}, 300, true},           /* 10 % exactly */
        {{8, 1, 100, 200, 100}, 300, false},          /* 11 % */
        {{3, 0, 100, 200, 100}, 200 + 30 * DAY, true}, /* seen D ago exactly */
        {{3, 0, 100, 200, 100}, 201 + 30 * DAY, false}, /* a second past D */
        {{0, 0, 0, 0, 0}, 300, false},                /* never seen */
        {{1000, 0, 100, 500, 100}, 300, true},        /* a clock that went back */
};

START_TEST(test_known)
{
	const struct known_case *tc = &known_cases[_i];
	history_thresholds t = {3, 10, 30 * DAY};

	ck_assert_msg(history_known(&tc->r, tc->now, &t) == tc->known, "case %d", _i);
}
END_TEST

START_TEST(test_known_zero_percent)
{
	history_thresholds t = {1, 0, 30 * DAY};
	history_record clean = {1, 0, 1, 1, 1}, once = {100, 1, 1, 1, 1};

	ck_assert(history_known(&clean, 2, &t));
	ck_assert(!history_known(&once, 2, &t));
}
END_TEST

/* ---- the history module over the memory store, with a fake clock ---- */

static uint64_t fake_now = 1000000;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static history_config
config_for(const char *spec)
{
	history_config hc = {0};

	hc.spec = spec;
	hc.store.map_size = 8ULL << 20;
	hc.store.max_age = 30 * DAY;
	hc.store.window_s = 30 * DAY;
	hc.store.timeout_ms = 200;
	hc.cache_size = 100;
	hc.cache_ttl_ms = 60000;
	hc.v6_prefix = 64;
	hc.queue_max = 1000;
	hc.now = fake_clock;
	return hc;
}

static long long
soon(void)
{
	return budget_deadline(budget_now_ms(), 5000);
}

START_TEST(test_history_memory)
{
	history *h = history_create();
	history_config hc = config_for("memory:");
	history_delta ok = {1, 0}, bad = {0, 1};
	history_record r;
	history_stats st;

	history_configure(h, &hc);
	/* Unavailable until the thread has opened the store. */
	history_start(h);
	for (int i = 0; i < 500 && history_lookup(h, "192.0.2.9", soon(), &r) != HISTORY_NEW; i++)
		usleep(2000);
	ck_assert_int_eq(history_lookup(h, "192.0.2.1", soon(), &r), HISTORY_NEW);
	for (int i = 0; i < 3; i++)
		history_note(h, "192.0.2.1", &ok);
	history_note(h, "2001:db8:0:1::5", &bad);
	history_note(h, "2001:db8:0:1::6", &ok); /* the same /64 */
	history_note(h, "unknown", &ok);          /* no key: ignored */
	ck_assert(history_flush(h, soon()));
	/* The writes put the new records in the cache. */
	ck_assert_int_eq(history_lookup(h, "192.0.2.1", soon(), &r), HISTORY_FOUND);
	ck_assert_uint_eq(r.accepted, 3);
	ck_assert_uint_eq(r.first_seen, fake_now);
	ck_assert_int_eq(history_lookup(h, "2001:db8:0:1:ffff::1", soon(), &r), HISTORY_FOUND);
	ck_assert_uint_eq(r.accepted, 1);
	ck_assert_uint_eq(r.refused, 1);
	ck_assert_int_eq(history_lookup(h, "not an address", soon(), &r),
	                 HISTORY_UNAVAILABLE);
	history_get_stats(h, &st);
	ck_assert_uint_eq(st.updates, 5);
	ck_assert_uint_ge(st.lookups, 5);
	ck_assert_uint_ge(st.cache_hits, 2);
	ck_assert_uint_ge(st.unavailable, 1);
	ck_assert_uint_eq(st.queue_depth, 0);
	ck_assert_uint_ge(st.queue_peak, 1);
	history_free(h);
}
END_TEST

START_TEST(test_history_off)
{
	history *h = history_create();
	history_config hc = config_for("");
	history_delta ok = {1, 0};
	history_record r;

	ck_assert_int_eq(history_lookup(h, "192.0.2.1", soon(), &r), HISTORY_UNAVAILABLE);
	history_configure(h, &hc);
	history_note(h, "192.0.2.1", &ok);
	ck_assert_int_eq(history_lookup(h, "192.0.2.1", soon(), &r), HISTORY_UNAVAILABLE);
	history_free(h);
	ck_assert_int_eq(history_lookup(NULL, "192.0.2.1", soon(), &r), HISTORY_UNAVAILABLE);
}
END_TEST

/* The queue is bounded: past queue_max the newest are dropped and counted. */
START_TEST(test_history_queue_bound)
{
	history *h = history_create();
	history_config hc = config_for("redis:127.0.0.1:1"); /* nothing listens */
	history_delta ok = {1, 0};
	history_stats st;
	history_record r;
	long long t0;

	hc.queue_max = 10;
	history_configure(h, &hc);
	for (int i = 0; i < 1000; i++)
		history_note(h, "192.0.2.1", &ok);
	history_get_stats(h, &st);
	ck_assert_uint_le(st.queue_peak, 10);
	ck_assert_uint_ge(st.dropped, 990);
	/* A store that is down answers within the budget, unavailable. */
	t0 = budget_now_ms();
	ck_assert_int_eq(history_lookup(h, "192.0.2.2", budget_deadline(t0, 100), &r),
	                 HISTORY_UNAVAILABLE);
	ck_assert_int_le(budget_now_ms() - t0, 150);
	history_free(h);
}
END_TEST

/* ---- the LMDB store ---- */

static char *
lmdb_path(const char *name)
{
	strbuf p = STRBUF_INIT;

	strbuf_printf(&p, "%s/%s", unit_tmpdir(), name);
	return strbuf_detach(&p);
}

static history_store_opts lmdb_opts = {8ULL << 20, 30 * DAY, 30 * DAY, 0, false};

START_TEST(test_lmdb_restart)
{
	char *path = lmdb_path("restart.lmdb");
	strbuf spec = STRBUF_INIT, why = STRBUF_INIT;
	const char *keys[2] = {"192.0.2.1", "2001:db8::/64"};
	history_delta d[2] = {{1, 0}, {0, 1}};
	history_record out[2], r;
	history_store *st;

	strbuf_printf(&spec, "lmdb:%s", path);
	st = history_store_open(spec.s, &lmdb_opts, &why, NULL);
	ck_assert_msg(st != NULL, "%s", strbuf_str(&why));
	ck_assert(st->ops->update(st, keys, d, 2, 5000, &lmdb_opts, out, &why));
	ck_assert(st->ops->update(st, keys, d, 1, 6000, &lmdb_opts, out, &why));
	ck_assert_uint_eq(out[0].accepted, 2);
	history_store_close(st);
	/* A second process may read it: read-only, as the admin tool does. */
	history_store_opts ro = lmdb_opts;
	ro.read_only = true;
	st = history_store_open(spec.s, &ro, &why, NULL);
	ck_assert_msg(st != NULL, "%s", strbuf_str(&why));
	ck_assert_int_eq(st->ops->get(st, "192.0.2.1", &r, &why), 1);
	ck_assert_uint_eq(r.accepted, 2);
	ck_assert_uint_eq(r.first_seen, 5000);
	ck_assert_uint_eq(r.last_seen, 6000);
	ck_assert_int_eq(st->ops->get(st, "2001:db8::/64", &r, &why), 1);
	ck_assert_uint_eq(r.refused, 1);
	ck_assert_int_eq(st->ops->get(st, "192.0.2.99", &r, &why), 0);
	history_store_close(st);
	/* Delete, and the sweep of clients not seen for max_age. */
	st = history_store_open(spec.s, &lmdb_opts, &why, NULL);
	ck_assert_int_eq(st->ops->del(st, "192.0.2.1", &why), 1);
	ck_assert_int_eq(st->ops->del(st, "192.0.2.1", &why), 0);
	ck_assert_int_eq(st->ops->sweep(st, 5000 + 30 * DAY + 1, &lmdb_opts, &why), 1);
	ck_assert_int_eq(st->ops->get(st, "2001:db8::/64", &r, &why), 0);
	history_store_close(st);
	strbuf_free(&spec);
	strbuf_free(&why);
	free(path);
}
END_TEST

START_TEST(test_lmdb_corrupt)
{
	char *path = lmdb_path("corrupt.lmdb");
	strbuf spec = STRBUF_INIT, why = STRBUF_INIT, moved = STRBUF_INIT;
	history_store *st;
	history_record r;
	FILE *fp = fopen(path, "w");
	struct stat sb;

	ck_assert_ptr_nonnull(fp);
	for (int i = 0; i < 1000; i++)
		fputs("this is not an LMDB file\n", fp);
	fclose(fp);
	strbuf_printf(&spec, "lmdb:%s", path);
	/* Read-only (the admin tool) says so and touches nothing. */
	history_store_opts ro = lmdb_opts;
	ro.read_only = true;
	ck_assert_ptr_null(history_store_open(spec.s, &ro, &why, &moved));
	ck_assert_msg(strstr(why.s, path) != NULL, "%s", why.s);
	ck_assert_uint_eq(moved.len, 0);
	/* The daemon moves it aside and starts a fresh one. */
	st = history_store_open(spec.s, &lmdb_opts, &why, &moved);
	ck_assert_msg(st != NULL, "%s", strbuf_str(&why));
	ck_assert_msg(strstr(strbuf_str(&moved), "moved aside to") != NULL, "%s",
	              strbuf_str(&moved));
	ck_assert_msg(strstr(strbuf_str(&moved), ".corrupt.") != NULL, "%s", strbuf_str(&moved));
	ck_assert_int_eq(st->ops->get(st, "192.0.2.1", &r, &why), 0);
	history_store_close(st);
	ck_assert_int_eq(stat(path, &sb), 0);
	strbuf_free(&spec);
	strbuf_free(&why);
	strbuf_free(&moved);
	free(path);
}
END_TEST

/* A damaged record is an error for get() and a fresh start for update(). */
static bool
count_one(void *ctx, const char *key, const history_record *r)
{
	(void)key;
	(void)r;
	++*(size_t *)ctx;
	return true;
}

/*
 * A full file takes every batch: the quarter of its clients not seen for
 * longest goes, even when all were seen within the last seconds (a flood
 * of new addresses), and the newest stay.
 */
START_TEST(test_lmdb_full)
{
	char *path = lmdb_path("full.lmdb");
	strbuf spec = STRBUF_INIT, why = STRBUF_INIT;
	history_store_opts o = lmdb_opts;
	history_store *st;
	history_delta d[100];
	history_record out[100], r;
	char names[100][32];
	const char *keys[100];
	size_t n = 0;

	o.map_size = 1 << 20;
	strbuf_printf(&spec, "lmdb:%s", path);
	st = history_store_open(spec.s, &o, &why, NULL);
	ck_assert_msg(st != NULL, "%s", strbuf_str(&why));
	for (int b = 0; b < 300; b++) { /* 30000 clients, 100 a second */
		for (int i = 0; i < 100; i++) {
			snprintf(names[i], sizeof names[i], "2001:db8::%x:%x", b, i);
			keys[i] = names[i];
			d[i] = (history_delta){1, 0};
		}
		ck_assert_msg(st->ops->update(st, keys, d, 100, 1000 + (uint64_t)b, &o, out, &why),
		              "batch %d: %s", b, strbuf_str(&why));
	}
	ck_assert(st->ops->each(st, count_one, &n, &why));
	ck_assert_msg(n > 3000 && n < 30000, "%zu clients in a full 1 MiB file", n);
	ck_assert_int_eq(st->ops->get(st, "2001:db8::12b:63", &r, &why), 1);
	ck_assert_int_eq(st->ops->get(st, "2001:db8::0:0", &r, &why), 0);
	history_store_close(st);
	strbuf_free(&spec);
	strbuf_free(&why);
	free(path);
}
END_TEST

START_TEST(test_lmdb_bad_record)
{
	char *path = lmdb_path("badrec.lmdb");
	strbuf spec = STRBUF_INIT, why = STRBUF_INIT;
	history_store *st;
	history_record r = {5, 0, 10, 5, 10}; /* first after last: damaged */
	history_record out;
	const char *key = "192.0.2.3";
	history_delta d = {1, 0};

	strbuf_printf(&spec, "lmdb:%s", path);
	st = history_store_open(spec.s, &lmdb_opts, &why, NULL);
	ck_assert(st->ops->put(st, key, &r, &lmdb_opts, &why));
	ck_assert_int_eq(st->ops->get(st, key, &out, &why), -1);
	ck_assert_ptr_nonnull(strstr(why.s, key));
	ck_assert(st->ops->update(st, &key, &d, 1, 100, &lmdb_opts, &out, &why));
	ck_assert_uint_eq(out.accepted, 1);
	ck_assert_uint_eq(out.first_seen, 100);
	history_store_close(st);
	strbuf_free(&spec);
	strbuf_free(&why);
	free(path);
}
END_TEST

/* ---- the header and the log line ---- */

static const struct text_case {
	stress_state effective;
	personality p;
	const char *header, *log;
} text_cases[] = {
        {{true, STRESS_SRC_MACRO}, {{true, STRESS_SRC_MACRO}, NULL, NULL, STAGE_CONNECT},
         "yes (source=macro)", "yes(macro)"},
        {{false, STRESS_SRC_MACRO}, {{false, STRESS_SRC_MACRO}, NULL, NULL, STAGE_CONNECT},
         "no", "no(macro)"},
        {{true, STRESS_SRC_MACRO}, {{true, STRESS_SRC_MACRO}, "unknown", NULL, STAGE_CONNECT},
         "yes (source=macro; client=unknown)", "yes(macro) client=unknown"},
        {{false, STRESS_SRC_MACRO},
         {{true, STRESS_SRC_MACRO}, "known", "known-clients", STAGE_CONNECT},
         "no (source=macro; stress=yes; client=known; rule=known-clients)",
         "no(macro) client=known personality=normal(rule=known-clients,at=connect,stress=yes)"},
        {{false, STRESS_SRC_CONTROL}, {{true, STRESS_SRC_CONTROL}, NULL, "auth", STAGE_MAIL},
         "no (source=control; stress=yes; rule=auth; at=mail)",
         "no(control) personality=normal(rule=auth,at=mail,stress=yes)"},
        {{true, STRESS_SRC_NONE}, {{false, STRESS_SRC_NONE}, "unknown", "strangers", STAGE_CONNECT},
         "yes (source=none; stress=no; client=unknown; rule=strangers)",
         "yes(none) client=unknown personality=stress(rule=strangers,at=connect,stress=no)"},
};

START_TEST(test_text)
{
	const struct text_case *tc = &text_cases[_i];
	strbuf h = STRBUF_INIT, l = STRBUF_INIT;

	personality_format_header(&tc->effective, &tc->p, &h);
	personality_format_log(&tc->effective, &tc->p, &l);
	ck_assert_str_eq(strbuf_str(&h), tc->header);
	ck_assert_str_eq(strbuf_str(&l), tc->log);
	strbuf_free(&h);
	strbuf_free(&l);
}
END_TEST

/* ---- sessions: the personality table over a memory store ---- */

static strbuf logged = STRBUF_INIT;

/* One transaction from addr; the reply where it ended and the X-Stress value. */
static enum session_answer
transaction(conf *c, runtime *rt, unit_macros *m, const char *addr, const char *helo,
            strbuf *header)
{
	session *s = session_create(c, rt, "client.example", addr);
	session_reply r;
	session_changes ch;
	enum session_answer a;

	session_set_macros(s, unit_macro, m);
	session_reply_init(&r);
	session_changes_init(&ch);
	session_on_connect(s, &r);
	if (r.answer == SESSION_CONTINUE)
		session_on_helo(s, helo, &r);
	if (r.answer == SESSION_CONTINUE)
		session_on_mail(s, "<a@example.org>", &r);
	if (r.answer == SESSION_CONTINUE)
		session_on_rcpt(s, "<b@example.net>", &r);
	if (r.answer == SESSION_CONTINUE)
		session_on_data(s, &r);
	if (r.answer == SESSION_CONTINUE)
		session_on_eoh(s, &r);
	if (r.answer == SESSION_CONTINUE)
		session_on_eom(s, &r, &ch);
	a = r.answer;
	strbuf_reset(header);
	for (size_t i = 0; i < ch.n_add; i++)
		if (strcmp(ch.add[i].name, "X-Stress") == 0)
			strbuf_puts(header, ch.add[i].value);
	session_changes_free(&ch);
	session_reply_free(&r);
	session_free(s);
	return a;
}

static const char table[] = "history_store = memory:\n"
                            "history_known_messages = ${stress?{2}:{50}}\n"
                            "connect stress name=known-clients history known personality normal\n"
                            "connect normal name=strangers client 198.51.100.0/24 "
                            "personality stress\n"
                            "mail stress name=auth authenticated personality normal\n"
                            "helo stress name=bare helo ip_literal tempfail 421 4.7.0 Busy\n";

/* runtime's history writes behind: wait for it as a session would not. */
static void
settle(runtime *rt)
{
	history_stats st;

	for (int i = 0; i < 500; i++) {
		runtime_history_stats(rt, &st);
		if (st.queue_depth == 0)
			break;
		usleep(2000);
	}
	usleep(20000); /* the batch in hand */
}

START_TEST(test_session_known)
{
	runtime *rt = runtime_create();
	conf *c = unit_conf_text(table, NULL, NULL);
	strbuf err = STRBUF_INIT, hdr = STRBUF_INIT;
	unit_macros calm = {"no", NULL, NULL}, busy = {"yes", NULL, NULL};

	ck_assert(runtime_configure(rt, c, &err));
	/* A stranger under stress with a bare-IP HELO: the stress rule's 421. */
	ck_assert_int_eq(transaction(c, rt, &busy, "192.0.2.10", "[192.0.2.10]", &hdr),
	                 SESSION_TEMPFAIL);
	ck_assert_int_eq(transaction(c, rt, &busy, "192.0.2.20", "[192.0.2.20]", &hdr),
	                 SESSION_TEMPFAIL);
	/* 192.0.2.20 delivers two messages in calm times... */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(transaction(c, rt, &calm, "192.0.2.20", "mx.example", &hdr),
		                 SESSION_ACCEPT);
	ck_assert_str_eq(hdr.s, "no (source=macro; client=unknown)");
	/* ...which is not enough: one refusal in three is past 10 %. */
	settle(rt);
	ck_assert_int_eq(transaction(c, rt, &busy, "192.0.2.20", "[192.0.2.20]", &hdr),
	                 SESSION_TEMPFAIL);
	/* A clean client with two messages is known under stress (N=2 there). */
	for (int i = 0; i < 2; i++)
		transaction(c, rt, &calm, "192.0.2.30", "mx.example", &hdr);
	settle(rt);
	ck_assert_int_eq(transaction(c, rt, &busy, "192.0.2.30", "[192.0.2.30]", &hdr),
	                 SESSION_ACCEPT);
	ck_assert_str_eq(hdr.s, "no (source=macro; stress=yes; client=known; rule=known-clients)");
	ck_assert_msg(strstr(logged.s,
	                     "stress=no(macro) client=known "
	                     "personality=normal(rule=known-clients,at=connect,stress=yes)") !=
	                      NULL,
	              "%s", logged.s);
	/* Calm, the same client counts as unknown with N=50, and keeps normal. */
	transaction(c, rt, &calm, "192.0.2.30", "mx.example", &hdr);
	ck_assert_str_eq(hdr.s, "no (source=macro; client=unknown)");
	conf_unref(c);
	runtime_unref(rt);
	strbuf_free(&err);
	strbuf_free(&hdr);
}
END_TEST

START_TEST(test_session_switches)
{
	runtime *rt = runtime_create();
	conf *c = unit_conf_text(table, NULL, NULL);
	strbuf err = STRBUF_INIT, hdr = STRBUF_INIT;
	unit_macros calm = {"no", NULL, NULL}, busy_auth = {"yes", "bob", NULL};

	ck_assert(runtime_configure(rt, c, &err));
	/* A calm smtpd, but a client of the listed network gets the stress one. */
	ck_assert_int_eq(transaction(c, rt, &calm, "198.51.100.7", "[198.51.100.7]", &hdr),
	                 SESSION_TEMPFAIL);
	ck_assert_msg(strstr(logged.s, "personality=stress(rule=strangers,at=connect,stress=no)"),
	              "%s", logged.s);
	/* Authenticated at MAIL: the normal personality from there on. */
	ck_assert_int_eq(transaction(c, rt, &busy_auth, "192.0.2.40", "mx.example", &hdr),
	                 SESSION_ACCEPT);
	ck_assert_str_eq(hdr.s, "no (source=macro; stress=yes; client=unknown; rule=auth; at=mail)");
	conf_unref(c);
	/* -o stress=yes pins the stress personality: nothing to switch to. */
	c = unit_conf_text(table, "stress=yes", NULL);
	transaction(c, rt, &busy_auth, "192.0.2.40", "mx.example", &hdr);
	ck_assert_str_eq(hdr.s, "yes (source=forced; client=unknown)");
	conf_unref(c);
	runtime_unref(rt);
	strbuf_free(&err);
	strbuf_free(&hdr);
}
END_TEST

/* Negotiation: a session that may switch asks for the union of both. */
START_TEST(test_negotiation_union)
{
	conf *c = unit_conf_text("connect stress history known personality normal\n"
	               "helo normal helo ip_literal reject\n",
	               NULL, NULL);
	conf *n = unit_conf_text("helo normal helo ip_literal reject\n", NULL, NULL);

	ck_assert_uint_eq(session_protocol(c), session_protocol(n));
	conf_unref(c);
	conf_unref(n);
}
END_TEST

static void
capture(void)
{
	strbuf_reset(&logged);
	unit_log_capture(&logged);
}

static Suite *
history_suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("history");

	tcase_add_checked_fixture(tc, capture, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_key, 0, N(key_cases));
	tcase_add_test(tc, test_record_codec);
	tcase_add_loop_test(tc, test_record_fields, 0, N(fields_cases));
	tcase_add_test(tc, test_record_window);
	tcase_add_loop_test(tc, test_known, 0, N(known_cases));
	tcase_add_test(tc, test_known_zero_percent);
	tcase_add_test(tc, test_history_memory);
	tcase_add_test(tc, test_history_off);
	tcase_add_test(tc, test_history_queue_bound);
	tcase_add_test(tc, test_lmdb_restart);
	tcase_add_test(tc, test_lmdb_corrupt);
	tcase_add_test(tc, test_lmdb_bad_record);
	tcase_add_test(tc, test_lmdb_full);
	tcase_add_loop_test(tc, test_text, 0, N(text_cases));
	tcase_add_test(tc, test_session_known);
	tcase_add_test(tc, test_session_switches);
	tcase_add_test(tc, test_negotiation_union);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_in_tmpdir(history_suite(), "check_history");
}
