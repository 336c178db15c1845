/*
 * Unit tests for bodyscan: matches inside a chunk and across the MTA's
 * 65535-byte chunks, CRLF cut between chunks, bare LF, long lines in
 * pieces, NULs and invalid UTF-8, the scan limit, several patterns, the
 * end-on pattern, empty and unterminated bodies, flags, bad patterns.
 * Every scan case also runs one byte at a time and as one chunk: the
 * result must not depend on where the body was cut.
 */
#include "config.h"

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bodyscan.h"
#include "strbuf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAXPAT 6
#define MTA_CHUNK 65535

/* 819 lines of 80 bytes: 65520 bytes, 15 short of the first chunk's end. */
static void
filler(strbuf *b)
{
	size_t i;

	for (i = 0; i < 819; i++) {
		strbuf_append(b,
		              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		              "xxxxxxxxxxxxx"
		              "xxxxxxx\r\n",
		              80);
	}
}

/* "lot" ends the first chunk, "tery" starts the second; line 820. */
static void
make_split_match(strbuf *b)
{
	filler(b);
	strbuf_puts(b, "yyyyyyyyyyyylottery winner\r\nafter\r\n");
}

/* Line 820 is "zzzzzzzzzzzend": its CR ends the first chunk, its LF starts the second. */
static void
make_split_crlf(strbuf *b)
{
	filler(b);
	strbuf_puts(b, "zzzzzzzzzzzend\r\nnext\r\n");
}

/* A 166-byte line: with line_cap 64 and overlap 16 its pieces start at 0, 48, 96, 144. */
static void
make_long_line(strbuf *b)
{
	size_t i;

	strbuf_puts(b, "short\r\n");
	for (i = 0; i < 48; i++)
		strbuf_putc(b, 'a');
	strbuf_puts(b, "xyzaaaaaaaaa"); /* "xyz" starts the second piece */
	strbuf_puts(b, "MATCH");        /* bytes 60-64: across the first piece's end */
	for (i = 0; i < 100; i++)
		strbuf_putc(b, 'a');
	strbuf_puts(b, "b\r\nend\r\n");
}

/* 200 KiB of one line, "needle" at its end: pieces of the default 64 KiB cap. */
static void
make_huge_line(strbuf *b)
{
	size_t i;

	for (i = 0; i < 200 * 1024; i++)
		strbuf_putc(b, (char)('a' + i % 7));
	strbuf_puts(b, "needle\r\n");
}

typedef struct scase {
	const char *name;
	const char *pats[MAXPAT]; /* ends at NULL or MAXPAT */
	const char *body;         /* or make */
	size_t blen;
	void (*make)(strbuf *);
	size_t limit;        /* 0: none */
	size_t cap;          /* 0: 64 KiB */
	size_t overlap;      /* 0: 64 */
	size_t end_on;       /* 1 + the index of a pattern whose match ends the scan */
	bool finish;         /* call bodyscan_finish() after the last chunk */
	size_t want[MAXPAT]; /* the line each pattern first matches, 0 none */
	enum bodyscan_state state;
} scase;

#define BODY(s) .body = (s), .blen = sizeof(s) - 1
#define EOB .finish = true, .state = BODYSCAN_EOB

