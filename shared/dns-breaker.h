/*
 * dns-breaker - per-zone circuit breakers: stop asking a zone that does
 *	not answer
 *
 * SYNOPSIS
 *	br = dns_breaker_create(5, 60000, on_breaker, arg);
 *	switch (dns_breaker_admit(br, "zen.example.org")) {	before sending
 *	case DNS_ADMIT_SKIP: ... DNSBL_SKIPPED, nothing sent ...
 *	case DNS_ADMIT_PROBE: ... send it, remember it is the probe ...
 *	case DNS_ADMIT_PASS: ... send it ...
 *	}
 *	dns_breaker_report(br, "zen.example.org", DNS_REP_TIMEOUT, probe);
 *	dns_breaker_configure(br, 3, 30000);	a reload changed them
 *	dns_breaker_reset(br);			the servers changed
 *
 * DESCRIPTION
 *	threshold consecutive timeouts (DNS_REP_TIMEOUT: queries sent that had
 *	no answer by their deadline, or that no server could be reached for)
 *	suspend a zone for open_ms: dns_breaker_admit() says DNS_ADMIT_SKIP.
 *	After that one query is let through as a probe (DNS_ADMIT_PROBE) while
 *	the others are still skipped; its answer resumes the zone, a timeout
 *	or an error suspends it for another open_ms (not reported again). Only
 *	the probe resumes: the late answer of a query sent before the zone was
 *	suspended does not. Any answer resets the count; a cancelled query
 *	leaves it as it is, and a cancelled probe lets the next query probe.
 *	threshold 0: no breaker, every query passes.
 *
 *	dns_breaker_configure() applies new parameters to every zone at once,
 *	the ones suspended now included (open_ms counts from when a zone was
 *	suspended). dns_breaker_reset() closes every breaker and forgets the
 *	counts: what opened them was other servers' silence.
 *
 *	on_breaker() (may be NULL) is called once when a zone is suspended
 *	and once when it resumes (by its probe, or by dns_breaker_reset()),
 *	on the thread that reported it, with no lock of ours held; it may run
 *	on several threads at once, for different zones.
 *
 * CONCURRENCY
 *	Any thread, any number at once: one mutex, held for a walk of the
 *	zones (a short list: they come from the config) and a few assignments.
 *	dns_breaker_create() and dns_breaker_free() run once no other call on
 *	it can.
 */
#ifndef MS_DNS_BREAKER_H
#define MS_DNS_BREAKER_H

#include <stdbool.h>

#include "dnsbl.h"

typedef struct dns_breaker dns_breaker;

enum dns_admit { DNS_ADMIT_PASS, DNS_ADMIT_PROBE, DNS_ADMIT_SKIP };
enum dns_report { DNS_REP_ANSWER, DNS_REP_TIMEOUT, DNS_REP_ERROR, DNS_REP_CANCEL };

dns_breaker *dns_breaker_create(unsigned threshold, unsigned open_ms,
                                dnsbl_breaker_fn on_breaker, void *arg);
void dns_breaker_free(dns_breaker *br);

enum dns_admit dns_breaker_admit(dns_breaker *br, const char *zone);
void dns_breaker_report(dns_breaker *br, const char *zone, enum dns_report what,
                        bool probe);

void dns_breaker_configure(dns_breaker *br, unsigned threshold, unsigned open_ms);
void dns_breaker_reset(dns_breaker *br);

unsigned dns_breaker_suspended(dns_breaker *br); /* zones suspended now */

#endif
