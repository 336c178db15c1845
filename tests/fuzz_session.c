/*
 * fuzz_session - libFuzzer target: rule evaluation over arbitrary session
 * data, through session.c's session_on_*() calls made the way
 * milter/callbacks.c makes them (the config taken at negotiation, the
 * agreed protocol flags, enter/leave around each call, a new session at
 * each connect).
 *
 * The rules are fixed (CONFIGS below: every check kind that needs no
 * network, stress-conditional rules, tags, quarantine, dry runs, small
 * limits; rules that reply nowhere but at eom; no rules at all), each
 * loaded without -o, with -o stress=yes and with -o stress=. The input is
 * a script of MTA events, one per line, its first byte saying which:
 *
 *   P<c><o>[ HEX]  a new milter connection: config c (0-2), o 'y' -o
 *                  stress=yes, 'n' -o stress=, else neither; HEX the
 *                  protocol flags the MTA offers (default all); the agreed
 *                  ones are the offer & session_protocol()
 *   C<f>[ADDR[ NAME]]  connect: f '4' or '6' with ADDR an address, or
 *                  when it does not parse its bytes taken as one (libmilter
 *                  hands over a sockaddr, printed with inet_ntop); another
 *                  f: no IP, {client_addr} is used (as callbacks.c does).
 *                  NAME: the client's host name
 *   Dname=value / Dname   the MTA sends a macro (empty value: "Dname=") /
 *                  stops sending it ({stress}, i, {auth_authen}, ...)
 *   H M R TEXT     helo, mail from, rcpt to
 *   T N E A Q      data, end of headers, end of message, abort, close
 *   hNAME:VALUE    a header; xCOUNT NAME:VALUE the same with VALUE repeated
 *                  to COUNT bytes (huge headers)
 *   B TEXT         a body line ending in CR LF; L TEXT ending in LF; b TEXT
 *                  a chunk with no line end; zCOUNT TEXT COUNT bytes of TEXT
 *                  repeated, in chunks of 64 KiB as the MTA sends them
 *   V<n>           log verbosity n (0-2: traces every rule tried)
 * A NUL byte ends a text there (libmilter hands over C strings), not a
 * body chunk, which may hold any byte. Events of a stage the agreed flags
 * turned off are not sent, as the MTA would not send them.
 *
 * Invariants, else abort: a reject or tempfail carries a 4xx/5xx code of
 * its own class, an enhanced code of the same class or none, a text without
 * CR/LF of at most 980 bytes, and what libmilter would send passes
 * mproto_reply_text_check(); no verdict where the agreed flags say the MTA
 * waits for no reply, nor a "cannot reply" warning (the negotiated flags
 * must match the rules); no discard at connect or helo, no skip but at
 * body; nothing after a 421 or 521 (the MTA has hung up); at eom one of
 * accept, tempfail, reject or discard, the forged stress headers counted
 * exactly, headers to add with valid names and values without CR/LF. ASan
 * and UBSan watch the rest, LeakSanitizer the session's memory.
 *
 * syslog() is replaced by a no-op here: lines still go through log_msg()
 * (and the hook that watches them), but the system log is not flooded.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf.h"
#include "log.h"
#include "mproto.h"
#include "rules.h"
#include "session.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void
syslog(int prio, const char *fmt, ...)
{
	(void)prio;
	(void)fmt;
}

/* clang-format off */
static const char *const configs[] = {
        /* 0: every cheap check kind, both personalities, limits. */
        "error_limit = ${stress?{2}:{5}}\n"
        "rcpt_limit = ${stress?{3}:{8}}\n"
        "body_scan_limit = ${stress?{1k}:{8k}}\n"
        "stress_values = yes, 1, on\n"
        "connect client_name unknown tag X-Unknown-Client \"$client_name [$client_addr]\"\n"
        "connect client 127.0.0.0/8 [::1]/128 accept\n"
        "connect name=listed client 192.0.2.0/24 2001:db8::/32 reject 554 5.7.1 "
        "\"$client_addr is listed\"\n"
        "connect stress client 203.0.113.0/24 ::ffff:198.51.100.0/120 tempfail 421 4.7.1 "
        "\"$client_addr [$client_name] busy\"\n"
        "connect macro daemon_name /^hot/ tempfail 421 4.3.2 \"daemon busy at $stage\"\n"
        "helo helo ip_literal tempfail 450 4.7.0 \"helo $helo_name\"\n"
        "helo stress helo .invalid localhost reject 521 5.7.0 \"bye $helo_name\"\n"
        "helo helo mx.example.com /\\xff/ quarantine \"helo $helo_name, stress=$stress\"\n"
        "mail sender <> and !authenticated continue\n"
        "mail sender @spam.example .spam.example /^<?bounce-/ reject 550 5.7.1 "
        "\"$sender from $client_name\"\n"
        "mail authenticated accept\n"
        "mail macro auth_type plain log reject\n"
        "rcpt recipient postmaster@ accept\n"
        "rcpt rcpt_count > ${stress?{2}:{4}} tempfail 452 4.5.3 \"too many: $recipient\"\n"
        "rcpt recipient @blocked.example reject 550 5.1.1 \"$recipient unknown, $queue_id\"\n"
        "rcpt recipient .discard.example discard\n"
        "data macro i /^[0-9A-F]+$/ tag X-Queue \"$queue_id %s %% ${stress?{yes}:{no}}\"\n"
        "data stress and rcpt_count >= 3 tempfail 451 4.3.0 busy\n"
        "header header Subject /lottery/i reject 550 5.7.1 \"Subject rejected by $rule\"\n"
        "header header * /^x-spam: yes/im discard\n"
        "header header From /[\\x80-\\xff]/ tag X-Odd-From \"8bit from $sender\"\n"
        "eoh header Received /\\[10\\./ and !stress quarantine \"internal relay $recipient\"\n"
        "eoh header X-Mailer /./ and header Subject /./ continue\n"
        "body body /lottery/i /a\\x00b/ reject 550 5.7.1 \"body matched at $stage\"\n"
        "body stress body /^From / tempfail 451 4.7.1\n"
        "eom body /viagra/ tag X-Body \"seen at $stage by $rule\"\n"
        "eom header X-Flag /^y/ and sender .example.net tag X-Seen "
        "\"$rule at $stage [$stress] $syslog_name\"\n"
        "eom name=last any log tag X-Dry yes\n",
        /* 1: rules that need no reply before eom, tiny limits, another header. */
        "stress_header = X-Stress-Test\n"
        "stress_header_always = no\n"
        "error_limit = 1\n"
        "rcpt_limit = 1\n"
        "body_scan_limit = 1k\n"
        "connect any tag X-Conn \"$client_addr $client_name\"\n"
        "helo any continue\n"
        "header header * /./ tag X-Hdr \"$stage $rule\"\n"
        "header stress header Subject /x/ continue\n"
        "eoh any log tempfail\n"
        "body body /x/ log reject\n"
        "eom stress tag X-S yes\n",
        /* 2: no rules; another stress macro; no header. */
        "stress_macro = {mystress}\n"
        "stress_values = 1, true\n"
        "stress_header =\n",
};
/* clang-format on */
#define N_CONFIGS (sizeof configs / sizeof configs[0])

