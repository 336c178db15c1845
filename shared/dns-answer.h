/*
 * dns-answer - the few things a DNSBL lookup needs from a DNS reply
 *
 * SYNOPSIS
 *	dns_answer a;
 *	dns_answer_init(&a);
 *	dns_answer_classify(ares_status, abuf, alen, DNS_T_A, neg_ttl, &a);
 *	... a.outcome, a.ttl, a.addr[0..naddr), a.txt ...
 *	dns_answer_free(&a);
 *
 * DESCRIPTION
 *	dns_answer_classify() turns what c-ares handed a query callback (its
 *	status and the raw reply) into an outcome. POSITIVE: records of the
 *	asked type (A: up to DNSBL_MAX_ADDR addresses, network order; TXT: the
 *	text, see dnsbl.h), ttl the smallest of theirs. NEGATIVE: NXDOMAIN or
 *	no record of the type (a CNAME alone is no A record); ttl is
 *	min(SOA TTL, SOA minimum) from the authority section (RFC 2308), or
 *	neg_ttl without an SOA. TIMEOUT: c-ares gave up. ERROR: anything else,
 *	a malformed reply included; ares_status says which (ARES_EBADRESP
 *	for a reply that does not parse). A TTL with the top bit set is 0
 *	(RFC 2181 8).
 *
 *	The reply is walked with bounds checks on every read: it is what a
 *	network sent.
 *
 * CONCURRENCY
 *	No state: any thread. A dns_answer belongs to its caller.
 */
#ifndef MS_DNS_ANSWER_H
#define MS_DNS_ANSWER_H

#include "dnsbl.h"
#include "strbuf.h"

/* RR types and class (RFC 1035 3.2.2, 3.2.4). */
#define DNS_T_A 1
#define DNS_T_SOA 6
#define DNS_T_TXT 16
#define DNS_C_IN 1

enum dns_outcome { DNS_POSITIVE, DNS_NEGATIVE, DNS_ERROR, DNS_TIMEOUT };

typedef struct dns_answer {
	enum dns_outcome outcome;
	unsigned ttl; /* seconds, for POSITIVE and NEGATIVE */
	unsigned naddr;
	unsigned char addr[DNSBL_MAX_ADDR][4];
	strbuf txt;
	int ares_status; /* for ERROR */
} dns_answer;

void dns_answer_init(dns_answer *a); /* ERROR, nothing in it */
void dns_answer_free(dns_answer *a);

void dns_answer_classify(int ares_status, const unsigned char *abuf, int alen, int type,
                         unsigned neg_ttl, dns_answer *a);

#endif
