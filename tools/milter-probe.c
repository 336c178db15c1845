/*
 * milter-probe - play one SMTP transaction against a milter, as Postfix would
 *
 * The MTA side of milter protocol v6: negotiate like Postfix (version 6,
 * actions 0x1ff, protocol 0x1fffff), then connect, helo, mail, rcpt..., data,
 * headers, eoh, body chunks, eom, and the aborts and quit Postfix sends at
 * the end of a transaction and session. Honours what the milter negotiated
 * (SMFIP_NO*, NR_*, SKIP, HDR_LEADSPC, macro lists) and stops where Postfix
 * would stop. Prints one stable line per stage on stdout; see milter-probe(1).
 *
 * Exit: 0 the transaction completed (whatever the verdicts), 1 protocol or
 * I/O error, 2 usage error.
 */
#include "config.h"

#include "mproto.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#define PROG "milter-probe"

enum { EXIT_DONE = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Postfix's default milter_*_macros (mail_params.h, Postfix 3.7). */
static const char *const default_lists[PROTO_M_COUNT] = {
        [PROTO_M_CONNECT] = "j {daemon_name} {daemon_addr} v _",
        [PROTO_M_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} "
                          "{cert_issuer}",
        [PROTO_M_MAIL] = "i {auth_type} {auth_authen} {auth_author} {mail_addr} "
                          "{mail_host} {mail_mailer}",
        [PROTO_M_RCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
        [PROTO_M_DATA] = "i",
        [PROTO_M_EOM] = "i",
        [PROTO_M_EOH] = "i",
};

#define DEFAULT_BODY "This is a test message from milter-probe.\n"
#define MTA_HOSTNAME "probe.example" /* the j macro */

typedef struct {
	int stage;
	char *name;
	char *value;
} macro_def;

typedef struct {
	char *name;
	char *value; /* everything after the colon; folded lines joined by \n */
} header;

typedef struct {
	const char *socket;
	int family;           /* MPROTO_FAM_* */
	char client_addr[64]; /* as sent; "" for 'U' */
	const char *client_name;
	unsigned client_port;
	const char *helo;
	char **from; /* argv: address, then ESMTP args */
	char ***rcpts;
	size_t nrcpt;
	header *hdrs;
	size_t nhdr;
	strbuf body; /* CRLF line ends */
	macro_def *macros;
	size_t nmacro;
	const char *queue_id;
	int timeout_ms;
	bool verbose;
	bool quiet;            /* --bench: no per-stage lines */
	unsigned bench_conc;   /* --bench C,N: C sessions at once */
	unsigned long bench_n; /* ... N transactions in all */
	double bench_secs;     /* --bench C,Ds: or as many as fit in D seconds */
	int stage_delay_ms;    /* --stage-delay: the SMTP client's think time */
	bool bench_vary;       /* --bench-vary-client: a new IPv6 client each time */
	unsigned hold_s;       /* --hold: pause after connect, session open */
	bool cut;              /* --cut-after: close after cut_after bytes */
	size_t cut_after;
	FILE *bench_transcript; /* --bench-transcript: one line per transaction */
} config;

/* What a milter decided for the message. */
typedef enum {
	V_NONE,
	V_ACCEPT,
	V_DISCARD,
	V_QUARANTINE,
	V_REJECT,
	V_TEMPFAIL,
	V_CUT, /* --cut-after: we hung up before any verdict */
	V_SHUTDOWN
} verdict;

static const char *const verdict_names[] = {
        "continue", "accept",   "discard", "quarantine",
        "reject",   "tempfail", "cut",     "shutdown",
};

typedef struct {
	const config *cf;
	mproto_conn *conn;
	bool open;  /* Postfix still talks to the milter */
	strbuf out; /* packets queued, written before the next read */
	strbuf pkt; /* last packet read */
	strbuf err;
	strbuf line; /* the stdout line being built */
	strbuf tmp;
	mproto_reply r;
	uint32_t version, actions, protocol;
	uint32_t np_mask;            /* events the milter's protocol version lacks */
	char *lists[PROTO_M_COUNT]; /* the milter's macro lists */
	int skip_cmd;                /* event type skipped after an 's' reply */
	bool smtpd_held;             /* 'q' before DATA: smtpd stops sending events */
	bool msg_held;               /* 'q' during the message: cleanup stops */
	char *held_reason;           /* the last quarantine reason */
	const char *rcpt_addr;       /* for {rcpt_addr} */
	const char *where;           /* stage name for error messages, or NULL */
	char why[64];                /* reason an event was not sent */
	bool failed;
	verdict result;
	const char *result_stage;
	bool hangup;        /* a 421/521: Postfix drops the client */
	size_t written;     /* bytes of the MTA-side stream sent so far */
	bool cut;           /* --cut-after reached: the connection is closed */
	strbuf *transcript; /* --bench-transcript: the stage lines, or NULL */
} session;

/* ---- small helpers ------------------------------------------------------ */

static void usage_error(const char *fmt, ...)
        __attribute__((format(printf, 1, 2), noreturn));

static void
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s -h' for help.\n", PROG);
	exit(EXIT_USAGE);
}

static void fail(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;
	s->failed = true;
	fflush(stdout);
	if (s->where != NULL)
		fprintf(stderr, "%s: %s: ", PROG, s->where);
	else
		fprintf(stderr, "%s: ", PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Append text from the milter so that the output stays one line. */
static void
put_escaped(strbuf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			strbuf_puts(b, "\\r");
		else if (c == '\n')
			strbuf_puts(b, "\\n");
		else if (c < 0x20 || c == 0x7f)
			strbuf_printf(b, "\\x%02x", c);
		else
			strbuf_putc(b, (char)c);
	}
}

static void
put_esc(strbuf *b, const char *p)
{
	put_escaped(b, p, strlen(p));
}

static char *
canon_name(const char *name)
{
	strbuf b = STRBUF_INIT;

	if (name[0] == '{')
		strbuf_puts(&b, name);
	else
		strbuf_printf(&b, "{%s}", name);
	return strbuf_detach(&b);
}

static bool
same_macro(const char *a, const char *b)
{
	char *ca = canon_name(a), *cb = canon_name(b);
	bool same = strcmp(ca, cb) == 0;

	free(ca);
	free(cb);
	return same;
}

#define PUSH(arr, n)                                                                     \
	((arr) = ms_xrealloc((arr), ((n) + 1) * sizeof *(arr)), &(arr)[(n)++])

/* ---- macros ----------------------------------------------------------- */

static const char *
strip_brackets(strbuf *b, const char *addr)
{
	size_t n = strlen(addr);

	strbuf_reset(b);
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		strbuf_append(b, addr + 1, n - 2);
	else
		strbuf_puts(b, addr);
	return strbuf_str(b);
}

/*
 * The value Postfix would give a macro: a -m definition (this stage first),
 * else what smtpd knows at this stage (smtpd_milter_eval()), else none.
 * Stages after MAIL have larger PROTO_M_* numbers.
 */
static const char *
macro_value(session *s, int stage, const char *name, strbuf *scratch)
{
	const config *cf = s->cf;
	char *c;
	const char *v = NULL;

	for (size_t i = 0; i < cf->nmacro; i++)
		if (cf->macros[i].stage == stage && same_macro(cf->macros[i].name, name))
			return cf->macros[i].value;
	for (size_t i = 0; i < cf->nmacro; i++)
		if (same_macro(cf->macros[i].name, name))
			return cf->macros[i].value;

	c = canon_name(name);
	strbuf_reset(scratch);
	if (strcmp(c, "{j}") == 0) {
		v = MTA_HOSTNAME;
	} else if (strcmp(c, "{daemon_name}") == 0 || strcmp(c, "{v}") == 0) {
		v = PROG;
	} else if (strcmp(c, "{_}") == 0) {
		strbuf_printf(scratch, "%s [%s]", cf->client_name,
		              cf->family == MPROTO_FAM_INET ||
		                              cf->family == MPROTO_FAM_INET6
		                      ? cf->client_addr
		                      : "127.0.0.1");
		v = strbuf_str(scratch);
	} else if (strcmp(c, "{i}") == 0 && stage >= PROTO_M_MAIL) {
		v = cf->queue_id;
	} else if (strcmp(c, "{mail_addr}") == 0 && stage >= PROTO_M_MAIL) {
		v = strip_brackets(scratch, cf->from[0]);
	} else if (strcmp(c, "{rcpt_addr}") == 0 && s->rcpt_addr != NULL) {
		v = strip_brackets(scratch, s->rcpt_addr);
	} else if (strcmp(c, "{client_addr}") == 0) {
		/* Postfix gives the RFC 5321 form: "IPv6:" before IPv6. */
		if (cf->family == MPROTO_FAM_INET6)
			strbuf_printf(scratch, "IPv6:%s", cf->client_addr);
		else if (cf->family == MPROTO_FAM_INET)
			strbuf_puts(scratch, cf->client_addr);
		else
			strbuf_puts(scratch, "127.0.0.1");
		v = strbuf_str(scratch);
	} else if (strcmp(c, "{client_name}") == 0 || strcmp(c, "{client_ptr}") == 0) {
		v = cf->client_name;
	} else if (strcmp(c, "{client_port}") == 0) {
		strbuf_printf(scratch, "%u", cf->client_port);
		v = strbuf_str(scratch);
	}
	free(c);
	return v;
}

/* Split a macro name list at spaces and commas, as Postfix does. */
static size_t
split_list(const char *list, char ***names)
{
	size_t n = 0;
	const char *p = list;

	*names = NULL;
	while (*p != '\0') {
		size_t len;

		p += strspn(p, " \t\r\n,");
		if ((len = strcspn(p, " \t\r\n,")) == 0)
			break;
		*PUSH(*names, n) = ms_xstrndup(p, len);
		p += len;
	}
	return n;
}

/*
 * Queue the D packet for one stage. The milter's own list (from negotiation)
 * replaces ours; otherwise Postfix's default list plus the -m names of this
 * stage. Names without a value are left out, as Postfix does.
 */
static void
queue_macros(session *s, int stage, int cmd)
{
	const config *cf = s->cf;
	char **names;
	size_t n;
	mproto_macro *m = NULL;
	size_t nm = 0;
	strbuf *scratch;

	if (s->lists[stage] != NULL && s->lists[stage][0] != '\0') {
		n = split_list(s->lists[stage], &names);
	} else {
		n = split_list(default_lists[stage], &names);
		for (size_t i = 0; i < cf->nmacro; i++) {
			bool dup = false;

			if (cf->macros[i].stage != stage)
				continue;
			for (size_t j = 0; j < n && !dup; j++)
				dup = same_macro(names[j], cf->macros[i].name);
			if (!dup)
				*PUSH(names, n) = ms_xstrdup(cf->macros[i].name);
		}
	}
	scratch = ms_xcalloc(n + 1, sizeof *scratch);
	for (size_t i = 0; i < n; i++) {
		const char *v = macro_value(s, stage, names[i], &scratch[i]);

		if (v != NULL) {
			mproto_macro *mm = PUSH(m, nm);

			mm->name = names[i];
			mm->value = v;
		}
	}
	if (mproto_put_macros(&s->out, cmd, m, nm) < 0)
		fail(s, "macros too large for one packet");
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		strbuf_free(&scratch[i]);
	}
	free(names);
	free(scratch);
	free(m);
}

/* ---- I/O -------------------------------------------------------------- */

static void
dump(session *s, const char *dir, const unsigned char *p, size_t len, int from_milter)
{
	if (!s->cf->verbose)
		return;
	strbuf_reset(&s->tmp);
	mproto_dump(&s->tmp, p, len, from_milter, 512);
	fprintf(stderr, "%s: %s %s\n", PROG, dir, strbuf_str(&s->tmp));
}

/* Length of the whole queued packet at p, header included. */
static size_t
packet_len(const unsigned char *p)
{
	return ((size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) +
	       MPROTO_HDR_LEN;
}

static void out(const session *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * --cut-after: write the queued packets up to the cut, mid-packet if it falls
 * there, and close the connection, as an MTA process that dies would. Ends
 * the transaction (s->failed stops every stage; s->cut says it was asked for).
 */
static int
cut_stream(session *s)
{
	size_t keep = s->cf->cut_after - s->written, off = 0;
	const unsigned char *p = (const unsigned char *)s->out.s;

	while (off + MPROTO_HDR_LEN + 1 <= s->out.len &&
	       off + packet_len(p + off) <= keep)
		off += packet_len(p + off);
	if (keep > 0 &&
	    mproto_conn_write(s->conn, s->out.s, keep, &s->err) != MPROTO_OK) {
		fail(s, "%s", strbuf_str(&s->err));
		return -1;
	}
	s->written += keep;
	mproto_conn_close(s->conn);
	s->conn = NULL;
	if (keep == off)
		out(s, "cut: after %zu bytes, before packet %s\n", s->written,
		    mproto_command_name(p[off + MPROTO_HDR_LEN]));
	else
		out(s, "cut: after %zu bytes, %zu of the %zu bytes of packet %s\n",
		    s->written, keep - off, packet_len(p + off),
		    mproto_command_name(p[off + MPROTO_HDR_LEN]));
	s->cut = true;
	s->failed = true;
	return -1;
}

static int
flush_out(session *s)
{
	size_t off = 0;

	if (s->failed)
		return -1;
	/* Dump each queued packet, then write them all at once. */
	while (s->cf->verbose && off + MPROTO_HDR_LEN <= s->out.len) {
		const unsigned char *p = (const unsigned char *)s->out.s + off;
		size_t n = packet_len(p);

		dump(s, ">", p, n, 0);
		off += n;
	}
	if (s->out.len == 0)
		return 0;
	if (s->cf->cut && s->written + s->out.len > s->cf->cut_after)
		return cut_stream(s);
	if (mproto_conn_write(s->conn, s->out.s, s->out.len, &s->err) != MPROTO_OK) {
		fail(s, "%s", strbuf_str(&s->err));
		return -1;
	}
	s->written += s->out.len;
	strbuf_reset(&s->out);
	return 0;
}

static int
read_reply(session *s)
{
	if (flush_out(s) < 0)
		return -1;
	if (mproto_conn_read_reply(s->conn, &s->pkt, &s->r, &s->err) != MPROTO_OK) {
		if (s->pkt.len >= MPROTO_HDR_LEN + 1)
			dump(s, "<", (const unsigned char *)s->pkt.s, s->pkt.len, 1);
		fail(s, "%s", strbuf_str(&s->err));
		return -1;
	}
	dump(s, "<", (const unsigned char *)s->pkt.s, s->pkt.len, 1);
	return 0;
}

static void
close_milter(session *s)
{
	s->open = false;
}

/* ---- output ----------------------------------------------------------- */

static void
line_start(session *s, const char *label)
{
	strbuf_reset(&s->line);
	strbuf_puts(&s->line, label);
	strbuf_puts(&s->line, ": ");
}

/*
 * Every stage line goes through here; --bench runs quiet, or collects the
 * lines for its transcript.
 */
static void out(const session *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
out(const session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (s->transcript != NULL)
		strbuf_vprintf(s->transcript, fmt, ap);
	else if (!s->cf->quiet)
		vprintf(fmt, ap);
	va_end(ap);
}

static void
line_end(session *s)
{
	out(s, "%s\n", strbuf_str(&s->line));
}

/* Postfix reads the text as it would a format string: %% is one %. */
static void
put_reply_text(strbuf *b, const char *text)
{
	strbuf t = STRBUF_INIT;

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '%' && p[1] == '%')
			p++;
		else if (*p == '%')
			continue;
		strbuf_putc(&t, *p);
	}
	put_esc(b, strbuf_str(&t));
	strbuf_free(&t);
}

static verdict
final_verdict(const mproto_reply *r)
{
	switch (r->cmd) {
	case MPROTO_R_ACCEPT:
		return V_ACCEPT;
	case MPROTO_R_DISCARD:
		return V_DISCARD;
	case MPROTO_R_REJECT:
		return V_REJECT;
	case MPROTO_R_TEMPFAIL:
		return V_TEMPFAIL;
	case MPROTO_R_SHUTDOWN:
		return V_SHUTDOWN;
	case MPROTO_R_REPLYCODE:
		return r->text[0] == '4' ? V_TEMPFAIL : V_REJECT;
	default: /* continue, skip */
		return V_NONE;
	}
}

static void
put_verdict(session *s)
{
	const mproto_reply *r = &s->r;

	switch (r->cmd) {
	case MPROTO_R_CONTINUE:
		strbuf_puts(&s->line, "continue");
		break;
	case MPROTO_R_SKIP:
		strbuf_puts(&s->line, "skip");
		break;
	case MPROTO_R_REPLYCODE:
		strbuf_puts(&s->line, r->text[0] == '4' ? "tempfail " : "reject ");
		put_reply_text(&s->line, r->text);
		break;
	default:
		strbuf_puts(&s->line, verdict_names[final_verdict(r)]);
	}
}

static bool
is_hangup(const mproto_reply *r)
{
	return r->cmd == MPROTO_R_REPLYCODE &&
	       (strncmp(r->text, "421", 3) == 0 || strncmp(r->text, "521", 3) == 0);
}

static void
set_result(session *s, verdict v, const char *stage)
{
	s->result = v;
	s->result_stage = stage;
}

/* ---- events ----------------------------------------------------------- */

static void
print_edit(session *s, const char *label)
{
	const mproto_reply *r = &s->r;
	const char *sep = (s->protocol & PROTO_P_HDR_LEADSPC) ? ":" : ": ";

	line_start(s, label);
	switch (r->cmd) {
	case MPROTO_R_ADDHEADER:
		strbuf_puts(&s->line, "add header ");
		put_esc(&s->line, r->name);
		strbuf_puts(&s->line, sep);
		put_esc(&s->line, r->value);
		break;
	case MPROTO_R_INSHEADER:
		strbuf_printf(&s->line, "insert header at %lu ", (unsigned long)r->index);
		put_esc(&s->line, r->name);
		strbuf_puts(&s->line, sep);
		put_esc(&s->line, r->value);
		break;
	case MPROTO_R_CHGHEADER:
		strbuf_puts(&s->line, r->value[0] ? "change header " : "delete header ");
		put_esc(&s->line, r->name);
		strbuf_printf(&s->line, "[%lu]", (unsigned long)r->index);
		if (r->value[0]) {
			strbuf_puts(&s->line, sep);
			put_esc(&s->line, r->value);
		}
		break;
	case MPROTO_R_ADDRCPT:
	case MPROTO_R_ADDRCPT_PAR:
	case MPROTO_R_DELRCPT:
	case MPROTO_R_CHGFROM:
		strbuf_puts(&s->line, r->cmd == MPROTO_R_DELRCPT   ? "delete rcpt "
		                      : r->cmd == MPROTO_R_CHGFROM ? "change from "
		                                                   : "add rcpt ");
		put_esc(&s->line, r->addr);
		if (r->args != NULL && r->args[0] != '\0') {
			strbuf_putc(&s->line, ' ');
			put_esc(&s->line, r->args);
		}
		break;
	case MPROTO_R_REPLBODY:
		strbuf_printf(&s->line, "replace body %zu bytes", r->body_len);
		break;
	}
	line_end(s);
}

enum { EV_REPLY, EV_NOREPLY, EV_NOT_SENT, EV_ERROR };

typedef struct {
	int cmd;          /* MPROTO_C_* */
	int stage;        /* macro stage, or -1 */
	uint32_t no_flag; /* SMFIP_NO* that suppresses it, or 0 */
	uint32_t nr_flag; /* SMFIP_NR_* that suppresses the reply, or 0 */
	bool smtpd;       /* sent by smtpd (before DATA), not by cleanup */
	bool conn_level;  /* connect, helo: a verdict ends the milter session */
} event_kind;

static const event_kind EV_CONNECT = {.cmd = MPROTO_C_CONNECT,
                                      .stage = PROTO_M_CONNECT,
                                      .no_flag = PROTO_P_NOCONNECT,
                                      .nr_flag = PROTO_P_NR_CONN,
                                      .smtpd = true,
                                      .conn_level = true};
static const event_kind EV_HELO = {.cmd = MPROTO_C_HELO,
                                   .stage = PROTO_M_HELO,
                                   .no_flag = PROTO_P_NOHELO,
                                   .nr_flag = PROTO_P_NR_HELO,
                                   .smtpd = true,
                                   .conn_level = true};
static const event_kind EV_MAIL = {.cmd = MPROTO_C_MAIL,
                                   .stage = PROTO_M_MAIL,
                                   .no_flag = PROTO_P_NOMAIL,
                                   .nr_flag = PROTO_P_NR_MAIL,
                                   .smtpd = true};
static const event_kind EV_RCPT = {.cmd = MPROTO_C_RCPT,
                                   .stage = PROTO_M_RCPT,
                                   .no_flag = PROTO_P_NORCPT,
                                   .nr_flag = PROTO_P_NR_RCPT,
                                   .smtpd = true};
static const event_kind EV_DATA = {.cmd = MPROTO_C_DATA,
                                   .stage = PROTO_M_DATA,
                                   .no_flag = PROTO_P_NODATA,
                                   .nr_flag = PROTO_P_NR_DATA,
                                   .smtpd = true};
/* Postfix sends each header with the end-of-header macros... */
static const event_kind EV_HEADER = {.cmd = MPROTO_C_HEADER,
                                     .stage = PROTO_M_EOH,
                                     .no_flag = PROTO_P_NOHDRS,
                                     .nr_flag = PROTO_P_NR_HDR};
static const event_kind EV_EOH = {.cmd = MPROTO_C_EOH,
                                  .stage = PROTO_M_EOH,
                                  .no_flag = PROTO_P_NOEOH,
                                  .nr_flag = PROTO_P_NR_EOH};
/* ... and each body chunk with the end-of-message macros. */
static const event_kind EV_BODY = {.cmd = MPROTO_C_BODY,
                                   .stage = PROTO_M_EOM,
                                   .no_flag = PROTO_P_NOBODY,
                                   .nr_flag = PROTO_P_NR_BODY};
/* End of message can be neither disabled nor left without a reply. */
static const event_kind EV_EOM = {.cmd = MPROTO_C_EOM, .stage = PROTO_M_EOM};

static const char *
flag_name(uint32_t flag)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} t[] = {
	        {PROTO_P_NOCONNECT, "NOCONNECT"}, {PROTO_P_NOHELO, "NOHELO"},
	        {PROTO_P_NOMAIL, "NOMAIL"},       {PROTO_P_NORCPT, "NORCPT"},
	        {PROTO_P_NOBODY, "NOBODY"},       {PROTO_P_NOHDRS, "NOHDRS"},
	        {PROTO_P_NOEOH, "NOEOH"},         {PROTO_P_NODATA, "NODATA"},
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i].flag == flag)
			return t[i].name;
	return "?";
}

