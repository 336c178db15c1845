/*
 * fuzz_history - libFuzzer target: what a history store hands back.
 *
 * An LMDB value and a Redis hash are input like any other: a damaged file,
 * another program's keys, a server that is not Redis. The first byte picks
 * the decoder: the LMDB record (history_record_decode(): a record it takes
 * must encode back to the same bytes and pass history_known() without
 * harm), the Redis hash (history_record_parse_fields(), the rest split at
 * NUL bytes into field, value, field, ...: a record it takes has its times
 * in order), or a client address with the second byte as the IPv6 prefix
 * (history_key(): a key fits its buffer and is its own key again).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "history-record.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_record(const history_record *r)
{
	history_thresholds t = {3, 10, 30 * 86400};

	if (r->first_seen > r->last_seen || r->window_start > r->last_seen)
		abort();
	(void)history_known(r, r->last_seen + 1, &t);
}

static void
record(const uint8_t *data, size_t size)
{
	history_record r;
	unsigned char back[HISTORY_RECORD_SIZE];
	strbuf why = STRBUF_INIT;

	if (history_record_decode(data, size, &r, &why)) {
		history_record_encode(&r, back);
		if (size != sizeof back || memcmp(back, data, size) != 0)
			abort();
		check_record(&r);
	} else if (why.len == 0) {
		abort(); /* a refusal says why */
	}
	strbuf_free(&why);
}

static void
fields(const uint8_t *data, size_t size)
{
	const char *part[64];
	size_t len[64], n = 0, start = 0;
	history_record r;
	strbuf why = STRBUF_INIT;

	for (size_t i = 0; i <= size && n < 64; i++) {
		if (i == size || data[i] == '\0') {
			part[n] = (const char *)data + start;
			len[n++] = i - start;
			start = i + 1;
		}
	}
	n /= 2;
	{
		const char *f[32], *v[32];
		size_t fl[32], vl[32];

		for (size_t i = 0; i < n; i++) {
			f[i] = part[2 * i], fl[i] = len[2 * i];
			v[i] = part[2 * i + 1], vl[i] = len[2 * i + 1];
		}
		if (history_record_parse_fields(f, fl, v, vl, n, &r, &why))
			check_record(&r);
		else if (why.len == 0)
			abort();
	}
	strbuf_free(&why);
}

static void
key(const uint8_t *data, size_t size)
{
	char k[HISTORY_KEY_MAX], again[HISTORY_KEY_MAX];
	char *text;
	unsigned prefix;

	if (size < 1)
		return;
	prefix = data[0];
	text = strndup((const char *)data + 1, size - 1);
	if (text == NULL)
		return;
	if (history_key(text, prefix, k)) {
		if (strnlen(k, sizeof k) >= sizeof k)
			abort();
		/* An IPv4 key is an address again; an IPv6 one without its /P. */
		char *slash = strchr(k, '/');

		if (slash != NULL)
			*slash = '\0';
		if (!history_key(k, prefix, again))
			abort();
	}
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		record(data + 1, size - 1);
		break;
	case 1:
		fields(data + 1, size - 1);
		break;
	default:
		key(data + 1, size - 1);
		break;
	}
	return 0;
}
