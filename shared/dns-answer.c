/* dns-answer - DNS replies, parsed from the wire; see dns-answer.h. */
#include "config.h"

#include "dns-answer.h"

#include <string.h>

#include <ares.h>

#include "names.h"

void
dns_answer_init(dns_answer *a)
{
	memset(a, 0, sizeof *a);
	a->outcome = DNS_ERROR;
	strbuf_init(&a->txt);
}

void
dns_answer_free(dns_answer *a)
{
	strbuf_free(&a->txt);
}

static unsigned
get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* RFC 2181 8: a TTL with the top bit set is 0. */
static unsigned
ttl_value(uint32_t t)
{
	return t > 0x7fffffffU ? 0 : (unsigned)t;
}

static bool
skip_name(const unsigned char *b, size_t len, size_t *off)
{
	while (*off < len) {
		unsigned c = b[*off];

		if (c == 0) {
			*off += 1;
			return true;
		}
		if ((c & 0xc0) == 0xc0) {
			*off += 2;
			return *off <= len;
		}
		if (c & 0xc0)
			return false;
		*off += 1 + c;
	}
	return false;
}

static void
append_txt_rdata(strbuf *txt, const unsigned char *p, size_t n)
{
	if (txt->len > 0 && txt->len < DNSBL_TXT_MAX)
		strbuf_puts(txt, "; ");
	for (size_t i = 0; i < n;) {
		size_t sl = p[i++];

		for (size_t j = 0; j < sl && i < n; j++, i++) {
			unsigned char c = p[i];

			if (txt->len >= DNSBL_TXT_MAX)
				return;
			strbuf_putc(txt, c >= 0x20 && c < 0x7f ? (char)c : '?');
		}
	}
}

/*
 * Walks the answer section for records of the asked type and the authority
 * section for an SOA (the negative TTL). False on a malformed message.
 */
static bool
parse_reply(const unsigned char *b, size_t len, int type, dns_answer *a, bool *have_soa,
            unsigned *soa_ttl)
{
	size_t off = 12;
	unsigned qd, an, ns;
	bool have_ttl = false;

	*have_soa = false;
	if (len < 12)
		return false;
	qd = get16(b + 4);
	an = get16(b + 6);
	ns = get16(b + 8);
	for (unsigned i = 0; i < qd; i++) {
		if (!skip_name(b, len, &off) || off + 4 > len)
			return false;
		off += 4;
	}
	for (unsigned i = 0; i < an + ns; i++) {
		unsigned rtype, rclass, rdlen, ttl;

		if (!skip_name(b, len, &off) || off + 10 > len)
			return false;
		rtype = get16(b + off);
		rclass = get16(b + off + 2);
		ttl = ttl_value(names_get32(b + off + 4));
		rdlen = get16(b + off + 8);
		off += 10;
		if (off + rdlen > len)
			return false;
		if (rclass != DNS_C_IN) {
			off += rdlen;
			continue;
		}
		if (i < an && (int)rtype == type) {
			if (type == DNS_T_A && rdlen == 4 && a->naddr < DNSBL_MAX_ADDR)
				memcpy(a->addr[a->naddr++], b + off, 4);
			else if (type == DNS_T_TXT)
				append_txt_rdata(&a->txt, b + off, rdlen);
			if (!have_ttl || ttl < a->ttl)
				a->ttl = ttl;
			have_ttl = true;
		} else if (i >= an && rtype == DNS_T_SOA) {
			size_t r = off, end = off + rdlen;

			if (skip_name(b, end, &r) && skip_name(b, end, &r) &&
			    r + 20 <= end) {
				unsigned minimum = ttl_value(names_get32(b + r + 16));

				*soa_ttl = minimum < ttl ? minimum : ttl;
				*have_soa = true;
			}
		}
		off += rdlen;
	}
	if (type == DNS_T_A && a->naddr == 0)
		return true; /* e.g. only a CNAME: the caller makes it negative */
	if (type == DNS_T_TXT && !have_ttl)
		return true;
	a->outcome = DNS_POSITIVE;
	return true;
}

void
dns_answer_classify(int status, const unsigned char *abuf, int alen, int type,
                    unsigned neg_ttl, dns_answer *a)
{
	bool have_soa = false;
	unsigned soa_ttl = 0;

	a->ares_status = status;
	switch (status) {
	case ARES_SUCCESS:
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		a->outcome = DNS_NEGATIVE;
		if (abuf == NULL || alen < 0 ||
		    !parse_reply(abuf, (size_t)alen, type, a, &have_soa, &soa_ttl)) {
			a->outcome = DNS_ERROR;
			a->ares_status = ARES_EBADRESP;
			return;
		}
		if (a->outcome == DNS_NEGATIVE) {
			a->naddr = 0;
			strbuf_reset(&a->txt);
			a->ttl = have_soa ? soa_ttl : neg_ttl;
		}
		return;
	case ARES_ETIMEOUT:
		a->outcome = DNS_TIMEOUT;
		return;
	default:
		a->outcome = DNS_ERROR;
		return;
	}
}