static conf *loaded[N_CONFIGS][3]; /* no -o, -o stress=yes, -o stress= */

/* Input limits: huge values are cheap to ask for, not to process. */
#define HUGE_MAX (256u * 1024)
#define HUGE_TOTAL (1024u * 1024)
#define MAX_MACROS 32

typedef struct macro_def {
	char *name;
	char *value;
} macro_def;

typedef struct fz {
	conf *cf;
	unsigned long proto; /* agreed at negotiation */
	session *s;
	bool hung_up;  /* a 421 or 521 went out */
	size_t forged; /* stress headers in this message */
	size_t huge;   /* bytes of huge values so far */
	macro_def macros[MAX_MACROS];
	size_t n_macros;
} fz;

static void
die(const char *what, const session_reply *r)
{
	fprintf(stderr, "%s", what);
	if (r != NULL)
		fprintf(stderr, " (answer %d, %s %s \"%s\")", (int)r->answer, r->code,
		        r->ecode, strbuf_str(&r->text));
	fputc('\n', stderr);
	abort();
}

/*
 * The one warning that means negotiation and rules disagree, matched whole:
 * other warnings carry the queue ID, which the input chooses (a line that
 * merely contains the words is no finding). To see what a failing input
 * did, run it with FUZZ_LOG set in the environment: every line is printed.
 */
