/*
 * scanio - a scanner's socket: connect, send and read, each bounded by a
 *	deadline
 *
 * SYNOPSIS
 *	int fd = scanio_connect("inet:3310@127.0.0.1", deadline, &why, &st);
 *	st = scanio_send(fd, p, n, deadline, &why);
 *	st = scanio_send_spool(fd, sp, frame, deadline, &why);
 *	st = scanio_recv_all(fd, &reply, 64 * 1024, deadline, &why);
 *	scanio_close(fd, st);
 *
 * DESCRIPTION
 *	clamd and spamd speak over a stream socket, unix or TCP, and each
 *	call here returns at its deadline (budget_now_ms() clock) at the
 *	latest: SCAN_OK, SCAN_TIMEOUT, or SCAN_ERROR with the reason in why.
 *
 *	scanio_close() after a scan that did not end with the scanner's reply
 *	(st not SCAN_OK) resets the connection (SO_LINGER 0): a scanner that
 *	has not yet taken the connection from its listen queue finds it dead
 *	at its first read and does not scan a message nobody waits for, and
 *	one in the middle of reading it gets an error rather than the rest.
 *
 *	An endpoint is libmilter's spelling (unix:/path, /path,
 *	inet:port@host, inet6:port@host) or Postfix's (inet:host:port),
 *	parsed by sockspec.h; fd:N is refused. scanio_check() is the
 *	parameter's validator.
 *
 *	scanio_send_spool() sends a spool's bytes from offset 0; with frame
 *	set, each piece goes as clamd's INSTREAM chunk (a 4-byte length in
 *	network order first) and a zero length ends the stream.
 *	scanio_recv_all() reads until the peer closes or max bytes came.
 *
 * CONCURRENCY
 *	No state of its own; any thread.
 */
#ifndef MS_SCANIO_H
#define MS_SCANIO_H

#include <stdbool.h>
#include <stddef.h>

#include "scan.h"
#include "spool.h"
#include "strbuf.h"

bool scanio_check(const char *endpoint, strbuf *why);
int scanio_connect(const char *endpoint, long long deadline, strbuf *why,
                   enum scan_status *st);
enum scan_status scanio_send(int fd, const void *p, size_t n, long long deadline,
                             strbuf *why);
enum scan_status scanio_send_spool(int fd, const spool *sp, bool frame,
                                   long long deadline, strbuf *why);
void scanio_close(int fd, enum scan_status st);
enum scan_status scanio_recv_all(int fd, strbuf *out, size_t max, long long deadline,
                                 strbuf *why);

#endif