static const scase cases[] = {
        {.name = "one chunk",
         .pats = {"/lottery/", "/absent/"},
         BODY("hello\r\nthe lottery winner\r\nbye\r\n"),
         .want = {2, 0},
         EOB},
        {.name = "match split across two 65535-byte chunks",
         .pats = {"/lottery winner/", "/^after$/", "/absent/"},
         .make = make_split_match,
         .want = {820, 821, 0},
         EOB},
        {.name = "CRLF split across chunks",
         .pats = {"/end$/", "/\\r/", "/^next$/", "/^z+end$/"},
         .make = make_split_crlf,
         .want = {820, 0, 821, 820},
         EOB},
        {.name = "LF-only line ends",
         .pats = {"/lottery$/", "/^b/", "/absent/"},
         BODY("a\nb the lottery\nc\n"),
         .want = {2, 2, 0},
         EOB},
        {.name = "lone CR is a byte of the line",
         .pats = {"/a\\rb/", "/c\\r$/", "/absent/"},
         BODY("a\rb\r\nc\r\r\n"),
         .want = {1, 2, 0},
         EOB},
        /* /MATC\b/ sees the piece end as the line's: the documented limit. */
        {.name = "long line: match across a piece boundary, lookbehind context",
         .pats = {"/aMATCHa/", "/a$/", "/\\bxyz/", "/MATC\\b/", "/a{20}MATCHa{20}/",
                  "/ab$/"},
         .make = make_long_line,
         .cap = 64,
         .overlap = 16,
         .want = {2, 0, 0, 2, 0, 2},
         EOB},
        /* So does the lookahead of /MATC(?!H)/. */
        {.name = "long line: no ^ at a piece start",
         .pats = {"/^xyz/", "/xyza{9}MATCH/", "/MATC(?!H)/", "/^short$/", "/absent/"},
         .make = make_long_line,
         .cap = 64,
         .overlap = 16,
         .want = {0, 2, 2, 1, 0},
         EOB},
        {.name = "long line in the MTA's chunks, default cap",
         .pats = {"/needle$/", "/^abc/", "/gabcdefgab/", "/absent/"},
         .make = make_huge_line,
         .overlap = 256,
         .want = {1, 1, 1, 0},
         EOB},
        {.name = "NULs and invalid UTF-8 around a match",
         .pats = {"/lottery/", "/a\\x00b/", "/^\\x00\\xff/", "/\\x80\\x00$/", "/absent/"},
         BODY("\0\xff\xfe lottery \x80\0\r\na\0b\r\n"),
         .want = {1, 2, 1, 1, 0},
         EOB},
        {.name = "limit: a match after it is not found",
         .pats = {"/first one/", "/lottery/", "/line t/", "/^li/"},
         BODY("first one\r\nline two lottery\r\n"),
         .limit = 13,
         .want = {1, 0, 0, 2},
         .state = BODYSCAN_LIMIT},
        {.name = "limit: a CR before the cut is not matched",
         .pats = {"/one\\r/", "/one$/"},
         BODY("line one\r\nline two\r\n"),
         .limit = 9,
         .want = {0, 0},
         .state = BODYSCAN_LIMIT},
        {.name = "limit: the whole body",
         .pats = {"/lottery/", "/absent/"},
         BODY("line one\r\nline two lottery\r\n"),
         .limit = 28,
         .want = {2, 0},
         .state = BODYSCAN_LIMIT},
        {.name = "limit in the middle of the MTA's second chunk",
         .pats = {"/lottery/", "/^after/"},
         .make = make_split_match,
         .limit = 65537,
         .want = {0, 0},
         .state = BODYSCAN_LIMIT},
        {.name = "several patterns, each reported once, at its first line",
         .pats = {"/lottery/", "/win/", "/absent/"},
         BODY("a lottery\r\nb\r\nlottery again\r\nwin\r\nwin lottery\r\n"),
         .want = {1, 4, 0},
         EOB},
        {.name = "every pattern decided: done before the end",
         .pats = {"/a/", "/b/"},
         BODY("a\r\nb\r\nc\r\nd\r\n"),
         .want = {1, 2},
         .state = BODYSCAN_DECIDED},
        {.name = "a pattern that ends the scan: its line still runs the others",
         .pats = {"/stop/", "/go/", "/later/"},
         BODY("x\r\ngo stop\r\nlater\r\n"),
         .end_on = 1,
         .want = {2, 2, 0},
         .state = BODYSCAN_ENDED},
        {.name = "empty body", .pats = {"/^$/", "/x/"}, BODY(""), .want = {0, 0}, EOB},
        {.name = "empty lines are lines",
         .pats = {"/^$/", "/x/"},
         BODY("a\r\n\r\n"),
         .want = {2, 0},
         EOB},
        {.name = "body without final CRLF",
         .pats = {"/lottery$/", "/absent/"},
         BODY("abc\r\nlast lottery"),
         .want = {2, 0},
         EOB},
        {.name = "body without final CRLF, not finished",
         .pats = {"/lottery$/", "/absent/"},
         BODY("abc\r\nlast lottery"),
         .want = {0, 0},
         .state = BODYSCAN_MORE},
        {.name = "case-insensitive flag, and s and x",
         .pats = {"/LOTTERY/i", "/LOTTERY/", "/win.*ner/s", "/ L o t /x"},
         BODY("The Lottery winner\r\n"),
         .want = {1, 0, 1, 1},
         EOB},
        {.name = "no patterns: done at once",
         BODY("anything\r\n"),
         .state = BODYSCAN_DECIDED},
};

