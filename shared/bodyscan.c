/* bodyscan - regexes over a chunked message body, per line; see bodyscan.h. */
#include "config.h"

#include "bodyscan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"

/*
 * A body is the largest input an administrator's regex meets: bound the
 * work of one match as the rule table does for headers.
 */
#define BS_MATCH_LIMIT 1000000

struct bodyscan_set {
	size_t n;
	pcre2_code **re;
	size_t lookbehind; /* the longest of any pattern: context kept at piece starts */
	pcre2_match_context *mctx;
};

struct bodyscan {
	const bodyscan_set *set;
	size_t limit; /* 0: none */
	size_t cap;
	size_t overlap;
	unsigned char *buf; /* the line so far, or its current piece */
	size_t size;        /* allocated, grows up to cap */
	size_t len;
	size_t piece;    /* pieces of the current line already matched */
	bool in_line;    /* bytes of the current line have been taken */
	size_t *line_of; /* per pattern: the first line it matched, 0 none */
	bool *ends;      /* per pattern: a match ends the scan */
	size_t decided;
	bool end_seen;
	pcre2_match_data *md;
	enum bodyscan_state state;
	bodyscan_stats st;
};

/* Compiling. */

static bool
compile_one(bodyscan_set *set, size_t i, const char *pat, strbuf *err)
{
	strbuf why = STRBUF_INIT;
	size_t column = 0;
	uint32_t lb;

	set->re[i] = regex_compile(pat, &why, &column);
	if (set->re[i] == NULL) {
		strbuf_printf(err, "body pattern %zu (%s): %s", i + 1, pat, strbuf_str(&why));
		strbuf_free(&why);
		return false;
	}
	strbuf_free(&why);
	if (pcre2_pattern_info(set->re[i], PCRE2_INFO_MAXLOOKBEHIND, &lb) == 0 &&
	    lb > set->lookbehind)
		set->lookbehind = lb;
	return true;
}

bodyscan_set *
bodyscan_compile(const char *const *patterns, size_t n, strbuf *err)
{
	bodyscan_set *set = ms_xcalloc(1, sizeof *set);
	size_t i;

	set->n = n;
	set->re = ms_xcalloc(n, sizeof *set->re);
	if ((set->mctx = pcre2_match_context_create(NULL)) == NULL)
		ms_panic("out of memory");
	pcre2_set_match_limit(set->mctx, BS_MATCH_LIMIT);
	for (i = 0; i < n; i++) {
		if (!compile_one(set, i, patterns[i], err)) {
			bodyscan_set_free(set);
			return NULL;
		}
	}
	return set;
}

size_t
bodyscan_set_size(const bodyscan_set *set)
{
	return set->n;
}

void
bodyscan_set_free(bodyscan_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		pcre2_code_free(set->re[i]);
	free(set->re);
	pcre2_match_context_free(set->mctx);
	free(set);
}

/* Scanning. */

bodyscan *
bodyscan_start(const bodyscan_set *set, size_t limit, size_t line_cap, size_t overlap)
{
	bodyscan *bs;

	if (line_cap < BODYSCAN_MIN_LINE_CAP || overlap > line_cap / 2)
		ms_panic("line_cap too small or overlap more than half of it");
	bs = ms_xcalloc(1, sizeof *bs);
	bs->set = set;
	bs->limit = limit;
	bs->cap = line_cap;
	bs->overlap = overlap;
	bs->line_of = ms_xcalloc(set->n, sizeof *bs->line_of);
	bs->ends = ms_xcalloc(set->n, sizeof *bs->ends);
	if ((bs->md = pcre2_match_data_create(1, NULL)) == NULL)
		ms_panic("out of memory");
	bs->state = set->n == 0 ? BODYSCAN_DECIDED : BODYSCAN_MORE;
	return bs;
}

void
bodyscan_end_on(bodyscan *bs, size_t pattern)
{
	if (pattern >= bs->set->n)
		ms_panic("no such pattern");
	bs->ends[pattern] = true;
}

/*
 * Run every undecided pattern over one line or piece. start skips the
 * context kept for lookbehinds; opts carry NOTBOL/NOTEOL for pieces.
 */
static void
match_all(bodyscan *bs, const unsigned char *s, size_t n, size_t start, uint32_t opts)
{
	const bodyscan_set *set = bs->set;
	size_t k;
	int rc;

	for (k = 0; k < set->n; k++) {
		if (bs->line_of[k] != 0)
			continue;
		bs->st.matches_run++;
		rc = pcre2_match(set->re[k], s, n, start, opts, bs->md, set->mctx);
		/* The JIT's stack is small and fixed; the interpreter's is on the heap.
		 */
		if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
			rc = pcre2_match(set->re[k], s, n, start, opts | PCRE2_NO_JIT,
			                 bs->md, set->mctx);
		if (rc >= 0) {
			bs->line_of[k] = bs->st.lines + 1;
			bs->decided++;
			if (bs->ends[k])
				bs->end_seen = true;
		} else if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
		           rc == PCRE2_ERROR_HEAPLIMIT ||
		           rc == PCRE2_ERROR_JIT_STACKLIMIT) {
			bs->st.match_limit_hits++;
		}
	}
	if (bs->end_seen)
		bs->state = BODYSCAN_ENDED;
	else if (bs->decided == set->n)
		bs->state = BODYSCAN_DECIDED;
}

