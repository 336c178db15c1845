/*
 * fuzz_bodyscan - libFuzzer target: a body of arbitrary bytes scanned by a
 * fixed pattern set three ways, as one chunk, cut at up to three positions
 * the input chooses, and one byte at a time; the results (the line each
 * pattern first matched, and why the scan ended) must agree, else abort.
 *
 * Input: byte 0 picks the scan limit and whether the body is finished,
 * bytes 1-3 the cuts (scaled to the body), the rest is the body. A small
 * line cap makes long lines come in pieces.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bodyscan.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_CAP 64
#define OVERLAP 16

static const char *const patterns[] = {
        "/lottery/i", "/^$/",         "/a\\x00b/", "/\\bfoo\\b/",
        "/(?<=xy)z/", "/end$/",       "/\\r/",     "/[\\x80-\\xff]{3}/",
        "/^From /",   "/x.{20,40}y/", "/(a|b)+c/", "/^.{64}$/s",
};
#define NPAT (sizeof patterns / sizeof patterns[0])

typedef struct result {
	size_t line[NPAT];
	enum bodyscan_state state;
} result;

static bodyscan_set *set;

static void
scan(const uint8_t *body, size_t len, const size_t *cuts, size_t ncuts, size_t step,
     size_t limit, bool finish, result *r)
{
	bodyscan *bs = bodyscan_start(set, limit, LINE_CAP, OVERLAP);
	size_t off = 0, i, next;

	bodyscan_end_on(bs, 0);
	for (i = 0; i <= ncuts; i++) {
		next = i < ncuts ? cuts[i] : len;
		while (off < next) {
			size_t n = step != 0 && next - off > step ? step : next - off;

			r->state = bodyscan_feed(bs, body + off, n);
			off += n;
		}
	}
	r->state = bodyscan_feed(bs, body + off, 0);
	if (finish)
		r->state = bodyscan_finish(bs);
	for (i = 0; i < NPAT; i++)
		r->line[i] = bodyscan_match_line(bs, i);
	bodyscan_free(bs);
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static void
compare(const char *how, const result *a, const result *b)
{
	size_t i;

	if (a->state != b->state) {
		fprintf(stderr, "%s: state %s, one chunk: %s\n", how,
		        bodyscan_state_name(b->state), bodyscan_state_name(a->state));
		abort();
	}
	for (i = 0; i < NPAT; i++) {
		if (a->line[i] != b->line[i]) {
			fprintf(stderr, "%s: %s at line %zu, one chunk: line %zu\n", how,
			        patterns[i], b->line[i], a->line[i]);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[] = {0, 1, 7, 63, 64, 65, 200, 1000};
	result whole, split, bytes;
	size_t cuts[3], len, limit, i;
	const uint8_t *body;
	bool finish;

	if (set == NULL) {
		strbuf err = STRBUF_INIT;

		if ((set = bodyscan_compile(patterns, NPAT, &err)) == NULL) {
			fprintf(stderr, "%s\n", strbuf_str(&err));
			abort();
		}
		strbuf_free(&err);
	}
	if (size < 4)
		return 0;
	limit = limits[data[0] & 7];
	finish = (data[0] & 8) != 0;
	body = data + 4;
	len = size - 4;
	for (i = 0; i < 3; i++)
		cuts[i] = len * data[1 + i] / 255;
	qsort(cuts, 3, sizeof cuts[0], cmp_size);

	scan(body, len, NULL, 0, 0, limit, finish, &whole);
	scan(body, len, cuts, 3, 0, limit, finish, &split);
	compare("cut in chunks", &whole, &split);
	scan(body, len, NULL, 0, 1, limit, finish, &bytes);
	compare("byte by byte", &whole, &bytes);
	return 0;
}
