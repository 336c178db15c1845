/* sockspec - the one syntax of a milter socket; see sockspec.h. */
#include "config.h"

#include "sockspec.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == SOCKSPEC_PATH_MAX,
               "SOCKSPEC_PATH_MAX is not the size of sun_path");

static bool bad(strbuf *why, const char *text, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static bool
bad(strbuf *why, const char *text, const char *fmt, ...)
{
	va_list ap;

	strbuf_printf(why, "bad socket '%s': ", text);
	va_start(ap, fmt);
	strbuf_vprintf(why, fmt, ap);
	va_end(ap);
	return false;
}

static bool
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool
parse_path(const char *text, const char *path, int flags, sockspec *ss, strbuf *why)
{
	size_t n = strlen(path);

	(void)flags;
	if (n == 0)
		return bad(why, text, "the path is empty");
	if (path[0] != '/')
		return bad(why, text, "the path must be absolute");
	if (path[n - 1] == '/')
		return bad(why, text, "the path names a directory");
	if (n >= sizeof ss->path)
		return bad(why, text, "the path is longer than %zu bytes",
		           sizeof ss->path - 1);
	memcpy(ss->path, path, n + 1);
	return true;
}

static bool
parse_port(const char *text, const char *p, size_t n, sockspec *ss, strbuf *why)
{
	unsigned long port = 0;

	if (n == 0 || !all_digits(p, n))
		return bad(why, text, "the port must be a number 1..65535");
	for (size_t i = 0; i < n && port <= 65535; i++)
		port = port * 10 + (unsigned long)(p[i] - '0');
	if (port < 1 || port > 65535)
		return bad(why, text, "the port must be a number 1..65535");
	ss->port = (unsigned)port;
	return true;
}

/*
 * A host name or an address, maybe in brackets. An IPv6 address makes the
 * family AF_INET6 (Postfix's inet: takes them); inet6: refuses IPv4 ones.
 */
static bool
parse_host(const char *text, const char *h, size_t n, sockspec *ss, strbuf *why)
{
	unsigned char bin[16];
	bool bracketed = n >= 2 && h[0] == '[' && h[n - 1] == ']';
	bool v4, v6;

	if (bracketed) {
		h++;
		n -= 2;
	}
	if (n >= sizeof ss->host)
		return bad(why, text, "the host is longer than %zu bytes",
		           sizeof ss->host - 1);
	memcpy(ss->host, h, n);
	ss->host[n] = '\0';
	v4 = inet_pton(AF_INET, ss->host, bin) == 1;
	v6 = !v4 && inet_pton(AF_INET6, ss->host, bin) == 1;
	if (bracketed && !v4 && !v6)
		return bad(why, text, "'[%s]' is not an IP address", ss->host);
	if (!v4 && !v6 && !names_domain(ss->host, n))
		return bad(why, text,
		           "bad host '%s': expected a host name or an IP address",
		           ss->host);
	if (v4 && ss->family == AF_INET6)
		return bad(why, text, "%s is an IPv4 address: write inet:%u@%s", ss->host,
		           ss->port, ss->host);
	if (v6)
		ss->family = AF_INET6;
	return true;
}

/*
 * The colon of Postfix's HOST:PORT or [ADDR]:PORT, or NULL when rest is
 * not written so. An unbracketed host has no colon of its own.
 */
static const char *
postfix_colon(const char *rest)
{
	const char *colon;

	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');

		return close != NULL && close[1] == ':' ? close + 1 : NULL;
	}
	colon = strchr(rest, ':');
	return colon != NULL && strchr(colon + 1, ':') == NULL ? colon : NULL;
}

static bool
parse_inet(const char *text, const char *rest, int flags, sockspec *ss, strbuf *why)
{
	const char *at = strchr(rest, '@'), *colon;

	if (at != NULL) {
		if (!parse_port(text, rest, (size_t)(at - rest), ss, why))
			return false;
		if (at[1] == '\0')
			return bad(why, text, "the host after '@' is empty");
		return parse_host(text, at + 1, strlen(at + 1), ss, why);
	}
	if (ss->family != AF_INET || (colon = postfix_colon(rest)) == NULL)
		return parse_port(text, rest, strlen(rest), ss, why);

	if (!parse_port(text, colon + 1, strlen(colon + 1), ss, why))
		return false;
	if (colon == rest)
		return bad(why, text, "the host before ':' is empty");
	if (!parse_host(text, rest, (size_t)(colon - rest), ss, why))
		return false;
	if (flags & SOCKSPEC_POSTFIX)
		return true;
	if (ss->family == AF_INET6)
		return bad(why, text,
		           "Postfix's inet:host:port is not accepted here: write "
		           "inet6:%u@[%s]",
		           ss->port, ss->host);
	return bad(why, text,
	           "Postfix's inet:host:port is not accepted here: write inet:%u@%s",
	           ss->port, ss->host);
}

static bool
parse_fd(const char *text, const char *rest, int flags, sockspec *ss, strbuf *why)
{
	size_t n = strlen(rest);
	long long fd = 0;

	(void)flags;
	if (n == 0 || !all_digits(rest, n))
		return bad(why, text, "expected fd:N with a descriptor number");
	for (size_t i = 0; i < n && fd <= INT_MAX; i++)
		fd = fd * 10 + (rest[i] - '0');
	if (fd > INT_MAX)
		return bad(why, text, "expected fd:N with a descriptor number");
	ss->fd = (int)fd;
	return true;
}

static const struct {
	const char *prefix;
	int family;
	bool (*parse)(const char *text, const char *rest, int flags, sockspec *ss,
	              strbuf *why);
} kinds[] = {
        {"unix:", AF_UNIX, parse_path}, {"local:", AF_UNIX, parse_path},
        {"inet:", AF_INET, parse_inet}, {"inet6:", AF_INET6, parse_inet},
        {"fd:", AF_UNSPEC, parse_fd},
};

bool
sockspec_parse(const char *text, int flags, sockspec *ss, strbuf *why)
{
	memset(ss, 0, sizeof *ss);
	ss->fd = -1;
	if (text[0] == '/') {
		ss->family = AF_UNIX;
		return parse_path(text, text, flags, ss, why);
	}
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(text, kinds[i].prefix, n) == 0) {
			ss->family = kinds[i].family;
			return kinds[i].parse(text, text + n, flags, ss, why);
		}
	}
	return bad(why, text,
	           "expected unix:/path, local:/path, /path, inet:port@host, "
	           "inet6:port@host or fd:N");
}

bool
sockspec_parse_hostport(const char *text, sockspec *ss, strbuf *why)
{
	const char *colon;

	memset(ss, 0, sizeof *ss);
	ss->fd = -1;
	ss->family = AF_INET;
	if ((colon = postfix_colon(text)) == NULL)
		return bad(why, text, "expected HOST:PORT or [IPV6]:PORT");
	if (colon == text)
		return bad(why, text, "the host before ':' is empty");
	return parse_port(text, colon + 1, strlen(colon + 1), ss, why) &&
	       parse_host(text, text, (size_t)(colon - text), ss, why);
}

int
sockspec_addrinfo(const sockspec *ss, bool listening, struct addrinfo **res)
{
	struct addrinfo hints;
	char port[8];

	if (ss->family != AF_INET && ss->family != AF_INET6)
		ms_panic("not an inet or inet6 socket: family %d", ss->family);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = ss->family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (listening ? AI_PASSIVE : 0);
	snprintf(port, sizeof port, "%u", ss->port);
	return getaddrinfo(ss->host[0] != '\0' ? ss->host : NULL, port, &hints, res);
}
