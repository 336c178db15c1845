/*
 * bodyscan - regexes over a message body that arrives in chunks
 *
 * SEMANTICS
 *	Like Postfix's body_checks, matching is per line: every body line,
 *	without its line end, is matched against every pattern that has not
 *	matched yet. A line ends at LF; a CR right before the LF belongs to
 *	the line end (CRLF and bare LF both work; a lone CR is a byte of the
 *	line). Chunks may split a body anywhere, CRLF included: the scanner
 *	keeps the partial last line and the result never depends on where
 *	the chunks were cut. Bytes are bytes: NULs and invalid UTF-8 are
 *	matched as they are (PCRE2 without UTF, lengths passed, nothing relies
 *	on a NUL terminator).
 *
 *	A pattern "decides" on its first match and is not run again: the
 *	result per pattern is whether it matched and the number of the first
 *	line it matched (1-based), so a caller can apply body_checks' order
 *	(the earliest line wins, ties go to the earlier pattern).
 *
 *	Memory per scanner is bounded by line_cap: a line that fits in one
 *	chunk is matched where it lies, only a line cut by a chunk's end is
 *	copied, into a buffer that grows up to line_cap. A line longer than
 *	line_cap bytes is matched in pieces of at most line_cap bytes, each
 *	piece starting overlap bytes before the end of the previous one. A
 *	match of at most overlap - L bytes is never lost at a piece boundary,
 *	where L is the longest lookbehind of any pattern in the set (1 for
 *	\b; 0 for most patterns); a longer one may be. At a piece boundary
 *	inside a line, ^ does not match at the piece start and $ does not
 *	match at its end (PCRE2's NOTBOL and NOTEOL), and lookbehinds and \b
 *	at the start see the L bytes before it. What looks ahead sees the
 *	piece's end as the end of the subject: \b, \B, \z, \Z and
 *	lookaheads may match there as if the line ended ("MATC\b" matches
 *	a line with "MATCH" across the boundary). Only lines longer than
 *	line_cap have pieces.
 *
 *	Only the first limit bytes of the body are scanned: a match must end
 *	within them, and the line cut by the limit is matched as a piece whose
 *	end is not a line end (NOTEOL; a CR right before the cut is left out:
 *	it may be half of a CRLF).
 *
 *	What a per-line scan cannot find: text that spans a line break (a
 *	phrase folded over two lines, a word split by quoted-printable's soft
 *	line break "=\r\n"), and anything encoded (base64, quoted-printable,
 *	compressed attachments): the scanner sees the raw body, MIME
 *	boundaries and headers of the parts included, as body_checks does
 *	with MIME processing off.
 *
 * INTERFACE
 *	bodyscan_compile() compiles patterns written "/regex/flags" (PCRE2;
 *	flags i caseless, m multiline, s dotall, x extended; everything after
 *	the last / is a flag). On error it returns NULL and appends to err
 *	"body pattern N (/re/): message at offset K of the regex", N counting
 *	from 1.
 *
 *	bodyscan_start() makes a scanner over a set: limit is the number of
 *	body bytes to scan (0: no limit), line_cap and overlap bound long
 *	lines as above (line_cap >= BODYSCAN_MIN_LINE_CAP, 2 * overlap <=
 *	line_cap; anything else is a caller bug and aborts). With an empty
 *	set a scanner is done at once.
 *
 *	bodyscan_end_on() says that a match of this pattern ends the scan.
 *	The other patterns still run over the line it matched in (the piece,
 *	for a long line), so a caller sees every pattern that matched there.
 *
 *	bodyscan_feed() scans one chunk of any size, bodyscan_finish() the
 *	last line when the body does not end with a line end. Both return
 *	BODYSCAN_MORE while more body could change the result and a reason
 *	otherwise; once done, further calls do nothing and return the same
 *	reason. A caller that is done returns SMFIS_SKIP (with SMFIP_SKIP
 *	negotiated) so the MTA stops sending the body.
 *
 *	bodyscan_matched() and bodyscan_match_line() give the result per
 *	pattern, bodyscan_get_stats() what was done (body bytes consumed,
 *	lines, regex calls, matches that hit PCRE2's match limit: those
 *	count as no match).
 *
 * CONCURRENCY
 *	A bodyscan_set is never modified after bodyscan_compile() returns:
 *	any number of threads use it at once without locks, and it must
 *	outlive its scanners. A bodyscan (one per session, with its own
 *	match data) is used by one thread at a time; nothing here locks. A
 *	JIT-compiled match uses about 32 KiB of the caller's stack.
 *
 * DIAGNOSTICS
 *	Allocation failure and a caller's bad arguments abort with a message.
 */
#ifndef MS_BODYSCAN_H
#define MS_BODYSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define BODYSCAN_MIN_LINE_CAP 16

typedef struct bodyscan_set bodyscan_set;
typedef struct bodyscan bodyscan;

enum bodyscan_state {
	BODYSCAN_MORE = 0, /* send more body */
	BODYSCAN_LIMIT,    /* limit bytes scanned */
	BODYSCAN_DECIDED,  /* every pattern matched */
	BODYSCAN_ENDED,    /* a pattern given to bodyscan_end_on() matched */
	BODYSCAN_EOB       /* bodyscan_finish() was called */
};

typedef struct bodyscan_stats {
	size_t bytes;            /* body bytes consumed, at most limit */
	size_t lines;            /* lines ended (the cut or unterminated last one too) */
	size_t matches_run;      /* pcre2_match() calls */
	size_t match_limit_hits; /* matches abandoned at PCRE2's limits */
} bodyscan_stats;

bodyscan_set *bodyscan_compile(const char *const *patterns, size_t n, strbuf *err);
size_t bodyscan_set_size(const bodyscan_set *set);
void bodyscan_set_free(bodyscan_set *set);

bodyscan *bodyscan_start(const bodyscan_set *set, size_t limit, size_t line_cap,
                         size_t overlap);
void bodyscan_end_on(bodyscan *bs, size_t pattern);
enum bodyscan_state bodyscan_feed(bodyscan *bs, const void *chunk, size_t len);
enum bodyscan_state bodyscan_finish(bodyscan *bs);
bool bodyscan_matched(const bodyscan *bs, size_t pattern);
size_t bodyscan_match_line(const bodyscan *bs, size_t pattern); /* 0: none */
void bodyscan_get_stats(const bodyscan *bs, bodyscan_stats *st);
const char *bodyscan_state_name(enum bodyscan_state st);
void bodyscan_free(bodyscan *bs);

#endif
