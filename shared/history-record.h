/*
 * history-record - one client's history: its key, its record, their wire forms
 *
 * SYNOPSIS
 *	history_key(client_addr, v6_prefix, &key)	"192.0.2.1", "2001:db8:1:2::/64"
 *	history_record_encode(&rec, buf)		HISTORY_RECORD_SIZE bytes (LMDB)
 *	history_record_decode(bytes, n, &rec, why)	what a store handed back
 *	history_record_parse_fields(f, v, n, &rec, why)	a Redis hash (HGETALL)
 *	history_record_add(&rec, &delta, now, window)	a transaction's end
 *	history_known(&rec, now, &thresholds)		the known/unknown decision
 *
 * DESCRIPTION
 *	A client is an IPv4 address, or the IPv6 network of v6_prefix bits
 *	that holds its address (a host's addresses in one /64 are one client);
 *	an IPv4-mapped IPv6 address is the IPv4 client it carries. The key is
 *	text, the address (with /PREFIX for IPv6) in its canonical form, so an
 *	administrator reads it in a dump and in redis-cli.
 *
 *	A record counts messages accepted and refused (rejected or
 *	tempfailed) by the milter since window_start, and the first and last
 *	time the client was seen (seconds since the epoch). The counters
 *	cover about the last D days (history_known_days): when an update finds
 *	the window older than D days, both counters are halved and the window
 *	starts again, so old behaviour fades instead of ending at a cliff.
 *
 *	Known: at least min_accepted accepted messages in the window, at most
 *	max_refused_pct percent of the window's messages refused, and seen
 *	within the last D days. Everything else is unknown.
 *
 *	The binary form (LMDB values) is a version byte (1) and five 64-bit
 *	big-endian numbers: accepted, refused, first_seen, last_seen,
 *	window_start. A value of another size or version, or whose times are
 *	out of order, is refused with a reason: a store's bytes are input.
 *
 * CONCURRENCY
 *	No state: every function may run on any thread.
 */
#ifndef MS_HISTORY_RECORD_H
#define MS_HISTORY_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define HISTORY_RECORD_SIZE 41
#define HISTORY_KEY_MAX 64 /* "xxxx:...:xxxx/128" fits with room */

typedef struct history_record {
	uint64_t accepted;
	uint64_t refused;
	uint64_t first_seen; /* seconds since the epoch */
	uint64_t last_seen;
	uint64_t window_start;
} history_record;

/* What a transaction adds: one message, accepted or refused. */
typedef struct history_delta {
	uint32_t accepted;
	uint32_t refused;
} history_delta;

/* What a lookup found (history.h, provider.h). */
enum history_status {
	HISTORY_NEW,         /* the store has no record: never seen, or expired */
	HISTORY_FOUND,       /* out holds the record */
	HISTORY_UNAVAILABLE, /* off, down, slow, damaged: the client is unknown */
};

typedef struct history_thresholds {
	long long min_accepted;    /* history_known_messages */
	long long max_refused_pct; /* history_known_refusals */
	long long window_s;        /* history_known_days, in seconds */
} history_thresholds;

/* The client's key in key[HISTORY_KEY_MAX]; false when addr is not an IP
   address (such a client has no history). */
bool history_key(const char *addr, unsigned v6_prefix, char key[HISTORY_KEY_MAX]);

void history_record_encode(const history_record *r, unsigned char out[HISTORY_RECORD_SIZE]);
bool history_record_decode(const void *bytes, size_t n, history_record *out, strbuf *why);

/* A Redis hash as field/value pairs: a, r, f, l, w (decimal); unknown
   fields are ignored, a missing one is 0 but a and l are required. */
bool history_record_parse_fields(const char *const *fields, const size_t *flen,
                                 const char *const *values, const size_t *vlen, size_t n,
                                 history_record *out, strbuf *why);

/* Apply delta at now (seconds); r all zero is a new client. */
void history_record_add(history_record *r, const history_delta *d, uint64_t now,
                        uint64_t window_s);

bool history_known(const history_record *r, uint64_t now, const history_thresholds *t);

/* "accepted=3 refused=0 first=2026-12-03T08:00:00Z last=..." */
void history_record_format(const history_record *r, strbuf *out);

#endif
