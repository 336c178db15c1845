/* check_mproto - unit tests for the MTA side of the milter protocol. */
#include "config.h"

#include "mproto.h"
#include "strbuf.h"

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LEN(lit) (sizeof(lit) - 1)

/* ---- encoders: exact bytes ------------------------------------------- */

static int
enc_optneg(strbuf *b)
{
	return mproto_put_optneg(b, MPROTO_VERSION, PROTO_F_ALL, PROTO_P_ALL);
}

static int
enc_connect4(strbuf *b)
{
	return mproto_put_connect(b, "localhost", MPROTO_FAM_INET, 12345, "127.0.0.1");
}

static int
enc_connect6(strbuf *b)
{
	return mproto_put_connect(b, "mx.example", MPROTO_FAM_INET6, 25, "2001:db8::1");
}

static int
enc_connect_unix(strbuf *b)
{
	return mproto_put_connect(b, "localhost", MPROTO_FAM_UNIX, 0, "/run/x");
}

static int
enc_connect_unknown(strbuf *b)
{
	/* Postfix for a local client: no port, no address. */
	return mproto_put_connect(b, "localhost", MPROTO_FAM_UNKNOWN, 12345, "ignored");
}

static int
enc_macros(strbuf *b)
{
	const mproto_macro m[] = {{"j", "probe.example"}, {"{stress}", "yes"}};

	return mproto_put_macros(b, MPROTO_C_CONNECT, m, 2);
}

static int
enc_macros_empty(strbuf *b)
{
	return mproto_put_macros(b, MPROTO_C_HELO, NULL, 0);
}

static int
enc_helo(strbuf *b)
{
	return mproto_put_helo(b, "probe.example");
}

static int
enc_mail(strbuf *b)
{
	const char *const argv[] = {"<a@b>", "SIZE=10", NULL};

	return mproto_put_mail(b, argv);
}

static int
enc_rcpt(strbuf *b)
{
	const char *const argv[] = {"<>", NULL};

	return mproto_put_rcpt(b, argv);
}

static int
enc_header(strbuf *b)
{
	return mproto_put_header(b, "Subject", "hi\n there");
}

static int
enc_body(strbuf *b)
{
	return mproto_put_body(b, "a\r\n\0b\r\n", 7);
}

static int
enc_eom(strbuf *b)
{
	return mproto_put_cmd(b, MPROTO_C_EOM);
}

static int
enc_unknown(strbuf *b)
{
	return mproto_put_unknown(b, "XYZZY");
}

static int
enc_two(strbuf *b)
{
	/* Packets queue up back to back. */
	if (mproto_put_cmd(b, MPROTO_C_ABORT) < 0)
		return -1;
	return mproto_put_cmd(b, MPROTO_C_QUIT);
}

static const struct {
	const char *name;
	int (*encode)(strbuf *);
	const char *bytes;
	size_t len;
} enc_cases[] = {
#define E(name, fn, lit)                                                                 \
	{                                                                                \
		name, fn, lit, LEN(lit)                                                  \
	}
        E("optneg", enc_optneg,
          "\0\0\0\x0d"
          "O\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff"),
        E("connect ipv4", enc_connect4,
          "\0\0\0\x18"
          "Clocalhost\0"
          "4\x30\x39"
          "127.0.0.1\0"),
        E("connect ipv6", enc_connect6,
          "\0\0\0\x1b"
          "Cmx.example\0"
          "6\0\x19"
          "2001:db8::1\0"),
        E("connect unix", enc_connect_unix,
          "\0\0\0\x15"
          "Clocalhost\0"
          "L\0\0/run/x\0"),
        E("connect unknown", enc_connect_unknown,
          "\0\0\0\x0c"
          "Clocalhost\0U"),
        E("macros", enc_macros,
          "\0\0\0\x1f"
          "DCj\0probe.example\0{stress}\0yes\0"),
        E("macros empty", enc_macros_empty,
          "\0\0\0\x02"
          "DH"),
        E("helo", enc_helo,
          "\0\0\0\x0f"
          "Hprobe.example\0"),
        E("mail", enc_mail,
          "\0\0\0\x0f"
          "M<a@b>\0SIZE=10\0"),
        E("rcpt", enc_rcpt,
          "\0\0\0\x04"
          "R<>\0"),
        E("header", enc_header,
          "\0\0\0\x13"
          "LSubject\0hi\n there\0"),
        E("body", enc_body,
          "\0\0\0\x08"
          "Ba\r\n\0b\r\n"),
        E("eom", enc_eom,
          "\0\0\0\x01"
          "E"),
        E("unknown", enc_unknown,
          "\0\0\0\x07"
          "UXYZZY\0"),
        E("abort+quit", enc_two,
          "\0\0\0\x01"
          "A\0\0\0\x01Q"),
#undef E
};

