/*
 * history-store - where client histories are kept: one interface, three stores
 *
 * SYNOPSIS
 *	st = history_store_open("lmdb:/var/lib/milter-stress/history.lmdb", &o, &why);
 *	rc = st->ops->get(st, key, &rec, &why);	1 found, 0 none, -1 error
 *	st->ops->update(st, keys, deltas, n, now, &o, out, &why);	a batch
 *	st->ops->put(st, key, &rec, &o, &why);	the admin tool's add
 *	st->ops->del(st, key, &why);		1 deleted, 0 none, -1 error
 *	st->ops->each(st, fn, ctx, &why);	dump
 *	st->ops->sweep(st, now, &o, &why);	expire entries (LMDB)
 *	history_store_close(st);
 *
 * DESCRIPTION
 *	A spec names the store:
 *	lmdb:PATH	an LMDB file of its own (MDB_NOSUBDIR; PATH-lock beside
 *			it), at most o->map_size bytes; crash safety is
 *			LMDB's (copy-on-write pages, a commit is atomic).
 *			Another process (the admin tool) may open it at the
 *			same time, read-only or not. A file LMDB refuses (not
 *			an LMDB file, another version, damaged) is renamed
 *			PATH.corrupt.UNIXTIME (its lock file removed), the
 *			reason is in why_moved, and a fresh one is created.
 *			Entries not seen for o->max_age seconds go at sweep.
 *	redis:HOST:PORT, redis:[IPV6]:PORT, redis:unix:PATH
 *			a Redis server (hiredis), every command bounded by
 *			o->timeout_ms. A key is "ms:h:" plus the client's key
 *			(history-record.h), a hash with fields a r f l w, and
 *			a TTL of o->max_age seconds that every update renews:
 *			Redis expires clients itself. A batch of updates is
 *			one pipeline (one round trip), each update one EVAL
 *			of a short script, atomic on the server.
 *	memory:		the in-process store (lost at stop): unit tests, and
 *			a single host that can do without persistence.
 *
 *	update() applies deltas[i] to keys[i] for i < n, each as
 *	history_record_add() does, and writes each new record to out[i]
 *	(the caller's cache takes them). It is all or nothing for LMDB (one
 *	transaction); for Redis each key is atomic on its own.
 *
 *	Every error says what failed in why ("redis 127.0.0.1:6379: Connection
 *	refused"); a store never logs. A Redis store reconnects by itself on
 *	the next call after an error.
 *
 * CONCURRENCY
 *	An LMDB or memory store's get() runs on any thread, any number at
 *	once (LMDB read transactions with MDB_NOTLS; the memory store's
 *	mutex); inline_reads is true for them. Every other call, and every
 *	call on a Redis store, runs on one thread at a time: the history's
 *	own thread (history.h) or the admin tool.
 */
#ifndef MS_HISTORY_STORE_H
#define MS_HISTORY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history-record.h"
#include "strbuf.h"

typedef struct history_store_opts {
	unsigned long long map_size; /* lmdb: bytes */
	uint64_t max_age;            /* seconds a client is kept after it was last seen */
	uint64_t window_s;           /* history_record_add()'s window */
	long long timeout_ms;        /* redis: connect and each command */
	bool read_only;              /* lmdb: the admin tool's show and dump */
} history_store_opts;

typedef struct history_store history_store;

typedef bool (*history_each_fn)(void *ctx, const char *key, const history_record *r);

typedef struct history_store_ops {
	const char *kind; /* "lmdb", "redis", "memory" */
	bool inline_reads;
	int (*get)(history_store *st, const char *key, history_record *out, strbuf *why);
	bool (*update)(history_store *st, const char *const *keys, const history_delta *deltas,
	               size_t n, uint64_t now, const history_store_opts *o, history_record *out,
	               strbuf *why);
	bool (*put)(history_store *st, const char *key, const history_record *r,
	            const history_store_opts *o, strbuf *why);
	int (*del)(history_store *st, const char *key, strbuf *why);
	/* fn returns false to stop; each() then returns true */
	bool (*each)(history_store *st, history_each_fn fn, void *ctx, strbuf *why);
	/* entries removed, -1 on error */
	long (*sweep)(history_store *st, uint64_t now, const history_store_opts *o, strbuf *why);
	void (*close)(history_store *st);
} history_store_ops;

struct history_store {
	const history_store_ops *ops;
	char *spec;
	/* clients the store removed to make room (lmdb: the file was full);
	   written by update() alone */
	unsigned long long evicted;
};

/*
 * NULL with the reason in why for a spec that is not one of the forms, or
 * a store that cannot be opened (a Redis store opens without connecting:
 * its server may come later). why_moved (may be NULL) gets the LMDB file's
 * fate when it was moved aside.
 */
history_store *history_store_open(const char *spec, const history_store_opts *o,
                                  strbuf *why, strbuf *why_moved);
/* Is spec one of the forms? (the parameter's validator) */
bool history_store_spec_ok(const char *spec, strbuf *why);
void history_store_close(history_store *st); /* NULL-safe */

/* The stores, for history_store_open() alone. */
history_store *history_lmdb_open(const char *spec, const char *path, const history_store_opts *o,
                                 strbuf *why, strbuf *why_moved);
history_store *history_redis_open(const char *spec, const char *target,
                                  const history_store_opts *o, strbuf *why);
history_store *history_memory_open(const char *spec);

#endif
