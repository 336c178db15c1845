/*
 * fuzz_rspamd - libFuzzer target: what the rspamd client reads from rspamd.
 *
 * The input is the body of an HTTP reply, given to rspamd_reply_parse()
 * as it is. Seeds are replies of rspamd 3.4 itself (clean, GTUBE, the
 * settings id, its error object, a message that hits many rules, the
 * milter flag) and a few hand-made shapes (soft reject with no reject
 * score, rewrite subject).
 *
 * Invariants, else abort: a refusal leaves the reply empty and says why; an
 * accepted reply has an action of lower-case words of at most 31 bytes,
 * finite score, a finite or NAN required score, at most RSPAMD_SYMBOLS_MAX
 * names, each printable ASCII without spaces, at most
 * RSPAMD_SYMBOL_NAME_MAX bytes, strictly sorted, each found by
 * rspamd_reply_has_symbol(); parsing the same bytes again gives the same
 * reply; freeing it leaves it empty.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rspamd.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what)
{
	fprintf(stderr, "%s\n", what);
	abort();
}

static void
check_accepted(const rspamd_reply *r)
{
	size_t n = strlen(r->action);

	if (n == 0 || n >= RSPAMD_ACTION_MAX || r->action[0] == ' ' || r->action[n - 1] == ' ')
		die("bad action length or spaces at its ends");
	for (size_t i = 0; i < n; i++)
		if (!(r->action[i] >= 'a' && r->action[i] <= 'z') && r->action[i] != ' ')
			die("action has a byte other than a-z and space");
	if (!isfinite(r->score) || (!isfinite(r->required) && !isnan(r->required)))
		die("score not finite, or required neither finite nor NAN");
	if (r->nsymbols > RSPAMD_SYMBOLS_MAX || (r->nsymbols > 0 && r->symbols == NULL))
		die("too many symbols, or none stored");
	for (size_t i = 0; i < r->nsymbols; i++) {
		const char *s = r->symbols[i];
		size_t len = strlen(s);

		if (len == 0 || len > RSPAMD_SYMBOL_NAME_MAX)
			die("symbol name length");
		for (size_t j = 0; j < len; j++)
			if (s[j] <= 0x20 || s[j] >= 0x7f)
				die("symbol name byte");
		if (i > 0 && strcmp(r->symbols[i - 1], s) >= 0)
			die("symbols not strictly sorted");
		if (!rspamd_reply_has_symbol(r, s))
			die("rspamd_reply_has_symbol misses a kept name");
	}
}

static bool
same(const rspamd_reply *a, const rspamd_reply *b)
{
	if (strcmp(a->action, b->action) != 0 || a->nsymbols != b->nsymbols ||
	    a->symbols_dropped != b->symbols_dropped)
		return false;
	if (memcmp(&a->score, &b->score, sizeof a->score) != 0 ||
	    memcmp(&a->required, &b->required, sizeof a->required) != 0)
		return false;
	for (size_t i = 0; i < a->nsymbols; i++)
		if (strcmp(a->symbols[i], b->symbols[i]) != 0)
			return false;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	strbuf why = STRBUF_INIT, why2 = STRBUF_INIT;
	rspamd_reply r, again;
	bool ok = rspamd_reply_parse((const char *)data, size, &r, &why);

	if (ok) {
		check_accepted(&r);
		if (!rspamd_reply_parse((const char *)data, size, &again, &why2) || !same(&r, &again))
			die("a second parse differs");
		rspamd_reply_free(&again);
	} else {
		if (why.len == 0)
			die("refused without a reason");
		if (r.symbols != NULL || r.nsymbols != 0 || r.action[0] != '\0')
			die("a refused reply is not empty");
	}
	rspamd_reply_free(&r);
	if (r.symbols != NULL || r.nsymbols != 0)
		die("a freed reply is not empty");
	strbuf_free(&why);
	strbuf_free(&why2);
	return 0;
}