/*
 * Match the buffer as a piece of the current line: the whole line when
 * last is true and nothing was matched before, else with the flags that
 * keep a piece boundary from making a false match. n may be less than
 * bs->len (a CR that may start a CRLF is left out).
 */
static void
match_piece(bodyscan *bs, size_t n, bool last)
{
	uint32_t opts = 0;
	size_t start = 0;

	if (bs->piece > 0) {
		opts |= PCRE2_NOTBOL;
		start = bs->set->lookbehind < bs->overlap ? bs->set->lookbehind
		                                          : bs->overlap;
		if (start > n)
			start = n;
	}
	if (!last)
		opts |= PCRE2_NOTEOL;
	match_all(bs, bs->buf, n, start, opts);
	bs->piece++;
}

/* The buffer is full and the line goes on: match it, keep the overlap. */
static void
flush_piece(bodyscan *bs)
{
	match_piece(bs, bs->len, false);
	memmove(bs->buf, bs->buf + bs->len - bs->overlap, bs->overlap);
	bs->len = bs->overlap;
}

/*
 * Most lines never reach the buffer, and a line cut by a chunk's end is
 * usually short: grow it as needed instead of holding line_cap per session.
 */
static void
reserve(bodyscan *bs, size_t need)
{
	size_t size = bs->size != 0 ? bs->size : 256;

	if (need <= bs->size)
		return;
	if (size > bs->cap)
		size = bs->cap;
	while (size < need)
		size = size > bs->cap / 2 ? bs->cap : size * 2;
	bs->buf = ms_xrealloc(bs->buf, size);
	bs->size = size;
}

static void
append(bodyscan *bs, const unsigned char *p, size_t n)
{
	size_t room;

	if (n > 0)
		bs->in_line = true;
	while (n > 0 && bs->state == BODYSCAN_MORE) {
		if (bs->len == bs->cap) {
			flush_piece(bs);
			continue;
		}
		room = bs->cap - bs->len;
		if (room > n)
			room = n;
		reserve(bs, bs->len + room);
		memcpy(bs->buf + bs->len, p, room);
		bs->len += room;
		p += room;
		n -= room;
	}
}

static void
next_line(bodyscan *bs)
{
	bs->st.lines++;
	bs->len = 0;
	bs->piece = 0;
	bs->in_line = false;
}

/* An LF ended the buffered line; a CR before it is part of the line end. */
static void
end_line(bodyscan *bs)
{
	size_t n = bs->len;

	if (n > 0 && bs->buf[n - 1] == '\r')
		n--;
	match_piece(bs, n, true);
	next_line(bs);
}

enum bodyscan_state
bodyscan_feed(bodyscan *bs, const void *chunk, size_t len)
{
	const unsigned char *p = chunk, *end, *nl;
	size_t n;

	if (bs->state != BODYSCAN_MORE)
		return bs->state;
	if (bs->limit != 0 && len > bs->limit - bs->st.bytes)
		len = bs->limit - bs->st.bytes;
	bs->st.bytes += len;
	end = p + len;
	while (p < end && bs->state == BODYSCAN_MORE) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		/* The common case, a whole short line in the chunk, is not copied. */
		if (nl != NULL && !bs->in_line && n <= bs->cap) {
			match_all(bs, p, n > 0 && p[n - 1] == '\r' ? n - 1 : n, 0, 0);
			next_line(bs);
		} else {
			append(bs, p, n);
			if (nl != NULL && bs->state == BODYSCAN_MORE)
				end_line(bs);
		}
		p += n + (nl != NULL);
	}
	if (bs->state == BODYSCAN_MORE && bs->limit != 0 && bs->st.bytes == bs->limit) {
		if (bs->in_line) {
			n = bs->len;
			if (n > 0 && bs->buf[n - 1] == '\r')
				n--;
			match_piece(bs, n, false);
			bs->st.lines++;
		}
		if (bs->state == BODYSCAN_MORE)
			bs->state = BODYSCAN_LIMIT;
	}
	return bs->state;
}

enum bodyscan_state
bodyscan_finish(bodyscan *bs)
{
	if (bs->state != BODYSCAN_MORE)
		return bs->state;
	/* The body's last line without a line end: a CR there is only a byte. */
	if (bs->in_line) {
		match_piece(bs, bs->len, true);
		bs->st.lines++;
	}
	if (bs->state == BODYSCAN_MORE)
		bs->state = BODYSCAN_EOB;
	return bs->state;
}

bool
bodyscan_matched(const bodyscan *bs, size_t pattern)
{
	return bodyscan_match_line(bs, pattern) != 0;
}

size_t
bodyscan_match_line(const bodyscan *bs, size_t pattern)
{
	if (pattern >= bs->set->n)
		ms_panic("no such pattern");
	return bs->line_of[pattern];
}

void
bodyscan_get_stats(const bodyscan *bs, bodyscan_stats *st)
{
	*st = bs->st;
}

const char *
bodyscan_state_name(enum bodyscan_state st)
{
	switch (st) {
	case BODYSCAN_MORE:
		return "more";
	case BODYSCAN_LIMIT:
		return "limit";
	case BODYSCAN_DECIDED:
		return "decided";
	case BODYSCAN_ENDED:
		return "ended";
	case BODYSCAN_EOB:
		return "end of body";
	}
	return "?";
}

void
bodyscan_free(bodyscan *bs)
{
	if (bs == NULL)
		return;
	pcre2_match_data_free(bs->md);
	free(bs->line_of);
	free(bs->ends);
	free(bs->buf);
	free(bs);
}
