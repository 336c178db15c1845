/*
 * metrics-http - Prometheus' /metrics over HTTP (libmicrohttpd)
 *
 * SYNOPSIS
 *	fd = metrics_http_listen(p->metrics_listen);	as root, before -u
 *	metrics_http_start(fd);				after, signals blocked
 *	metrics_http_stop();				before the runtime goes
 *
 * DESCRIPTION
 *	metrics_listen (HOST:PORT, [IPV6]:PORT; empty: off) is bound at
 *	start, so a port below 1024 works under -u, and a port that cannot
 *	be bound stops the start with the address and the reason. The
 *	server answers GET /metrics with metrics_render() (metrics.h) of the
 *	daemon's sources and 404 to everything else. A reload does not move
 *	it: metrics_listen takes effect after a restart.
 *
 * CONCURRENCY
 *	libmicrohttpd's one internal thread serves every scrape, one at a
 *	time; it is created by metrics_http_start() and inherits the
 *	caller's signal mask, which must block what libmilter and the reload
 *	thread sigwait (ARCHITECTURE.md F13). A scrape takes no lock a
 *	session takes (metrics.h). start and stop run on the main thread.
 */
#ifndef MS_METRICS_HTTP_H
#define MS_METRICS_HTTP_H

#include <stdbool.h>

/* The listening socket; -1 for an empty spec or, logged, on failure. */
int metrics_http_listen(const char *spec, bool *failed);
bool metrics_http_start(int fd);
void metrics_http_stop(void); /* no-op when not started */

#endif