static void
watch_log(void *ctx, int prio, const char *line)
{
	char name[128], stage[16];
	int end = -1;

	(void)ctx;
	if (getenv("FUZZ_LOG") != NULL)
		fprintf(stderr, "log: %s\n", line);
	if (prio == LOG_WARNING &&
	    sscanf(line, "rule %127s matched at stage %15[a-z], which cannot reply%n",
	           name, stage, &end) == 2 &&
	    end >= 0 && line[end] == '\0')
		die(line, NULL);
}

static void
load_configs(void)
{
	static char *const forced[] = {(char *)"stress=yes", (char *)"stress="};
	strbuf err = STRBUF_INIT;
	size_t i;
	int o;

	log_set_hook(watch_log, NULL);
	for (i = 0; i < N_CONFIGS; i++) {
		for (o = 0; o < 3; o++) {
			loaded[i][o] = conf_load_text("fuzz.conf", configs[i],
			                              strlen(configs[i]),
			                              forced + (o == 2), o != 0, &err);
			if (loaded[i][o] == NULL) {
				fprintf(stderr, "config %zu: %s", i, strbuf_str(&err));
				abort();
			}
		}
	}
	strbuf_free(&err);
}

static const char *
macro_of(void *ctx, const char *name)
{
	const fz *z = ctx;
	size_t i;

	for (i = 0; i < z->n_macros; i++)
		if (strcmp(z->macros[i].name, name) == 0)
			return z->macros[i].value;
	return NULL;
}

static void
set_macro(fz *z, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq != NULL ? (size_t)(eq - arg) : strlen(arg), i;

	for (i = 0; i < z->n_macros; i++)
		if (strlen(z->macros[i].name) == n &&
		    strncmp(z->macros[i].name, arg, n) == 0)
			break;
	if (i < z->n_macros) {
		free(z->macros[i].name);
		free(z->macros[i].value);
		z->macros[i] = z->macros[--z->n_macros];
	}
	if (eq == NULL || z->n_macros == MAX_MACROS)
		return;
	z->macros[z->n_macros].name = ms_xstrndup(arg, n);
	z->macros[z->n_macros].value = ms_xstrdup(eq + 1);
	z->n_macros++;
}

/* ---- the invariants ---- */

static const unsigned long nr_flag[STAGE_N] = {
        [STAGE_CONNECT] = PROTO_P_NR_CONN,
        [STAGE_HELO] = PROTO_P_NR_HELO,
        [STAGE_MAIL] = PROTO_P_NR_MAIL,
        [STAGE_RCPT] = PROTO_P_NR_RCPT,
        [STAGE_DATA] = PROTO_P_NR_DATA,
        [STAGE_HEADER] = PROTO_P_NR_HDR,
        [STAGE_EOH] = PROTO_P_NR_EOH,
        [STAGE_BODY] = PROTO_P_NR_BODY,
        [STAGE_EOM] = 0,
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* class.subject.detail, class = the code's first digit, 1-3 digits each. */
static bool
valid_ecode(const char *e, char cls)
{
	int part, n;

	if (e[0] == '\0')
		return true;
	if (e[0] != cls || e[1] != '.')
		return false;
	e += 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; is_digit(*e); n++)
			e++;
		if (n < 1 || n > 3 || *e != (part == 0 ? '.' : '\0'))
			return false;
		e++;
	}
	return true;
}

