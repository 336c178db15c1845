/*
 * probe-txn - one SMTP transaction against a milter, as Postfix plays it
 *
 * DESCRIPTION
 *	The MTA side of milter protocol v6: negotiate like Postfix (version
 *	6, actions 0x1ff, protocol 0x1fffff), then connect, helo, mail,
 *	rcpt..., data, headers, eoh, body chunks, eom, and the aborts and
 *	quit Postfix sends at the end of a transaction and session. Honours
 *	what the milter negotiated (SMFIP_NO*, NR_*, SKIP, HDR_LEADSPC,
 *	macro lists) and stops where Postfix would stop. Prints one stable
 *	line per stage (see milter-probe(1)), and a verdict for the whole.
 *
 *	A probe_txn is one transaction's state, on the stack of the thread
 *	that runs it: --bench runs many at once. See probe.h.
 */
#include "config.h"

#include "mproto.h"
#include "names.h"
#include "probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const verdict_names[PROBE_NVERDICT] = {
        "continue", "accept",   "discard", "quarantine",
        "reject",   "tempfail", "cut",     "shutdown",
};

const char *
probe_verdict_name(probe_verdict v)
{
	if (v < 0 || v >= PROBE_NVERDICT)
		ms_panic("bad verdict %d", (int)v);
	return verdict_names[v];
}

typedef struct {
	const probe_opts *opts;
	mproto_conn *conn;
	bool open;  /* Postfix still talks to the milter */
	strbuf out; /* packets queued, written before the next read */
	strbuf pkt; /* last packet read */
	strbuf err;
	strbuf line; /* the stdout line being built */
	strbuf tmp;
	mproto_reply r;
	uint32_t version, actions, protocol;
	uint32_t np_mask;           /* events the milter's protocol version lacks */
	char *lists[PROTO_M_COUNT]; /* the milter's macro lists */
	int skip_cmd;               /* event type skipped after an 's' reply */
	bool smtpd_held;            /* 'q' before DATA: smtpd stops sending events */
	bool msg_held;              /* 'q' during the message: cleanup stops */
	char *held_reason;          /* the last quarantine reason */
	const char *rcpt_addr;      /* for {rcpt_addr} */
	const char *where;          /* stage name for error messages, or NULL */
	char why[64];               /* reason an event was not sent */
	bool failed;
	probe_verdict result;
	const char *result_stage;
	bool hangup;        /* a 421/521: Postfix drops the client */
	size_t written;     /* bytes of the MTA-side stream sent so far */
	bool cut;           /* --cut-after reached: the connection is closed */
	strbuf *transcript; /* --bench-transcript: the stage lines, or NULL */
	probe_txn_stats stats;
} probe_txn;