/* Read replies until the final one; print edits and quarantine on the way. */
static int
read_final(session *s, const event_kind *k, const char *label)
{
	bool body_started = false, body_locked = false;

	for (;;) {
		if (read_reply(s) < 0)
			return -1;
		switch (s->r.cmd) {
		case MPROTO_R_PROGRESS:
			continue;
		case MPROTO_R_QUARANTINE:
			line_start(s, label);
			strbuf_puts(&s->line, "quarantine ");
			put_esc(&s->line, s->r.text);
			line_end(s);
			free(s->held_reason);
			s->held_reason = ms_xstrdup(s->r.text);
			if (k->smtpd)
				s->smtpd_held = true;
			else
				s->msg_held = true;
			continue;
		case MPROTO_R_REPLYCODE:
			if (mproto_reply_text_check(s->r.text, &s->err) < 0) {
				strbuf_reset(&s->tmp);
				put_esc(&s->tmp, s->r.text);
				fail(s,
				     "malformed reply text \"%s\": %s (Postfix disables "
				     "the milter)",
				     strbuf_str(&s->tmp), strbuf_str(&s->err));
				return -1;
			}
			return 0;
		case MPROTO_R_CONTINUE:
		case MPROTO_R_ACCEPT:
		case MPROTO_R_DISCARD:
		case MPROTO_R_REJECT:
		case MPROTO_R_TEMPFAIL:
		case MPROTO_R_SKIP:
		case MPROTO_R_SHUTDOWN:
			return 0;
		case MPROTO_R_ADDHEADER:
		case MPROTO_R_INSHEADER:
		case MPROTO_R_CHGHEADER:
		case MPROTO_R_ADDRCPT:
		case MPROTO_R_ADDRCPT_PAR:
		case MPROTO_R_DELRCPT:
		case MPROTO_R_CHGFROM:
		case MPROTO_R_REPLBODY:
			if (k->cmd != MPROTO_C_EOM)
				break;
			if (s->r.cmd == MPROTO_R_REPLBODY) {
				if (body_locked) {
					fail(s, "body replacement mixed with other "
					        "requests (Postfix refuses this)");
					return -1;
				}
				body_started = true;
			} else if (body_started) {
				body_locked = true;
			}
			print_edit(s, label);
			continue;
		}
		fail(s, "unexpected reply '%c' (%s)", s->r.cmd,
		     mproto_reply_name(s->r.cmd));
		return -1;
	}
}

