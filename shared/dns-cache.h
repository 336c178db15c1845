/*
 * dns-cache - DNS answers kept for their TTL, least recently used out first
 *
 * SYNOPSIS
 *	c = dns_cache_create(10000, 3600);
 *	if (!dns_cache_get(c, DNS_T_A, "2.0.0.127.bl.example", &a)) {
 *		... ask the network, then ...
 *		dns_cache_put(c, DNS_T_A, "2.0.0.127.bl.example", &a);
 *	}
 *	dns_cache_resize(c, 500);		a reload changed dns_cache_size
 *	dns_cache_free(c);
 *
 * DESCRIPTION
 *	Entries are keyed by record type and query name (lower case, as
 *	dnsbl builds it). dns_cache_put() keeps a POSITIVE or NEGATIVE
 *	answer for its ttl, at most max_ttl seconds (a ttl of 0 is not
 *	kept), replacing an entry for the same key; errors and timeouts are
 *	never handed to it. dns_cache_get() copies a live entry into an
 *	answer (its TXT appended to a->txt) and makes it the most recently
 *	used; an expired one is dropped on the way. At most size entries:
 *	past that the least recently used goes. Size 0 keeps nothing.
 *
 *	dns_cache_resize() keeps what fits: shrinking evicts the least
 *	recently used entries down to the new size, growing rehashes; no
 *	entry loses its expiry.
 *
 * CONCURRENCY
 *	Any thread, any number at once: one mutex per cache, held for one
 *	map operation (never across I/O or an allocation of an entry).
 *	dns_cache_create() and dns_cache_free() run once no other call on the
 *	cache can.
 */
#ifndef MS_DNS_CACHE_H
#define MS_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "dns-answer.h"

typedef struct dns_cache dns_cache;

dns_cache *dns_cache_create(size_t size, unsigned max_ttl);
void dns_cache_free(dns_cache *c);

bool dns_cache_get(dns_cache *c, int type, const char *name, dns_answer *a);
void dns_cache_put(dns_cache *c, int type, const char *name, const dns_answer *a);

void dns_cache_resize(dns_cache *c, size_t size);
size_t dns_cache_count(dns_cache *c); /* entries now, expired ones included */

#endif