static void
check_code(const session_reply *r)
{
	char cls = r->answer == SESSION_TEMPFAIL ? '4' : '5';
	strbuf milter = STRBUF_INIT, line = STRBUF_INIT, why = STRBUF_INIT;

	if (strlen(r->code) != 3 || r->code[0] != cls || !is_digit(r->code[1]) ||
	    !is_digit(r->code[2]))
		die("a reply code of the wrong class", r);
	if (!valid_ecode(r->ecode, cls))
		die("an enhanced code of the wrong form or class", r);
	if (strpbrk(strbuf_str(&r->text), "\r\n") != NULL || r->text.len > RULES_TEXT_MAX)
		die("a reply text with CR/LF or too long", r);
	/* What libmilter sends: "code ecode text", '%' doubled. */
	rules_reply_text_for_milter(strbuf_str(&r->text), &milter);
	if (milter.len > RULES_TEXT_MAX || strpbrk(milter.s, "\r\n") != NULL)
		die("the text for libmilter is too long or has CR/LF", r);
	strbuf_printf(&line, "%s %s%s%s", r->code, r->ecode, r->ecode[0] ? " " : "",
	              milter.s);
	if (mproto_reply_text_check(line.s, &why) < 0) {
		fprintf(stderr, "%s: %s\n", line.s, why.s);
		die("a reply the MTA would refuse", r);
	}
	strbuf_free(&milter);
	strbuf_free(&line);
	strbuf_free(&why);
}

static void
check_reply(fz *z, enum stage stage, const session_reply *r)
{
	bool verdict = r->answer == SESSION_TEMPFAIL || r->answer == SESSION_REJECT ||
	               r->answer == SESSION_DISCARD;

	switch (r->answer) {
	case SESSION_CONTINUE:
	case SESSION_ACCEPT:
		break;
	case SESSION_SKIP:
		if (stage != STAGE_BODY)
			die("skip outside the body", r);
		break;
	case SESSION_DISCARD:
		if (stage == STAGE_CONNECT || stage == STAGE_HELO)
			die("discard at connect or helo", r);
		break;
	case SESSION_TEMPFAIL:
	case SESSION_REJECT:
		check_code(r);
		break;
	default:
		die("an unknown answer", r);
	}
	if ((verdict || r->answer == SESSION_SKIP) && (z->proto & nr_flag[stage]))
		die("a verdict where the MTA waits for no reply", r);
	if (verdict && z->hung_up)
		die("a verdict after a 421 or 521: the MTA has hung up", r);
	if (verdict && r->answer != SESSION_DISCARD &&
	    (strcmp(r->code, "421") == 0 || strcmp(r->code, "521") == 0))
		z->hung_up = true;
}

static bool
valid_header_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == ':')
			return false;
	return true;
}

static void
check_eom(const fz *z, const session_reply *r, const session_changes *ch)
{
	const char *ours = session_params(z->s)->stress_header;
	size_t i;

	if (r->answer != SESSION_ACCEPT && r->answer != SESSION_TEMPFAIL &&
	    r->answer != SESSION_REJECT && r->answer != SESSION_DISCARD)
		die("eom must end the message", r);
	if (ch->forged_name != NULL &&
	    (strcmp(ch->forged_name, ours) != 0 || ch->n_forged != z->forged))
		die("forged stress headers miscounted", r);
	for (i = 0; i < ch->n_add; i++)
		if (!valid_header_name(ch->add[i].name) ||
		    strpbrk(ch->add[i].value, "\r\n") != NULL)
			die("a header to add with a bad name or a line break", r);
	if (ch->quarantine != NULL && strpbrk(ch->quarantine, "\r\n") != NULL)
		die("a quarantine reason with a line break", r);
}

/* ---- the events ---- */

/* The client address as libmilter hands it over: a sockaddr, printed. */
static const char *
client_addr(const fz *z, char fam, const char *text, char *buf, size_t len)
{
	unsigned char raw[16] = {0};
	int af = fam == '4' ? AF_INET : AF_INET6;

	if (fam != '4' && fam != '6')
		return macro_of((void *)z, "{client_addr}");
	if (inet_pton(af, text, raw) != 1)
		memcpy(raw, text, strnlen(text, af == AF_INET ? 4 : 16));
	return inet_ntop(af, raw, buf, (socklen_t)len);
}

static void
close_session(fz *z)
{
	session_free(z->s);
	z->s = NULL;
	z->forged = 0;
}

static void
negotiate(fz *z, const char *arg)
{
	size_t c = arg[0] >= '0' && (size_t)(arg[0] - '0') < N_CONFIGS
	                   ? (size_t)(arg[0] - '0')
	                   : 0;
	int o = arg[0] == '\0' ? 0 : arg[1] == 'y' ? 1 : arg[1] == 'n' ? 2 : 0;
	unsigned long offer = PROTO_P_ALL;
	const char *hex = strchr(arg, ' ');

	close_session(z);
	if (hex != NULL)
		offer = strtoul(hex + 1, NULL, 16);
	z->cf = loaded[c][o];
	z->proto = offer & session_protocol(z->cf);
}

