/*
 * fuzz_spamd - libFuzzer target: what the spamd client reads from spamd.
 *
 * The input is a whole SPAMC/1.5 reply, given to spamd_reply_parse() as it
 * is. Seeds are spamd 4.0's replies to SYMBOLS (spam, clean, negative
 * score, no rules) and its errors (EX_PROTOCOL, EX_TEMPFAIL).
 *
 * Invariants, else abort: a refusal says why; an accepted reply has finite
 * scores and rule names that are not empty and hold no comma or white
 * space; parsing the same bytes again gives the same result.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spamd.h"
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
	ok = spamd_reply_parse((const char *)data, size, &r, &why);
	ok2 = spamd_reply_parse((const char *)data, size, &again, &again.why);
	if (ok != ok2 || (ok && (r.nsymbols != again.nsymbols || r.spam != again.spam ||
	                         memcmp(&r.score, &again.score, sizeof r.score) != 0)))
		die("a second parse differs");
	if (!ok && why.len == 0)
		die("refused without a reason");
	if (ok && (!isfinite(r.score) || !isfinite(r.required)))
		die("a score that is not finite");
	for (size_t i = 0; ok && i < r.nsymbols; i++)
		if (r.symbols[i][0] == '\0' ||
		    strpbrk(r.symbols[i], ", \t\r\n") != NULL ||
		    strcmp(r.symbols[i], again.symbols[i]) != 0)
			die("a bad rule name");
	scan_result_free(&r);
	scan_result_free(&again);
	strbuf_free(&why);
	return 0;
}
