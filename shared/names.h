/*
 * names - the syntax of the names the core checks: domain names, header
 *	names, and big-endian integers on the wire
 *
 * SYNOPSIS
 *	if (names_domain(s, n)) ...	a domain name DNS takes
 *	if (names_header(s)) ...	a header field name
 *	v = names_get32(p); names_put32(p, v);
 *
 * DESCRIPTION
 *	names_domain(): labels of letters, digits, '-' and '_' (found in
 *	real DNSBL zones), each 1 to 63 bytes, at most 253 bytes in all, no
 *	final dot (strip it first where one is allowed). Anything a client
 *	typed is checked with it before it is looked up.
 *
 *	names_header(): printable ASCII (33..126) without ':', not empty
 *	(RFC 5322 field-name).
 *
 *	names_get32()/names_put32(): 32-bit big-endian (network order)
 *	integers, as the milter protocol and DNS write them.
 *
 * CONCURRENCY
 *	Pure functions: any thread.
 */
#ifndef MS_NAMES_H
#define MS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAMES_DOMAIN_MAX 253 /* a domain name in text, without the final dot */

bool names_domain(const char *s, size_t n);
bool names_header(const char *s);

static inline uint32_t
names_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	       (uint32_t)p[3];
}

static inline void
names_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

#endif