/*
 * Send one event the way milter8_event() does: events outside the milter's
 * protocol version and events after a skip go nowhere; macros go even when
 * the milter disabled the event itself; no reply is read after NR_*.
 * why is set when the result is EV_NOT_SENT.
 */
static int
send_event(session *s, const event_kind *k, const strbuf *ev, const char *label,
           const char **why)
{
	if (s->failed)
		return EV_ERROR;
	if ((k->smtpd && s->smtpd_held) || (!k->smtpd && s->msg_held)) {
		*why = "quarantined";
		return EV_NOT_SENT;
	}
	if (k->no_flag & s->np_mask) {
		snprintf(s->why, sizeof s->why, "milter protocol version %lu",
		         (unsigned long)s->version);
		*why = s->why;
		return EV_NOT_SENT;
	}
	if (s->skip_cmd != 0) {
		if (s->skip_cmd == k->cmd) {
			*why = "skip";
			return EV_NOT_SENT;
		}
		s->skip_cmd = 0;
	}
	if (k->stage >= 0)
		queue_macros(s, k->stage, k->cmd);
	if (k->no_flag & s->protocol) {
		*why = flag_name(k->no_flag);
		return EV_NOT_SENT;
	}
	if (ev->len == 0) { /* the encoder refused it */
		fail(s, "the packet for %s would exceed %d bytes", label,
		     MPROTO_MAX_PACKET);
		return EV_ERROR;
	}
	strbuf_append(&s->out, ev->s, ev->len);
	if (k->nr_flag & s->protocol)
		return EV_NOREPLY;
	if (read_final(s, k, label) < 0)
		return EV_ERROR;
	if (s->r.cmd == MPROTO_R_SKIP)
		s->skip_cmd = k->cmd;
	return EV_REPLY;
}

/*
 * Run an event and print its line. Returns the send_event() result; after
 * EV_REPLY the reply is in s->r.
 */
static int
run_stage(session *s, const event_kind *k, const strbuf *ev, const char *label)
{
	const char *why = NULL;
	int rc;

	/*
	 * An SMTP command, or the message itself, first crosses the network
	 * from the client: the milter session stays open, idle, meanwhile.
	 */
	if (s->cf->stage_delay_ms > 0 &&
	    (k->cmd == MPROTO_C_HELO || k->cmd == MPROTO_C_MAIL ||
	     k->cmd == MPROTO_C_RCPT || k->cmd == MPROTO_C_DATA ||
	     k->cmd == MPROTO_C_EOM)) {
		struct timespec d = {s->cf->stage_delay_ms / 1000,
		                     (long)(s->cf->stage_delay_ms % 1000) * 1000000L};

		while (nanosleep(&d, &d) < 0 && errno == EINTR)
			;
	}
	rc = send_event(s, k, ev, label, &why);
	switch (rc) {
	case EV_NOT_SENT:
		/* "helo: not sent (NOHELO)"; recipients and headers say which. */
		line_start(s, k->cmd == MPROTO_C_RCPT || k->cmd == MPROTO_C_HEADER
		                      ? label
		                      : mproto_command_name(k->cmd));
		strbuf_printf(&s->line, "not sent (%s)", why);
		line_end(s);
		break;
	case EV_NOREPLY:
		line_start(s, label);
		strbuf_puts(&s->line, "(no reply)");
		line_end(s);
		break;
	case EV_REPLY:
		line_start(s, label);
		put_verdict(s);
		if (k->conn_level && s->r.cmd == MPROTO_R_DISCARD)
			strbuf_printf(&s->line, " (ignored: not allowed at %s)",
			              mproto_command_name(k->cmd));
		line_end(s);
		break;
	}
	return rc;
}