START_TEST(test_encode)
{
	strbuf b = STRBUF_INIT;

	strbuf_puts(&b, "prefix"); /* encoders append */
	ck_assert_msg(enc_cases[_i].encode(&b) == 0, "%s: encoder failed",
	              enc_cases[_i].name);
	ck_assert_msg(b.len == 6 + enc_cases[_i].len, "%s: %zu bytes, expected %zu",
	              enc_cases[_i].name, b.len - 6, enc_cases[_i].len);
	ck_assert_msg(memcmp(b.s + 6, enc_cases[_i].bytes, enc_cases[_i].len) == 0,
	              "%s: wrong bytes", enc_cases[_i].name);
	strbuf_free(&b);
}
END_TEST

START_TEST(test_encode_too_big)
{
	strbuf b = STRBUF_INIT;
	size_t n = MPROTO_MAX_PACKET; /* + command byte: one too many */
	char *big = ms_xcalloc(n, 1);

	strbuf_puts(&b, "keep");
	ck_assert_int_eq(mproto_put_body(&b, big, n), -1);
	ck_assert_str_eq(strbuf_str(&b), "keep");
	ck_assert_int_eq(mproto_put_header(&b, "X", big + 1), 0); /* "" value */
	memset(big, 'x', n - 1);
	ck_assert_int_eq(mproto_put_header(&b, "X", big), -1);
	ck_assert_uint_eq(b.len, 4 + 4 + 1 + 2 + 1);
	ck_assert_int_eq(mproto_put_body(&b, big, n - 1), 0); /* exactly the limit */
	ck_assert_uint_eq(b.len, 12 + 4 + MPROTO_MAX_PACKET);
	free(big);
	strbuf_free(&b);
}
END_TEST

/* ---- decoder ----------------------------------------------------------- */

typedef struct {
	const char *name;
	const char *bytes;
	size_t len;
	int ok;
	int cmd;
	const char *text, *hname, *hvalue, *addr, *args;
	uint32_t index;
	long body_len;   /* -1: not a body */
	const char *err; /* substring of the error message */
} dec_case;

/* OK: a valid reply without data; BAD: rejected with a message containing err. */
#define OK(name, lit, cmd)                                                               \
	{                                                                                \
		name, lit, LEN(lit), 1, cmd, NULL, NULL, NULL, NULL, NULL, 0, -1, NULL   \
	}
#define BAD(name, lit, err)                                                              \
	{                                                                                \
		name, lit, LEN(lit), 0, 0, NULL, NULL, NULL, NULL, NULL, 0, -1, err      \
	}

