/*
 * rspamd - a client of rspamd's HTTP protocol: one message, one verdict
 *
 * SYNOPSIS
 *	if (!rspamd_global_init(why)) ...		once, in main(), before threads
 *
 *	rspamd_client *c = rspamd_client_new("inet:127.0.0.1:11333", why);
 *	rspamd_request rq = RSPAMD_REQUEST_INIT;
 *	rq.ip = "192.0.2.1"; rq.from = "a@example.org"; rq.rcpt = rcpts; rq.nrcpt = 2;
 *	rq.mem = msg; rq.mem_len = len;			or rq.fd = spool; rq.fd_len = size;
 *	rspamd_reply r = RSPAMD_REPLY_INIT;
 *	switch (rspamd_scan(c, &rq, deadline, &session->cancel, &r, why)) {
 *	case RSPAMD_OK: ... r.action, r.score, r.required, r.symbols ...
 *	case RSPAMD_ERROR: case RSPAMD_TIMEOUT: case RSPAMD_CANCELLED: ... why ...
 *	}
 *	rspamd_reply_free(&r);
 *	rspamd_client_free(c);
 *	rspamd_global_cleanup();			at exit
 *
 * DESCRIPTION
 *	rspamd_scan() sends one message to rspamd's normal worker as
 *	"POST /checkv2" with the envelope in rspamd's request headers (IP,
 *	Helo, From, one Rcpt per recipient, Queue-Id, User, Hostname,
 *	Settings-Id; a NULL field is not sent) and the message as the body,
 *	from memory or read from a file descriptor (a spool file: read from
 *	offset 0 with pread(), so the descriptor's offset is not used and
 *	several scans may share it). It parses the JSON reply into *out.
 *
 *	The endpoint is "inet:HOST:PORT", "inet:PORT@HOST", "unix:/PATH"
 *	(the socket syntax of sockspec.h) or "http://HOST:PORT". A host name
 *	is resolved once, by rspamd_client_new() (a reload makes a new
 *	client); its first address is used.
 *
 *	RSPAMD_OK: rspamd answered with a verdict: out->action is one of
 *	"no action", "greylist", "add header", "rewrite subject", "soft
 *	reject", "reject" (or another word a newer rspamd may add: a
 *	lower-case word of letters and spaces), out->score and
 *	out->required its score and the score of its reject action (NAN
 *	when rspamd has none: "required_score": null), out->symbols the
 *	names of the symbols that matched, sorted (strcmp), each once, at
 *	most RSPAMD_SYMBOLS_MAX of them, each printable ASCII without spaces
 *	and at most RSPAMD_SYMBOL_NAME_MAX bytes: other names and the
 *	symbols past the cap are not kept and are counted in
 *	out->symbols_dropped.
 *	RSPAMD_ERROR: rspamd could not be reached, the connection broke,
 *	rspamd answered with an error ({"error": "..."}, any HTTP status but
 *	200) or with a reply rspamd_reply_parse() refuses, or the message
 *	could not be read (none given, a read error, a spool file shorter
 *	than fd_len). RSPAMD_TIMEOUT: no complete reply
 *	by deadline_ms (budget.h's clock); a deadline already past sends
 *	nothing. RSPAMD_CANCELLED: *cancel became true during the scan; the
 *	connection is closed within about RSPAMD_CANCEL_POLL_MS, so rspamd
 *	sees the client go; a cancel already set sends nothing. Every status
 *	but RSPAMD_OK appends one sentence to why and leaves *out empty.
 *
 *	rspamd_reply_parse() is the reply parser alone (json-c): any bytes
 *	in, a verdict or false with the reason appended to why; never more
 *	than RSPAMD_REPLY_MAX bytes are read. rspamd_reply_has_symbol()
 *	looks a name up in a parsed reply.
 *
 *	Each scan is one connection: rspamd's normal worker (3.4) answers
 *	"Connection: close" whatever the request asks. What is kept between
 *	scans is curl's state (at most RSPAMD_POOL_MAX idle handles, each an
 *	easy handle and the multi handle that drives it). The client makes
 *	no concurrency cap: its caller does (a semaphore below rspamd's own
 *	limits).
 *
 *	Envelope values are sent as they are (UTF-8 included), except that
 *	a control character becomes '?': a value never makes a second
 *	header, and a strange HELO never makes the scan fail.
 *
 * LIBCURL
 *	rspamd_global_init() calls curl_global_init(), which is not
 *	thread-safe in every libcurl build: the daemon's main() calls it
 *	once before it starts any thread (and each test program in its
 *	main()), and rspamd_global_cleanup() at exit. It fails when libcurl
 *	cannot do what the client needs (unix-domain sockets). Every handle
 *	is CURLOPT_NOSIGNAL: nothing here raises or catches a signal.
 *
 * CONCURRENCY
 *	rspamd_scan() runs on any number of threads at once on one client:
 *	each scan has a curl easy handle of its own (taken from the client's
 *	pool under a mutex held for a list operation, never during I/O).
 *	rspamd_client_new() and rspamd_client_free() run when no scan on that
 *	client can. rspamd_reply_parse() has no state.
 */