/* ---- the transaction ------------------------------------------------- */

static int
negotiate(session *s)
{
	const mproto_reply *r = &s->r;

	s->where = "negotiate";
	mproto_put_optneg(&s->out, MPROTO_VERSION, PROTO_F_ALL, PROTO_P_ALL);
	if (read_reply(s) < 0)
		return -1;
	if (r->cmd != MPROTO_R_OPTNEG) {
		fail(s, "expected a negotiation reply, got '%c' (%s)", r->cmd,
		     mproto_reply_name(r->cmd));
		return -1;
	}
	if (r->version > MPROTO_VERSION) {
		fail(s, "milter protocol version %lu is newer than ours (%d)",
		     (unsigned long)r->version, MPROTO_VERSION);
		return -1;
	}
	if ((r->actions & PROTO_F_ALL) != r->actions) {
		fail(s, "milter asks for actions 0x%08lx beyond the offered 0x%08x",
		     (unsigned long)r->actions, PROTO_F_ALL);
		return -1;
	}
	s->version = r->version;
	s->actions = r->actions;
	s->protocol = r->protocol;
	/* Older milters don't get events their version lacks (Postfix does so). */
	if (s->version < 2)
		fprintf(stderr,
		        "%s: negotiate: warning: unexpected protocol version %lu\n", PROG,
		        (unsigned long)s->version);
	else if (s->version < 3)
		s->np_mask = PROTO_P_NOUNKNOWN | PROTO_P_NODATA;
	else if (s->version < 4)
		s->np_mask = PROTO_P_NODATA;

	line_start(s, "negotiate");
	strbuf_printf(&s->line, "version %lu actions 0x%08lx protocol 0x%08lx ",
	              (unsigned long)r->version, (unsigned long)r->actions,
	              (unsigned long)r->protocol);
	if (r->protocol == 0)
		strbuf_puts(&s->line, "(nothing disabled)");
	else
		mproto_protocol_names(&s->line, r->protocol);
	line_end(s);

	for (int i = 0; i < PROTO_M_COUNT; i++) {
		if (r->macros[i] == NULL)
			continue;
		s->lists[i] = ms_xstrdup(r->macros[i]);
		line_start(s, "negotiate");
		strbuf_printf(&s->line, "macros %s ", mproto_stage_name(i));
		put_esc(&s->line, r->macros[i]);
		line_end(s);
	}
	if (r->ignored_lists > 0)
		fprintf(stderr,
		        "%s: negotiate: ignoring %u macro list(s) for unknown "
		        "stages\n",
		        PROG, r->ignored_lists);
	return 0;
}

/* connect and helo: any final verdict but discard ends the milter session. */
static bool
connect_stage_ends(session *s, int rc, const char *stage_name)
{
	verdict v;

	if (rc != EV_REPLY)
		return false;
	v = final_verdict(&s->r);
	if (v == V_NONE)
		return false;
	if (v == V_DISCARD) /* Postfix logs a warning and goes on */
		return false;
	close_milter(s); /* Postfix closes the socket without QUIT */
	set_result(s, v, stage_name);
	return true;
}

static bool
do_connect(session *s, strbuf *ev)
{
	const config *cf = s->cf;
	const char *name = cf->client_name;
	strbuf label = STRBUF_INIT, sm_name = STRBUF_INIT;
	bool ended;

	s->where = "connect";
	/* Postfix sends an unknown client name as [address]. */
	if (strcmp(name, "unknown") == 0 &&
	    (cf->family == MPROTO_FAM_INET || cf->family == MPROTO_FAM_INET6)) {
		strbuf_printf(&sm_name, "[%s]", cf->client_addr);
		name = strbuf_str(&sm_name);
	}
	strbuf_reset(ev);
	mproto_put_connect(ev, name, cf->family,
	                   cf->family == MPROTO_FAM_UNIX ? 0 : cf->client_port,
	                   cf->client_addr);
	switch (cf->family) {
	case MPROTO_FAM_INET:
	case MPROTO_FAM_INET6:
		strbuf_printf(&label, "connect %s [%s]", name, cf->client_addr);
		break;
	case MPROTO_FAM_UNIX:
		strbuf_printf(&label, "connect %s (unix%s%s)", name,
		              cf->client_addr[0] ? " " : "", cf->client_addr);
		break;
	default:
		strbuf_printf(&label, "connect %s (no address)", name);
	}
	ended = connect_stage_ends(s, run_stage(s, &EV_CONNECT, ev, strbuf_str(&label)),
	                           "connect");
	strbuf_free(&label);
	strbuf_free(&sm_name);
	return ended;
}

static bool
do_helo(session *s, strbuf *ev)
{
	strbuf label = STRBUF_INIT;
	bool ended;

	s->where = "helo";
	strbuf_reset(ev);
	mproto_put_helo(ev, s->cf->helo);
	strbuf_printf(&label, "helo %s", s->cf->helo);
	ended = connect_stage_ends(s, run_stage(s, &EV_HELO, ev, strbuf_str(&label)),
	                           "helo");
	strbuf_free(&label);
	return ended;
}

/*
 * What a reply at mail, data or in the message does to the transaction:
 * true when the message ends here (decision made, or the session is over).
 */
static bool
message_ends(session *s, int rc, const char *stage_name)
{
	verdict v;

	if (rc != EV_REPLY)
		return false;
	v = final_verdict(&s->r);
	if (v == V_NONE)
		return false;
	if (v == V_SHUTDOWN)
		close_milter(s);
	if (is_hangup(&s->r))
		s->hangup = true;
	set_result(s, v, stage_name);
	return true;
}

static void
envelope_label(strbuf *label, const char *what, char *const *argv)
{
	strbuf_reset(label);
	strbuf_puts(label, what);
	for (; *argv != NULL; argv++)
		strbuf_printf(label, " %s", *argv);
}

/* Returns true when the message goes on to DATA. */
static bool
do_envelope(session *s, strbuf *ev)
{
	const config *cf = s->cf;
	strbuf label = STRBUF_INIT;
	size_t accepted = 0;
	verdict worst = V_NONE;
	bool decided = false; /* accept/discard: no more events for the message */
	int rc;

	s->where = "mail";
	strbuf_reset(ev);
	mproto_put_mail(ev, (const char *const *)cf->from);
	envelope_label(&label, "mail", cf->from);
	rc = run_stage(s, &EV_MAIL, ev, strbuf_str(&label));
	if (s->failed || message_ends(s, rc, "mail")) {
		strbuf_free(&label);
		return false;
	}

	s->where = "rcpt";
	for (size_t i = 0; i < cf->nrcpt && !s->failed; i++) {
		verdict v;

		if (decided) {
			accepted++;
			continue;
		}
		s->rcpt_addr = cf->rcpts[i][0];
		strbuf_reset(ev);
		mproto_put_rcpt(ev, (const char *const *)cf->rcpts[i]);
		envelope_label(&label, "rcpt", cf->rcpts[i]);
		rc = run_stage(s, &EV_RCPT, ev, strbuf_str(&label));
		s->rcpt_addr = NULL;
		v = rc == EV_REPLY ? final_verdict(&s->r) : V_NONE;
		switch (v) {
		case V_NONE:
			accepted++;
			break;
		case V_ACCEPT:
		case V_DISCARD:
			/* Postfix stops telling this milter about the message. */
			accepted++;
			decided = true;
			set_result(s, v, "rcpt");
			break;
		case V_SHUTDOWN:
			close_milter(s);
			set_result(s, v, "rcpt");
			strbuf_free(&label);
			return false;
		default:
			/* Only this recipient is refused. */
			if (worst == V_NONE || v == V_TEMPFAIL)
				worst = v;
			if (is_hangup(&s->r)) {
				s->hangup = true;
				set_result(s, v, "rcpt");
				strbuf_free(&label);
				return false;
			}
		}
	}
	strbuf_free(&label);
	if (s->failed)
		return false;
	if (accepted == 0) {
		/* DATA gets "554 5.5.1 Error: no valid recipients". */
		set_result(s, worst, "rcpt");
		return false;
	}
	if (decided)
		return false;

	s->where = "data";
	strbuf_reset(ev);
	mproto_put_cmd(ev, MPROTO_C_DATA);
	rc = run_stage(s, &EV_DATA, ev, "data");
	return !s->failed && !message_ends(s, rc, "data");
}

/* Header value as sent: Postfix drops one space after the colon. */
static const char *
header_value(const session *s, const header *h)
{
	if (!(s->protocol & PROTO_P_HDR_LEADSPC) && h->value[0] == ' ')
		return h->value + 1;
	return h->value;
}

