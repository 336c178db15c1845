/* addr - IP addresses and CIDR blocks; see addr.h. */
#include "config.h"

#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Longest text inet_pton() can accept, with room to spare; longer is not an address. */
#define ADDR_TEXT_MAX 64

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
                                                   0, 0, 0, 0, 0xff, 0xff};

/* inet_pton() on the n bytes at s: it wants a NUL-terminated copy. */
static bool
pton(const char *s, size_t n, addr_ip *out)
{
	char buf[ADDR_TEXT_MAX];

	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, buf, out->b) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, out->b) == 1) {
		out->family = AF_INET6;
		return true;
	}
	return false;
}

static unsigned
max_bits(const addr_ip *ip)
{
	return ip->family == AF_INET ? 32 : 128;
}

/* Do the first bits bits of a and b agree? */
static bool
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

static bool
host_bits_clear(const addr_ip *ip, unsigned bits)
{
	unsigned n = max_bits(ip), i;

	for (i = bits; i < n; i++)
		if (ip->b[i / 8] & (0x80 >> (i % 8)))
			return false;
	return true;
}

static bool
parse_length(const char *s, unsigned limit, unsigned *bits)
{
	unsigned v = 0;
	const char *p;

	if (*s == '\0')
		return false;
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9' || p - s >= 3)
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > limit)
		return false;
	*bits = v;
	return true;
}

static void
clear_host_bits(addr_ip *ip, unsigned bits)
{
	unsigned n = max_bits(ip), i;

	for (i = bits; i < n; i++)
		ip->b[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
}

static void
suggest_network(const addr_cidr *c, strbuf *why)
{
	char text[INET6_ADDRSTRLEN];
	addr_ip net = c->net;

	clear_host_bits(&net, c->bits);
	if (inet_ntop(net.family, net.b, text, sizeof text) != NULL)
		strbuf_printf(why, "; did you mean %s/%u?", text, c->bits);
}

bool
addr_cidr_parse(const char *text, addr_cidr *out, strbuf *why)
{
	const char *slash = strchr(text, '/');
	const char *a = text;
	size_t n = slash != NULL ? (size_t)(slash - text) : strlen(text);

	memset(out, 0, sizeof *out);
	if (n >= 2 && a[0] == '[' && a[n - 1] == ']') {
		a++;
		n -= 2;
	}
	if (!pton(a, n, &out->net)) {
		strbuf_printf(why,
		              "bad address '%s': expected an IPv4 or IPv6 address "
		              "with an optional /length",
		              text);
		return false;
	}
	out->bits = max_bits(&out->net);
	if (slash != NULL && !parse_length(slash + 1, max_bits(&out->net), &out->bits)) {
		strbuf_printf(why, "bad prefix length in '%s': expected 0..%u", text,
		              max_bits(&out->net));
		return false;
	}
	if (!host_bits_clear(&out->net, out->bits)) {
		strbuf_printf(why, "'%s' has bits set after the /%u prefix", text,
		              out->bits);
		suggest_network(out, why);
		return false;
	}
	return true;
}

bool
addr_ip_parse(const char *text, addr_ip *out)
{
	size_t n;

	if (text == NULL)
		return false;
	n = strlen(text);
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		text++;
		n -= 2;
	}
	if (n >= 5 && strncasecmp(text, "IPv6:", 5) == 0) {
		text += 5;
		n -= 5;
	}
	return pton(text, n, out);
}

bool
addr_cidr_match(const addr_cidr *block, const addr_ip *ip)
{
	if (block->net.family == ip->family)
		return prefix_equal(block->net.b, ip->b, block->bits);
	/* Postfix on a dual-stack socket reports IPv4 clients in mapped form. */
	if (block->net.family == AF_INET && ip->family == AF_INET6 &&
	    memcmp(ip->b, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0)
		return prefix_equal(block->net.b, ip->b + 12, block->bits);
	return false;
}

bool
addr_is_literal(const char *text)
{
	addr_ip ip;
	size_t n;

	if (text == NULL)
		return false;
	n = strlen(text);
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		if (n >= 7 && strncasecmp(text + 1, "IPv6:", 5) == 0)
			return pton(text + 6, n - 7, &ip) && ip.family == AF_INET6;
		return pton(text + 1, n - 2, &ip);
	}
	return pton(text, n, &ip);
}