static void fail(probe_txn *t, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void out(const probe_txn *t, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* ---- small helpers ------------------------------------------------------ */

static void
fail(probe_txn *t, const char *fmt, ...)
{
	va_list ap;

	if (t->failed)
		return;
	t->failed = true;
	fflush(stdout);
	if (t->where != NULL)
		fprintf(stderr, "%s: %s: ", PROBE_NAME, t->where);
	else
		fprintf(stderr, "%s: ", PROBE_NAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Append text from the milter so that the output stays one line. */
static void
put_esc(strbuf *b, const char *p)
{
	for (; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

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

/* ---- I/O -------------------------------------------------------------- */

static void
dump(probe_txn *t, const char *dir, const unsigned char *p, size_t len, int from_milter)
{
	if (!t->opts->verbose)
		return;
	strbuf_reset(&t->tmp);
	mproto_dump(&t->tmp, p, len, from_milter, 512);
	fprintf(stderr, "%s: %s %s\n", PROBE_NAME, dir, strbuf_str(&t->tmp));
}

/* Length of the whole queued packet at p, header included. */
static size_t
packet_len(const unsigned char *p)
{
	return (size_t)names_get32(p) + MPROTO_HDR_LEN;
}

/*
 * --cut-after: write the queued packets up to the cut, mid-packet if it falls
 * there, and close the connection, as an MTA process that dies would. Ends
 * the transaction (t->failed stops every stage; t->cut says it was asked for).
 */
static int
cut_stream(probe_txn *t)
{
	size_t keep = t->opts->cut_after - t->written, off = 0;
	const unsigned char *p = (const unsigned char *)t->out.s;

	while (off + MPROTO_HDR_LEN + 1 <= t->out.len &&
	       off + packet_len(p + off) <= keep)
		off += packet_len(p + off);
	if (keep > 0 &&
	    mproto_conn_write(t->conn, t->out.s, keep, &t->err) != MPROTO_OK) {
		fail(t, "%s", strbuf_str(&t->err));
		return -1;
	}
	t->written += keep;
	mproto_conn_close(t->conn);
	t->conn = NULL;
	if (keep == off)
		out(t, "cut: after %zu bytes, before packet %s\n", t->written,
		    mproto_command_name(p[off + MPROTO_HDR_LEN]));
	else
		out(t, "cut: after %zu bytes, %zu of the %zu bytes of packet %s\n",
		    t->written, keep - off, packet_len(p + off),
		    mproto_command_name(p[off + MPROTO_HDR_LEN]));
	t->cut = true;
	t->failed = true;
	return -1;
}

static int
flush_out(probe_txn *t)
{
	size_t off = 0;

	if (t->failed)
		return -1;
	/* Dump each queued packet, then write them all at once. */
	while (t->opts->verbose && off + MPROTO_HDR_LEN <= t->out.len) {
		const unsigned char *p = (const unsigned char *)t->out.s + off;
		size_t n = packet_len(p);

		dump(t, ">", p, n, 0);
		off += n;
	}
	if (t->out.len == 0)
		return 0;
	if (t->opts->cut && t->written + t->out.len > t->opts->cut_after)
		return cut_stream(t);
	if (mproto_conn_write(t->conn, t->out.s, t->out.len, &t->err) != MPROTO_OK) {
		fail(t, "%s", strbuf_str(&t->err));
		return -1;
	}
	t->written += t->out.len;
	strbuf_reset(&t->out);
	return 0;
}

double
probe_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Each reply is timed from the write of what it answers, as the MTA waits. */
static int
read_reply(probe_txn *t)
{
	struct timespec t0;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (flush_out(t) < 0)
		return -1;
	if (mproto_conn_read_reply(t->conn, &t->pkt, &t->r, &t->err) != MPROTO_OK) {
		if (t->pkt.len >= MPROTO_HDR_LEN + 1)
			dump(t, "<", (const unsigned char *)t->pkt.s, t->pkt.len, 1);
		fail(t, "%s", strbuf_str(&t->err));
		return -1;
	}
	ms = probe_ms_since(&t0);
	if (ms > t->stats.slowest_reply_ms) {
		t->stats.slowest_reply_ms = ms;
		t->stats.slowest_stage = t->where != NULL ? t->where : "negotiate";
	}
	dump(t, "<", (const unsigned char *)t->pkt.s, t->pkt.len, 1);
	return 0;
}

static void
close_milter(probe_txn *t)
{
	t->open = false;
}

/* ---- output ----------------------------------------------------------- */

static void
line_start(probe_txn *t, const char *label)
{
	strbuf_reset(&t->line);
	strbuf_puts(&t->line, label);
	strbuf_puts(&t->line, ": ");
}

/*
 * Every stage line goes through here; --bench runs quiet, or collects the
 * lines for its transcript.
 */
static void
out(const probe_txn *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (t->transcript != NULL)
		strbuf_vprintf(t->transcript, fmt, ap);
	else if (!t->opts->quiet)
		vprintf(fmt, ap);
	va_end(ap);
}

static void
line_end(probe_txn *t)
{
	out(t, "%s\n", strbuf_str(&t->line));
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

static probe_verdict
final_verdict(const mproto_reply *r)
{
	switch (r->cmd) {
	case MPROTO_R_ACCEPT:
		return PROBE_ACCEPT;
	case MPROTO_R_DISCARD:
		return PROBE_DISCARD;
	case MPROTO_R_REJECT:
		return PROBE_REJECT;
	case MPROTO_R_TEMPFAIL:
		return PROBE_TEMPFAIL;
	case MPROTO_R_SHUTDOWN:
		return PROBE_SHUTDOWN;
	case MPROTO_R_REPLYCODE:
		return r->text[0] == '4' ? PROBE_TEMPFAIL : PROBE_REJECT;
	default: /* continue, skip */
		return PROBE_NONE;
	}
}

static void
put_verdict(probe_txn *t)
{
	const mproto_reply *r = &t->r;

	switch (r->cmd) {
	case MPROTO_R_CONTINUE:
		strbuf_puts(&t->line, "continue");
		break;
	case MPROTO_R_SKIP:
		strbuf_puts(&t->line, "skip");
		break;
	case MPROTO_R_REPLYCODE:
		strbuf_puts(&t->line, r->text[0] == '4' ? "tempfail " : "reject ");
		put_reply_text(&t->line, r->text);
		break;
	default:
		strbuf_puts(&t->line, probe_verdict_name(final_verdict(r)));
	}
}

static bool
is_hangup(const mproto_reply *r)
{
	return r->cmd == MPROTO_R_REPLYCODE &&
	       (strncmp(r->text, "421", 3) == 0 || strncmp(r->text, "521", 3) == 0);
}

static void
set_result(probe_txn *t, probe_verdict v, const char *stage)
{
	t->result = v;
	t->result_stage = stage;
}

/* ---- events ----------------------------------------------------------- */

static void
print_edit(probe_txn *t, const char *label)
{
	const mproto_reply *r = &t->r;
	const char *sep = (t->protocol & PROTO_P_HDR_LEADSPC) ? ":" : ": ";

	line_start(t, label);
	switch (r->cmd) {
	case MPROTO_R_ADDHEADER:
		strbuf_puts(&t->line, "add header ");
		put_esc(&t->line, r->name);
		strbuf_puts(&t->line, sep);
		put_esc(&t->line, r->value);
		break;
	case MPROTO_R_INSHEADER:
		strbuf_printf(&t->line, "insert header at %lu ", (unsigned long)r->index);
		put_esc(&t->line, r->name);
		strbuf_puts(&t->line, sep);
		put_esc(&t->line, r->value);
		break;
	case MPROTO_R_CHGHEADER:
		strbuf_puts(&t->line, r->value[0] ? "change header " : "delete header ");
		put_esc(&t->line, r->name);
		strbuf_printf(&t->line, "[%lu]", (unsigned long)r->index);
		if (r->value[0]) {
			strbuf_puts(&t->line, sep);
			put_esc(&t->line, r->value);
		}
		break;
	case MPROTO_R_ADDRCPT:
	case MPROTO_R_ADDRCPT_PAR:
	case MPROTO_R_DELRCPT:
	case MPROTO_R_CHGFROM:
		strbuf_puts(&t->line, r->cmd == MPROTO_R_DELRCPT   ? "delete rcpt "
		                      : r->cmd == MPROTO_R_CHGFROM ? "change from "
		                                                   : "add rcpt ");
		put_esc(&t->line, r->addr);
		if (r->args != NULL && r->args[0] != '\0') {
			strbuf_putc(&t->line, ' ');
			put_esc(&t->line, r->args);
		}
		break;
	case MPROTO_R_REPLBODY:
		strbuf_printf(&t->line, "replace body %zu bytes", r->body_len);
		break;
	}
	line_end(t);
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

/*
 * Postfix sends each header with the end-of-header macros, each body chunk
 * with the end-of-message ones. End of message can be neither disabled nor
 * left without a reply.
 */
/* clang-format off */
/*                                   cmd               stage            no_flag            nr_flag          smtpd conn_level */
static const event_kind EV_CONNECT = {MPROTO_C_CONNECT, PROTO_M_CONNECT, PROTO_P_NOCONNECT, PROTO_P_NR_CONN, true,  true};
static const event_kind EV_HELO =    {MPROTO_C_HELO,    PROTO_M_HELO,    PROTO_P_NOHELO,    PROTO_P_NR_HELO, true,  true};
static const event_kind EV_MAIL =    {MPROTO_C_MAIL,    PROTO_M_MAIL,    PROTO_P_NOMAIL,    PROTO_P_NR_MAIL, true,  false};
static const event_kind EV_RCPT =    {MPROTO_C_RCPT,    PROTO_M_RCPT,    PROTO_P_NORCPT,    PROTO_P_NR_RCPT, true,  false};
static const event_kind EV_DATA =    {MPROTO_C_DATA,    PROTO_M_DATA,    PROTO_P_NODATA,    PROTO_P_NR_DATA, true,  false};
static const event_kind EV_HEADER =  {MPROTO_C_HEADER,  PROTO_M_EOH,     PROTO_P_NOHDRS,    PROTO_P_NR_HDR,  false, false};
static const event_kind EV_EOH =     {MPROTO_C_EOH,     PROTO_M_EOH,     PROTO_P_NOEOH,     PROTO_P_NR_EOH,  false, false};
static const event_kind EV_BODY =    {MPROTO_C_BODY,    PROTO_M_EOM,     PROTO_P_NOBODY,    PROTO_P_NR_BODY, false, false};
static const event_kind EV_EOM =     {MPROTO_C_EOM,     PROTO_M_EOM,     0,                 0,               false, false};
/* clang-format on */

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

/* The macros of one event (probe-macro.c), queued before the event itself. */
static void
queue_macros(probe_txn *t, const event_kind *k)
{
	if (probe_macros_put(&t->out, t->opts, t->lists[k->stage], k->stage, k->cmd,
	                     t->rcpt_addr) < 0)
		fail(t, "macros too large for one packet");
}

/* Read replies until the final one; print edits and quarantine on the way. */
static int
read_final(probe_txn *t, const event_kind *k, const char *label)
{
	bool body_started = false, body_locked = false;

	for (;;) {
		if (read_reply(t) < 0)
			return -1;
		switch (t->r.cmd) {
		case MPROTO_R_PROGRESS:
			continue;
		case MPROTO_R_QUARANTINE:
			line_start(t, label);
			strbuf_puts(&t->line, "quarantine ");
			put_esc(&t->line, t->r.text);
			line_end(t);
			free(t->held_reason);
			t->held_reason = ms_xstrdup(t->r.text);
			if (k->smtpd)
				t->smtpd_held = true;
			else
				t->msg_held = true;
			continue;
		case MPROTO_R_REPLYCODE:
			if (mproto_reply_text_check(t->r.text, &t->err) < 0) {
				strbuf_reset(&t->tmp);
				put_esc(&t->tmp, t->r.text);
				fail(t,
				     "malformed reply text \"%s\": %s (Postfix disables "
				     "the milter)",
				     strbuf_str(&t->tmp), strbuf_str(&t->err));
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
			if (t->r.cmd == MPROTO_R_REPLBODY) {
				if (body_locked) {
					fail(t, "body replacement mixed with other "
					        "requests (Postfix refuses this)");
					return -1;
				}
				body_started = true;
			} else if (body_started) {
				body_locked = true;
			}
			print_edit(t, label);
			continue;
		}
		fail(t, "unexpected reply '%c' (%s)", t->r.cmd,
		     mproto_reply_name(t->r.cmd));
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
send_event(probe_txn *t, const event_kind *k, const strbuf *ev, const char *label,
           const char **why)
{
	if (t->failed)
		return EV_ERROR;
	if ((k->smtpd && t->smtpd_held) || (!k->smtpd && t->msg_held)) {
		*why = "quarantined";
		return EV_NOT_SENT;
	}
	if (k->no_flag & t->np_mask) {
		snprintf(t->why, sizeof t->why, "milter protocol version %lu",
		         (unsigned long)t->version);
		*why = t->why;
		return EV_NOT_SENT;
	}
	if (t->skip_cmd != 0) {
		if (t->skip_cmd == k->cmd) {
			*why = "skip";
			return EV_NOT_SENT;
		}
		t->skip_cmd = 0;
	}
	if (k->stage >= 0)
		queue_macros(t, k);
	if (k->no_flag & t->protocol) {
		*why = flag_name(k->no_flag);
		return EV_NOT_SENT;
	}
	if (ev->len == 0) { /* the encoder refused it */
		fail(t, "the packet for %s would exceed %d bytes", label,
		     MPROTO_MAX_PACKET);
		return EV_ERROR;
	}
	strbuf_append(&t->out, ev->s, ev->len);
	if (k->nr_flag & t->protocol)
		return EV_NOREPLY;
	if (read_final(t, k, label) < 0)
		return EV_ERROR;
	if (t->r.cmd == MPROTO_R_SKIP)
		t->skip_cmd = k->cmd;
	return EV_REPLY;
}

/*
 * Run an event and print its line. Returns the send_event() result; after
 * EV_REPLY the reply is in s->r.
 */
static int
run_stage(probe_txn *t, const event_kind *k, const strbuf *ev, const char *label)
{
	const char *why = NULL;
	int rc;

	/*
	 * An SMTP command, or the message itself, first crosses the network
	 * from the client: the milter session stays open, idle, meanwhile.
	 */
	if (t->opts->stage_delay_ms > 0 &&
	    (k->cmd == MPROTO_C_HELO || k->cmd == MPROTO_C_MAIL ||
	     k->cmd == MPROTO_C_RCPT || k->cmd == MPROTO_C_DATA ||
	     k->cmd == MPROTO_C_EOM)) {
		struct timespec d = {t->opts->stage_delay_ms / 1000,
		                     (long)(t->opts->stage_delay_ms % 1000) * 1000000L};

		while (nanosleep(&d, &d) < 0 && errno == EINTR)
			;
	}
	rc = send_event(t, k, ev, label, &why);
	switch (rc) {
	case EV_NOT_SENT:
		/* "helo: not sent (NOHELO)"; recipients and headers say which. */
		line_start(t, k->cmd == MPROTO_C_RCPT || k->cmd == MPROTO_C_HEADER
		                      ? label
		                      : mproto_command_name(k->cmd));
		strbuf_printf(&t->line, "not sent (%s)", why);
		line_end(t);
		break;
	case EV_NOREPLY:
		line_start(t, label);
		strbuf_puts(&t->line, "(no reply)");
		line_end(t);
		break;
	case EV_REPLY:
		line_start(t, label);
		put_verdict(t);
		if (k->conn_level && t->r.cmd == MPROTO_R_DISCARD)
			strbuf_printf(&t->line, " (ignored: not allowed at %s)",
			              mproto_command_name(k->cmd));
		line_end(t);
		break;
	}
	return rc;
}

/* ---- the transaction ------------------------------------------------- */

static int
negotiate(probe_txn *t)
{
	const mproto_reply *r = &t->r;

	t->where = "negotiate";
	mproto_put_optneg(&t->out, MPROTO_VERSION, PROTO_F_ALL, PROTO_P_ALL);
	if (read_reply(t) < 0)
		return -1;
	if (r->cmd != MPROTO_R_OPTNEG) {
		fail(t, "expected a negotiation reply, got '%c' (%s)", r->cmd,
		     mproto_reply_name(r->cmd));
		return -1;
	}
	if (r->version > MPROTO_VERSION) {
		fail(t, "milter protocol version %lu is newer than ours (%d)",
		     (unsigned long)r->version, MPROTO_VERSION);
		return -1;
	}
	if ((r->actions & PROTO_F_ALL) != r->actions) {
		fail(t, "milter asks for actions 0x%08lx beyond the offered 0x%08x",
		     (unsigned long)r->actions, PROTO_F_ALL);
		return -1;
	}
	t->version = r->version;
	t->actions = r->actions;
	t->protocol = r->protocol;
	/* Older milters don't get events their version lacks (Postfix does so). */
	if (t->version < 2)
		fprintf(stderr,
		        "%s: negotiate: warning: unexpected protocol version %lu\n",
		        PROBE_NAME, (unsigned long)t->version);
	else if (t->version < 3)
		t->np_mask = PROTO_P_NOUNKNOWN | PROTO_P_NODATA;
	else if (t->version < 4)
		t->np_mask = PROTO_P_NODATA;

	line_start(t, "negotiate");
	strbuf_printf(&t->line, "version %lu actions 0x%08lx protocol 0x%08lx ",
	              (unsigned long)r->version, (unsigned long)r->actions,
	              (unsigned long)r->protocol);
	if (r->protocol == 0)
		strbuf_puts(&t->line, "(nothing disabled)");
	else
		mproto_protocol_names(&t->line, r->protocol);
	line_end(t);

	for (int i = 0; i < PROTO_M_COUNT; i++) {
		if (r->macros[i] == NULL)
			continue;
		t->lists[i] = ms_xstrdup(r->macros[i]);
		line_start(t, "negotiate");
		strbuf_printf(&t->line, "macros %s ", mproto_stage_name(i));
		put_esc(&t->line, r->macros[i]);
		line_end(t);
	}
	if (r->ignored_lists > 0)
		fprintf(stderr,
		        "%s: negotiate: ignoring %u macro list(s) for unknown "
		        "stages\n",
		        PROBE_NAME, r->ignored_lists);
	return 0;
}

/* The final verdict in the reply to an event, PROBE_NONE when there is none. */
static probe_verdict
event_verdict(const probe_txn *t, int rc)
{
	return rc == EV_REPLY ? final_verdict(&t->r) : PROBE_NONE;
}

/* connect and helo: any final verdict but discard ends the milter session. */
static bool
connect_stage_ends(probe_txn *t, int rc, const char *stage_name)
{
	probe_verdict v = event_verdict(t, rc);

	/* At a discard Postfix logs a warning and goes on. */
	if (v == PROBE_NONE || v == PROBE_DISCARD)
		return false;
	close_milter(t); /* Postfix closes the socket without QUIT */
	set_result(t, v, stage_name);
	return true;
}

static bool
do_connect(probe_txn *t, strbuf *ev)
{
	const probe_opts *opts = t->opts;
	const char *name = opts->client_name;
	strbuf label = STRBUF_INIT, sm_name = STRBUF_INIT;
	bool ended;

	t->where = "connect";
	/* Postfix sends an unknown client name as [address]. */
	if (strcmp(name, "unknown") == 0 &&
	    (opts->family == MPROTO_FAM_INET || opts->family == MPROTO_FAM_INET6)) {
		strbuf_printf(&sm_name, "[%s]", opts->client_addr);
		name = strbuf_str(&sm_name);
	}
	strbuf_reset(ev);
	mproto_put_connect(ev, name, opts->family,
	                   opts->family == MPROTO_FAM_UNIX ? 0 : opts->client_port,
	                   opts->client_addr);
	switch (opts->family) {
	case MPROTO_FAM_INET:
	case MPROTO_FAM_INET6:
		strbuf_printf(&label, "connect %s [%s]", name, opts->client_addr);
		break;
	case MPROTO_FAM_UNIX:
		strbuf_printf(&label, "connect %s (unix%s%s)", name,
		              opts->client_addr[0] ? " " : "", opts->client_addr);
		break;
	default:
		strbuf_printf(&label, "connect %s (no address)", name);
	}
	ended = connect_stage_ends(t, run_stage(t, &EV_CONNECT, ev, strbuf_str(&label)),
	                           "connect");
	strbuf_free(&label);
	strbuf_free(&sm_name);
	return ended;
}

static bool
do_helo(probe_txn *t, strbuf *ev)
{
	strbuf label = STRBUF_INIT;
	bool ended;

	t->where = "helo";
	strbuf_reset(ev);
	mproto_put_helo(ev, t->opts->helo);
	strbuf_printf(&label, "helo %s", t->opts->helo);
	ended = connect_stage_ends(t, run_stage(t, &EV_HELO, ev, strbuf_str(&label)),
	                           "helo");
	strbuf_free(&label);
	return ended;
}

/*
 * What a reply at mail, data or in the message does to the transaction:
 * true when the message ends here (decision made, or the session is over).
 */
static bool
message_ends(probe_txn *t, int rc, const char *stage_name)
{
	probe_verdict v = event_verdict(t, rc);

	if (v == PROBE_NONE)
		return false;
	if (v == PROBE_SHUTDOWN)
		close_milter(t);
	if (is_hangup(&t->r))
		t->hangup = true;
	set_result(t, v, stage_name);
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
do_envelope(probe_txn *t, strbuf *ev)
{
	const probe_opts *opts = t->opts;
	strbuf label = STRBUF_INIT;
	size_t accepted = 0;
	probe_verdict worst = PROBE_NONE;
	bool decided = false; /* accept/discard: no more events for the message */
	int rc;

	t->where = "mail";
	strbuf_reset(ev);
	mproto_put_mail(ev, (const char *const *)opts->from);
	envelope_label(&label, "mail", opts->from);
	rc = run_stage(t, &EV_MAIL, ev, strbuf_str(&label));
	if (t->failed || message_ends(t, rc, "mail")) {
		strbuf_free(&label);
		return false;
	}

	t->where = "rcpt";
	for (size_t i = 0; i < opts->nrcpt && !t->failed; i++) {
		probe_verdict v;

		if (decided) {
			accepted++;
			continue;
		}
		t->rcpt_addr = opts->rcpts[i][0];
		strbuf_reset(ev);
		mproto_put_rcpt(ev, (const char *const *)opts->rcpts[i]);
		envelope_label(&label, "rcpt", opts->rcpts[i]);
		rc = run_stage(t, &EV_RCPT, ev, strbuf_str(&label));
		t->rcpt_addr = NULL;
		v = event_verdict(t, rc);
		switch (v) {
		case PROBE_NONE:
			accepted++;
			break;
		case PROBE_ACCEPT:
		case PROBE_DISCARD:
			/* Postfix stops telling this milter about the message. */
			accepted++;
			decided = true;
			set_result(t, v, "rcpt");
			break;
		case PROBE_SHUTDOWN:
			close_milter(t);
			set_result(t, v, "rcpt");
			strbuf_free(&label);
			return false;
		default:
			/* Only this recipient is refused. */
			if (worst == PROBE_NONE || v == PROBE_TEMPFAIL)
				worst = v;
			if (is_hangup(&t->r)) {
				t->hangup = true;
				set_result(t, v, "rcpt");
				strbuf_free(&label);
				return false;
			}
		}
	}
	strbuf_free(&label);
	if (t->failed)
		return false;
	if (accepted == 0) {
		/* DATA gets "554 5.5.1 Error: no valid recipients". */
		set_result(t, worst, "rcpt");
		return false;
	}
	if (decided)
		return false;

	t->where = "data";
	strbuf_reset(ev);
	mproto_put_cmd(ev, MPROTO_C_DATA);
	rc = run_stage(t, &EV_DATA, ev, "data");
	return !t->failed && !message_ends(t, rc, "data");
}

/* Header value as sent: Postfix drops one space after the colon. */
static const char *
header_value(const probe_txn *t, const probe_header *h)
{
	if (!(t->protocol & PROTO_P_HDR_LEADSPC) && h->value[0] == ' ')
		return h->value + 1;
	return h->value;
}

static bool
do_headers(probe_txn *t, strbuf *ev)
{
	const probe_opts *opts = t->opts;
	strbuf label = STRBUF_INIT;
	int rc;

	t->where = "header";
	if (t->protocol & PROTO_P_NOHDRS) {
		/* Postfix does not even send the macros. */
		out(t, "header: not sent (NOHDRS)\n");
	} else {
		for (size_t i = 0; i < opts->nhdr && !t->failed; i++) {
			strbuf_reset(ev);
			mproto_put_header(ev, opts->hdrs[i].name,
			                  header_value(t, &opts->hdrs[i]));
			strbuf_reset(&label);
			strbuf_puts(&label, "header ");
			put_esc(&label, opts->hdrs[i].name);
			rc = run_stage(t, &EV_HEADER, ev, strbuf_str(&label));
			if (message_ends(t, rc, "header")) {
				strbuf_free(&label);
				return false;
			}
			if (t->msg_held)
				break;
		}
	}
	strbuf_free(&label);
	if (t->failed)
		return false;
	if (t->msg_held)
		return true;

	t->where = "eoh";
	if (t->protocol & PROTO_P_NOEOH) {
		out(t, "eoh: not sent (NOEOH)\n");
		return true;
	}
	strbuf_reset(ev);
	mproto_put_cmd(ev, MPROTO_C_EOH);
	rc = run_stage(t, &EV_EOH, ev, "eoh");
	return !t->failed && !message_ends(t, rc, "eoh");
}

static bool
do_body(probe_txn *t, strbuf *ev)
{
	const strbuf *body = &t->opts->body;
	strbuf label = STRBUF_INIT;
	size_t off = 0;

	t->where = "body";
	if (t->protocol & PROTO_P_NOBODY) {
		out(t, "body: not sent (NOBODY)\n");
		return true;
	}
	if (body->len == 0) {
		out(t, "body: not sent (empty)\n");
		return true;
	}
	while (off < body->len && !t->failed) {
		size_t n = body->len - off;

		if (n > MPROTO_CHUNK_SIZE)
			n = MPROTO_CHUNK_SIZE;
		if (t->skip_cmd == MPROTO_C_BODY) {
			out(t, "body: skip (%zu bytes not sent)\n", body->len - off);
			break;
		}
		strbuf_reset(ev);
		mproto_put_body(ev, body->s + off, n);
		strbuf_reset(&label);
		strbuf_printf(&label, "body %zu bytes", n);
		int rc = run_stage(t, &EV_BODY, ev, strbuf_str(&label));

		off += n;
		if (message_ends(t, rc, "body")) {
			strbuf_free(&label);
			return false;
		}
		if (t->msg_held)
			break;
	}
	strbuf_free(&label);
	return !t->failed;
}

static void
do_eom(probe_txn *t, strbuf *ev)
{
	int rc;

	t->where = "eom";
	strbuf_reset(ev);
	mproto_put_cmd(ev, MPROTO_C_EOM);
	rc = run_stage(t, &EV_EOM, ev, "eom");
	if (rc == EV_REPLY && !message_ends(t, rc, "eom"))
		set_result(t, PROBE_ACCEPT, "eom"); /* continue or skip: accepted */
}

static void
do_message(probe_txn *t, strbuf *ev)
{
	if (!do_headers(t, ev))
		return;
	if (!t->msg_held && !do_body(t, ev))
		return;
	if (t->msg_held) {
		/*
		 * A quarantine sets a sticky reply in Postfix's milter client, so
		 * the event that carried it ends the message for this milter.
		 */
		set_result(t, PROBE_QUARANTINE, t->where);
		return;
	}
	do_eom(t, ev);
}

/* Aborts and quit, as smtpd sends them at the end (mail_reset, helo_reset). */
static void
finish(probe_txn *t, bool helo_sent)
{
	if (!t->open || t->failed)
		return;
	t->where = "abort";
	mproto_put_cmd(&t->out, MPROTO_C_ABORT); /* mail_reset() */
	if (helo_sent)
		mproto_put_cmd(&t->out, MPROTO_C_ABORT); /* helo_reset() at QUIT */
	t->where = "quit";
	mproto_put_cmd(&t->out, MPROTO_C_QUIT);
	(void)flush_out(t);
}

/*
 * --hold: the session stays open and idle, as a slow client's would. What
 * is queued (connect, when the milter asked for no reply there) goes out
 * first, as Postfix sends it: the milter sees the session begin.
 */
static bool
hold(probe_txn *tx)
{
	const probe_opts *opts = tx->opts;
	struct timespec t = {(time_t)opts->hold_s, 0};

	if (opts->hold_s > 0 && flush_out(tx) < 0)
		return false;

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
	return true;
}

int
probe_txn_run(const probe_opts *opts, probe_verdict *vout, const char **stage_out,
              strbuf *transcript, probe_txn_stats *stats)
{
	probe_txn t;
	strbuf ev = STRBUF_INIT;
	int status = PROBE_EXIT_DONE;

	memset(&t, 0, sizeof t);
	t.opts = opts;
	strbuf_init(&t.out);
	strbuf_init(&t.pkt);
	strbuf_init(&t.err);
	strbuf_init(&t.line);
	strbuf_init(&t.tmp);
	mproto_reply_init(&t.r);
	t.where = NULL;
	t.result = PROBE_NONE;
	t.transcript = transcript;

	t.conn = mproto_conn_open(opts->socket, opts->timeout_ms, &t.err);
	if (t.conn == NULL) {
		fail(&t, "%s", strbuf_str(&t.err));
	} else {
		t.open = true;
		if (negotiate(&t) == 0 && !do_connect(&t, &ev) && !t.failed &&
		    hold(&t) && !do_helo(&t, &ev) && !t.failed) {
			if (do_envelope(&t, &ev) && !t.hangup)
				do_message(&t, &ev);
			finish(&t, true);
		}
	}
	if (opts->verbose)
		fprintf(stderr, "%s: %zu bytes written\n", PROBE_NAME, t.written);
	if (t.cut) {
		*vout = PROBE_CUT;
		*stage_out = t.where != NULL ? t.where : "negotiate";
	} else if (t.failed) {
		status = PROBE_EXIT_FAIL;
	} else {
		probe_verdict v = t.result;

		if (t.held_reason != NULL && (v == PROBE_ACCEPT || v == PROBE_NONE))
			v = PROBE_QUARANTINE;
		if (v == PROBE_NONE)
			v = PROBE_ACCEPT;
		*vout = v;
		*stage_out = t.result_stage != NULL ? t.result_stage : "eom";
	}
	if (stats != NULL)
		*stats = t.stats;
	mproto_conn_close(t.conn);
	for (int i = 0; i < PROTO_M_COUNT; i++)
		free(t.lists[i]);
	free(t.held_reason);
	mproto_reply_free(&t.r);
	strbuf_free(&t.out);
	strbuf_free(&t.pkt);
	strbuf_free(&t.err);
	strbuf_free(&t.line);
	strbuf_free(&t.tmp);
	strbuf_free(&ev);
	return status;
}

void
probe_put_result(strbuf *b, probe_verdict v, const char *stage)
{
	if ((v == PROBE_ACCEPT || v == PROBE_QUARANTINE) && strcmp(stage, "eom") == 0)
		strbuf_printf(b, "result: %s", probe_verdict_name(v));
	else
		strbuf_printf(b, "result: %s at %s", probe_verdict_name(v), stage);
}
