/* scanio - a scanner's socket with deadlines; see scanio.h. */
#include "config.h"

#include "scanio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "budget.h"
#include "sockspec.h"

/* The piece of a spool sent at once: one INSTREAM chunk. */
#define SCANIO_CHUNK 65536

static bool
parse_endpoint(const char *endpoint, sockspec *ss, strbuf *why)
{
	if (!sockspec_parse(endpoint, SOCKSPEC_POSTFIX, ss, why))
		return false;
	if (ss->family == AF_UNSPEC) {
		strbuf_printf(why,
		              "'%s': a scanner is reached by unix: or inet:, not fd:",
		              endpoint);
		return false;
	}
	return true;
}

bool
scanio_check(const char *endpoint, strbuf *why)
{
	sockspec ss;

	return parse_endpoint(endpoint, &ss, why);
}

/* Waits until fd is ready for events, at most until deadline. */
static enum scan_status
wait_fd(int fd, short events, long long deadline, const char *what, strbuf *why)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		long long left = budget_left(deadline);
		int rc;

		if (left <= 0) {
			strbuf_printf(why, "%s: timed out", what);
			return SCAN_TIMEOUT;
		}
		rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (rc > 0)
			return SCAN_OK;
		if (rc < 0 && errno != EINTR) {
			strbuf_printf(why, "%s: poll: %s", what, strerror(errno));
			return SCAN_ERROR;
		}
	}
}

static int
open_socket(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0 && family != AF_UNIX) {
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return fd;
}

/* A non-blocking connect, finished by the deadline. */
static enum scan_status
connect_to(int fd, const struct sockaddr *sa, socklen_t len, long long deadline,
           const char *endpoint, strbuf *why)
{
	enum scan_status st;
	int err = 0;
	socklen_t elen = sizeof err;

	if (connect(fd, sa, len) == 0)
		return SCAN_OK;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		strbuf_printf(why, "connect to %s: %s", endpoint, strerror(errno));
		return SCAN_ERROR;
	}
	if ((st = wait_fd(fd, POLLOUT, deadline, "connect", why)) != SCAN_OK)
		return st;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	if (err != 0) {
		strbuf_printf(why, "connect to %s: %s", endpoint, strerror(err));
		return SCAN_ERROR;
	}
	return SCAN_OK;
}

int
scanio_connect(const char *endpoint, long long deadline, strbuf *why,
               enum scan_status *st)
{
	struct addrinfo *res = NULL;
	sockspec ss;
	int fd = -1, rc;

	*st = SCAN_ERROR;
	if (!parse_endpoint(endpoint, &ss, why))
		return -1;
	if (ss.family == AF_UNIX) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		memcpy(sun.sun_path, ss.path, sizeof sun.sun_path);
		if ((fd = open_socket(AF_UNIX)) < 0) {
			strbuf_printf(why, "socket: %s", strerror(errno));
			return -1;
		}
		*st = connect_to(fd, (struct sockaddr *)&sun, sizeof sun, deadline,
		                 endpoint, why);
	} else {
		if ((rc = sockspec_addrinfo(&ss, false, &res)) != 0) {
			strbuf_printf(why, "%s: %s", endpoint, gai_strerror(rc));
			return -1;
		}
		if ((fd = open_socket(res->ai_family)) < 0) {
			strbuf_printf(why, "socket: %s", strerror(errno));
			freeaddrinfo(res);
			return -1;
		}
		*st = connect_to(fd, res->ai_addr, res->ai_addrlen, deadline, endpoint,
		                 why);
		freeaddrinfo(res);
	}
	if (*st != SCAN_OK) {
		close(fd);
		return -1;
	}
	return fd;
}

enum scan_status
scanio_send(int fd, const void *p, size_t n, long long deadline, strbuf *why)
{
	const char *c = p;
	enum scan_status st;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w > 0) {
			c += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((st = wait_fd(fd, POLLOUT, deadline, "send", why)) != SCAN_OK)
				return st;
			continue;
		}
		strbuf_printf(why, "send: %s", w < 0 ? strerror(errno) : "nothing sent");
		return SCAN_ERROR;
	}
	return SCAN_OK;
}

enum scan_status
scanio_send_spool(int fd, const spool *sp, bool frame, long long deadline, strbuf *why)
{
	static const unsigned char end[4] = {0, 0, 0, 0};
	unsigned char buf[4 + SCANIO_CHUNK];
	long long off = 0;
	enum scan_status st;

	for (;;) {
		ssize_t n = spool_read(sp, off, buf + 4, SCANIO_CHUNK, why);
		uint32_t len;

		if (n < 0)
			return SCAN_ERROR;
		if (n == 0)
			break;
		len = htonl((uint32_t)n);
		memcpy(buf, &len, 4);
		st = frame ? scanio_send(fd, buf, (size_t)n + 4, deadline, why)
		           : scanio_send(fd, buf + 4, (size_t)n, deadline, why);
		if (st != SCAN_OK)
			return st;
		off += n;
	}
	return frame ? scanio_send(fd, end, sizeof end, deadline, why) : SCAN_OK;
}

enum scan_status
scanio_recv_all(int fd, strbuf *out, size_t max, long long deadline, strbuf *why)
{
	char buf[4096];
	enum scan_status st;

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);

		if (r == 0)
			return SCAN_OK;
		if (r > 0) {
			strbuf_append(out, buf, (size_t)r);
			if (out->len > max) {
				strbuf_printf(why, "reply longer than %zu bytes", max);
				return SCAN_ERROR;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if ((st = wait_fd(fd, POLLIN, deadline, "reply", why)) != SCAN_OK)
				return st;
			continue;
		}
		strbuf_printf(why, "recv: %s", strerror(errno));
		return SCAN_ERROR;
	}
}

void
scanio_close(int fd, enum scan_status st)
{
	if (st != SCAN_OK) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(fd);
}