static void
run(const scase *c, const unsigned char *body, size_t blen, size_t chunk, size_t *lines,
    enum bodyscan_state *state)
{
	strbuf err = STRBUF_INIT;
	bodyscan_set *set;
	bodyscan *bs;
	size_t n = 0, off, k;
	enum bodyscan_state st = BODYSCAN_MORE;

	while (n < MAXPAT && c->pats[n] != NULL)
		n++;
	set = bodyscan_compile(c->pats, n, &err);
	ck_assert_msg(set != NULL, "%s: %s", c->name, strbuf_str(&err));
	ck_assert_uint_eq(bodyscan_set_size(set), n);
	bs = bodyscan_start(set, c->limit, c->cap ? c->cap : 65536,
	                    c->overlap ? c->overlap : 64);
	if (c->end_on != 0)
		bodyscan_end_on(bs, c->end_on - 1);
	for (off = 0; off < blen; off += chunk)
		st = bodyscan_feed(bs, body + off,
		                   blen - off < chunk ? blen - off : chunk);
	if (blen == 0)
		st = bodyscan_feed(bs, body, 0);
	if (c->finish)
		st = bodyscan_finish(bs);
	for (k = 0; k < n; k++) {
		lines[k] = bodyscan_match_line(bs, k);
		ck_assert(bodyscan_matched(bs, k) == (lines[k] != 0));
	}
	*state = st;
	bodyscan_free(bs);
	bodyscan_set_free(set);
	strbuf_free(&err);
}

START_TEST(test_scan)
{
	const scase *c = &cases[_i];
	strbuf body = STRBUF_INIT;
	const unsigned char *p;
	size_t blen, k, got[MAXPAT], other[MAXPAT];
	size_t chunks[3];
	enum bodyscan_state st, ost;
	unsigned i;

	if (c->make != NULL) {
		strbuf_init(&body);
		c->make(&body);
		p = (const unsigned char *)body.s;
		blen = body.len;
	} else {
		p = (const unsigned char *)c->body;
		blen = c->blen;
	}
	run(c, p, blen, MTA_CHUNK, got, &st);
	ck_assert_msg(st == c->state, "%s: state %s, want %s", c->name,
	              bodyscan_state_name(st), bodyscan_state_name(c->state));
	for (k = 0; k < MAXPAT && c->pats[k] != NULL; k++)
		ck_assert_msg(got[k] == c->want[k],
		              "%s: pattern %s at line %zu, want %zu", c->name, c->pats[k],
		              got[k], c->want[k]);

	chunks[0] = 1;
	chunks[1] = 7;
	chunks[2] = blen ? blen : 1;
	for (i = 0; i < N(chunks); i++) {
		run(c, p, blen, chunks[i], other, &ost);
		ck_assert_msg(ost == st, "%s: chunks of %zu: state %s", c->name,
		              chunks[i], bodyscan_state_name(ost));
		for (k = 0; k < MAXPAT && c->pats[k] != NULL; k++)
			ck_assert_msg(other[k] == got[k],
			              "%s: chunks of %zu: pattern %s at %zu", c->name,
			              chunks[i], c->pats[k], other[k]);
	}
	strbuf_free(&body);
}
END_TEST