static const dec_case dec_cases[] = {
        OK("accept",
           "\0\0\0\x01"
           "a",
           'a'),
        OK("continue",
           "\0\0\0\x01"
           "c",
           'c'),
        OK("discard",
           "\0\0\0\x01"
           "d",
           'd'),
        OK("reject",
           "\0\0\0\x01"
           "r",
           'r'),
        OK("tempfail",
           "\0\0\0\x01"
           "t",
           't'),
        OK("skip",
           "\0\0\0\x01"
           "s",
           's'),
        OK("progress",
           "\0\0\0\x01"
           "p",
           'p'),
        OK("shutdown",
           "\0\0\0\x01"
           "4",
           '4'),
        OK("conn fail",
           "\0\0\0\x01"
           "f",
           'f'),
        {"replycode", "\0\0\0\x13y550 5.7.1 Go away\0", 23, 1, 'y', "550 5.7.1 Go away",
         NULL, NULL, NULL, NULL, 0, -1, NULL},
        {"replycode no nul", "\0\0\0\x0ay451 4.3.0", 14, 1, 'y', "451 4.3.0", NULL, NULL,
         NULL, NULL, 0, -1, NULL},
        {"quarantine", "\0\0\0\x06qspam\0", 10, 1, 'q', "spam", NULL, NULL, NULL, NULL, 0,
         -1, NULL},
        {"add header h", "\0\0\0\x0ehX-Stress\0yes\0", 18, 1, 'h', NULL, "X-Stress",
         "yes", NULL, NULL, 0, -1, NULL},
        {"insert header", "\0\0\0\x0bi\0\0\0\x02X-A\0v\0", 15, 1, 'i', NULL, "X-A", "v",
         NULL, NULL, 2, -1, NULL},
        {"change header delete", "\0\0\0\x0em\0\0\0\x01Subject\0\0", 18, 1, 'm', NULL,
         "Subject", "", NULL, NULL, 1, -1, NULL},
        {"add rcpt", "\0\0\0\x07+<a@b>\0", 11, 1, '+', NULL, NULL, NULL, "<a@b>", NULL, 0,
         -1, NULL},
        {"delete rcpt", "\0\0\0\x07-<a@b>\0", 11, 1, '-', NULL, NULL, NULL, "<a@b>", NULL,
         0, -1, NULL},
        {"add rcpt par",
         "\0\0\0\x14"
         "2<a@b>\0NOTIFY=NEVER\0",
         24, 1, '2', NULL, NULL, NULL, "<a@b>", "NOTIFY=NEVER", 0, -1, NULL},
        {"add rcpt par no args",
         "\0\0\0\x07"
         "2<a@b>\0",
         11, 1, '2', NULL, NULL, NULL, "<a@b>", NULL, 0, -1, NULL},
        {"chgfrom",
         "\0\0\0\x0e"
         "e<a@b>\0SIZE=1\0",
         18, 1, 'e', NULL, NULL, NULL, "<a@b>", "SIZE=1", 0, -1, NULL},
        {"chgfrom no args",
         "\0\0\0\x04"
         "e<>\0",
         8, 1, 'e', NULL, NULL, NULL, "<>", NULL, 0, -1, NULL},
        {"replbody",
         "\0\0\0\x06"
         "bx\0y\r\n",
         10, 1, 'b', NULL, NULL, NULL, NULL, NULL, 0, 5, NULL},
        {"replbody empty",
         "\0\0\0\x01"
         "b",
         5, 1, 'b', NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},

        BAD("empty", "", "truncated packet"),
        BAD("short length", "\0\0\0", "truncated packet"),
        BAD("length only", "\0\0\0\x01", "truncated packet"),
        BAD("zero length", "\0\0\0\0c", "bad packet length 0"),
        BAD("absurd length",
            "\x7f\xff\xff\xff"
            "c",
            "exceeds the limit"),
        BAD("just over the limit",
            "\0\x10\0\x01"
            "c",
            "exceeds the limit"),
        BAD("truncated data", "\0\0\0\x05y550", "truncated packet"),
        BAD("trailing garbage",
            "\0\0\0\x01"
            "cc",
            "trailing garbage"),
        BAD("unknown code", "\0\0\0\x01Z", "unknown reply code 'Z'"),
        BAD("unknown binary code", "\0\0\0\x01\x01", "unknown reply code 0x01"),
        BAD("setsymlist is not a reply", "\0\0\0\x03l\0\0", "unknown reply code 'l'"),
        BAD("continue with data",
            "\0\0\0\x02"
            "cx",
            "continue: 1 unexpected data bytes"),
        BAD("replycode inner nul", "\0\0\0\x06y55\0 x", "contains a NUL"),
        BAD("replycode empty", "\0\0\0\x02y\0", "empty text"),
        BAD("header no value", "\0\0\0\x03hX\0", "header value"),
        BAD("header unterminated", "\0\0\0\x05hX\0ab", "header value"),
        BAD("header empty name", "\0\0\0\x04h\0v\0", "empty header name"),
        BAD("insert header short index", "\0\0\0\x03i\0\0", "too short for the index"),
        BAD("change header no strings", "\0\0\0\x05m\0\0\0\x01", "header name"),
        BAD("add rcpt unterminated", "\0\0\0\x03+ab", "unterminated address"),
        BAD("add rcpt extra", "\0\0\0\x05+a\0b\0", "add rcpt: 2 unexpected data bytes"),
        BAD("delete rcpt empty", "\0\0\0\x01-", "missing or unterminated address"),
        BAD("add rcpt par bad args",
            "\0\0\0\x05"
            "2a\0bc",
            "unterminated ESMTP arguments"),
        BAD("chgfrom three strings",
            "\0\0\0\x07"
            "ea\0b\0c\0",
            "unexpected data bytes"),
        BAD("optneg short", "\0\0\0\x09O\0\0\0\x06\0\0\0\0", "packet too short"),
        BAD("optneg list stage truncated", "\0\0\0\x0fO\0\0\0\x06\0\0\0\0\0\0\0\0\0\0",
            "truncated macro list stage"),
        BAD("optneg list unterminated", "\0\0\0\x13O\0\0\0\x06\0\0\0\0\0\0\0\0\0\0\0\0ab",
            "unterminated macro list"),
};

