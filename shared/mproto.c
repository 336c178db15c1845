/* mproto - the MTA side of the milter protocol; see mproto.h. */
#include "config.h"

#include "mproto.h"
#include "budget.h"
#include "names.h"

#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- Names ------------------------------------------------------------- */

typedef struct {
	int code;
	const char *name;
} code_name;

static const code_name command_names[] = {
        {MPROTO_C_ABORT, "abort"},     {MPROTO_C_BODY, "body"},
        {MPROTO_C_CONNECT, "connect"}, {MPROTO_C_MACRO, "macro"},
        {MPROTO_C_EOM, "eom"},         {MPROTO_C_HELO, "helo"},
        {MPROTO_C_QUIT_NC, "quit-nc"}, {MPROTO_C_HEADER, "header"},
        {MPROTO_C_MAIL, "mail"},       {MPROTO_C_EOH, "eoh"},
        {MPROTO_C_OPTNEG, "optneg"},   {MPROTO_C_QUIT, "quit"},
        {MPROTO_C_RCPT, "rcpt"},       {MPROTO_C_DATA, "data"},
        {MPROTO_C_UNKNOWN, "unknown"}, {0, NULL},
};

static const code_name reply_names[] = {
        {MPROTO_R_ADDRCPT, "add rcpt"},
        {MPROTO_R_DELRCPT, "delete rcpt"},
        {MPROTO_R_ADDRCPT_PAR, "add rcpt with args"},
        {MPROTO_R_SHUTDOWN, "shutdown"},
        {MPROTO_R_ACCEPT, "accept"},
        {MPROTO_R_REPLBODY, "replace body"},
        {MPROTO_R_CONTINUE, "continue"},
        {MPROTO_R_DISCARD, "discard"},
        {MPROTO_R_CHGFROM, "change from"},
        {MPROTO_R_CONN_FAIL, "connection failure"},
        {MPROTO_R_ADDHEADER, "add header"},
        {MPROTO_R_INSHEADER, "insert header"},
        {MPROTO_R_CHGHEADER, "change header"},
        {MPROTO_R_PROGRESS, "progress"},
        {MPROTO_R_QUARANTINE, "quarantine"},
        {MPROTO_R_REJECT, "reject"},
        {MPROTO_R_SKIP, "skip"},
        {MPROTO_R_TEMPFAIL, "tempfail"},
        {MPROTO_R_REPLYCODE, "reply code"},
        {MPROTO_R_OPTNEG, "negotiate"},
        {0, NULL},
};

static const char *const macro_stage_names[PROTO_M_COUNT] = {
        "connect", "helo", "mail", "rcpt", "data", "eom", "eoh",
};

static const char *const protocol_flag_names[32] = {
        "NOCONNECT", "NOHELO",  "NOMAIL",      "NORCPT",  "NOBODY",   "NOHDRS",
        "NOEOH",     "NR_HDR",  "NOUNKNOWN",   "NODATA",  "SKIP",     "RCPT_REJ",
        "NR_CONN",   "NR_HELO", "NR_MAIL",     "NR_RCPT", "NR_DATA",  "NR_UNKN",
        "NR_EOH",    "NR_BODY", "HDR_LEADSPC", NULL,      NULL,       NULL,
        NULL,        NULL,      NULL,          NULL,      "MDS_256K", "MDS_1M",
        NULL,        NULL,
};

static const char *const action_flag_names[32] = {
        "ADDHDRS",    "CHGBODY", "ADDRCPT",     "DELRCPT",    "CHGHDRS",
        "QUARANTINE", "CHGFROM", "ADDRCPT_PAR", "SETSYMLIST",
};

static const char *
lookup(const code_name *t, int code)
{
	for (; t->name != NULL; t++)
		if (t->code == code)
			return t->name;
	return NULL;
}

const char *
mproto_command_name(int cmd)
{
	return lookup(command_names, cmd);
}

const char *
mproto_reply_name(int cmd)
{
	return lookup(reply_names, cmd);
}

const char *
mproto_stage_name(int stage)
{
	if (stage < 0 || stage >= PROTO_M_COUNT)
		return NULL;
	return macro_stage_names[stage];
}