static bool
do_headers(session *s, strbuf *ev)
{
	const config *cf = s->cf;
	strbuf label = STRBUF_INIT;
	int rc;

	s->where = "header";
	if (s->protocol & PROTO_P_NOHDRS) {
		/* Postfix does not even send the macros. */
		out(s, "header: not sent (NOHDRS)\n");
	} else {
		for (size_t i = 0; i < cf->nhdr && !s->failed; i++) {
			strbuf_reset(ev);
			mproto_put_header(ev, cf->hdrs[i].name,
			                  header_value(s, &cf->hdrs[i]));
			strbuf_reset(&label);
			strbuf_puts(&label, "header ");
			put_esc(&label, cf->hdrs[i].name);
			rc = run_stage(s, &EV_HEADER, ev, strbuf_str(&label));
			if (message_ends(s, rc, "header")) {
				strbuf_free(&label);
				return false;
			}
			if (s->msg_held)
				break;
		}
	}
	strbuf_free(&label);
	if (s->failed)
		return false;
	if (s->msg_held)
		return true;

	s->where = "eoh";
	if (s->protocol & PROTO_P_NOEOH) {
		out(s, "eoh: not sent (NOEOH)\n");
		return true;
	}
	strbuf_reset(ev);
	mproto_put_cmd(ev, MPROTO_C_EOH);
	rc = run_stage(s, &EV_EOH, ev, "eoh");
	return !s->failed && !message_ends(s, rc, "eoh");
}

static bool
do_body(session *s, strbuf *ev)
{
	const strbuf *body = &s->cf->body;
	strbuf label = STRBUF_INIT;
	size_t off = 0;

	s->where = "body";
	if (s->protocol & PROTO_P_NOBODY) {
		out(s, "body: not sent (NOBODY)\n");
		return true;
	}
	if (body->len == 0) {
		out(s, "body: not sent (empty)\n");
		return true;
	}
	while (off < body->len && !s->failed) {
		size_t n = body->len - off;

		if (n > MPROTO_CHUNK_SIZE)
			n = MPROTO_CHUNK_SIZE;
		if (s->skip_cmd == MPROTO_C_BODY) {
			out(s, "body: skip (%zu bytes not sent)\n", body->len - off);
			break;
		}
		strbuf_reset(ev);
		mproto_put_body(ev, body->s + off, n);
		strbuf_reset(&label);
		strbuf_printf(&label, "body %zu bytes", n);
		int rc = run_stage(s, &EV_BODY, ev, strbuf_str(&label));

		off += n;
		if (message_ends(s, rc, "body")) {
			strbuf_free(&label);
			return false;
		}
		if (s->msg_held)
			break;
	}
	strbuf_free(&label);
	return !s->failed;
}

static void
do_eom(session *s, strbuf *ev)
{
	int rc;

	s->where = "eom";
	strbuf_reset(ev);
	mproto_put_cmd(ev, MPROTO_C_EOM);
	rc = run_stage(s, &EV_EOM, ev, "eom");
	if (rc == EV_REPLY && !message_ends(s, rc, "eom"))
		set_result(s, V_ACCEPT, "eom"); /* continue or skip: accepted */
}

static void
do_message(session *s, strbuf *ev)
{
	if (!do_headers(s, ev))
		return;
	if (!s->msg_held && !do_body(s, ev))
		return;
	if (s->msg_held) {
		/*
		 * A quarantine sets a sticky reply in Postfix's milter client, so
		 * the event that carried it ends the message for this milter.
		 */
		set_result(s, V_QUARANTINE, s->where);
		return;
	}
	do_eom(s, ev);
}

/* Aborts and quit, as smtpd sends them at the end (mail_reset, helo_reset). */
static void
finish(session *s, bool helo_sent)
{
	if (!s->open || s->failed)
		return;
	s->where = "abort";
	mproto_put_cmd(&s->out, MPROTO_C_ABORT); /* mail_reset() */
	if (helo_sent)
		mproto_put_cmd(&s->out, MPROTO_C_ABORT); /* helo_reset() at QUIT */
	s->where = "quit";
	mproto_put_cmd(&s->out, MPROTO_C_QUIT);
	(void)flush_out(s);
}

/* --hold: the session stays open and idle, as a slow client's would. */
static bool
hold(const config *cf)
{
	struct timespec t = {(time_t)cf->hold_s, 0};

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
	return true;
}

/*
 * One transaction. *v and *stage receive the overall verdict (see the
 * "result:" line); returns EXIT_DONE or EXIT_FAIL. With a transcript, the
 * stage lines go there instead of stdout.
 */
static int
transaction(const config *cf, verdict *vout, const char **stage_out, strbuf *transcript)
{
	session s;
	strbuf ev = STRBUF_INIT;
	int status = EXIT_DONE;

	memset(&s, 0, sizeof s);
	s.cf = cf;
	strbuf_init(&s.out);
	strbuf_init(&s.pkt);
	strbuf_init(&s.err);
	strbuf_init(&s.line);
	strbuf_init(&s.tmp);
	mproto_reply_init(&s.r);
	s.where = NULL;
	s.result = V_NONE;
	s.transcript = transcript;

	s.conn = mproto_conn_open(cf->socket, cf->timeout_ms, &s.err);
	if (s.conn == NULL) {
		fail(&s, "%s", strbuf_str(&s.err));
	} else {
		s.open = true;
		if (negotiate(&s) == 0 && !do_connect(&s, &ev) && !s.failed && hold(cf) &&
		    !do_helo(&s, &ev) && !s.failed) {
			if (do_envelope(&s, &ev) && !s.hangup)
				do_message(&s, &ev);
			finish(&s, true);
		}
	}
	if (cf->verbose)
		fprintf(stderr, "%s: %zu bytes written\n", PROG, s.written);
	if (s.cut) {
		*vout = V_CUT;
		*stage_out = s.where != NULL ? s.where : "negotiate";
	} else if (s.failed) {
		status = EXIT_FAIL;
	} else {
		verdict v = s.result;

		if (s.held_reason != NULL && (v == V_ACCEPT || v == V_NONE))
			v = V_QUARANTINE;
		if (v == V_NONE)
			v = V_ACCEPT;
		*vout = v;
		*stage_out = s.result_stage != NULL ? s.result_stage : "eom";
	}
	mproto_conn_close(s.conn);
	for (int i = 0; i < PROTO_M_COUNT; i++)
		free(s.lists[i]);
	free(s.held_reason);
	mproto_reply_free(&s.r);
	strbuf_free(&s.out);
	strbuf_free(&s.pkt);
	strbuf_free(&s.err);
	strbuf_free(&s.line);
	strbuf_free(&s.tmp);
	strbuf_free(&ev);
	return status;
}

/* The "result:" line, without its newline. */
static void
put_result(strbuf *b, verdict v, const char *stage)
{
	if ((v == V_ACCEPT || v == V_QUARANTINE) && strcmp(stage, "eom") == 0)
		strbuf_printf(b, "result: %s", verdict_names[v]);
	else
		strbuf_printf(b, "result: %s at %s", verdict_names[v], stage);
}

static int
run(const config *cf)
{
	verdict v = V_ACCEPT;
	const char *stage = "eom";
	strbuf line = STRBUF_INIT;
	int status = transaction(cf, &v, &stage, NULL);

	if (status == EXIT_DONE) {
		put_result(&line, v, stage);
		printf("%s\n", strbuf_str(&line));
	}
	strbuf_free(&line);
	return status;
}

/* ---- load mode (--bench) ----------------------------------------------- */

typedef struct bench {
	const config *cf;
	pthread_mutex_t lock;
	unsigned long next; /* transactions handed out */
	double *latency_ms; /* one per transaction, in completion order */
	unsigned long cap;  /* room in latency_ms */
	double deadline_ms; /* --bench C,Ds: no new transaction after it */
	unsigned long done;
	unsigned long errors;
	unsigned long verdicts[V_SHUTDOWN + 1];
} bench;

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/*
 * Transaction k comes from the IPv6 client whose last 32 bits are k, so
 * every DNSBL lookup misses the milter's cache, as in a flood of new clients.
 */
static void
vary_client(config *cf, unsigned long k)
{
	unsigned char a[16];

	if (inet_pton(AF_INET6, cf->client_addr, a) != 1)
		return;
	a[12] = (unsigned char)(k >> 24);
	a[13] = (unsigned char)(k >> 16);
	a[14] = (unsigned char)(k >> 8);
	a[15] = (unsigned char)k;
	inet_ntop(AF_INET6, a, cf->client_addr, sizeof cf->client_addr);
}

/*
 * Turn the stage lines of transaction k into its --bench-transcript line:
 * "k: line | line | ... | result: ..." (or "| error" when it failed).
 */
static void
transcript_line(strbuf *lines, unsigned long k, bool done, verdict v, const char *stage)
{
	strbuf t = STRBUF_INIT;
	const char *p = strbuf_str(lines);

	strbuf_printf(&t, "%lu: ", k);
	for (; *p != '\0'; p++)
		if (*p != '\n')
			strbuf_putc(&t, *p);
		else
			strbuf_puts(&t, " | ");
	if (done)
		put_result(&t, v, stage);
	else
		strbuf_puts(&t, "error");
	strbuf_putc(&t, '\n');
	strbuf_reset(lines);
	strbuf_append(lines, t.s, t.len);
	strbuf_free(&t);
}

