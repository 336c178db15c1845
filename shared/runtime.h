/*
 * runtime - the state the daemon owns across reloads
 *
 * SYNOPSIS
 *	rt = runtime_create();			at start, once
 *	runtime_configure(rt, c, &err);		with the first snapshot, and
 *						with each one a reload loads
 *	s = session_create(c, rt, name, addr);	a session holds a reference
 *	p = runtime_dns(rt);			NULL: DNS checks are skipped
 *	runtime_dns_stats(rt, &st);		for the statistics line
 *	h = runtime_history(rt);		NULL: no client history
 *	runtime_set_stress(rt, STRESS_FORCE_ON);	the control socket's switch
 *	f = runtime_stress(rt);			read by each new session
 *	runtime_unref(rt);			at stop
 *
 * DESCRIPTION
 *	Configuration is immutable: a reload makes a new snapshot (conf.h).
 *	What the daemon learns while it runs is not configuration, and a
 *	reload must not throw it away: today the DNSBL resolver (dnsbl.h)
 *	with its cache and its per-zone breakers; next the content scanners'
 *	connections and a store of client history. The runtime owns it and
 *	reconfigures it in place: runtime_configure() hands it the parameters
 *	of a new snapshot (dns_servers, dns_cache_size,
 *	dnsbl_breaker_threshold and dnsbl_breaker_time of the normal
 *	personality). A cached answer stays cached and a suspended zone stays
 *	suspended across a reload; new dns_servers take the next lookup (and
 *	close the breakers, see dnsbl.h RECONFIGURATION); a smaller
 *	dns_cache_size evicts the least recently used answers.
 *
 *	runtime_configure() changes nothing and returns false with the reason
 *	in err when the parameters cannot be applied (c-ares refuses the
 *	server list): the daemon then keeps the snapshot it had. Before the
 *	first success runtime_dns() is NULL.
 *
 *	The resolver runs a thread: runtime_dns() starts it on first use
 *	only (a session asks only when one of its checks will use it), so
 *	-n and a daemon without DNS rules never start it, and never before
 *	the daemon forks. When it cannot start, that is logged once, the DNS
 *	checks are skipped (and say so), and the next runtime_configure()
 *	allows another try. The provider returned lives as long as the
 *	runtime: every reconfiguration is in place.
 *
 *	The breakers' suspended/resumed lines are logged from here, and
 *	told to metrics_zone() (metrics.h).
 *
 *	The load levels (load.h) count sessions across reloads: a reload
 *	hands them new limits and thresholds, never new counts.
 *
 *	The stress switch (stress.h: on, off or auto) is set through the
 *	control socket and read by each session at connect. It is the
 *	operator's runtime decision, not configuration: a reload keeps it.
 *
 * CONCURRENCY
 *	runtime_dns() and runtime_dns_stats() run on any thread, any number at
 *	once; runtime_configure() on one thread at a time (the reload
 *	thread), concurrently with them. The stress switch is an atomic
 *	value: any thread sets or reads it without a lock. A mutex covers starting and
 *	reconfiguring the resolver; once it runs, runtime_dns() takes no lock
 *	(an atomic pointer). References are atomic: each session holds one
 *	(runtime_ref() in session_create()), so the daemon's runtime_unref()
 *	at stop never frees what a callback still uses; the last one frees.
 */
#ifndef MS_RUNTIME_H
#define MS_RUNTIME_H

#include <stdbool.h>

#include "conf.h"
#include "dnsbl.h"
#include "load.h"
#include "history.h"
#include "provider.h"
#include "scanners.h"
#include "strbuf.h"
#include "stress.h"

typedef struct runtime runtime;

runtime *runtime_create(void);   /* one reference: the caller's */
void runtime_ref(runtime *rt);   /* NULL-safe */
void runtime_unref(runtime *rt); /* frees at zero; NULL-safe */

bool runtime_configure(runtime *rt, const conf *c, strbuf *err);

/* The DNS provider, the resolver started on first use; NULL when rt is
   NULL, not configured, or the resolver cannot start. */
const dns_provider *runtime_dns(runtime *rt);
/* fn(arg) runs on a session's thread before it first blocks on a lookup
   (dnsbl_config's on_block); set before the first lookup, at start. */
void runtime_on_block(runtime *rt, void (*fn)(void *arg), void *arg);

/*
 * The content scanners (scanners.h): clamd_socket, spamd_socket,
 * rspamd_socket, their caps and breaker of the normal personality, applied
 * in place by runtime_configure() (a scanner refusing its endpoint makes it
 * fail like the resolver). NULL only when rt is NULL.
 */
const scan_provider *runtime_scan(runtime *rt);
void runtime_scan_stats(runtime *rt, enum scan_kind k, scanners_stats *out);

/* A session is about to block on the scanners: runtime_on_block()'s fn,
   as the resolver calls it before a lookup blocks (doc/ARCHITECTURE.md F19). */
void runtime_will_block(runtime *rt);

/* The resolver's counters (dnsbl_get_stats()); all 0 before it started. */
void runtime_dns_stats(runtime *rt, dnsbl_stats *out);

/*
 * The load levels (load.h): sessions counted per service, latency; set up
 * by runtime_configure() from each snapshot (load-conf.h: service_limits
 * = auto runs postconf there). Lives as long as the runtime; NULL for a
 * NULL rt.
 */
load_levels *runtime_load(runtime *rt);
/* This process shares the load levels of another, which configures them:
   runtime_configure() leaves them alone from now on. */
void runtime_load_follow(runtime *rt);

/*
 * The client history's provider (history.h; its thread starts at the first
 * lookup or note); NULL when rt is NULL or history_store is empty. It lives
 * as long as the runtime: a reload reconfigures it in place (another
 * history_store closes the old store and opens the new one on the
 * history's thread). runtime_unref()'s last reference writes what is
 * queued before it frees it.
 */
const history_provider *runtime_history(runtime *rt);
void runtime_history_stats(runtime *rt, history_stats *out); /* zeros when NULL */
/* The history's thread and store now (after the fork and -u); NULL-safe. */
void runtime_history_start(runtime *rt);

/* The stress switch; NULL-safe (NULL: STRESS_FORCE_NONE). */
void runtime_set_stress(runtime *rt, enum stress_force force);
enum stress_force runtime_stress(runtime *rt);

#endif