static void
flag_names(strbuf *out, uint32_t bits, const char *const names[32])
{
	int first = 1;

	for (int i = 0; i < 32; i++) {
		uint32_t bit = (uint32_t)1 << i;

		if ((bits & bit) == 0)
			continue;
		if (!first)
			strbuf_putc(out, ' ');
		first = 0;
		if (names[i] != NULL)
			strbuf_puts(out, names[i]);
		else
			strbuf_printf(out, "0x%08x", (unsigned)bit);
	}
}

void
mproto_protocol_names(strbuf *out, uint32_t protocol)
{
	flag_names(out, protocol, protocol_flag_names);
}

void
mproto_action_names(strbuf *out, uint32_t actions)
{
	flag_names(out, actions, action_flag_names);
}

void
mproto_dump(strbuf *out, const unsigned char *pkt, size_t len, int from_milter,
            size_t max_bytes)
{
	const char *name;
	size_t i, n;

	if (len < MPROTO_HDR_LEN + 1) {
		strbuf_printf(out, "(short packet, %zu bytes)", len);
		return;
	}
	strbuf_printf(out, "%c", pkt[4] >= 0x20 && pkt[4] < 0x7f ? pkt[4] : '?');
	name = from_milter ? mproto_reply_name(pkt[4]) : mproto_command_name(pkt[4]);
	if (name != NULL)
		strbuf_printf(out, " [%s]", name);
	n = len - MPROTO_HDR_LEN - 1;
	strbuf_printf(out, " %zu bytes", n);
	if (n == 0)
		return;
	strbuf_puts(out, ": ");
	for (i = 0; i < n && i < max_bytes; i++) {
		unsigned char c = pkt[MPROTO_HDR_LEN + 1 + i];

		if (c == '\0')
			strbuf_puts(out, "\\0");
		else if (c == '\\')
			strbuf_puts(out, "\\\\");
		else if (c >= 0x20 && c < 0x7f)
			strbuf_putc(out, (char)c);
		else
			strbuf_printf(out, "\\x%02x", c);
	}
	if (i < n)
		strbuf_puts(out, "...");
}

/* ---- Encoding ---------------------------------------------------------- */

/*
 * A packet is built as: begin (placeholder length + command), then pieces,
 * then end, which patches the length, or rolls everything back when the
 * packet would exceed MPROTO_MAX_PACKET.
 */
typedef struct {
	strbuf *out;
	size_t start;
	int too_big;
} packet;

static packet
begin(strbuf *out, int cmd)
{
	packet p = {out, out->len, 0};
	unsigned char head[MPROTO_HDR_LEN + 1] = {0, 0, 0, 0, (unsigned char)cmd};

	strbuf_append(out, head, sizeof head);
	return p;
}

static void
piece(packet *p, const void *data, size_t len)
{
	size_t have = p->out->len - p->start - MPROTO_HDR_LEN;

	if (p->too_big || len > MPROTO_MAX_PACKET - have) {
		p->too_big = 1;
		return;
	}
	strbuf_append(p->out, data, len);
}

static void
piece_str(packet *p, const char *s)
{
	piece(p, s, strlen(s) + 1);
}

static int
end(packet *p)
{
	if (p->too_big) {
		p->out->len = p->start;
		p->out->s[p->start] = '\0';
		return -1;
	}
	names_put32((unsigned char *)p->out->s + p->start,
	      (uint32_t)(p->out->len - p->start - MPROTO_HDR_LEN));
	return 0;
}

int
mproto_put_packet(strbuf *out, int cmd, const void *data, size_t len)
{
	packet p = begin(out, cmd);

	piece(&p, data, len);
	return end(&p);
}

int
mproto_put_cmd(strbuf *out, int cmd)
{
	return mproto_put_packet(out, cmd, NULL, 0);
}

int
mproto_put_optneg(strbuf *out, uint32_t version, uint32_t actions, uint32_t protocol)
{
	unsigned char d[12];

	names_put32(d, version);
	names_put32(d + 4, actions);
	names_put32(d + 8, protocol);
	return mproto_put_packet(out, MPROTO_C_OPTNEG, d, sizeof d);
}