static void *
bench_worker(void *arg)
{
	bench *b = arg;
	strbuf lines = STRBUF_INIT;

	for (;;) {
		verdict v = V_ACCEPT;
		const char *stage = "eom";
		double t0;
		int rc;

		config local = *b->cf;
		unsigned long k;

		pthread_mutex_lock(&b->lock);
		if (b->next >= b->cf->bench_n ||
		    (b->deadline_ms > 0 && now_ms() >= b->deadline_ms)) {
			pthread_mutex_unlock(&b->lock);
			strbuf_free(&lines);
			return NULL;
		}
		k = b->next++;
		pthread_mutex_unlock(&b->lock);
		if (local.bench_vary)
			vary_client(&local, k);
		if (local.cut)
			local.cut_after = k % (b->cf->cut_after + 1);
		t0 = now_ms();
		rc = transaction(&local, &v, &stage,
		                 b->cf->bench_transcript ? &lines : NULL);
		t0 = now_ms() - t0;
		if (b->cf->bench_transcript != NULL)
			transcript_line(&lines, k, rc == EXIT_DONE, v, stage);
		pthread_mutex_lock(&b->lock);
		if (b->done == b->cap) {
			b->cap *= 2;
			b->latency_ms = ms_xrealloc(b->latency_ms,
			                            b->cap * sizeof *b->latency_ms);
		}
		b->latency_ms[b->done++] = t0;
		if (rc != EXIT_DONE)
			b->errors++;
		else
			b->verdicts[v]++;
		if (b->cf->bench_transcript != NULL)
			fputs(strbuf_str(&lines), b->cf->bench_transcript);
		pthread_mutex_unlock(&b->lock);
		strbuf_reset(&lines);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
percentile(const double *sorted, unsigned long n, double p)
{
	unsigned long i;

	if (n == 0)
		return 0;
	i = (unsigned long)(p * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

/*
 * C threads play N transactions in all, each on its own connection, as
 * Postfix opens one per SMTP session. Prints throughput, latency from connect
 * to the final verdict, verdict counts, errors, our own CPU time, and a last
 * machine-readable line.
 */
static int
run_bench(const config *cf)
{
	bench b;
	pthread_t *tids = ms_xcalloc(cf->bench_conc, sizeof *tids);
	pthread_attr_t attr;
	struct rusage ru;
	struct rlimit rl;
	double t0, secs, cpu;

	memset(&b, 0, sizeof b);
	b.cf = cf;
	pthread_mutex_init(&b.lock, NULL);
	b.cap = cf->bench_n < 65536 ? cf->bench_n : 65536;
	b.latency_ms = ms_xcalloc(b.cap, sizeof *b.latency_ms);
	/* Thousands of sessions: small stacks, and a descriptor each. */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
	    rl.rlim_cur < (rlim_t)cf->bench_conc + 64) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	t0 = now_ms();
	if (cf->bench_secs > 0)
		b.deadline_ms = t0 + cf->bench_secs * 1e3;
	for (unsigned i = 0; i < cf->bench_conc; i++)
		if (pthread_create(&tids[i], &attr, bench_worker, &b) != 0) {
			fprintf(stderr, "%s: cannot start thread %u\n", PROG, i);
			exit(EXIT_FAIL);
		}
	pthread_attr_destroy(&attr);
	for (unsigned i = 0; i < cf->bench_conc; i++)
		pthread_join(tids[i], NULL);
	secs = (now_ms() - t0) / 1e3;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	      ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
	qsort(b.latency_ms, b.done, sizeof *b.latency_ms, cmp_double);
	printf("bench: %lu transactions, %u at once, %.2f s: %.1f msg/s\n", b.done,
	       cf->bench_conc, secs, secs > 0 ? (double)b.done / secs : 0.0);
	printf("bench: latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
	       percentile(b.latency_ms, b.done, 0.50),
	       percentile(b.latency_ms, b.done, 0.90),
	       percentile(b.latency_ms, b.done, 0.99),
	       b.done ? b.latency_ms[b.done - 1] : 0.0);
	printf("bench: verdicts");
	for (int v = V_NONE; v <= V_SHUTDOWN; v++)
		if (b.verdicts[v] > 0)
			printf(" %s=%lu", verdict_names[v], b.verdicts[v]);
	printf(", errors=%lu, probe cpu %.2f s\n", b.errors, cpu);
	printf("BENCH conc=%u n=%lu errors=%lu secs=%.3f mps=%.1f p50=%.3f p90=%.3f "
	       "p99=%.3f "
	       "max=%.3f cpu=%.3f\n",
	       cf->bench_conc, b.done, b.errors, secs,
	       secs > 0 ? (double)b.done / secs : 0.0,
	       percentile(b.latency_ms, b.done, 0.50),
	       percentile(b.latency_ms, b.done, 0.90),
	       percentile(b.latency_ms, b.done, 0.99),
	       b.done ? b.latency_ms[b.done - 1] : 0.0, cpu);
	free(b.latency_ms);
	free(tids);
	pthread_mutex_destroy(&b.lock);
	if (cf->bench_transcript != NULL && fclose(cf->bench_transcript) != 0) {
		fprintf(stderr, "%s: --bench-transcript: %s\n", PROG, strerror(errno));
		return EXIT_FAIL;
	}
	return b.errors == 0 ? EXIT_DONE : EXIT_FAIL;
}

/* ---- the message ---------------------------------------------------- */

static void
read_file(const char *path, strbuf *out)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char buf[65536];
	size_t n;

	if (fp == NULL)
		usage_error("%s: %s", path, strerror(errno));
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
		strbuf_append(out, buf, n);
	if (ferror(fp))
		usage_error("%s: read error", path);
	if (fp != stdin)
		fclose(fp);
}

/* Lines end in CRLF on the wire; a last line without a newline gets one. */
static void
to_crlf(strbuf *out, const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		size_t end = i > start && p[i - 1] == '\r' ? i - 1 : i;

		strbuf_append(out, p + start, end - start);
		strbuf_append(out, "\r\n", 2);
		start = i + 1;
	}
	if (start < n) {
		strbuf_append(out, p + start, n - start);
		strbuf_append(out, "\r\n", 2);
	}
}

/* Length of the header name if line starts "Name:" (spaces before ':' ok). */
static size_t
header_name_len(const char *p, size_t n)
{
	size_t len = 0, i = 0;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':') {
		i++;
		len++;
	}
	if (len == 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':' ? len : 0;
}

static void
add_header(config *cf, const char *p, size_t n, size_t name_len)
{
	header *h = PUSH(cf->hdrs, cf->nhdr);
	const char *colon = memchr(p, ':', n);

	h->name = ms_xstrndup(p, name_len);
	h->value = ms_xstrndup(colon + 1, n - (size_t)(colon + 1 - p));
}

/* Headers until the blank line, then the body; folded lines joined by \n. */
static void
parse_message(config *cf, const strbuf *msg, const char *path)
{
	const char *p = strbuf_str(msg), *end = p + msg->len;
	strbuf cur = STRBUF_INIT;
	size_t cur_name = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		size_t n = (size_t)((nl != NULL ? nl : end) - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0 && (p[0] == ' ' || p[0] == '\t') && cur_name > 0) {
			strbuf_putc(&cur, '\n');
			strbuf_append(&cur, p, n);
			p = next;
			continue;
		}
		if (cur_name > 0) {
			add_header(cf, cur.s, cur.len, cur_name);
			cur_name = 0;
		}
		if (n == 0) {
			p = next;
			break;
		}
		if ((cur_name = header_name_len(p, n)) == 0)
			break; /* not a header: the body starts here */
		strbuf_reset(&cur);
		strbuf_append(&cur, p, n);
		p = next;
	}
	if (cur_name > 0)
		add_header(cf, cur.s, cur.len, cur_name);
	strbuf_free(&cur);
	if (cf->nhdr == 0)
		fprintf(stderr, "%s: warning: %s has no headers\n", PROG, path);
	to_crlf(&cf->body, p, (size_t)(end - p));
}

static void
default_headers(config *cf)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	strbuf h = STRBUF_INIT;
	const char *from = cf->from[0];

	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (strcmp(from, "<>") == 0)
		from = "<MAILER-DAEMON@" MTA_HOSTNAME ">";
	strbuf_printf(&h, "From: %s", from);
	add_header(cf, h.s, h.len, 4);
	strbuf_reset(&h);
	strbuf_printf(&h, "To: %s", cf->rcpts[0][0]);
	add_header(cf, h.s, h.len, 2);
	strbuf_reset(&h);
	strbuf_puts(&h, "Subject: milter-probe test message");
	add_header(cf, h.s, h.len, 7);
	strbuf_reset(&h);
	strbuf_printf(&h, "Date: %s", date);
	add_header(cf, h.s, h.len, 4);
	strbuf_reset(&h);
	strbuf_printf(&h, "Message-ID: <%s@%s>", cf->queue_id, MTA_HOSTNAME);
	add_header(cf, h.s, h.len, 10);
	strbuf_free(&h);
}

/* --headers N: the first N of the default headers, then filler up to N. */
static void
shape_headers(config *cf, unsigned long n)
{
	strbuf h = STRBUF_INIT;

	default_headers(cf);
	while (cf->nhdr > n) {
		cf->nhdr--;
		free(cf->hdrs[cf->nhdr].name);
		free(cf->hdrs[cf->nhdr].value);
	}
	for (unsigned long i = cf->nhdr + 1; i <= n; i++) {
		strbuf_reset(&h);
		strbuf_printf(&h,
		              "X-Probe-Filler-%lu: header %lu of %lu, to give the "
		              "message a realistic shape",
		              i, i, n);
		add_header(cf, h.s, h.len, strcspn(h.s, ":"));
	}
	strbuf_free(&h);
}

/* --body-size N: N bytes of 76-byte CRLF lines of text (the last shorter). */
static void
shape_body(strbuf *body, unsigned long size)
{
	static const char line[] = "The quick brown fox jumps over the lazy dog; "
	                           "milter-probe filler text.....\r\n";
	size_t len = sizeof line - 1;

	strbuf_reset(body);
	while (body->len + len <= size)
		strbuf_append(body, line, len);
	if (body->len + 2 <= size) { /* a short last line, still CRLF-ended */
		strbuf_append(body, line, size - body->len - 2);
		strbuf_puts(body, "\r\n");
	}
	while (body->len < size)
		strbuf_putc(body, '\n');
}

