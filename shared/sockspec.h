/*
 * sockspec - the one syntax of a milter socket
 *
 * SYNOPSIS
 *	sockspec ss;
 *
 *	if (!sockspec_parse(text, 0, &ss, why)) ...	why says what is wrong
 *	if (!sockspec_parse(text, SOCKSPEC_POSTFIX, &ss, why)) ...
 *	rc = sockspec_addrinfo(&ss, listening, &res);	inet and inet6 only
 *
 * DESCRIPTION
 *	The syntax is libmilter's (smfi_setconn). The socket parameter of
 *	milter-stress.conf(5), milter-stress -p and milter-probe -p all
 *	take it, and it is parsed here and nowhere else:
 *
 *	unix:PATH, local:PATH, PATH
 *		a unix-domain socket. PATH is absolute, names a file (not
 *		a directory) and fits sun_path: at most 107 bytes.
 *	inet:PORT@HOST, inet:PORT
 *		TCP over IPv4, or over IPv6 when HOST is an IPv6 address.
 *	inet6:PORT@HOST, inet6:PORT
 *		TCP over IPv6.
 *	fd:N
 *		a socket the caller already holds open as descriptor N
 *		(socket activation, or a listener opened before).
 *	inet:HOST:PORT, inet:[ADDR]:PORT
 *		Postfix's spelling (smtpd_milters): only with the flag
 *		SOCKSPEC_POSTFIX, where the caller plays the MTA. Elsewhere
 *		it is refused with the libmilter spelling to write instead.
 *
 *	HOST:PORT, [ADDR]:PORT
 *		an address to listen on for HTTP (metrics_listen), parsed
 *		by sockspec_parse_hostport() with the same rules.
 *
 *	PORT is a number from 1 to 65535 (no service names). HOST is a
 *	host name, an IPv4 address or an IPv6 address; an address may be
 *	written in brackets ("[::1]", "[192.0.2.1]"). Without HOST, a
 *	listener binds every address and a client connects to the
 *	loopback address. inet6: refuses an IPv4 address.
 *
 * DIAGNOSTICS
 *	sockspec_parse() appends one sentence to why, the same wherever
 *	the string comes from: "bad socket 'SPEC': REASON".
 *
 * CONCURRENCY
 *	No state: every function may run on any thread.
 */
#ifndef MS_SOCKSPEC_H
#define MS_SOCKSPEC_H

#include <stdbool.h>
#include <sys/socket.h> /* the AF_* of family */

#include "names.h"
#include "strbuf.h"

struct addrinfo;

/* Flags of sockspec_parse(). */
#define SOCKSPEC_POSTFIX 0x1 /* accept inet:HOST:PORT too */

#define SOCKSPEC_PATH_MAX 108 /* sun_path, its NUL included */

typedef struct sockspec {
	int family;                      /* AF_UNIX, AF_INET, AF_INET6; fd:N AF_UNSPEC */
	char path[SOCKSPEC_PATH_MAX];    /* AF_UNIX */
	char host[NAMES_DOMAIN_MAX + 1]; /* AF_INET*: no brackets; "" when not given */
	unsigned port;                   /* AF_INET*: 1..65535 */
	int fd;                          /* fd:N: N; -1 otherwise */
} sockspec;

/* Parse text into *ss; false with the reason appended to why. */
bool sockspec_parse(const char *text, int flags, sockspec *ss, strbuf *why);

/*
 * HOST:PORT or [ADDR]:PORT (an HTTP listener, metrics_listen): the host
 * and port parsed as above, the family AF_INET or, for an IPv6 address,
 * AF_INET6.
 */
bool sockspec_parse_hostport(const char *text, sockspec *ss, strbuf *why);

/*
 * The addresses of an AF_INET or AF_INET6 spec, as getaddrinfo() finds them
 * for a stream socket: for bind() when listening (no host: every address),
 * for connect() otherwise (no host: the loopback address). 0, or
 * getaddrinfo()'s error code for gai_strerror(); free *res with
 * freeaddrinfo().
 */
int sockspec_addrinfo(const sockspec *ss, bool listening, struct addrinfo **res);

#endif
