/*
 * regex - "/pattern/flags" words, as Postfix's regexp tables write them,
 * compiled with PCRE2
 *
 * Flags: i (caseless), m (multiline), s (dot matches newline), x (extended).
 * Matching is byte-wise (no PCRE2_UTF): input from the network may be any
 * bytes, and byte-wise matching never fails on them. The pattern is
 * JIT-compiled where PCRE2 can; otherwise the interpreter runs.
 *
 * regex_compile() returns NULL on error, with why (a sentence without
 * position) and *column (0-based byte offset in word where the problem is).
 *
 * Concurrency: re-entrant; the compiled code is read-only and may be shared
 * by any number of threads, each with its own match data.
 */
#ifndef MS_REGEX_H
#define MS_REGEX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "strbuf.h"

pcre2_code *regex_compile(const char *word, strbuf *why, size_t *column);

#endif