int
mproto_put_macros(strbuf *out, int cmd, const mproto_macro *m, size_t n)
{
	unsigned char c = (unsigned char)cmd;
	packet p = begin(out, MPROTO_C_MACRO);

	piece(&p, &c, 1);
	for (size_t i = 0; i < n; i++) {
		piece_str(&p, m[i].name);
		piece_str(&p, m[i].value);
	}
	return end(&p);
}

int
mproto_put_connect(strbuf *out, const char *hostname, int family, unsigned port,
                   const char *addr)
{
	unsigned char fam = (unsigned char)family;
	packet p;

	if (port > 65535)
		return -1;
	p = begin(out, MPROTO_C_CONNECT);
	piece_str(&p, hostname);
	piece(&p, &fam, 1);
	if (family != MPROTO_FAM_UNKNOWN) {
		unsigned char nport[2] = {(unsigned char)(port >> 8),
		                          (unsigned char)port};

		piece(&p, nport, sizeof nport);
		piece_str(&p, addr != NULL ? addr : "");
	}
	return end(&p);
}

int
mproto_put_helo(strbuf *out, const char *helo)
{
	packet p = begin(out, MPROTO_C_HELO);

	piece_str(&p, helo);
	return end(&p);
}

static int
put_argv(strbuf *out, int cmd, const char *const *argv)
{
	packet p = begin(out, cmd);

	for (; *argv != NULL; argv++)
		piece_str(&p, *argv);
	return end(&p);
}

int
mproto_put_mail(strbuf *out, const char *const *argv)
{
	return put_argv(out, MPROTO_C_MAIL, argv);
}

int
mproto_put_rcpt(strbuf *out, const char *const *argv)
{
	return put_argv(out, MPROTO_C_RCPT, argv);
}

int
mproto_put_header(strbuf *out, const char *name, const char *value)
{
	packet p = begin(out, MPROTO_C_HEADER);

	piece_str(&p, name);
	piece_str(&p, value);
	return end(&p);
}

int
mproto_put_body(strbuf *out, const void *data, size_t len)
{
	return mproto_put_packet(out, MPROTO_C_BODY, data, len);
}

int
mproto_put_unknown(strbuf *out, const char *smtp_command)
{
	packet p = begin(out, MPROTO_C_UNKNOWN);

	piece_str(&p, smtp_command);
	return end(&p);
}

/* ---- Decoding ---------------------------------------------------------- */