START_TEST(test_decode)
{
	const dec_case *c = &dec_cases[_i];
	mproto_reply r;
	strbuf err = STRBUF_INIT;
	int rc;

	mproto_reply_init(&r);
	/* Decode garbage first: the reply object must be reusable after errors. */
	(void)mproto_decode_reply((const unsigned char *)"\0\0\0\x01Z", 5, &r, NULL);
	rc = mproto_decode_reply((const unsigned char *)c->bytes, c->len, &r, &err);
	if (!c->ok) {
		ck_assert_msg(rc == -1, "%s: accepted", c->name);
		ck_assert_msg(strstr(strbuf_str(&err), c->err) != NULL,
		              "%s: error \"%s\" lacks \"%s\"", c->name, strbuf_str(&err),
		              c->err);
	} else {
		ck_assert_msg(rc == 0, "%s: rejected: %s", c->name, strbuf_str(&err));
		ck_assert_int_eq(r.cmd, c->cmd);
		if (c->text)
			ck_assert_str_eq(r.text, c->text);
		if (c->hname) {
			ck_assert_str_eq(r.name, c->hname);
			ck_assert_str_eq(r.value, c->hvalue);
		}
		if (c->addr)
			ck_assert_str_eq(r.addr, c->addr);
		if (c->args)
			ck_assert_str_eq(r.args, c->args);
		else
			ck_assert_ptr_null(r.args);
		ck_assert_uint_eq(r.index, c->index);
		if (c->body_len >= 0) {
			ck_assert_uint_eq(r.body_len, (size_t)c->body_len);
			ck_assert(memcmp(r.body, c->bytes + 5, r.body_len) == 0);
		}
	}
	mproto_reply_free(&r);
	strbuf_free(&err);
}
END_TEST