#ifndef MS_RSPAMD_H
#define MS_RSPAMD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define RSPAMD_ACTION_MAX 32        /* action[]: its NUL included */
#define RSPAMD_SYMBOLS_MAX 256      /* symbol names kept per reply */
#define RSPAMD_SYMBOL_NAME_MAX 128  /* bytes of a kept name, its NUL not included */
#define RSPAMD_REPLY_MAX (1 << 20)  /* bytes of a reply read */
#define RSPAMD_POOL_MAX 64          /* idle curl handles kept */
#define RSPAMD_CANCEL_POLL_MS 20    /* how soon a cancel is seen */

typedef struct rspamd_request {
	/* The envelope: any may be NULL (not sent). "" for from is sent as "<>". */
	const char *ip, *helo, *from, *queue_id, *user, *hostname, *settings_id;
	const char *const *rcpt;
	size_t nrcpt;
	/* The whole message (headers, blank line, body) in memory, or ... */
	const char *mem;
	size_t mem_len;
	/* ... fd_len bytes of fd from offset 0 (a spool file), when mem is NULL. */
	int fd;
	long long fd_len;
} rspamd_request;

#define RSPAMD_REQUEST_INIT {.fd = -1}

typedef struct rspamd_reply {
	char action[RSPAMD_ACTION_MAX];
	double score, required;
	char **symbols; /* names, heap, sorted */
	size_t nsymbols;
	size_t symbols_dropped; /* past RSPAMD_SYMBOLS_MAX or too long */
} rspamd_reply;

#define RSPAMD_REPLY_INIT {.symbols = NULL}

enum rspamd_status { RSPAMD_OK, RSPAMD_ERROR, RSPAMD_TIMEOUT, RSPAMD_CANCELLED };

typedef struct rspamd_client rspamd_client;

bool rspamd_global_init(strbuf *why);
void rspamd_global_cleanup(void);

/* *out is overwritten (free it before when reusing it); on false it is empty. */
bool rspamd_reply_parse(const char *json, size_t len, rspamd_reply *out, strbuf *why);
void rspamd_reply_free(rspamd_reply *r); /* empty again, reusable */
bool rspamd_reply_has_symbol(const rspamd_reply *r, const char *name);

rspamd_client *rspamd_client_new(const char *endpoint, strbuf *why);
void rspamd_client_free(rspamd_client *c); /* NULL: nothing */

enum rspamd_status rspamd_scan(rspamd_client *c, const rspamd_request *rq,
                               long long deadline_ms, const atomic_bool *cancel,
                               rspamd_reply *out, strbuf *why);

/* "ok", "error", "timeout", "cancelled": for logs and headers. */
const char *rspamd_status_name(enum rspamd_status st);

#endif