static void seterr(strbuf *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
seterr(strbuf *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	strbuf_reset(err);
	va_start(ap, fmt);
	strbuf_vprintf(err, fmt, ap);
	va_end(ap);
}

void
mproto_reply_init(mproto_reply *r)
{
	memset(r, 0, sizeof *r);
	strbuf_init(&r->store);
}

void
mproto_reply_free(mproto_reply *r)
{
	strbuf_free(&r->store);
	mproto_reply_init(r);
}

int
mproto_frame(const unsigned char *buf, size_t len, uint32_t max_len, size_t *pkt_len,
             strbuf *err)
{
	uint32_t n;

	if (len < MPROTO_HDR_LEN)
		return 0;
	n = names_get32(buf);
	if (n == 0) {
		seterr(err, "bad packet length 0");
		return MPROTO_ERR_PROTO;
	}
	if (n > max_len) {
		seterr(err, "packet length %lu exceeds the limit of %lu bytes",
		       (unsigned long)n, (unsigned long)max_len);
		return MPROTO_ERR_PROTO;
	}
	*pkt_len = (size_t)n + MPROTO_HDR_LEN;
	return len - MPROTO_HDR_LEN >= n ? 1 : 0;
}

/*
 * A cursor over the data part of a packet (held in r->store, which always
 * has a NUL after the last data byte).
 */
typedef struct {
	const char *p;
	size_t left;
} cursor;

/* Take a NUL-terminated string; NULL when there is none. */
static const char *
take_str(cursor *c)
{
	const char *s = c->p;
	const char *nul;

	if (c->left == 0 || (nul = memchr(s, '\0', c->left)) == NULL)
		return NULL;
	c->left -= (size_t)(nul - s) + 1;
	c->p = nul + 1;
	return s;
}

static int
take32(cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = names_get32((const unsigned char *)c->p);
	c->p += 4;
	c->left -= 4;
	return 0;
}

/* Text that may lack its NUL (y, q): one trailing NUL allowed, no others. */
static int
take_text(cursor *c, const char **out, strbuf *err, const char *what)
{
	size_t n = c->left;

	if (n > 0 && c->p[n - 1] == '\0')
		n--;
	if (memchr(c->p, '\0', n) != NULL) {
		seterr(err, "%s contains a NUL byte", what);
		return -1;
	}
	*out = c->p; /* store keeps a NUL after the data */
	c->p += c->left;
	c->left = 0;
	return 0;
}

static int
decode_header_edit(mproto_reply *r, cursor *c, int with_index, strbuf *err)
{
	const char *what = mproto_reply_name(r->cmd);

	if (with_index && take32(c, &r->index) < 0) {
		seterr(err, "%s: packet too short for the index", what);
		return -1;
	}
	if ((r->name = take_str(c)) == NULL || (r->value = take_str(c)) == NULL) {
		seterr(err, "%s: missing or unterminated header %s", what,
		       r->name == NULL ? "name" : "value");
		return -1;
	}
	if (r->name[0] == '\0') {
		seterr(err, "%s: empty header name", what);
		return -1;
	}
	return 0;
}

static int
decode_address(mproto_reply *r, cursor *c, int args_allowed, strbuf *err)
{
	const char *what = mproto_reply_name(r->cmd);

	if ((r->addr = take_str(c)) == NULL) {
		seterr(err, "%s: missing or unterminated address", what);
		return -1;
	}
	if (args_allowed && c->left > 0 && (r->args = take_str(c)) == NULL) {
		seterr(err, "%s: unterminated ESMTP arguments", what);
		return -1;
	}
	return 0;
}

static int
decode_optneg(mproto_reply *r, cursor *c, strbuf *err)
{
	if (take32(c, &r->version) < 0 || take32(c, &r->actions) < 0 ||
	    take32(c, &r->protocol) < 0) {
		seterr(err, "negotiate: packet too short (%zu data bytes, need 12)",
		       c->left);
		return -1;
	}
	while (c->left > 0) {
		uint32_t stage;
		const char *list;

		if (take32(c, &stage) < 0) {
			seterr(err, "negotiate: truncated macro list stage");
			return -1;
		}
		if ((list = take_str(c)) == NULL) {
			seterr(err,
			       "negotiate: missing or unterminated macro list "
			       "for stage %lu",
			       (unsigned long)stage);
			return -1;
		}
		if (stage < PROTO_M_COUNT)
			r->macros[stage] = list; /* a repeat replaces, as in Postfix */
		else
			r->ignored_lists++;
	}
	return 0;
}

int
mproto_decode_reply(const unsigned char *buf, size_t len, mproto_reply *out, strbuf *err)
{
	size_t pkt_len = 0;
	strbuf store;
	cursor c;
	int rc;
	const char *what;

	/* Reset the reply but keep its memory. */
	store = out->store;
	memset(out, 0, sizeof *out);
	out->store = store;
	strbuf_reset(&out->store);

	if (buf == NULL || len < MPROTO_HDR_LEN + 1) {
		seterr(err, "truncated packet (%zu bytes)", buf == NULL ? 0 : len);
		return -1;
	}
	rc = mproto_frame(buf, len, MPROTO_MAX_PACKET, &pkt_len, err);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		seterr(err, "truncated packet: length field says %lu, have %zu bytes",
		       (unsigned long)names_get32(buf), len - MPROTO_HDR_LEN);
		return -1;
	}
	if (pkt_len != len) {
		seterr(err, "%zu bytes of trailing garbage after the packet",
		       len - pkt_len);
		return -1;
	}
	out->cmd = buf[MPROTO_HDR_LEN];
	if ((what = mproto_reply_name(out->cmd)) == NULL) {
		if (out->cmd >= 0x20 && out->cmd < 0x7f)
			seterr(err, "unknown reply code '%c'", out->cmd);
		else
			seterr(err, "unknown reply code 0x%02x", out->cmd);
		return -1;
	}
	strbuf_append(&out->store, buf + MPROTO_HDR_LEN + 1, len - MPROTO_HDR_LEN - 1);
	c.p = strbuf_str(&out->store);
	c.left = out->store.len;

	switch (out->cmd) {
	case MPROTO_R_ACCEPT:
	case MPROTO_R_CONTINUE:
	case MPROTO_R_DISCARD:
	case MPROTO_R_REJECT:
	case MPROTO_R_TEMPFAIL:
	case MPROTO_R_SKIP:
	case MPROTO_R_PROGRESS:
	case MPROTO_R_SHUTDOWN:
	case MPROTO_R_CONN_FAIL:
		break;
	case MPROTO_R_REPLYCODE:
		if (take_text(&c, &out->text, err, "reply code text") < 0)
			return -1;
		if (out->text[0] == '\0') {
			seterr(err, "reply code: empty text");
			return -1;
		}
		break;
	case MPROTO_R_QUARANTINE:
		if (take_text(&c, &out->text, err, "quarantine reason") < 0)
			return -1;
		break;
	case MPROTO_R_ADDHEADER:
		if (decode_header_edit(out, &c, 0, err) < 0)
			return -1;
		break;
	case MPROTO_R_INSHEADER:
	case MPROTO_R_CHGHEADER:
		if (decode_header_edit(out, &c, 1, err) < 0)
			return -1;
		break;
	case MPROTO_R_ADDRCPT:
	case MPROTO_R_DELRCPT:
		if (decode_address(out, &c, 0, err) < 0)
			return -1;
		break;
	case MPROTO_R_ADDRCPT_PAR:
	case MPROTO_R_CHGFROM:
		if (decode_address(out, &c, 1, err) < 0)
			return -1;
		break;
	case MPROTO_R_REPLBODY:
		out->body = (const unsigned char *)c.p;
		out->body_len = c.left;
		c.left = 0;
		break;
	case MPROTO_R_OPTNEG:
		if (decode_optneg(out, &c, err) < 0)
			return -1;
		break;
	}
	if (c.left > 0) {
		seterr(err, "%s: %zu unexpected data bytes", what, c.left);
		return -1;
	}
	return 0;
}