static void
connect_event(fz *z, const char *arg)
{
	char fam = arg[0], buf[INET6_ADDRSTRLEN];
	const char *rest = fam == '\0' ? arg : arg[1] == ' ' ? arg + 2 : arg + 1;
	const char *sp = strchr(rest, ' ');
	char *addr_text =
	        ms_xstrndup(rest, sp != NULL ? (size_t)(sp - rest) : strlen(rest));
	const char *addr = client_addr(z, fam, addr_text, buf, sizeof buf);
	session_reply r;

	close_session(z);
	z->s = session_create(z->cf, NULL, sp != NULL ? sp + 1 : "", addr);
	session_set_macros(z->s, macro_of, z);
	session_set_protocol(z->s, z->proto);
	z->hung_up = false;
	z->forged = 0;
	session_reply_init(&r);
	session_enter(z->s);
	session_on_connect(z->s, &r);
	session_leave(z->s);
	check_reply(z, STAGE_CONNECT, &r);
	session_reply_free(&r);
	free(addr_text);
}

/*
 * "COUNT REST": *rest = REST, and REST's part from `from' repeated to COUNT
 * bytes (at most HUGE_MAX, HUGE_TOTAL per input); *len its length.
 */
static char *
huge_value(fz *z, const char *arg, const char **rest, char from, size_t *len)
{
	char *end;
	unsigned long n = strtoul(arg, &end, 10);
	const char *text = *end == ' ' ? end + 1 : end;
	const char *piece =
	        from != '\0' && strchr(text, from) ? strchr(text, from) + 1 : text;
	size_t pl = strlen(piece), i;
	char *v;

	n = n > HUGE_MAX ? HUGE_MAX : n;
	n = n > HUGE_TOTAL - z->huge ? HUGE_TOTAL - z->huge : n;
	z->huge += n;
	v = ms_xmalloc(n + 1);
	for (i = 0; i < n; i++)
		v[i] = pl > 0 ? piece[i % pl] : 'x';
	v[n] = '\0';
	*rest = text;
	*len = n;
	return v;
}

static void
header_event(fz *z, const char *name, const char *value, session_reply *r)
{
	const char *ours = session_params(z->s)->stress_header;

	if (ours[0] != '\0' && strcasecmp(name, ours) == 0)
		z->forged++;
	session_on_header(z->s, name, value, r);
}

/* "NAME:VALUE", or with value (not NULL) as the value. */
static void
header_line(fz *z, const char *text, const char *value, session_reply *r)
{
	const char *colon = strchr(text, ':');
	char *name =
	        ms_xstrndup(text, colon != NULL ? (size_t)(colon - text) : strlen(text));

	if (value == NULL)
		value = colon != NULL ? colon + 1 : "";
	header_event(z, name, value, r);
	free(name);
}

static void
body_event(fz *z, const unsigned char *chunk, size_t len, session_reply *r)
{
	size_t off = 0, n;

	/* The MTA sends at most 64 KiB - 1 a chunk, and stops at an answer. */
	for (;;) {
		n = len - off > MPROTO_CHUNK_SIZE ? MPROTO_CHUNK_SIZE : len - off;
		session_on_body(z->s, chunk + off, n, r);
		off += n;
		if (off == len || r->answer != SESSION_CONTINUE)
			return; /* the caller checks the last reply */
		check_reply(z, STAGE_BODY, r);
		session_reply_free(r);
		session_reply_init(r);
	}
}

static void
end_message(fz *z)
{
	z->forged = 0;
}

/* The stage an event belongs to, and the flag that turns it off. */
static bool
stage_of(char op, enum stage *stage, unsigned long *off)
{
	static const struct {
		const char *ops;
		enum stage stage;
		unsigned long off;
	} map[] = {
	        {"H", STAGE_HELO, PROTO_P_NOHELO},    {"M", STAGE_MAIL, PROTO_P_NOMAIL},
	        {"R", STAGE_RCPT, PROTO_P_NORCPT},    {"T", STAGE_DATA, PROTO_P_NODATA},
	        {"hx", STAGE_HEADER, PROTO_P_NOHDRS}, {"N", STAGE_EOH, PROTO_P_NOEOH},
	        {"BLbz", STAGE_BODY, PROTO_P_NOBODY}, {"E", STAGE_EOM, 0},
	};
	size_t i;

	for (i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strchr(map[i].ops, op) != NULL) {
			*stage = map[i].stage;
			*off = map[i].off;
			return true;
		}
	}
	return false;
}

