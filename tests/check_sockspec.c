/*
 * Unit tests for sockspec: every form of the socket syntax, each refusal
 * with its whole message (the same wherever a spec comes from), Postfix's
 * inet:host:port only with SOCKSPEC_POSTFIX, and where a spec without a
 * host listens and connects.
 */
#include "config.h"

#include "unit.h"
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "sockspec.h"
#include "strbuf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define P SOCKSPEC_POSTFIX
#define BAD(why) NULL, NULL, 0, -1, why /* refused: the rest of the message */

#define A10 "aaaaaaaaaa"
#define A100 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10
#define PATH107 "/" A100 "aaaaaa" /* the longest path sun_path holds */

static const struct scase {
	const char *text;
	int flags;
	int family; /* when accepted */
	const char *path, *host;
	unsigned port;
	int fd;
	const char *why; /* NULL: accepted; else the message after "bad socket '...': " */
} cases[] = {
        /* unix */
        {"unix:/run/m.sock", 0, AF_UNIX, "/run/m.sock", "", 0, -1, NULL},
        {"local:/run/m.sock", 0, AF_UNIX, "/run/m.sock", "", 0, -1, NULL},
        {"/run/m.sock", 0, AF_UNIX, "/run/m.sock", "", 0, -1, NULL},
        {"unix:" PATH107, 0, AF_UNIX, PATH107, "", 0, -1, NULL},
        {"unix:", 0, 0, BAD("the path is empty")},
        {"local:", P, 0, BAD("the path is empty")},
        {"unix:run/m.sock", 0, 0, BAD("the path must be absolute")},
        {"unix:/", 0, 0, BAD("the path names a directory")},
        {"/run/", 0, 0, BAD("the path names a directory")},
        {"unix:" PATH107 "a", 0, 0, BAD("the path is longer than 107 bytes")},
        {PATH107 "a", P, 0, BAD("the path is longer than 107 bytes")},
        /* inet, inet6: libmilter's PORT@HOST */
        {"inet:8890@127.0.0.1", 0, AF_INET, "", "127.0.0.1", 8890, -1, NULL},
        {"inet:8890@[127.0.0.1]", 0, AF_INET, "", "127.0.0.1", 8890, -1, NULL},
        {"inet:8890@mx.example", 0, AF_INET, "", "mx.example", 8890, -1, NULL},
        {"inet:8890", 0, AF_INET, "", "", 8890, -1, NULL},
        {"inet:1@localhost", 0, AF_INET, "", "localhost", 1, -1, NULL},
        {"inet:065535", 0, AF_INET, "", "", 65535, -1, NULL},
        {"inet:8890@[::1]", 0, AF_INET6, "", "::1", 8890, -1, NULL},
        {"inet:8890@::1", 0, AF_INET6, "", "::1", 8890, -1, NULL},
        {"inet6:8890@[::1]", 0, AF_INET6, "", "::1", 8890, -1, NULL},
        {"inet6:8890@2001:db8::1", 0, AF_INET6, "", "2001:db8::1", 8890, -1, NULL},
        {"inet6:8890@mx.example", 0, AF_INET6, "", "mx.example", 8890, -1, NULL},
        {"inet6:8890", 0, AF_INET6, "", "", 8890, -1, NULL},
        {"inet:8890@127.0.0.1", P, AF_INET, "", "127.0.0.1", 8890, -1, NULL},
        {"inet:0@localhost", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet:65536", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet:smtp", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet:88a9@localhost", P, 0, BAD("the port must be a number 1..65535")},
        {"inet:-1", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet:", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet:@127.0.0.1", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet6:1234567@::1", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet:99999999999999999999999", 0, 0, BAD("the port must be a number 1..65535")},
        {"inet:8890@", 0, 0, BAD("the host after '@' is empty")},
        {"inet6:25@", P, 0, BAD("the host after '@' is empty")},
        {"inet:8890@[]", 0, 0, BAD("'[]' is not an IP address")},
        {"inet:8890@[mx.example]", 0, 0, BAD("'[mx.example]' is not an IP address")},
        {"inet:8890@mx example", 0, 0,
         BAD("bad host 'mx example': expected a host name or an IP address")},
        {"inet:8890@mx..example", 0, 0,
         BAD("bad host 'mx..example': expected a host name or an IP address")},
        {"inet6:8890@127.0.0.1", 0, 0,
         BAD("127.0.0.1 is an IPv4 address: write inet:8890@127.0.0.1")},
        /* Postfix's HOST:PORT: with the flag only */
        {"inet:127.0.0.1:8890", P, AF_INET, "", "127.0.0.1", 8890, -1, NULL},
        {"inet:localhost:25", P, AF_INET, "", "localhost", 25, -1, NULL},
        {"inet:[192.0.2.1]:25", P, AF_INET, "", "192.0.2.1", 25, -1, NULL},
        {"inet:[::1]:8890", P, AF_INET6, "", "::1", 8890, -1, NULL},
        {"inet:127.0.0.1:8890", 0, 0,
         BAD("Postfix's inet:host:port is not accepted here: write "
             "inet:8890@127.0.0.1")},
        {"inet:[::1]:8890", 0, 0,
         BAD("Postfix's inet:host:port is not accepted here: write inet6:8890@[::1]")},
        {"inet::25", P, 0, BAD("the host before ':' is empty")},
        {"inet::25", 0, 0, BAD("the host before ':' is empty")},
        {"inet:localhost:0", P, 0, BAD("the port must be a number 1..65535")},
        {"inet:localhost:", P, 0, BAD("the port must be a number 1..65535")},
        {"inet:[]:25", P, 0, BAD("'[]' is not an IP address")},
        {"inet:[::1]", P, 0, BAD("the port must be a number 1..65535")},
        {"inet:a:b:25", P, 0, BAD("the port must be a number 1..65535")},
        {"inet6:[::1]:25", P, 0, BAD("the port must be a number 1..65535")},
        /* fd */
        {"fd:3", 0, AF_UNSPEC, "", "", 0, 3, NULL},
        {"fd:0", P, AF_UNSPEC, "", "", 0, 0, NULL},
        {"fd:2147483647", 0, AF_UNSPEC, "", "", 0, 2147483647, NULL},
        {"fd:", 0, 0, BAD("expected fd:N with a descriptor number")},
        {"fd:3x", 0, 0, BAD("expected fd:N with a descriptor number")},
        {"fd:-1", 0, 0, BAD("expected fd:N with a descriptor number")},
        {"fd:2147483648", 0, 0, BAD("expected fd:N with a descriptor number")},
        {"fd:99999999999999999999999", 0, 0,
         BAD("expected fd:N with a descriptor number")},
        {"fd:007", 0, AF_UNSPEC, "", "", 0, 7, NULL},
        /* none of them */
        {"tcp:8890@127.0.0.1", 0, 0,
         BAD("expected unix:/path, local:/path, /path, inet:port@host, "
             "inet6:port@host or fd:N")},
        {"", P, 0,
         BAD("expected unix:/path, local:/path, /path, inet:port@host, "
             "inet6:port@host or fd:N")},
        {"run/m.sock", 0, 0,
         BAD("expected unix:/path, local:/path, /path, inet:port@host, "
             "inet6:port@host or fd:N")},
        {"INET:8890", 0, 0,
         BAD("expected unix:/path, local:/path, /path, inet:port@host, "
             "inet6:port@host or fd:N")},
};

START_TEST(test_parse)
{
	const struct scase *c = &cases[_i];
	strbuf why = STRBUF_INIT, want = STRBUF_INIT;
	sockspec ss;
	bool ok = sockspec_parse(c->text, c->flags, &ss, &why);

	if (c->why != NULL) {
		strbuf_printf(&want, "bad socket '%s': %s", c->text, c->why);
		ck_assert_msg(!ok, "'%s': accepted", c->text);
		ck_assert_str_eq(strbuf_str(&why), strbuf_str(&want));
	} else {
		ck_assert_msg(ok, "'%s': %s", c->text, strbuf_str(&why));
		ck_assert_str_eq(strbuf_str(&why), "");
		ck_assert_int_eq(ss.family, c->family);
		ck_assert_str_eq(ss.path, c->path);
		ck_assert_str_eq(ss.host, c->host);
		ck_assert_uint_eq(ss.port, c->port);
		ck_assert_int_eq(ss.fd, c->fd);
	}
	strbuf_free(&why);
	strbuf_free(&want);
}
END_TEST

/* metrics_listen's HOST:PORT: the same host and port rules. */
static const struct hcase {
	const char *text;
	int family;
	const char *host;
	unsigned port;
	const char *why;
} host_cases[] = {
        {"127.0.0.1:9890", AF_INET, "127.0.0.1", 9890, NULL},
        {"localhost:80", AF_INET, "localhost", 80, NULL},
        {"[::1]:9890", AF_INET6, "::1", 9890, NULL},
        {"[192.0.2.1]:9890", AF_INET, "192.0.2.1", 9890, NULL},
        {"9890", 0, "", 0, "expected HOST:PORT or [IPV6]:PORT"},
        {"::1:9890", 0, "", 0, "expected HOST:PORT or [IPV6]:PORT"},
        {":9890", 0, "", 0, "the host before ':' is empty"},
        {"127.0.0.1:0", 0, "", 0, "the port must be a number 1..65535"},
        {"127.0.0.1:http", 0, "", 0, "the port must be a number 1..65535"},
        {"[mx.example]:80", 0, "", 0, "'[mx.example]' is not an IP address"},
        {"mx example:80", 0, "", 0,
         "bad host 'mx example': expected a host name or an IP address"},
};

START_TEST(test_parse_hostport)
{
	const struct hcase *c = &host_cases[_i];
	strbuf why = STRBUF_INIT, want = STRBUF_INIT;
	sockspec ss;
	bool ok = sockspec_parse_hostport(c->text, &ss, &why);

	if (c->why != NULL) {
		strbuf_printf(&want, "bad socket '%s': %s", c->text, c->why);
		ck_assert_msg(!ok, "'%s': accepted", c->text);
		ck_assert_str_eq(strbuf_str(&why), strbuf_str(&want));
	} else {
		ck_assert_msg(ok, "'%s': %s", c->text, strbuf_str(&why));
		ck_assert_int_eq(ss.family, c->family);
		ck_assert_str_eq(ss.host, c->host);
		ck_assert_uint_eq(ss.port, c->port);
		ck_assert_int_eq(ss.fd, -1);
	}
	strbuf_free(&why);
	strbuf_free(&want);
}
END_TEST

/* Without a host: a listener binds every address, a client the loopback. */
static const struct acase {
	const char *text;
	bool listening;
	const char *addr;
} addrs[] = {
        {"inet:8890", false, "127.0.0.1"}, {"inet:8890", true, "0.0.0.0"},
        {"inet6:8890", false, "::1"},      {"inet6:8890", true, "::"},
        {"inet:8890@[::1]", true, "::1"},  {"inet:8890@192.0.2.1", false, "192.0.2.1"},
};

START_TEST(test_addrinfo)
{
	const struct acase *c = &addrs[_i];
	struct addrinfo *res = NULL;
	strbuf why = STRBUF_INIT;
	sockspec ss;
	char host[64], port[8];

	ck_assert(sockspec_parse(c->text, 0, &ss, &why));
	ck_assert_int_eq(sockspec_addrinfo(&ss, c->listening, &res), 0);
	ck_assert_int_eq(getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host,
	                             port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV),
	                 0);
	ck_assert_str_eq(host, c->addr);
	ck_assert_str_eq(port, "8890");
	ck_assert_int_eq(res->ai_socktype, SOCK_STREAM);
	freeaddrinfo(res);
	strbuf_free(&why);
}
END_TEST

static Suite *
sockspec_suite(void)
{
	Suite *s = suite_create("sockspec");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse, 0, N(cases));
	tcase_add_loop_test(tc, test_parse_hostport, 0, N(host_cases));
	tcase_add_loop_test(tc, test_addrinfo, 0, N(addrs));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(sockspec_suite());
}