/* ---- SMTP reply text ---------------------------------------------------- */

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

int
mproto_reply_text_check(const char *text, strbuf *err)
{
	const char *line = text;
	int lineno = 1;

	for (;;) {
		size_t n = strcspn(line, "\r\n");
		int last = line[n] == '\0';

		if (n < 4 || (line[0] != '4' && line[0] != '5') || !is_digit(line[1]) ||
		    !is_digit(line[2])) {
			seterr(err, "line %d: expected a 4xx or 5xx code", lineno);
			return -1;
		}
		if (line[3] != (last ? ' ' : '-')) {
			seterr(err, "line %d: code must be followed by '%c'", lineno,
			       last ? ' ' : '-');
			return -1;
		}
		if (n > 4 && is_digit(line[4]) && line[4] != line[0]) {
			seterr(err,
			       "line %d: enhanced status code class %c differs from "
			       "reply code class %c",
			       lineno, line[4], line[0]);
			return -1;
		}
		if (last)
			return 0;
		if (line[n] != '\r' || line[n + 1] != '\n') {
			seterr(err, "line %d: lines must be separated by CRLF", lineno);
			return -1;
		}
		line += n + 2;
		lineno++;
	}
}

/* ---- Connection ----------------------------------------------------------- */

/*
 * The socket blocks, with SO_RCVTIMEO/SO_SNDTIMEO as the
 * per-operation timeout: one system call per write and usually one per
 * reply, which keeps a load generator cheaper than the milter it drives.
 * Reads go through a buffer, so a reply costs one recv() however it is split.
 */
