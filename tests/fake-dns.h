/*
 * fake-dns - an in-process DNS provider for unit tests: answers from a table
 *
 * SYNOPSIS
 *	static const fake_dns_answer table[] = {
 *		{DNSBL_IP, "127.0.0.2", "zen.test", FAKE_LISTED, "127.0.0.2",
 *		 "listed here", 0},
 *		{DNSBL_IP, NULL, "slow.test", FAKE_TIMEOUT, NULL, NULL, 0},
 *	};
 *	fake_dns *f = fake_dns_create(table, 2);
 *	rules_expensive x = {fake_dns_provider(f), deadline, NULL};
 *	... rules_eval_ex(..., &x, ...) ...
 *	fake_dns_asked(f), fake_dns_open_calls(f)
 *	fake_dns_free(f);
 *
 * DESCRIPTION
 *	The provider.h contract without a network, so that the rules can be
 *	tested on their own. Each query is matched against the table by kind,
 *	subject and zone as the real resolver would look it up: an address
 *	by its reversed form (an IPv4-mapped IPv6 address is its IPv4
 *	address), a domain and a zone in any case, a final dot ignored; a NULL
 *	subject matches any subject of the zone. The first row that matches
 *	answers:
 *
 *	FAKE_LISTED	DNSBL_LISTED with the A records of addr ("127.0.0.2" or
 *			"127.0.0.2,127.0.0.4") that pass the query's filter
 *			(DNSBL_NOT_LISTED when none does) and txt (NULL, or
 *			the query's no_txt: "")
 *	FAKE_NOT_LISTED	DNSBL_NOT_LISTED (also what a query no row matches gets)
 *	FAKE_ERROR	DNSBL_ERROR, err "fake: refused"
 *	FAKE_TIMEOUT	never answers: DNSBL_TIMEOUT at the deadline
 *	FAKE_SKIPPED	DNSBL_SKIPPED, as an open breaker
 *
 *	An answer comes delay_ms after start(); wait() sleeps until it or the
 *	deadline, whichever is first, and an answer later than the deadline is
 *	a timeout. finish() fills in what is answered by then and cancels the
 *	rest (TIMEOUT once the deadline passed), as dnsbl does.
 *
 *	Counters say what was asked: queries started, calls started and not
 *	finished (0 once every call was finished), waits.
 *
 * CONCURRENCY
 *	Any number of threads at once (a mutex around the counters); the
 *	table is the caller's and must outlive the fake.
 */
#ifndef MS_TESTS_FAKE_DNS_H
#define MS_TESTS_FAKE_DNS_H

#include <stddef.h>

#include "dnsbl.h"
#include "provider.h"

enum fake_dns_result {
	FAKE_LISTED,
	FAKE_NOT_LISTED,
	FAKE_ERROR,
	FAKE_TIMEOUT,
	FAKE_SKIPPED
};

typedef struct fake_dns_answer {
	enum dnsbl_kind kind;
	const char *subject; /* NULL: any */
	const char *zone;
	enum fake_dns_result result;
	const char *addr; /* FAKE_LISTED: comma-separated A records */
	const char *txt;  /* FAKE_LISTED: the reason; NULL: none */
	long long delay_ms;
} fake_dns_answer;

typedef struct fake_dns fake_dns;

fake_dns *fake_dns_create(const fake_dns_answer *table, size_t n);
void fake_dns_free(fake_dns *f);
const dns_provider *fake_dns_provider(fake_dns *f);

unsigned fake_dns_asked(fake_dns *f);      /* queries started */
unsigned fake_dns_asked_txt(fake_dns *f);  /* of those, the ones whose listing asks TXT */
unsigned fake_dns_open_calls(fake_dns *f); /* calls started, not finished */
unsigned fake_dns_waits(fake_dns *f);      /* wait() calls */

#endif