START_TEST(test_stats)
{
	static const char *const pats[] = {"/b/", "/absent/"};
	static const char body[] = "a\r\nb\r\nc\r\na longer line here\r\ntail";
	strbuf err = STRBUF_INIT;
	bodyscan_set *set = bodyscan_compile(pats, N(pats), &err);
	bodyscan *bs = bodyscan_start(set, 0, 16, 4);
	bodyscan_stats st;

	ck_assert_int_eq(bodyscan_feed(bs, body, sizeof body - 1), BODYSCAN_MORE);
	ck_assert_int_eq(bodyscan_finish(bs), BODYSCAN_EOB);
	/* Done is final: more body changes nothing. */
	ck_assert_int_eq(bodyscan_feed(bs, "b\r\n", 3), BODYSCAN_EOB);
	bodyscan_get_stats(bs, &st);
	ck_assert_uint_eq(st.bytes, sizeof body - 1);
	ck_assert_uint_eq(st.lines, 5);
	/* 2 + 2 on lines a and b, then "absent" alone: c, two pieces, tail. */
	ck_assert_uint_eq(st.matches_run, 8);
	ck_assert_uint_eq(st.match_limit_hits, 0);
	ck_assert_uint_eq(bodyscan_match_line(bs, 0), 2);
	bodyscan_free(bs);
	bodyscan_set_free(set);
	strbuf_free(&err);
}
END_TEST

/* Catastrophic backtracking is cut at the match limit and counts as no match. */
START_TEST(test_match_limit)
{
	static const char *const pats[] = {"/(a+)+$/", "/x/"};
	strbuf err = STRBUF_INIT, body = STRBUF_INIT;
	bodyscan_set *set = bodyscan_compile(pats, N(pats), &err);
	bodyscan *bs = bodyscan_start(set, 0, 65536, 64);
	bodyscan_stats st;
	size_t i;

	for (i = 0; i < 40; i++)
		strbuf_putc(&body, 'a');
	strbuf_puts(&body, "b x\r\n");
	ck_assert_int_eq(bodyscan_feed(bs, body.s, body.len), BODYSCAN_MORE);
	bodyscan_get_stats(bs, &st);
	ck_assert_uint_eq(st.match_limit_hits, 1);
	ck_assert(!bodyscan_matched(bs, 0));
	ck_assert(bodyscan_matched(bs, 1));
	bodyscan_free(bs);
	bodyscan_set_free(set);
	strbuf_free(&err);
	strbuf_free(&body);
}
END_TEST

typedef struct ecase {
	const char *pat;
	const char *msg; /* a substring of the error */
} ecase;

static const ecase bad[] = {
        {"lottery", "body pattern 2 (lottery): expected /regex/flags"},
        {"/lottery", "expected /regex/flags"},
        {"", "expected /regex/flags"},
        {"/a(/", "body pattern 2 (/a(/): bad regex /a(/: missing closing parenthesis at offset 2"},
        {"/a/q", "unknown regex flag 'q'"},
        {"/[z-a]/", "range out of order"},
};

START_TEST(test_bad)
{
	const char *pats[3] = {"/ok/", bad[_i].pat, "/also ok/"};
	strbuf err = STRBUF_INIT;

	ck_assert_ptr_null(bodyscan_compile(pats, N(pats), &err));
	ck_assert_msg(strstr(strbuf_str(&err), bad[_i].msg) != NULL, "%s: got \"%s\"",
	              bad[_i].pat, strbuf_str(&err));
	strbuf_free(&err);
}
END_TEST

static Suite *
bodyscan_suite(void)
{
	Suite *s = suite_create("bodyscan");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_scan, 0, N(cases));
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_match_limit);
	tcase_add_loop_test(tc, test_bad, 0, N(bad));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(bodyscan_suite());
}