struct mproto_conn {
	int fd;
	int timeout_ms;
	size_t in_off, in_len; /* unread bytes are in[in_off .. in_len) */
	unsigned char in[16384];
};

/* strerror() may share a buffer between threads; strerror_r() does not. */
typedef struct {
	char buf[128];
} errbuf;

static const char *
gnu_text(const char *text, errbuf *b)
{
	(void)b;
	return text;
}

static const char *
xsi_text(int rc, errbuf *b)
{
	return rc == 0 ? b->buf : "unknown error";
}

/* Works with either strerror_r(): GNU's returns the text, XSI's an int. */
#define errtext(e, b)                                                                    \
	_Generic(strerror_r((e), (b)->buf, sizeof(b)->buf), char *: gnu_text,           \
		 int: xsi_text)(strerror_r((e), (b)->buf, sizeof(b)->buf), (b))

bool
mproto_conn_spec(const char *text, sockspec *ss, strbuf *err)
{
	strbuf_reset(err);
	if (!sockspec_parse(text, SOCKSPEC_POSTFIX, ss, err))
		return false;
	if (ss->family != AF_UNSPEC)
		return true;
	seterr(err, "bad socket '%s': a client connects to a unix: or inet: socket, not to fd:N",
	       text);
	return false;
}

/* Wait for events until deadline; 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd pfd = {fd, events, 0};
		long long left = budget_left(deadline);
		int n;

		if (left <= 0)
			return 0;
		n = poll(&pfd, 1, left > 1000000000 ? 1000000000 : (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Blocking I/O bounded by the kernel: 0, or -1 with errno. */
static int
set_io_timeout(int fd, int timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
		return -1;
	return 0;
}

/*
 * A blocking connect, bounded by SO_SNDTIMEO: for a unix socket whose listen
 * queue is full the kernel waits for room (no retry loop that would burn CPU
 * with thousands of clients), and a TCP handshake waits for its SYN-ACK.
 */
static int
connect_fd(int fd, const struct sockaddr *sa, socklen_t salen, int timeout_ms,
           strbuf *err, const char *spec)
{
	long long deadline = budget_deadline(budget_now_ms(), timeout_ms);
	errbuf eb;
	int soerr = 0;
	socklen_t len = sizeof soerr;

	if (set_io_timeout(fd, timeout_ms) < 0) {
		seterr(err, "%s: socket options: %s", spec, errtext(errno, &eb));
		return MPROTO_ERR_IO;
	}
	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno == EAGAIN || errno == EINPROGRESS) {
		seterr(err, "connect to %s: timed out after %d ms", spec, timeout_ms);
		return MPROTO_ERR_TIMEOUT;
	}
	if (errno != EINTR) {
		seterr(err, "connect to %s: %s", spec, errtext(errno, &eb));
		return MPROTO_ERR_IO;
	}
	/* Interrupted: the handshake goes on; wait for its outcome. */
	switch (wait_fd(fd, POLLOUT, deadline)) {
	case 0:
		seterr(err, "connect to %s: timed out after %d ms", spec, timeout_ms);
		return MPROTO_ERR_TIMEOUT;
	case -1:
		seterr(err, "connect to %s: poll: %s", spec, errtext(errno, &eb));
		return MPROTO_ERR_IO;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0) {
		seterr(err, "connect to %s: %s", spec, errtext(soerr, &eb));
		return MPROTO_ERR_IO;
	}
	return 0;
}

static int
open_socket(int family, int type)
{
	return socket(family, type | SOCK_CLOEXEC, 0);
}

