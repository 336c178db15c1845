/* history-record - a client's key and record and their wire forms; see history-record.h. */
#include "config.h"

#include "history-record.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "addr.h"

#define RECORD_VERSION 1

bool
history_key(const char *addr, unsigned v6_prefix, char key[HISTORY_KEY_MAX])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	addr_ip ip;
	char text[INET6_ADDRSTRLEN];
	unsigned i;

	if (addr == NULL || !addr_ip_parse(addr, &ip))
		return false;
	if (ip.family == AF_INET6 && memcmp(ip.b, mapped, sizeof mapped) == 0) {
		memmove(ip.b, ip.b + 12, 4);
		ip.family = AF_INET;
	}
	if (ip.family == AF_INET) {
		if (inet_ntop(AF_INET, ip.b, text, sizeof text) == NULL)
			return false;
		snprintf(key, HISTORY_KEY_MAX, "%s", text);
		return true;
	}
	if (v6_prefix > 128)
		v6_prefix = 128;
	for (i = 0; i < 16; i++) {
		unsigned keep = v6_prefix >= 8 * (i + 1) ? 8 : v6_prefix > 8 * i ? v6_prefix - 8 * i : 0;

		ip.b[i] &= (unsigned char)(0xff00u >> keep);
	}
	if (inet_ntop(AF_INET6, ip.b, text, sizeof text) == NULL)
		return false;
	snprintf(key, HISTORY_KEY_MAX, "%s/%u", text, v6_prefix);
	return true;
}

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void
history_record_encode(const history_record *r, unsigned char out[HISTORY_RECORD_SIZE])
{
	out[0] = RECORD_VERSION;
	put64(out + 1, r->accepted);
	put64(out + 9, r->refused);
	put64(out + 17, r->first_seen);
	put64(out + 25, r->last_seen);
	put64(out + 33, r->window_start);
}

/* Times out of order are a damaged record, not a client. */
static bool
sane(const history_record *r, strbuf *why)
{
	if (r->first_seen > r->last_seen || r->window_start > r->last_seen) {
		strbuf_puts(why, "times out of order (first or window after last seen)");
		return false;
	}
	return true;
}

bool
history_record_decode(const void *bytes, size_t n, history_record *out, strbuf *why)
{
	const unsigned char *p = bytes;

	if (n != HISTORY_RECORD_SIZE) {
		strbuf_printf(why, "record of %zu bytes, expected %d", n, HISTORY_RECORD_SIZE);
		return false;
	}
	if (p[0] != RECORD_VERSION) {
		strbuf_printf(why, "record version %u, expected %d", p[0], RECORD_VERSION);
		return false;
	}
	out->accepted = get64(p + 1);
	out->refused = get64(p + 9);
	out->first_seen = get64(p + 17);
	out->last_seen = get64(p + 25);
	out->window_start = get64(p + 33);
	return sane(out, why);
}

/* A decimal number of at most 19 digits, the whole of s[0..n). */
static bool
decimal(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

bool
history_record_parse_fields(const char *const *fields, const size_t *flen,
                            const char *const *values, const size_t *vlen, size_t n,
                            history_record *out, strbuf *why)
{
	static const char names[] = "arflw";
	uint64_t *slot[] = {&out->accepted, &out->refused, &out->first_seen, &out->last_seen,
	                    &out->window_start};
	bool seen[5] = {false};

	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < n; i++) {
		const char *k;

		if (flen[i] != 1 || fields[i][0] == '\0' ||
		    (k = strchr(names, fields[i][0])) == NULL)
			continue;
		if (!decimal(values[i], vlen[i], slot[k - names])) {
			strbuf_printf(why, "field %c is not a number", fields[i][0]);
			return false;
		}
		seen[k - names] = true;
	}
	if (!seen[0] || !seen[3]) {
		strbuf_puts(why, "fields a (accepted) and l (last seen) are required");
		return false;
	}
	if (out->first_seen == 0)
		out->first_seen = out->last_seen;
	return sane(out, why);
}

void
history_record_add(history_record *r, const history_delta *d, uint64_t now, uint64_t window_s)
{
	if (r->last_seen == 0) {
		r->first_seen = now;
		r->window_start = now;
	}
	if (now > r->window_start && window_s > 0 && now - r->window_start >= window_s) {
		r->accepted /= 2;
		r->refused /= 2;
		r->window_start = now;
	}
	r->accepted += d->accepted;
	r->refused += d->refused;
	if (now > r->last_seen)
		r->last_seen = now;
	if (r->first_seen > r->last_seen)
		r->first_seen = r->last_seen;
	if (r->window_start > r->last_seen)
		r->window_start = r->last_seen;
}

bool
history_known(const history_record *r, uint64_t now, const history_thresholds *t)
{
	uint64_t total = r->accepted + r->refused;

	if (r->last_seen == 0 || (t->window_s > 0 && now > r->last_seen &&
	                          now - r->last_seen > (uint64_t)t->window_s))
		return false;
	if (r->accepted < (uint64_t)t->min_accepted || r->accepted == 0)
		return false;
	/* refused / total <= pct / 100, without division */
	return r->refused * 100 <= (uint64_t)t->max_refused_pct * total;
}

static void
put_time(strbuf *out, const char *name, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strbuf_printf(out, " %s=%llu", name, (unsigned long long)t);
	else
		strbuf_printf(out, " %s=%s", name, buf);
}

void
history_record_format(const history_record *r, strbuf *out)
{
	strbuf_printf(out, "accepted=%llu refused=%llu", (unsigned long long)r->accepted,
	              (unsigned long long)r->refused);
	put_time(out, "first", r->first_seen);
	put_time(out, "last", r->last_seen);
	put_time(out, "window", r->window_start);
}
