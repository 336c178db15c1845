/*
 * fuzz_clamd - libFuzzer target: what the clamd client reads from clamd.
 *
 * The input is a whole reply, given to clamd_reply_parse() as it is. Seeds
 * are clamd's reply forms: OK, FOUND (with and without ExtendedDetectionInfo),
 * the size limit, other ERRORs, UNKNOWN COMMAND, garbage.
 *
 * Invariants, else abort: a refusal says why; an accepted reply that is
 * infected has a signature name with no NUL, CR or LF, and one that is clean
 * has none; parsing the same bytes again gives the same result.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clamd.h"
#include "scan.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what)
{
	fprintf(stderr, "%s\n", what);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	strbuf why = STRBUF_INIT;
	scan_result r, again;
	bool ok, ok2;

	scan_result_init(&r);
	scan_result_init(&again);
	ok = clamd_reply_parse((const char *)data, size, &r, &why);
	ok2 = clamd_reply_parse((const char *)data, size, &again, &again.why);
	if (ok != ok2 || r.infected != again.infected ||
	    strcmp(strbuf_str(&r.virus), strbuf_str(&again.virus)) != 0)
		die("a second parse differs");
	if (!ok && why.len == 0)
		die("refused without a reason");
	if (ok && r.infected &&
	    (r.virus.len == 0 || strlen(r.virus.s) != r.virus.len ||
	     strpbrk(r.virus.s, "\r\n") != NULL))
		die("a bad signature name");
	if (ok && !r.infected && r.virus.len != 0)
		die("clean with a name");
	scan_result_free(&r);
	scan_result_free(&again);
	strbuf_free(&why);
	return 0;
}