/* Negotiation replies, with and without macro lists. */
START_TEST(test_decode_optneg)
{
	static const char plain[] = "\0\0\0\x0dO\0\0\0\x06\0\0\0\x01\0\0\0\xc2";
	static const char lists[] = "\0\0\0\x39O\0\0\0\x06\0\0\x01\xff\0\0\0\0"
	                            "\0\0\0\0j {stress}\0"
	                            "\0\0\0\x05i {x}\0"
	                            "\0\0\0\x09whatever\0"
	                            "\0\0\0\x05i\0";
	mproto_reply r;
	strbuf err = STRBUF_INIT;

	mproto_reply_init(&r);
	ck_assert_int_eq(
	        mproto_decode_reply((const unsigned char *)plain, LEN(plain), &r, &err),
	        0);
	ck_assert_int_eq(r.cmd, MPROTO_R_OPTNEG);
	ck_assert_uint_eq(r.version, 6);
	ck_assert_uint_eq(r.actions, PROTO_F_ADDHDRS);
	ck_assert_uint_eq(r.protocol, PROTO_P_NOHELO | PROTO_P_NOEOH | PROTO_P_NR_HDR);
	for (int i = 0; i < PROTO_M_COUNT; i++)
		ck_assert_ptr_null(r.macros[i]);
	ck_assert_uint_eq(r.ignored_lists, 0);

	ck_assert_msg(mproto_decode_reply((const unsigned char *)lists, LEN(lists), &r,
	                                  &err) == 0,
	              "%s", strbuf_str(&err));
	ck_assert_uint_eq(r.actions, PROTO_F_ALL);
	ck_assert_uint_eq(r.protocol, 0);
	ck_assert_str_eq(r.macros[PROTO_M_CONNECT], "j {stress}");
	ck_assert_str_eq(r.macros[PROTO_M_EOM], "i"); /* a repeat replaces */
	ck_assert_ptr_null(r.macros[PROTO_M_HELO]);
	ck_assert_uint_eq(r.ignored_lists, 1);
	mproto_reply_free(&r);
	strbuf_free(&err);
}
END_TEST

/* Every prefix of a valid packet is rejected, never read past. */
START_TEST(test_decode_prefixes)
{
	static const char pkt[] = "\0\0\0\x0bi\0\0\0\x02X-A\0v\0";
	mproto_reply r;

	mproto_reply_init(&r);
	for (size_t n = 0; n < LEN(pkt); n++) {
		unsigned char *copy = ms_xmalloc(n + 1); /* exact size for ASan */

		memcpy(copy, pkt, n);
		ck_assert_int_eq(mproto_decode_reply(copy, n, &r, NULL), -1);
		free(copy);
	}
	ck_assert_int_eq(
	        mproto_decode_reply((const unsigned char *)pkt, LEN(pkt), &r, NULL), 0);
	mproto_reply_free(&r);
}
END_TEST