/* ---- options ----------------------------------------------------------- */

/* "<a@b> SIZE=10" -> {"<a@b>", "SIZE=10", NULL}; brackets added if missing. */
static char **
envelope_argv(const char *arg, const char *opt)
{
	char **argv = NULL;
	size_t n = 0;
	const char *p = arg;

	p += strspn(p, " \t");
	if (*p == '\0') {
		*PUSH(argv, n) = ms_xstrdup("<>");
	} else {
		while (*p != '\0') {
			size_t len = strcspn(p, " \t");

			if (n == 0 && p[0] != '<') {
				strbuf b = STRBUF_INIT;

				strbuf_printf(&b, "<%.*s>", (int)len, p);
				*PUSH(argv, n) = strbuf_detach(&b);
			} else {
				*PUSH(argv, n) = ms_xstrndup(p, len);
			}
			p += len;
			p += strspn(p, " \t");
		}
	}
	if (argv[0][strlen(argv[0]) - 1] != '>')
		usage_error("%s: bad address '%s'", opt, argv[0]);
	*PUSH(argv, n) = NULL;
	return argv;
}

static void
free_argv(char **argv)
{
	for (char **p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

static void
set_client_addr(config *cf, const char *a)
{
	unsigned char bin[16];
	char tmp[64];
	size_t n = strlen(a);

	if (strcmp(a, "none") == 0) {
		cf->family = MPROTO_FAM_UNKNOWN;
		cf->client_addr[0] = '\0';
		return;
	}
	if (strcmp(a, "unix") == 0 || strncmp(a, "unix:", 5) == 0) {
		cf->family = MPROTO_FAM_UNIX;
		if (strlen(a + (a[4] ? 5 : 4)) >= sizeof cf->client_addr)
			usage_error("--client-addr: unix path too long");
		strcpy(cf->client_addr, a + (a[4] ? 5 : 4));
		return;
	}
	if (n >= 2 && a[0] == '[' && a[n - 1] == ']') {
		a++;
		n -= 2;
	}
	if (n > 5 && strncasecmp(a, "ipv6:", 5) == 0) {
		a += 5;
		n -= 5;
	}
	if (n >= sizeof tmp)
		usage_error("--client-addr: bad address");
	memcpy(tmp, a, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, bin) == 1)
		cf->family = MPROTO_FAM_INET;
	else if (inet_pton(AF_INET6, tmp, bin) == 1)
		cf->family = MPROTO_FAM_INET6;
	else
		usage_error("--client-addr: '%s' is not an IPv4 or IPv6 address, "
		            "'unix' or 'none'",
		            tmp);
	strcpy(cf->client_addr, tmp);
}

static void
add_macro(config *cf, const char *arg)
{
	const char *eq = strchr(arg, '=');
	const char *colon = strchr(arg, ':');
	int stage_idx = PROTO_M_CONNECT;
	macro_def *m;

	if (eq == NULL || eq == arg)
		usage_error("-m: expected [STAGE:]NAME=VALUE, got '%s'", arg);
	if (colon != NULL && colon < eq) {
		size_t n = (size_t)(colon - arg);

		stage_idx = -1;
		for (int i = 0; i < PROTO_M_COUNT; i++)
			if (strlen(mproto_stage_name(i)) == n &&
			    strncmp(arg, mproto_stage_name(i), n) == 0)
				stage_idx = i;
		if (stage_idx < 0)
			usage_error("-m: unknown stage '%.*s' (connect helo mail rcpt "
			            "data eoh eom)",
			            (int)n, arg);
		arg = colon + 1;
	}
	if (eq == arg)
		usage_error("-m: empty macro name");
	m = PUSH(cf->macros, cf->nmacro);
	m->stage = stage_idx;
	m->name = ms_xstrndup(arg, (size_t)(eq - arg));
	m->value = ms_xstrdup(eq + 1);
}

static unsigned long
parse_number(const char *arg, const char *opt, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v > max || arg[0] == '-')
		usage_error("%s: expected a number from 0 to %lu, got '%s'", opt, max,
		            arg);
	return v;
}

/* A byte count with an optional k or m suffix (binary). */
static unsigned long
parse_size(const char *arg, const char *opt, unsigned long max)
{
	char num[32];
	size_t n = strlen(arg);
	unsigned long mult = 1;

	if (n > 0 && strchr("kKmM", arg[n - 1]) != NULL) {
		mult = (arg[n - 1] == 'k' || arg[n - 1] == 'K') ? 1024 : 1024 * 1024;
		n--;
	}
	if (n == 0 || n >= sizeof num)
		usage_error("%s: expected a size such as 4096, 4k or 1m, got '%s'", opt,
		            arg);
	memcpy(num, arg, n);
	num[n] = '\0';
	if (parse_number(num, opt, max / mult) > max / mult)
		usage_error("%s: at most %lu bytes", opt, max);
	return parse_number(num, opt, max / mult) * mult;
}

static void
usage(void)
{
	printf("Usage: %s -p SOCKET [options]\n"
	       "Play one SMTP transaction against a milter, as Postfix would, and\n"
	       "print one line per stage.\n"
	       "\n"
	       "  -p, --socket SOCKET     milter socket: unix:/path, local:/path, /path,\n"
	       "                          inet:port[@host], inet6:port[@host],\n"
	       "                          or Postfix's inet:host:port\n"
	       "      --client-addr ADDR  client IPv4/IPv6 address (127.0.0.1), or "
	       "'none'\n"
	       "                          (family U, as Postfix for a local client) or\n"
	       "                          'unix[:PATH]' (family L)\n"
	       "      --client-name NAME  client host name (localhost)\n"
	       "      --client-port PORT  client port (12345)\n"
	       "      --helo NAME         HELO name (probe.example)\n"
	       "      --from ADDR         envelope sender, ESMTP args may follow\n"
	       "                          (<sender@example.com>; <> allowed)\n"
	       "      --rcpt ADDR         recipient, repeatable (<rcpt@example.com>)\n"
	       "      --header 'N: V'     message header, repeatable (replaces the\n"
	       "                          default headers)\n"
	       "      --body FILE         message body (- for stdin)\n"
	       "      --message FILE      RFC 5322 message: headers, blank line, body\n"
	       "      --rcpts N           N more recipients <rcptK@example.com>\n"
	       "      --headers N         N headers: the default ones, then fillers\n"
	       "      --body-size SIZE    a generated body of SIZE bytes (k, m "
	       "suffixes)\n"
	       "  -m, --macro [STAGE:]NAME=VALUE\n"
	       "                          macro, repeatable; STAGE is connect "
	       "(default),\n"
	       "                          helo, mail, rcpt, data, eoh or eom\n"
	       "      --queue-id ID       value of the i macro (PROBE00001)\n"
	       "      --timeout SECONDS   per read/write and connect (30)\n"
	       "      --bench C,N         load mode: N transactions, C at a time, each\n"
	       "                          on its own connection; prints msg/s, latency\n"
	       "                          percentiles, verdicts, errors, a BENCH line\n"
	       "      --bench C,Ds        load mode for D seconds instead\n"
	       "      --stage-delay MS    wait MS before each SMTP command and the\n"
	       "                          message, as a client across a network would\n"
	       "      --bench-vary-client with an IPv6 --client-addr: transaction k\n"
	       "                          comes from that address with k as last 32 "
	       "bits\n"
	       "  -v, --verbose           print every packet on stderr, and the\n"
	       "                          number of bytes written at the end\n"
	       "  -V, --version           print the version\n"
	       "  -h, --help              this help\n"
	       "      --hold SECONDS      after connect, keep the session open and idle\n"
	       "                          for SECONDS before going on\n"
	       "      --cut-after BYTES   hang up after writing BYTES bytes, mid-packet\n"
	       "                          too; with --bench, transaction k is cut\n"
	       "                          after k mod (BYTES+1) bytes\n"
	       "      --bench-transcript FILE  with --bench: one line per transaction\n"
	       "                          in FILE, its stage lines joined by ' | '\n"
	       "\n"
	       "Exit status: 0 transaction completed, 1 protocol or I/O error,\n"
	       "2 usage error. See milter-probe(1).\n",
	       PROG);
}

enum {
	OPT_CLIENT_ADDR = 256,
	OPT_CLIENT_NAME,
	OPT_CLIENT_PORT,
	OPT_HELO,
	OPT_FROM,
	OPT_RCPT,
	OPT_HEADER,
	OPT_BODY,
	OPT_MESSAGE,
	OPT_QUEUE_ID,
	OPT_TIMEOUT,
	OPT_RCPTS,
	OPT_HEADERS,
	OPT_BODY_SIZE,
	OPT_STAGE_DELAY,
	OPT_BENCH,
	OPT_BENCH_VARY,
	OPT_HOLD,
	OPT_CUT_AFTER,
	OPT_BENCH_TRANSCRIPT,
};