/* One event of a stage that has a session: run it as a callback does. */
static void
stage_event(fz *z, char op, enum stage stage, const char *arg, const char *raw,
            size_t raw_len)
{
	session_reply r;
	session_changes ch;
	strbuf chunk = STRBUF_INIT;
	const char *rest;
	size_t n;
	char *big;

	session_reply_init(&r);
	session_changes_init(&ch);
	session_enter(z->s);
	switch (op) {
	case 'H':
		session_on_helo(z->s, arg, &r);
		break;
	case 'M':
		end_message(z);
		session_on_mail(z->s, arg, &r);
		break;
	case 'R':
		session_on_rcpt(z->s, arg, &r);
		break;
	case 'T':
		session_on_data(z->s, &r);
		break;
	case 'h':
		header_line(z, arg, NULL, &r);
		break;
	case 'x':
		big = huge_value(z, arg, &rest, ':', &n);
		header_line(z, rest, big, &r);
		free(big);
		break;
	case 'N':
		session_on_eoh(z->s, &r);
		break;
	case 'B':
	case 'L':
	case 'b':
		strbuf_append(&chunk, raw, raw_len);
		strbuf_puts(&chunk, op == 'B' ? "\r\n" : op == 'L' ? "\n" : "");
		body_event(z, (const unsigned char *)chunk.s, chunk.len, &r);
		break;
	case 'z':
		big = huge_value(z, arg, &rest, '\0', &n);
		body_event(z, (const unsigned char *)big, n, &r);
		free(big);
		break;
	case 'E':
		session_on_eom(z->s, &r, &ch);
		check_eom(z, &r, &ch);
		end_message(z);
		break;
	}
	session_leave(z->s);
	check_reply(z, stage, &r);
	session_changes_free(&ch);
	session_reply_free(&r);
	strbuf_free(&chunk);
}

static void
event(fz *z, const char *line, size_t len)
{
	char op = line[0];
	const char *arg = line + 1; /* a C string: a NUL ends it */
	const char *raw = line + 1;
	size_t raw_len = len - 1;
	enum stage stage;
	unsigned long off;

	if (*arg == ' ') {
		arg++;
		raw++;
		raw_len--;
	}
	switch (op) {
	case 'P':
		negotiate(z, arg);
		return;
	case 'C':
		connect_event(z, arg);
		return;
	case 'D':
		set_macro(z, arg);
		return;
	case 'd':
		set_macro(z, arg); /* no '=': removed */
		return;
	case 'V':
		log_set_verbose(arg[0] == '1' ? 1 : arg[0] == '2' ? 2 : 0);
		return;
	case 'A':
		/* callbacks.c: only with a session. */
		if (z->s != NULL)
			session_on_abort(z->s);
		end_message(z);
		return;
	case 'Q':
		close_session(z);
		return;
	}
	/* Without a session, callbacks.c answers tempfail; stages turned off never come.
	 */
	if (z->s == NULL || !stage_of(op, &stage, &off) || (z->proto & off) != 0)
		return;
	stage_event(z, op, stage, arg, raw, raw_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz z;
	char *copy;
	const char *p, *end;
	size_t i;

	if (loaded[0][0] == NULL)
		load_configs();
	memset(&z, 0, sizeof z);
	z.cf = loaded[0][0];
	z.proto = PROTO_P_ALL & session_protocol(z.cf);
	log_set_verbose(0);
	/* A copy with a NUL after it, so that every line's text ends. */
	copy = ms_xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy, end = copy + size; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (nl != NULL)
			*nl = '\0';
		if (n > 0)
			event(&z, p, n);
		p += n + 1;
	}
	close_session(&z);
	for (i = 0; i < z.n_macros; i++) {
		free(z.macros[i].name);
		free(z.macros[i].value);
	}
	free(copy);
	return 0;
}
