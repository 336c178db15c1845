/*
 * provider - where the rules' expensive checks get their answers
 *
 * SYNOPSIS
 *	const dns_provider *p = ...;	the daemon's (runtime.h), or a test's fake
 *	provider_call *call = p->start(p->self, q, n, deadline_ms);
 *	if (p->wait(call, i) && q[i].status == DNSBL_LISTED) ...
 *	p->finish(call);
 *
 * DESCRIPTION
 *	An expensive check (one that waits on another process: a DNS
 *	server today; content scanners and a client history next) does not
 *	call that process's client itself. The rules ask a provider for
 *	results, with an absolute deadline (budget_now_ms() clock), and the
 *	provider decides how: from a cache, through a breaker that knows the
 *	other side is down, over connections it keeps. The provider is runtime
 *	state owned by the daemon, not by a config snapshot, so a reload keeps
 *	its cache, its breakers and its connections; see doc/ARCHITECTURE.md.
 *
 *	A provider is a table of functions and the object they work on
 *	(self). A unit test hands the rules an in-process fake behind the same
 *	table and needs no server.
 *
 * DNS PROVIDER
 *	The contract of dnsbl_start(), dnsbl_wait() and dnsbl_finish()
 *	(dnsbl.h): start() sends (or answers from its cache) every query of
 *	q[0..n) at once and returns at once, NULL only when n is 0; q[] stays
 *	put until finish(). wait(call, i) blocks until q[i] is final or the
 *	deadline passed and returns false when q[i] timed out; waiting again
 *	returns the same at once. ready(call, i, until_ms) waits for q[i]
 *	at most until until_ms (absolute; never past the call's deadline; 0:
 *	not at all) and says whether wait(call, i) would now return at once
 *	(q[i] is in, or the deadline passed): a stage that must not block
 *	for long asks it first.
 *	finish() fills in the rest without waiting (CANCELLED before the
 *	deadline, TIMEOUT after) and frees the call; a NULL call is a no-op.
 *	Every started call is finished.
 *
 * CONCURRENCY
 *	Any number of threads call one provider at once. A call has one
 *	owner at a time: the session that started it may wait and finish it
 *	from a later callback on another thread (libmilter hands a session
 *	from worker to worker under its own lock, never two at once).
 */
#ifndef MS_PROVIDER_H
#define MS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "dnsbl.h"
#include "history-record.h"

typedef struct provider_call provider_call; /* opaque, the provider's own */

typedef struct dns_provider {
	const char *name; /* for logs: "dns" */
	void *self;
	provider_call *(*start)(void *self, dnsbl_query *q, size_t n, long long deadline_ms);
	bool (*wait)(provider_call *call, size_t i);
	bool (*ready)(provider_call *call, size_t i, long long until_ms);
	void (*finish)(provider_call *call);
} dns_provider;

/*
 * HISTORY PROVIDER
 *	The client history (history.h): lookup() answers from the cache or
 *	the store by deadline_ms (absolute, budget_now_ms() clock) and never
 *	later; HISTORY_UNAVAILABLE makes the client unknown. note() hands a
 *	transaction's outcome to the write-behind queue and returns at once.
 */
typedef struct history_provider {
	const char *name; /* for logs: "history" */
	void *self;
	enum history_status (*lookup)(void *self, const char *client_addr,
	                              long long deadline_ms, history_record *out);
	void (*note)(void *self, const char *client_addr, const history_delta *d);
} history_provider;

#endif