static const struct option long_opts[] = {
        {"socket", required_argument, NULL, 'p'},
        {"client-addr", required_argument, NULL, OPT_CLIENT_ADDR},
        {"client-name", required_argument, NULL, OPT_CLIENT_NAME},
        {"client-port", required_argument, NULL, OPT_CLIENT_PORT},
        {"helo", required_argument, NULL, OPT_HELO},
        {"from", required_argument, NULL, OPT_FROM},
        {"rcpt", required_argument, NULL, OPT_RCPT},
        {"header", required_argument, NULL, OPT_HEADER},
        {"body", required_argument, NULL, OPT_BODY},
        {"message", required_argument, NULL, OPT_MESSAGE},
        {"macro", required_argument, NULL, 'm'},
        {"queue-id", required_argument, NULL, OPT_QUEUE_ID},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"rcpts", required_argument, NULL, OPT_RCPTS},
        {"headers", required_argument, NULL, OPT_HEADERS},
        {"body-size", required_argument, NULL, OPT_BODY_SIZE},
        {"stage-delay", required_argument, NULL, OPT_STAGE_DELAY},
        {"bench", required_argument, NULL, OPT_BENCH},
        {"bench-vary-client", no_argument, NULL, OPT_BENCH_VARY},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"cut-after", required_argument, NULL, OPT_CUT_AFTER},
        {"bench-transcript", required_argument, NULL, OPT_BENCH_TRANSCRIPT},
        {NULL, 0, NULL, 0},
};

static void
parse_args(config *cf, int argc, char **argv)
{
	const char *body_file = NULL, *message_file = NULL;
	const char **hdr_args = NULL;
	size_t nhdr_args = 0;
	unsigned long gen_rcpts = 0;
	long gen_headers = -1, gen_body = -1; /* -1: not asked for */
	int c;

	memset(cf, 0, sizeof *cf);
	strbuf_init(&cf->body);
	set_client_addr(cf, "127.0.0.1");
	cf->client_name = "localhost";
	cf->client_port = 12345;
	cf->helo = "probe.example";
	cf->queue_id = "PROBE00001";
	cf->timeout_ms = 30000;

	while ((c = getopt_long(argc, argv, "p:m:vVh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			cf->socket = optarg;
			break;
		case OPT_CLIENT_ADDR:
			set_client_addr(cf, optarg);
			break;
		case OPT_CLIENT_NAME:
			if (optarg[0] == '\0')
				usage_error("--client-name: empty name");
			cf->client_name = optarg;
			break;
		case OPT_CLIENT_PORT:
			cf->client_port =
			        (unsigned)parse_number(optarg, "--client-port", 65535);
			break;
		case OPT_HELO:
			cf->helo = optarg;
			break;
		case OPT_FROM:
			if (cf->from != NULL)
				free_argv(cf->from);
			cf->from = envelope_argv(optarg, "--from");
			break;
		case OPT_RCPT:
			*PUSH(cf->rcpts, cf->nrcpt) = envelope_argv(optarg, "--rcpt");
			break;
		case OPT_HEADER:
			*PUSH(hdr_args, nhdr_args) = optarg;
			break;
		case OPT_BODY:
			body_file = optarg;
			break;
		case OPT_MESSAGE:
			message_file = optarg;
			break;
		case 'm':
			add_macro(cf, optarg);
			break;
		case OPT_QUEUE_ID:
			cf->queue_id = optarg;
			break;
		case OPT_RCPTS:
			gen_rcpts = parse_number(optarg, "--rcpts", 1000000);
			break;
		case OPT_HEADERS:
			gen_headers = (long)parse_number(optarg, "--headers", 100000);
			break;
		case OPT_STAGE_DELAY:
			cf->stage_delay_ms =
			        (int)parse_number(optarg, "--stage-delay", 600000);
			break;
		case OPT_BODY_SIZE:
			gen_body = (long)parse_size(optarg, "--body-size", 1UL << 30);
			break;
		case OPT_BENCH: {
			char *comma = strchr(optarg, ',');
			size_t n;

			if (comma == NULL)
				usage_error("--bench: expected CONCURRENCY,COUNT or "
				            "CONCURRENCY,SECONDSs");
			*comma = '\0';
			cf->bench_conc =
			        (unsigned)parse_number(optarg, "--bench", 100000);
			n = strlen(comma + 1);
			if (n > 1 && comma[n] == 's') {
				comma[n] = '\0';
				cf->bench_secs =
				        (double)parse_number(comma + 1, "--bench", 86400);
				cf->bench_n = cf->bench_secs > 0 ? 1000000000 : 0;
			} else {
				cf->bench_n =
				        parse_number(comma + 1, "--bench", 1000000000);
			}
			if (cf->bench_conc == 0 || cf->bench_n == 0)
				usage_error("--bench: CONCURRENCY and COUNT (or SECONDS) "
				            "must be "
				            "positive");
			cf->quiet = true;
			break;
		}
		case OPT_BENCH_VARY:
			cf->bench_vary = true;
			break;
		case OPT_BENCH_TRANSCRIPT:
			if (cf->bench_transcript != NULL)
				fclose(cf->bench_transcript);
			cf->bench_transcript = fopen(optarg, "w");
			if (cf->bench_transcript == NULL)
				usage_error("--bench-transcript: %s: %s", optarg,
				            strerror(errno));
			break;
		case OPT_TIMEOUT: {
			char *end;
			double t = strtod(optarg, &end);

			if (end == optarg || *end != '\0' || !(t > 0) || t > 86400)
				usage_error(
				        "--timeout: expected seconds (0 < s <= 86400), "
				        "got '%s'",
				        optarg);
			cf->timeout_ms = (int)(t * 1000);
			if (cf->timeout_ms < 1)
				cf->timeout_ms = 1;
			break;
		}
		case 'v':
			cf->verbose = true;
			break;
		case 'V':
			printf("%s %s\n", PROG, PACKAGE_VERSION);
			exit(EXIT_DONE);
		case 'h':
			usage();
			exit(EXIT_DONE);
		case OPT_HOLD:
			cf->hold_s = (unsigned)parse_number(optarg, "--hold", 86400);
			break;
		case OPT_CUT_AFTER:
			cf->cut = true;
			cf->cut_after = parse_number(optarg, "--cut-after", 1UL << 40);
			break;
		default:
			fprintf(stderr, "Try '%s -h' for help.\n", PROG);
			exit(EXIT_USAGE);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (cf->socket == NULL)
		usage_error("-p SOCKET is required");
	if (cf->bench_transcript != NULL && cf->bench_conc == 0)
		usage_error("--bench-transcript needs --bench");
	{
		sockspec ss;
		strbuf err = STRBUF_INIT;

		if (!mproto_conn_spec(cf->socket, &ss, &err))
			usage_error("-p: %s", strbuf_str(&err));
		strbuf_free(&err);
	}
	if (message_file != NULL && (body_file != NULL || nhdr_args > 0))
		usage_error("--message excludes --header and --body");
	if (gen_headers >= 0 && (message_file != NULL || nhdr_args > 0))
		usage_error("--headers excludes --header and --message");
	if (gen_body >= 0 && (message_file != NULL || body_file != NULL))
		usage_error("--body-size excludes --body and --message");
	if (cf->from == NULL)
		cf->from = envelope_argv("<sender@example.com>", "--from");
	for (unsigned long i = 1; i <= gen_rcpts; i++) {
		char addr[64];

		snprintf(addr, sizeof addr, "<rcpt%lu@example.com>", i);
		*PUSH(cf->rcpts, cf->nrcpt) = envelope_argv(addr, "--rcpts");
	}
	if (cf->nrcpt == 0)
		*PUSH(cf->rcpts, cf->nrcpt) =
		        envelope_argv("<rcpt@example.com>", "--rcpt");

	for (size_t i = 0; i < nhdr_args; i++) {
		const char *h = hdr_args[i];
		size_t n = strlen(h), name_len = header_name_len(h, n);
		strbuf folded = STRBUF_INIT;

		if (name_len == 0)
			usage_error("--header: expected 'Name: value', got '%s'", h);
		/* A multi-line argument is a folded header: join lines with \n. */
		for (size_t j = 0; j < n; j++)
			if (h[j] != '\r' || h[j + 1] != '\n')
				strbuf_putc(&folded, h[j]);
		add_header(cf, folded.s, folded.len, name_len);
		strbuf_free(&folded);
	}
	free(hdr_args);

	if (message_file != NULL) {
		strbuf msg = STRBUF_INIT;

		read_file(message_file, &msg);
		parse_message(cf, &msg, message_file);
		strbuf_free(&msg);
	} else {
		strbuf raw = STRBUF_INIT;

		if (gen_headers >= 0)
			shape_headers(cf, (unsigned long)gen_headers);
		else if (cf->nhdr == 0)
			default_headers(cf);
		if (body_file != NULL)
			read_file(body_file, &raw);
		else
			strbuf_puts(&raw, DEFAULT_BODY);
		to_crlf(&cf->body, raw.s, raw.len);
		strbuf_free(&raw);
		if (gen_body >= 0)
			shape_body(&cf->body, (unsigned long)gen_body);
	}
}

static void
free_config(config *cf)
{
	free_argv(cf->from);
	for (size_t i = 0; i < cf->nrcpt; i++)
		free_argv(cf->rcpts[i]);
	free(cf->rcpts);
	for (size_t i = 0; i < cf->nhdr; i++) {
		free(cf->hdrs[i].name);
		free(cf->hdrs[i].value);
	}
	free(cf->hdrs);
	for (size_t i = 0; i < cf->nmacro; i++) {
		free(cf->macros[i].name);
		free(cf->macros[i].value);
	}
	free(cf->macros);
	strbuf_free(&cf->body);
}

int
main(int argc, char **argv)
{
	config cf;
	int status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(&cf, argc, argv);
	status = cf.bench_conc > 0 ? run_bench(&cf) : run(&cf);
	free_config(&cf);
	return status;
}
