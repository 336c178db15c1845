/*
 * addr - IP addresses and CIDR blocks, for the client check of the rules
 *
 * SYNOPSIS
 *	addr_cidr_parse("[2001:db8::]/32", &block, why)	at load time
 *	addr_ip_parse(client_addr, &ip)			per session
 *	addr_cidr_match(&block, &ip)
 *
 * FORMS
 *	A block is an IPv4 or IPv6 address with an optional /LENGTH; the
 *	address may be in brackets ("[::1]/128", "[192.0.2.1]"), as Postfix
 *	writes address literals. Without /LENGTH it is one host (/32 or
 *	/128). A block with bits set after LENGTH ("192.0.2.1/24") is
 *	refused, as Postfix's cidr tables refuse it: it is almost always a
 *	typo for the network address.
 *
 *	A client address is what the MTA sends: "192.0.2.1", "2001:db8::1";
 *	brackets and an "IPv6:" tag are tolerated. Anything else is not an
 *	address (addr_ip_parse() returns false) and matches no block.
 *
 * MATCHING
 *	An IPv4-mapped IPv6 client (::ffff:192.0.2.1) matches IPv4 blocks as
 *	the IPv4 address it carries, and IPv6 blocks as what it is (so ::/0
 *	matches it too). A plain IPv4 client never matches an IPv6 block.
 *
 * CONCURRENCY
 *	No state: every function may run on any thread.
 */
#ifndef MS_ADDR_H
#define MS_ADDR_H

#include <stdbool.h>

#include "strbuf.h"

typedef struct addr_ip {
	int family;          /* AF_INET or AF_INET6 */
	unsigned char b[16]; /* network order; AF_INET uses the first 4 */
} addr_ip;

typedef struct addr_cidr {
	addr_ip net;
	unsigned bits; /* 0..32 or 0..128 */
} addr_cidr;

/* False with a sentence in why (appended) on bad input. */
bool addr_cidr_parse(const char *text, addr_cidr *out, strbuf *why);

/* A client address; false when text is not one. */
bool addr_ip_parse(const char *text, addr_ip *out);

bool addr_cidr_match(const addr_cidr *block, const addr_ip *ip);

/* An address literal as a HELO name: "[192.0.2.1]", "[IPv6:2001:db8::1]" or a bare
 * address. */
bool addr_is_literal(const char *text);

#endif
