/*
 * history - the client history the daemon keeps: a cache, a store, a thread
 *
 * SYNOPSIS
 *	h = history_create();				the runtime's, once
 *	history_configure(h, &cfg);			each snapshot (reload)
 *	st = history_lookup(h, "192.0.2.1", deadline, &rec);	at connect
 *	history_note(h, "192.0.2.1", &delta);		a transaction ended
 *	history_get_stats(h, &stats);			metrics, statistics
 *	history_free(h);				writes what is queued first
 *
 * DESCRIPTION
 *	The runtime state behind the history provider (provider.h): what
 *	the store (history-store.h) said about recent clients, kept in an
 *	in-memory cache of cfg.cache_size entries, each trusted for
 *	cfg.cache_ttl_ms, least recently used out first; and one thread of
 *	its own that writes and, for a store whose reads are not local
 *	(Redis), reads.
 *
 *	history_lookup() never waits past its deadline. A cached answer
 *	comes at once. Otherwise an LMDB or memory store is read on the
 *	caller's thread (microseconds); a Redis read is handed to the
 *	thread and waited for until the deadline. HISTORY_UNAVAILABLE
 *	when the deadline passed, the store failed, failed less than a
 *	second ago (no new attempt: a server that is down costs nothing),
 *	is not open yet, or history is off. Such a client is unknown.
 *
 *	history_note() queues a transaction's outcome and returns at once
 *	(write-behind); the thread applies the queue in batches, 100 ms
 *	after the first update of a batch came (at once for a full batch of
 *	512, at a flush and at stop), the same client's updates merged: one
 *	LMDB transaction (one fsync) or one Redis pipeline per batch. It puts
 *	the new records in the cache. Past cfg.queue_max queued updates the newest are
 *	dropped and counted. A batch the store refused is dropped and
 *	counted; errors are logged at most once a minute each kind.
 *
 *	The store opens on the thread, which starts at the first lookup or
 *	note (never before the daemon forks): an LMDB file that cannot be
 *	used is moved aside there (logged), and a store that cannot be
 *	opened is tried again every 10 seconds. history_configure() with
 *	another spec closes the old store and opens the new one on the
 *	thread (the cache is emptied: it spoke for the old store); other
 *	changes apply in place. Every hour (and 10 seconds after the open)
 *	the thread sweeps the store of clients not seen for cfg.store.max_age.
 *
 * CONCURRENCY
 *	history_lookup(), history_note() and history_get_stats() run on any
 *	thread, any number at once. history_configure() on one thread at a
 *	time. One mutex covers the cache and the queues, held for map
 *	operations only; an rwlock lets inline reads use the store while
 *	the thread may swap it.
 */
#ifndef MS_HISTORY_H
#define MS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history-record.h"
#include "history-store.h"

typedef struct history history;

typedef struct history_config {
	const char *spec; /* history_store; "" off */
	history_store_opts store;
	size_t cache_size;
	long long cache_ttl_ms;
	unsigned v6_prefix;
	size_t queue_max;
	uint64_t (*now)(void); /* wall clock, seconds; NULL: time() */
} history_config;

typedef struct history_stats {
	unsigned long long lookups, cache_hits, unavailable;
	unsigned long long store_errors; /* reads and writes the store failed */
	unsigned long long updates, dropped;
	unsigned long long evicted; /* removed from a full store to make room */
	unsigned long long queue_depth, queue_peak;
	/* read latency, store reads only (not the cache): buckets of
	   history_read_le[] ms, then the rest */
	unsigned long long read_buckets[8];
	double read_ms_sum;
} history_stats;

#define HISTORY_READ_BUCKETS 7
extern const double history_read_le[HISTORY_READ_BUCKETS]; /* milliseconds */

history *history_create(void);
/* Starts the thread now (the daemon, once detached and with its final user),
   so that the store opens at start rather than at the first session. */
void history_start(history *h);
void history_configure(history *h, const history_config *cfg);
void history_free(history *h); /* NULL-safe */

enum history_status history_lookup(history *h, const char *client_addr, long long deadline_ms,
                                   history_record *out);
void history_note(history *h, const char *client_addr, const history_delta *d);
/* Waits until the queue was written, at most until deadline_ms; true when it was. */
bool history_flush(history *h, long long deadline_ms);
void history_get_stats(history *h, history_stats *out);

#endif