START_TEST(test_frame)
{
	static const unsigned char two[] = {0, 0, 0, 1, 'c', 0, 0, 0, 2, 'y'};
	size_t n = 0;
	strbuf err = STRBUF_INIT;

	ck_assert_int_eq(mproto_frame(two, 3, MPROTO_MAX_PACKET, &n, &err), 0);
	ck_assert_int_eq(mproto_frame(two, 4, MPROTO_MAX_PACKET, &n, &err), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(mproto_frame(two, sizeof two, MPROTO_MAX_PACKET, &n, &err), 1);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(mproto_frame(two + 5, 5, MPROTO_MAX_PACKET, &n, &err), 0);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(mproto_frame(two + 5, 5, 1, &n, &err), MPROTO_ERR_PROTO);
	ck_assert_ptr_nonnull(strstr(strbuf_str(&err), "exceeds the limit"));
	strbuf_free(&err);
}
END_TEST

/* ---- SMTP reply text as Postfix checks it ---------------------------- */

static const struct {
	const char *text;
	int ok;
} text_cases[] = {
        {"550 5.7.1 Go away", 1},
        {"451 4.3.0 try later", 1},
        {"550 no enhanced code", 1},
        {"421 ", 1},
        {"550-5.7.1 first\r\n550 5.7.1 second", 1},
        {"", 0},
        {"550", 0},
        {"250 2.0.0 ok", 0},
        {"650 x", 0},
        {"5x0 x", 0},
        {"550x", 0},
        {"550 4.7.1 mixed classes", 0},
        {"521 4.7.1 mixed classes", 0},
        {"550-a\r\n550-b", 0},
        {"550 a\r\n550 b", 0},
        {"550-a\n550 b", 0},
        {"550 a\r\n", 0},
};

START_TEST(test_reply_text)
{
	strbuf err = STRBUF_INIT;
	int rc = mproto_reply_text_check(text_cases[_i].text, &err);

	ck_assert_msg((rc == 0) == text_cases[_i].ok, "\"%s\": got %d (%s)",
	              text_cases[_i].text, rc, strbuf_str(&err));
	strbuf_free(&err);
}
END_TEST

/* ---- socket specs ------------------------------------------------------- */

/* The syntax is sockspec's (check_sockspec); a client adds two rules. */
static const struct {
	const char *spec;
	int family; /* 0: refused */
	const char *why;
} spec_cases[] = {
        {"unix:/run/m.sock", AF_UNIX, ""},
        {"inet:8890@127.0.0.1", AF_INET, ""},
        {"inet:127.0.0.1:8890", AF_INET, ""}, /* Postfix's spelling */
        {"inet:[::1]:8890", AF_INET6, ""},
        {"fd:3", 0,
         "bad socket 'fd:3': a client connects to a unix: or inet: socket, not to "
         "fd:N"},
        {"inet:0", 0, "bad socket 'inet:0': the port must be a number 1..65535"},
};

START_TEST(test_conn_spec)
{
	sockspec ss;
	strbuf err = STRBUF_INIT;
	bool ok = mproto_conn_spec(spec_cases[_i].spec, &ss, &err);

	ck_assert_msg(ok == (spec_cases[_i].family != 0), "%s: %s", spec_cases[_i].spec,
	              strbuf_str(&err));
	ck_assert_str_eq(strbuf_str(&err), spec_cases[_i].why);
	if (ok)
		ck_assert_int_eq(ss.family, spec_cases[_i].family);
	strbuf_free(&err);
}
END_TEST

/* ---- names -------------------------------------------------------------- */

START_TEST(test_names)
{
	strbuf b = STRBUF_INIT;
	static const unsigned char pkt[] = {0, 0, 0, 4, 'H', 'a', 0, 1};

	mproto_protocol_names(&b, PROTO_P_NOHELO | PROTO_P_NR_HDR | PROTO_P_NOEOH);
	ck_assert_str_eq(strbuf_str(&b), "NOHELO NOEOH NR_HDR");
	strbuf_reset(&b);
	mproto_protocol_names(&b, PROTO_P_MDS_1M | 0x40000000u | PROTO_P_HDR_LEADSPC);
	ck_assert_str_eq(strbuf_str(&b), "HDR_LEADSPC MDS_1M 0x40000000");
	strbuf_reset(&b);
	mproto_action_names(&b, PROTO_F_ADDHDRS | PROTO_F_SETSYMLIST);
	ck_assert_str_eq(strbuf_str(&b), "ADDHDRS SETSYMLIST");
	strbuf_reset(&b);
	mproto_dump(&b, pkt, sizeof pkt, 0, 100);
	ck_assert_str_eq(strbuf_str(&b), "H [helo] 3 bytes: a\\0\\x01");
	strbuf_reset(&b);
	mproto_dump(&b, pkt, sizeof pkt, 0, 1);
	ck_assert_str_eq(strbuf_str(&b), "H [helo] 3 bytes: a...");
	ck_assert_str_eq(mproto_reply_name('y'), "reply code");
	ck_assert_str_eq(mproto_command_name('L'), "header");
	ck_assert_str_eq(mproto_stage_name(PROTO_M_EOH), "eoh");
	ck_assert_ptr_null(mproto_reply_name('Z'));
	ck_assert_ptr_null(mproto_stage_name(PROTO_M_COUNT));
	strbuf_free(&b);
}
END_TEST

/* ---- connection over a real unix socket ---------------------------------- */

typedef struct {
	char dir[96];
	char path[112];
	char spec[128];
	int lfd;
} listener;

static void
listen_unix(listener *l)
{
	struct sockaddr_un sun;
	const char *tmp = getenv("TMPDIR");

	snprintf(l->dir, sizeof l->dir, "%s/check_mproto.XXXXXX",
	         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(l->dir));
	snprintf(l->path, sizeof l->path, "%s/s", l->dir);
	snprintf(l->spec, sizeof l->spec, "unix:%s", l->path);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(l->path), sizeof sun.sun_path);
	strcpy(sun.sun_path, l->path);
	l->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(l->lfd, 0);
	ck_assert_int_eq(bind(l->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(l->lfd, 4), 0);
}

static void
unlisten(listener *l)
{
	close(l->lfd);
	unlink(l->path);
	rmdir(l->dir);
}

START_TEST(test_conn)
{
	listener l;
	strbuf err = STRBUF_INIT, pkt = STRBUF_INIT, out = STRBUF_INIT;
	mproto_reply r;
	mproto_conn *c;
	char buf[64];
	int sfd;

	memset(&l, 0, sizeof l);
	listen_unix(&l);
	mproto_reply_init(&r);
	c = mproto_conn_open(l.spec, 2000, &err);
	ck_assert_msg(c != NULL, "%s", strbuf_str(&err));
	sfd = accept(l.lfd, NULL, NULL);
	ck_assert_int_ge(sfd, 0);

	/* MTA to milter: bytes arrive as encoded. */
	mproto_put_cmd(&out, MPROTO_C_ABORT);
	ck_assert_int_eq(mproto_conn_write(c, out.s, out.len, &err), MPROTO_OK);
	ck_assert_int_eq(read(sfd, buf, sizeof buf), 5);
	ck_assert(memcmp(buf,
	                 "\0\0\0\x01"
	                 "A",
	                 5) == 0);

	/* Milter to MTA: two replies in one write, then a bad length. */
	ck_assert_int_eq(write(sfd, "\0\0\0\x01p\0\0\0\x04y4\0\0", 13), 13);
	ck_assert_int_eq(mproto_conn_read_reply(c, &pkt, &r, &err), MPROTO_OK);
	ck_assert_int_eq(r.cmd, 'p');
	ck_assert_int_eq(mproto_conn_read_reply(c, &pkt, &r, &err), MPROTO_ERR_PROTO);
	ck_assert_ptr_nonnull(strstr(strbuf_str(&err), "NUL"));

	/* Timeout, then an oversized length, then EOF. */
	mproto_conn_set_timeout(c, 50);
	ck_assert_int_eq(mproto_conn_read(c, &pkt, &err), MPROTO_ERR_TIMEOUT);
	ck_assert_int_eq(write(sfd, "\x01\0\0\0", 4), 4);
	ck_assert_int_eq(mproto_conn_read(c, &pkt, &err), MPROTO_ERR_PROTO);
	close(sfd);
	mproto_conn_close(c);

	c = mproto_conn_open(l.spec, 2000, &err);
	ck_assert_ptr_nonnull(c);
	sfd = accept(l.lfd, NULL, NULL);
	ck_assert_int_eq(write(sfd, "\0\0\0\x05", 4), 4);
	close(sfd);
	ck_assert_int_eq(mproto_conn_read(c, &pkt, &err), MPROTO_ERR_EOF);
	ck_assert_str_eq(strbuf_str(&err),
	                 "milter closed the connection in the middle of a packet");
	ck_assert_int_eq(mproto_conn_write(c, out.s, out.len, &err), MPROTO_ERR_EOF);
	mproto_conn_close(c);

	unlisten(&l);
	ck_assert_ptr_null(mproto_conn_open(l.spec, 2000, &err));
	ck_assert_ptr_nonnull(strstr(strbuf_str(&err), "No such file"));
	mproto_reply_free(&r);
	strbuf_free(&err);
	strbuf_free(&pkt);
	strbuf_free(&out);
}
END_TEST

static Suite *
mproto_suite(void)
{
	Suite *s = suite_create("mproto");
	TCase *tc = tcase_create("codec");

	tcase_add_loop_test(tc, test_encode, 0, sizeof enc_cases / sizeof enc_cases[0]);
	tcase_add_test(tc, test_encode_too_big);
	tcase_add_loop_test(tc, test_decode, 0, sizeof dec_cases / sizeof dec_cases[0]);
	tcase_add_test(tc, test_decode_optneg);
	tcase_add_test(tc, test_decode_prefixes);
	tcase_add_test(tc, test_frame);
	tcase_add_loop_test(tc, test_reply_text, 0,
	                    sizeof text_cases / sizeof text_cases[0]);
	tcase_add_loop_test(tc, test_conn_spec, 0,
	                    sizeof spec_cases / sizeof spec_cases[0]);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("conn");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_conn);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(mproto_suite());
}