static int
open_unix(const sockspec *ss, int timeout_ms, const char *spec, strbuf *err)
{
	struct sockaddr_un sun;
	errbuf eb;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, ss->path, sizeof sun.sun_path);
	if ((fd = open_socket(AF_UNIX, SOCK_STREAM)) < 0) {
		seterr(err, "socket: %s", errtext(errno, &eb));
		return -1;
	}
	if (connect_fd(fd, (struct sockaddr *)&sun, sizeof sun, timeout_ms, err, spec) <
	    0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
open_inet(const sockspec *ss, int timeout_ms, const char *spec, strbuf *err)
{
	struct addrinfo *res, *ai;
	errbuf eb;
	int fd = -1, rc;

	if ((rc = sockspec_addrinfo(ss, false, &res)) != 0) {
		seterr(err, "%s: %s", spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = open_socket(ai->ai_family, ai->ai_socktype)) < 0) {
			seterr(err, "socket: %s", errtext(errno, &eb));
			continue;
		}
		if (connect_fd(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms, err, spec) ==
		    0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

mproto_conn *
mproto_conn_open(const char *spec, int timeout_ms, strbuf *err)
{
	sockspec ss;
	mproto_conn *c;
	int fd;

	if (!mproto_conn_spec(spec, &ss, err))
		return NULL;
	if (ss.family == AF_UNIX)
		fd = open_unix(&ss, timeout_ms, spec, err);
	else
		fd = open_inet(&ss, timeout_ms, spec, err);
	if (fd < 0)
		return NULL;
	c = ms_xmalloc(sizeof *c);
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->in_off = c->in_len = 0;
	return c;
}

void
mproto_conn_close(mproto_conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

void
mproto_conn_set_timeout(mproto_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
	(void)set_io_timeout(c->fd, timeout_ms);
}

/* EAGAIN from a blocking socket means SO_*TIMEO expired. */
static int
io_error(const mproto_conn *c, const char *op, strbuf *err)
{
	errbuf eb;

	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		seterr(err, "timed out after %d ms %s the milter", c->timeout_ms,
		       op[0] == 'w' ? "writing to" : "waiting for");
		return MPROTO_ERR_TIMEOUT;
	}
	if (errno == EPIPE || errno == ECONNRESET) {
		seterr(err, "milter closed the connection");
		return MPROTO_ERR_EOF;
	}
	seterr(err, "%s: %s", op, errtext(errno, &eb));
	return MPROTO_ERR_IO;
}

int
mproto_conn_write(mproto_conn *c, const void *buf, size_t len, strbuf *err)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EINTR) {
			return io_error(c, "write", err);
		}
	}
	return MPROTO_OK;
}

/* Append exactly len bytes to b, from the buffer first. */
static int
read_exact(mproto_conn *c, strbuf *b, size_t len, strbuf *err)
{
	while (len > 0) {
		size_t have = c->in_len - c->in_off;
		ssize_t n;

		if (have > 0) {
			size_t take = have < len ? have : len;

			strbuf_append(b, c->in + c->in_off, take);
			c->in_off += take;
			len -= take;
			continue;
		}
		c->in_off = c->in_len = 0;
		n = recv(c->fd, c->in, sizeof c->in, 0);
		if (n > 0) {
			c->in_len = (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			seterr(err, b->len == 0 ? "milter closed the connection"
			                        : "milter closed the connection in the "
			                          "middle of a packet");
			return MPROTO_ERR_EOF;
		}
		if (errno != EINTR)
			return io_error(c, "read", err);
	}
	return MPROTO_OK;
}

int
mproto_conn_read(mproto_conn *c, strbuf *pkt, strbuf *err)
{
	size_t pkt_len = 0;
	int rc;

	strbuf_reset(pkt);
	if ((rc = read_exact(c, pkt, MPROTO_HDR_LEN, err)) != MPROTO_OK)
		return rc;
	rc = mproto_frame((const unsigned char *)pkt->s, pkt->len, MPROTO_MAX_PACKET,
	                  &pkt_len, err);
	if (rc < 0)
		return MPROTO_ERR_PROTO;
	return read_exact(c, pkt, pkt_len - MPROTO_HDR_LEN, err);
}

int
mproto_conn_read_reply(mproto_conn *c, strbuf *pkt, mproto_reply *r, strbuf *err)
{
	int rc = mproto_conn_read(c, pkt, err);

	if (rc != MPROTO_OK)
		return rc;
	if (mproto_decode_reply((const unsigned char *)pkt->s, pkt->len, r, err) < 0)
		return MPROTO_ERR_PROTO;
	return MPROTO_OK;
}
