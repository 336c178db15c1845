/*
 * Unit tests for rules (and its place in conf): the rule parser and its
 * errors with file:line:column, every check kind matching and not, negation,
 * alternatives and "and", first-match order, MODE and -o stress=...,
 * expansion inside rules, reply validation, templates, include and file:
 * lists, the questions a session asks of a table, and the -n dump; the
 * expensive kinds (dnsbl and rhsbl_* through an in-process fake provider,
 * fake-dns.h, so no DNS server is needed; body over a scanner) with their
 * skips under stress, deadlines, parallel lookups and $rbl_* variables.
 */
#include "config.h"

#include "unit.h"
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "bodyscan.h"
#include "budget.h"
#include "conf.h"
#include "dnsbl.h"
#include "fake-dns.h"
#include "rules.h"
#include "strbuf.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))


/* The name the config text is loaded under: includes are relative to it. */
static void
conf_name(strbuf *b)
{
	strbuf_reset(b);
	strbuf_printf(b, "%s/rules.conf", unit_tmpdir());
}

static void
write_file(const char *name, const char *text)
{
	strbuf path = STRBUF_INIT;
	FILE *fp;

	strbuf_printf(&path, "%s/%s", unit_tmpdir(), name);
	fp = fopen(path.s, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	strbuf_free(&path);
}

/* A file or an empty directory under unit_tmpdir(). */
static void
remove_file(const char *name)
{
	strbuf path = STRBUF_INIT;

	strbuf_printf(&path, "%s/%s", unit_tmpdir(), name);
	if (unlink(path.s) != 0)
		rmdir(path.s);
	strbuf_free(&path);
}

static int
mkdir_p(const char *name)
{
	strbuf path = STRBUF_INIT;
	int rc;

	strbuf_printf(&path, "%s/%s", unit_tmpdir(), name);
	rc = mkdir(path.s, 0700) == 0 || errno == EEXIST ? 0 : -1;
	strbuf_free(&path);
	return rc;
}

static conf *
load(const char *text, const char *o1, strbuf *err)
{
	strbuf name = STRBUF_INIT;
	char *ov[1] = {(char *)o1};
	conf *c;

	conf_name(&name);
	c = conf_load_text(name.s, text, strlen(text), ov, o1 != NULL ? 1 : 0, err);
	strbuf_free(&name);
	return c;
}

static conf *
load_ok(const char *text, const char *o1)
{
	strbuf err = STRBUF_INIT;
	conf *c = load(text, o1, &err);

	ck_assert_msg(c != NULL, "'%s': %s", text, strbuf_str(&err));
	ck_assert_str_eq(strbuf_str(&err), "");
	strbuf_free(&err);
	return c;
}

static char *
dump_rules(const rules_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(fp);
	rules_dump(t, fp);
	fclose(fp);
	return buf;
}

/* Facts from a compact description. */

typedef struct fact_spec {
	bool stressed;
	const char *addr, *name, *helo, *sender, *rcpt;
	const char *daemon; /* {daemon_name} */
	size_t count;
	const char *headers; /* "Name: value" lines; at header the first is current */
	const char *macros;  /* "name=value" separated by '|' */
} fact_spec;

typedef struct facts_buf {
	rules_facts f;
	rules_header h[8];
	char *hbuf;
	const char *macros;
	strbuf mval;
} facts_buf;

static const char *
macro_fn(void *ctx, const char *name)
{
	facts_buf *fb = ctx;
	const char *p = fb->macros;
	size_t n = strlen(name);

	while (p != NULL && *p != '\0') {
		const char *end = p + strcspn(p, "|");

		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			strbuf_reset(&fb->mval);
			strbuf_append(&fb->mval, p + n + 1, (size_t)(end - p - n - 1));
			return strbuf_str(&fb->mval);
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

static void
make_facts(facts_buf *fb, const fact_spec *s)
{
	size_t n = 0;
	char *line, *save = NULL;

	memset(fb, 0, sizeof *fb);
	fb->f.stressed = s->stressed;
	fb->f.client_addr = s->addr;
	fb->f.client_name = s->name;
	fb->f.daemon_name = s->daemon;
	fb->f.helo = s->helo;
	fb->f.sender = s->sender;
	fb->f.recipient = s->rcpt;
	fb->f.rcpt_count = s->count;
	fb->macros = s->macros;
	fb->f.macro = macro_fn;
	fb->f.macro_ctx = fb;
	if (s->headers != NULL) {
		fb->hbuf = strdup(s->headers);
		for (line = strtok_r(fb->hbuf, "\n", &save); line != NULL && n < 8;
		     line = strtok_r(NULL, "\n", &save)) {
			char *colon = strchr(line, ':');

			fb->h[n].name = line;
			fb->h[n].value = "";
			if (colon != NULL) {
				*colon = '\0';
				fb->h[n].value = colon + 1 + (colon[1] == ' ');
			}
			n++;
		}
		fb->f.header = n > 0 ? &fb->h[0] : NULL;
		fb->f.headers = fb->h;
		fb->f.n_headers = n;
	}
}

static void
free_facts(facts_buf *fb)
{
	free(fb->hbuf);
	strbuf_free(&fb->mval);
}

/* The stage a one-rule text is for: its first word. */
static enum stage
stage_of(const char *text)
{
	enum stage st = STAGE_CONNECT;

	ck_assert(stage_parse(text, strcspn(text, " "), &st));
	return st;
}

/* Does the text's rule (at its stage) give a verdict for the facts? */
static const rule *
eval_text(conf *c, const char *text, const fact_spec *s)
{
	facts_buf fb;
	const rule *r;

	make_facts(&fb, s);
	r = rules_eval(conf_rules(c, s->stressed), stage_of(text), &fb.f, NULL, NULL, NULL, NULL);
	free_facts(&fb);
	return r;
}

/* Matching: one rule "STAGE CHECK accept"; does it match the facts? */

static const struct match_case {
	const char *rule;
	fact_spec facts;
	bool want;
} match_cases[] = {
        /* client: IPv4, IPv6, CIDR edges, brackets, mapped, not an address */
        {"connect client 192.0.2.1 accept", {.addr = "192.0.2.1"}, true},
        {"connect client 192.0.2.1 accept", {.addr = "192.0.2.2"}, false},
        {"connect client 192.0.2.0/24 accept", {.addr = "192.0.2.255"}, true},
        {"connect client 192.0.2.0/24 accept", {.addr = "192.0.3.0"}, false},
        {"connect client [192.0.2.1] accept", {.addr = "192.0.2.1"}, true},
        {"connect client 0.0.0.0/0 accept", {.addr = "203.0.113.9"}, true},
        {"connect client 0.0.0.0/0 accept", {.addr = "2001:db8::1"}, false},
        {"connect client 10.0.0.0/8 accept", {.addr = "::ffff:10.1.2.3"}, true},
        {"connect client 10.0.0.0/8 accept", {.addr = "::ffff:11.1.2.3"}, false},
        {"connect client 192.0.2.1 accept", {.addr = "::ffff:192.0.2.1"}, true},
        {"connect client ::/0 accept", {.addr = "::ffff:192.0.2.1"}, true},
        {"connect client ::/0 accept", {.addr = "192.0.2.1"}, false},
        {"connect client ::/0 accept", {.addr = "2001:db8::1"}, true},
        {"connect client [2001:db8::]/32 accept", {.addr = "2001:db8:ffff::1"}, true},
        {"connect client 2001:db8::/32 accept", {.addr = "2001:db8:ffff::1"}, true},
        {"connect client 2001:db8::/32 accept", {.addr = "2001:db9::1"}, false},
        {"connect client 2001:db8::/127 accept", {.addr = "2001:db8::1"}, true},
        {"connect client 2001:db8::/127 accept", {.addr = "2001:db8::2"}, false},
        {"connect client 2001:db8::1/128 accept", {.addr = "2001:db8::1"}, true},
        {"connect client 2001:db8::1/128 accept", {.addr = "2001:db8::1:1"}, false},
        {"connect client 2001:db8::1 accept", {.addr = "2001:DB8:0:0:0:0:0:1"}, true},
        {"connect client [::1]/128 accept", {.addr = "::1"}, true},
        {"connect client 192.0.2.1 accept", {.addr = "[192.0.2.1]"}, true},
        {"connect client 2001:db8::1 accept", {.addr = "IPv6:2001:db8::1"}, true},
        {"connect client 192.0.2.1 accept", {.addr = NULL}, false},
        {"connect client 192.0.2.1 accept", {.addr = "unknown"}, false},
        {"connect !client 192.0.2.1 accept", {.addr = NULL}, true},
        {"connect !client 192.0.2.1 accept", {.addr = "not an address"}, true},
        {"connect !client 192.0.2.1 accept", {.addr = "192.0.2.1"}, false},
        {"connect client 192.0.2.1 198.51.100.0/24 accept",
         {.addr = "198.51.100.7"},
         true},
        /* client_name */
        {"connect client_name mx.example.com accept", {.name = "MX.Example.COM"}, true},
        {"connect client_name mx.example.com accept", {.name = "mx.example.org"}, false},
        {"connect client_name mx.example.com accept", {.name = NULL}, false},
        {"connect client_name .example.com accept", {.name = "a.b.example.com"}, true},
        {"connect client_name .example.com accept", {.name = "example.com"}, false},
        {"connect client_name .example.com accept", {.name = "badexample.com"}, false},
        {"connect client_name /^mail[0-9]+\\./ accept", {.name = "mail12.example"}, true},
        {"connect client_name /^mail[0-9]+\\./ accept",
         {.name = "Mail12.example"},
         false},
        {"connect client_name /^mail[0-9]+\\./i accept",
         {.name = "Mail12.example"},
         true},
        {"connect client_name unknown accept", {.name = NULL}, true},
        {"connect client_name unknown accept", {.name = "unknown"}, true},
        {"connect client_name unknown accept", {.name = "[192.0.2.1]"}, true},
        {"connect client_name unknown accept", {.name = "mx.example.com"}, false},
        {"connect !client_name unknown accept", {.name = "mx.example.com"}, true},
        {"connect client_name UNKNOWN accept", {.name = NULL}, true},
        /* daemon_name: exactly, with case, or a regex; not sent: no value */
        {"connect daemon_name submission accept", {.daemon = "submission"}, true},
        {"connect daemon_name submission accept", {.daemon = "smtp"}, false},
        {"connect daemon_name submission accept", {.daemon = "Submission"}, false},
        {"connect daemon_name submission accept", {.daemon = "submissions"}, false},
        {"connect daemon_name submission accept", {.daemon = NULL}, false},
        {"connect !daemon_name submission accept", {.daemon = NULL}, true},
        {"connect daemon_name smtp submission accept", {.daemon = "submission"}, true},
        {"connect daemon_name /^smtps?$/ accept", {.daemon = "smtps"}, true},
        {"connect daemon_name /^smtps?$/ accept", {.daemon = "submission"}, false},
        {"rcpt daemon_name 127.0.0.1:2525 accept", {.daemon = "127.0.0.1:2525"}, true},
        /* helo */
        {"helo helo mx.example.com accept", {.helo = "MX.example.com"}, true},
        {"helo helo mx.example.com accept", {.helo = NULL}, false},
        {"helo helo .example.com accept", {.helo = "a.example.com"}, true},
        {"helo helo ip_literal accept", {.helo = "[192.0.2.1]"}, true},
        {"helo helo ip_literal accept", {.helo = "[IPv6:2001:db8::1]"}, true},
        {"helo helo ip_literal accept", {.helo = "[ipv6:2001:db8::1]"}, true},
        {"helo helo ip_literal accept", {.helo = "[2001:db8::1]"}, true},
        {"helo helo ip_literal accept", {.helo = "192.0.2.1"}, true},
        {"helo helo ip_literal accept", {.helo = "2001:db8::1"}, true},
        {"helo helo ip_literal accept", {.helo = "[IPv6:192.0.2.1]"}, false},
        {"helo helo ip_literal accept", {.helo = "[mx.example.com]"}, false},
        {"helo helo ip_literal accept", {.helo = "[192.0.2.1"}, false},
        {"helo helo ip_literal accept", {.helo = "mx.example.com"}, false},
        {"helo helo /^\\[?[0-9.]+\\]?$/ accept", {.helo = "[192.0.2.1]"}, true},
        {"helo helo /^\\[?[0-9.]+\\]?$/ accept", {.helo = "mx1.example"}, false},
        {"mail helo ip_literal accept", {.helo = "192.0.2.1"}, true},
        /* sender and recipient */
        {"mail sender user@example.com accept", {.sender = "<User@Example.COM>"}, true},
        {"mail sender user@example.com accept", {.sender = "user@example.com"}, true},
        {"mail sender user@example.com accept", {.sender = "<user@example.org>"}, false},
        {"mail sender <user@example.com> accept", {.sender = "<user@example.com>"}, true},
        {"mail sender @example.com accept", {.sender = "<a@EXAMPLE.com>"}, true},
        {"mail sender @example.com accept", {.sender = "<a@sub.example.com>"}, false},
        {"mail sender .example.com accept", {.sender = "<a@sub.example.com>"}, true},
        {"mail sender .example.com accept", {.sender = "<a@example.com>"}, false},
        {"mail sender .example.com accept", {.sender = "<a@badexample.com>"}, false},
        {"mail sender postmaster@ accept", {.sender = "<Postmaster@x.example>"}, true},
        {"mail sender postmaster@ accept", {.sender = "<webmaster@x.example>"}, false},
        {"mail sender <> accept", {.sender = "<>"}, true},
        {"mail sender <> accept", {.sender = ""}, true},
        {"mail sender <> accept", {.sender = "<a@example.com>"}, false},
        {"mail sender @example.com accept", {.sender = "<>"}, false},
        {"mail !sender <> accept", {.sender = "<a@example.com>"}, true},
        {"mail sender /^<?bounce-/ accept", {.sender = "<bounce-1@x.example>"}, true},
        {"mail sender /^bounce-.*@x\\.example$/ accept",
         {.sender = "<bounce-1@x.example>"},
         true},
        {"mail sender @example.com accept", {.sender = "<postmaster>"}, false},
        {"mail sender @example.com accept", {.sender = NULL}, false},
        {"rcpt recipient @example.com accept", {.rcpt = "<u@example.com>"}, true},
        {"rcpt recipient @example.com accept", {.rcpt = "<u@example.net>"}, false},
        {"rcpt sender @example.com and recipient @example.net accept",
         {.sender = "<a@example.com>", .rcpt = "<b@example.net>"},
         true},
        {"rcpt sender @example.com and recipient @example.net accept",
         {.sender = "<a@example.com>", .rcpt = "<b@example.org>"},
         false},
        /* authenticated and macros */
        {"mail authenticated accept", {.macros = "{auth_authen}=alice"}, true},
        {"mail authenticated accept", {.macros = "{auth_authen}="}, false},
        {"mail authenticated accept", {.macros = NULL}, false},
        {"connect authenticated accept", {.macros = NULL}, false},
        {"mail !authenticated accept", {.macros = NULL}, true},
        {"connect macro {daemon_name} smtp-in accept",
         {.macros = "{daemon_name}=smtp-in"},
         true},
        {"connect macro daemon_name smtp-in accept",
         {.macros = "{daemon_name}=smtp-in"},
         true},
        {"connect macro daemon_name smtp-in accept",
         {.macros = "{daemon_name}=Smtp-in"},
         false},
        {"connect macro daemon_name a b /^sub/ accept",
         {.macros = "{daemon_name}=submit"},
         true},
        {"connect macro daemon_name smtp-in accept", {.macros = NULL}, false},
        {"connect !macro daemon_name smtp-in accept", {.macros = NULL}, true},
        {"connect macro j accept", {.macros = "j=mx.example"}, true},
        {"connect macro j accept", {.macros = "j="}, false},
        {"connect macro j accept", {.macros = NULL}, false},
        {"connect macro {auth_type} \"\" accept", {.macros = "{auth_type}="}, true},
        {"connect macro {auth_type} \"reject\" accept",
         {.macros = "{auth_type}=reject"},
         true},
        /* rcpt_count */
        {"rcpt rcpt_count > 5 accept", {.count = 6}, true},
        {"rcpt rcpt_count > 5 accept", {.count = 5}, false},
        {"rcpt rcpt_count >= 5 accept", {.count = 5}, true},
        {"rcpt rcpt_count < 5 accept", {.count = 4}, true},
        {"rcpt rcpt_count <= 5 accept", {.count = 6}, false},
        {"rcpt rcpt_count == 1 accept", {.count = 1}, true},
        {"rcpt rcpt_count != 1 accept", {.count = 1}, false},
        {"eom rcpt_count > 1 accept", {.count = 2}, true},
        /* headers */
        {"header header Subject /lottery/i accept",
         {.headers = "subject: You WON the LOTTERY"},
         true},
        {"header header Subject /lottery/ accept",
         {.headers = "Subject: LOTTERY"},
         false},
        {"header header Subject /lottery/i accept",
         {.headers = "From: lottery@x"},
         false},
        {"header header * /^from: .*lottery/i accept",
         {.headers = "From: lottery@x"},
         true},
        {"header header * /^Subject: x$/ accept", {.headers = "Subject: x"}, true},
        {"header header Subject /^$/ accept", {.headers = "Subject:"}, true},
        {"header header Subject /a/ /b/ accept", {.headers = "Subject: b"}, true},
        {"header header Subject /\\xff/ accept", {.headers = "Subject: \xff\xfe"}, true},
        {"header header Subject /lottery/ accept", {.headers = NULL}, false},
        {"header !header Subject /lottery/ accept", {.headers = "Subject: hello"}, true},
        {"eoh header Subject /lottery/ accept",
         {.headers = "From: a\nSubject: lottery"},
         true},
        {"eoh header Subject /lottery/ accept",
         {.headers = "From: lottery\nSubject: hi"},
         false},
        {"eom header X-Spam /^yes$/m accept", {.headers = "A: b\nX-Spam: yes"}, true},
        {"body !header X-Spam /yes/ accept", {.headers = "A: yes\nB: c"}, true},
        /* stress and any */
        {"connect stress accept", {.stressed = true}, true},
        {"connect stress accept", {.stressed = false}, false},
        {"connect !stress accept", {.stressed = false}, true},
        {"connect not stress accept", {.stressed = false}, true},
        {"connect ! stress accept", {.stressed = true}, false},
        {"connect any accept", {0}, true},
        {"connect !any accept", {0}, false},
        {"connect both stress accept", {.stressed = true}, true},
        {"connect stress and client 192.0.2.1 accept",
         {.stressed = true, .addr = "192.0.2.1"},
         true},
        {"connect stress and client 192.0.2.1 accept",
         {.stressed = false, .addr = "192.0.2.1"},
         false},
        {"connect any and !client 192.0.2.1 and client_name unknown accept",
         {.addr = "192.0.2.2", .name = "[192.0.2.2]"},
         true},
        /* expansion: stress-dependent values, and values that expand to nothing */
        {"rcpt rcpt_count > ${stress?{5}:{100}} accept",
         {.stressed = true, .count = 6},
         true},
        {"rcpt rcpt_count > ${stress?{5}:{100}} accept",
         {.stressed = false, .count = 6},
         false},
        {"rcpt rcpt_count > ${stress?{5}:{100}} accept",
         {.stressed = false, .count = 101},
         true},
        {"connect client ${stress?{192.0.2.0/24 198.51.100.0/24}} accept",
         {.stressed = true, .addr = "198.51.100.1"},
         true},
        {"connect client ${stress?{192.0.2.0/24 198.51.100.0/24}} accept",
         {.stressed = false, .addr = "198.51.100.1"},
         false},
        {"connect !client ${stress?{192.0.2.0/24}} accept",
         {.stressed = false, .addr = "192.0.2.1"},
         true},
        {"connect macro {x} $syslog_name accept", {.macros = "{x}=milter-stress"}, true},
};

START_TEST(test_match)
{
	const struct match_case *t = &match_cases[_i];
	conf *c = load_ok(t->rule, NULL);
	const rule *r = eval_text(c, t->rule, &t->facts);

	ck_assert_msg((r != NULL) == t->want, "'%s': %s", t->rule,
	              t->want ? "did not match" : "matched");
	if (r != NULL)
		ck_assert_int_eq(rule_action(r)->kind, RULES_ACCEPT);
	conf_unref(c);
}
END_TEST

/* Errors: every substring is in the message; absent is not. */

static const struct err_case {
	const char *text;
	const char *o;
	const char *want[3];
	const char *absent;
} err_cases[] = {
        /* the line syntax */
        {"connect", NULL, {"rules.conf:1:8: expected a check and an action"}, NULL},
        {"connect client",
         NULL,
         {"rules.conf:1:15: client: expected an address or network"},
         NULL},
        {"connect client reject",
         NULL,
         {"rules.conf:1:16: client: expected an address"},
         NULL},
        {"connect client 192.0.2.1",
         NULL,
         {"rules.conf:1:25: expected 'and' or an action (accept, continue, "},
         NULL},
        {"connect bogus 1 reject",
         NULL,
         {"rules.conf:1:9: unknown check 'bogus': expected client, client_name, daemon_name, helo, "
          "sender, recipient, authenticated, macro, rcpt_count, header, dnsbl, "
          "rhsbl_helo, rhsbl_sender, rhsbl_client, body, virus, spam, spam_score, "
          "spam_rule, rspamd_action, rspamd_score, rspamd_symbol, stress, any or history"},
         NULL},
        /* the expensive kinds */
        {"connect dnsbl zen.test=127.0.0.[2..x] reject",
         NULL,
         {"rules.conf:1:24: dnsbl: bad filter '127.0.0.[2..x]'"},
         NULL},
        {"connect dnsbl zen.test= reject",
         NULL,
         {"rules.conf:1:24: dnsbl: bad filter"},
         NULL},
        {"connect dnsbl bad..zone reject",
         NULL,
         {"rules.conf:1:15: dnsbl: bad zone 'bad..zone': expected a domain name"},
         NULL},
        {"connect dnsbl /x/ reject",
         NULL,
         {"rules.conf:1:15: dnsbl: bad zone '/x/'"},
         NULL},
        {"connect dnsbl reject",
         NULL,
         {"rules.conf:1:15: dnsbl: expected a zone, optionally with =FILTER"},
         NULL},
        {"connect rhsbl_client =127.0.0.2 reject",
         NULL,
         {"rules.conf:1:22: rhsbl_client: bad zone ''"},
         NULL},
        {"connect rhsbl_sender dbl.test reject",
         NULL,
         {"rules.conf:1:9: rhsbl_sender cannot be seen at connect: it is known from "
          "mail on"},
         NULL},
        {"connect rhsbl_helo dbl.test reject",
         NULL,
         {"rules.conf:1:9: rhsbl_helo cannot be seen at connect: it is known from "
          "helo on"},
         NULL},
        {"rcpt body /x/ reject",
         NULL,
         {"rules.conf:1:6: body cannot be seen at rcpt: it is known from body on"},
         NULL},
        {"eoh body /x/ reject", NULL, {"body cannot be seen at eoh"}, NULL},
        {"eom body x reject",
         NULL,
         {"rules.conf:1:10: body: 'x' is not a /regex/"},
         NULL},
        {"eom body /a(/ reject",
         NULL,
         {"rules.conf:1:13: bad regex /a(/: missing closing parenthesis"},
         NULL},
        {"eom body /a/q reject", NULL, {"rules.conf:1:13: unknown regex flag 'q'"}, NULL},
        {"connect reject",
         NULL,
         {"rules.conf:1:9: expected a check before 'reject' (write 'any' to match "
          "every session)"},
         NULL},
        {"connect any frobnicate", NULL, {"rules.conf:1:13: any takes no values"}, NULL},
        {"connect stress 1 reject", NULL, {":1:16: unknown check '1'"}, NULL},
        {"connect any and reject",
         NULL,
         {":1:17: expected a check before 'reject'"},
         NULL},
        {"connect any accept now", NULL, {":1:20: unexpected text after 'accept'"}, NULL},
        {"connect any discard",
         NULL,
         {":1:13: discard is not possible at connect (Postfix refuses it before MAIL "
          "FROM); use reject or tempfail"},
         NULL},
        {"helo any log discard", NULL, {":1:14: discard is not possible at helo"}, NULL},
        {"connect any quarantine",
         NULL,
         {":1:23: quarantine needs a TEXT: the reason"},
         NULL},
        {"connect any tag", NULL, {":1:16: tag needs a header NAME and a TEXT"}, NULL},
        {"connect any tag X-Foo",
         NULL,
         {":1:22: tag needs a TEXT after the header name"},
         NULL},
        {"connect any tag X:Foo yes",
         NULL,
         {":1:17: tag: bad header name 'X:Foo'"},
         NULL},
        {"connect any log",
         NULL,
         {":1:16: log needs the action it pretends to take"},
         NULL},
        {"connect any log log reject",
         NULL,
         {":1:17: log takes an action other than log"},
         NULL},
        {"connect any log foo",
         NULL,
         {":1:17: log needs the action it pretends to take"},
         NULL},
        {"connect any reject \"unterminated",
         NULL,
         {":1:20: missing '\"' to close this string"},
         NULL},
        {"connect any reject \"a\" b",
         NULL,
         {":1:24: text after the quoted TEXT: quote all of it or none"},
         NULL},
        {"connect client_name \"a\"b reject",
         NULL,
         {":1:24: expected white space after the closing '\"'"},
         NULL},
        {"connect client_name /abc reject",
         NULL,
         {":1:21: missing '/' to close this regex"},
         NULL},
        {"connect client_name /abc/q reject",
         NULL,
         {":1:26: unknown regex flag 'q': expected i, m, s or x"},
         NULL},
        {"connect client_name /a(b/ reject",
         NULL,
         {":1:25: bad regex /a(b/: missing closing parenthesis at offset 3 of the "
          "pattern"},
         NULL},
        {"connect client_name /abc/i, reject",
         NULL,
         {":1:27: expected white space after the regex's closing '/'"},
         NULL},
        {"connect client_name ${stress?{/abc}} reject",
         NULL,
         {":1:21: missing '/' to close the regex '/abc' (in the stress personality)"},
         "normal personality"},
        {"connect client_name ${stress?{/abc/q}:{/x/sx}} reject",
         NULL,
         {":1:21: unknown regex flag 'q': expected i, m, s or x (in the stress"},
         "normal personality"},
        {"connect any reject 550 ${stress?{5.7.1 x}:{5.7.1}}",
         NULL,
         {":1:24: expected one enhanced status code, not '5.7.1 x' (in the stress"},
         NULL},
        {"connect normal normal any reject",
         NULL,
         {":1:16: unknown check 'normal'"},
         NULL},
        {"connect name=a/b any reject", NULL, {":1:14: bad rule name 'a/b'"}, NULL},
        {"connect name= any reject", NULL, {":1:14: bad rule name ''"}, NULL},
        {"connect !\"client\" 1 reject", NULL, {":1:9: unknown check"}, NULL},
        {"connect !", NULL, {":1:10: expected a check after the negation"}, NULL},
        /* what a stage can see */
        {"connect helo x reject",
         NULL,
         {":1:9: helo cannot be seen at connect: it is known from helo on"},
         NULL},
        {"helo sender <> reject",
         NULL,
         {":1:6: sender cannot be seen at helo: it is known from mail on"},
         NULL},
        {"mail recipient @x reject",
         NULL,
         {":1:6: recipient cannot be seen at mail: only at rcpt"},
         NULL},
        {"data recipient @x reject",
         NULL,
         {"recipient cannot be seen at data: only at rcpt"},
         NULL},
        {"mail rcpt_count > 1 reject", NULL, {"rcpt_count cannot be seen at mail"}, NULL},
        {"data header Subject /x/ reject", NULL, {"header cannot be seen at data"}, NULL},
        {"connect header * /x/ reject", NULL, {"header cannot be seen at connect"}, NULL},
        /* values */
        {"connect client 192.0.2.1/24 reject",
         NULL,
         {":1:16: client: '192.0.2.1/24' has bits set after the /24 prefix; did you mean "
          "192.0.2.0/24?"},
         NULL},
        {"connect client 192.0.2.0/33 reject",
         NULL,
         {":1:16: client: bad prefix length in '192.0.2.0/33': expected 0..32"},
         NULL},
        {"connect client 2001:db8::/129 reject", NULL, {"expected 0..128"}, NULL},
        {"connect client 2001:db8::1/64 reject",
         NULL,
         {"did you mean 2001:db8::/64?"},
         NULL},
        {"connect client example.com reject",
         NULL,
         {":1:16: client: bad address 'example.com': expected an IPv4 or IPv6 address"},
         NULL},
        {"connect client /x/ reject", NULL, {"client: bad address '/x/'"}, NULL},
        {"connect client 192.0.2.1/ reject", NULL, {"bad prefix length"}, NULL},
        {"connect client [2001:db8::/32] reject", NULL, {"bad address"}, NULL},
        {"mail sender example.com reject",
         NULL,
         {":1:13: sender: bad value 'example.com': expected user@domain, user@, @domain, "
          ".domain, /regex/ or <>"},
         NULL},
        {"mail sender @ reject", NULL, {"sender: bad value '@'"}, NULL},
        {"mail sender \"\" reject", NULL, {":1:13: sender: empty value"}, NULL},
        {"connect client_name . reject", NULL, {"client_name: bad value '.'"}, NULL},
        {"header header Subject lottery reject",
         NULL,
         {":1:23: header: 'lottery' is not a /regex/"},
         NULL},
        {"header header Sub:ject /x/ reject",
         NULL,
         {":1:15: header: bad header name 'Sub:ject'"},
         NULL},
        {"header header /x/ reject",
         NULL,
         {":1:15: header: expected a header (or *) name first"},
         NULL},
        {"connect macro reject", NULL, {"expected 'and' or an action"}, NULL},
        {"connect macro {a b} x reject", NULL, {"macro: bad macro name '{a'"}, NULL},
        {"connect macro {} x reject", NULL, {"macro: bad macro name '{}'"}, NULL},
        {"rcpt rcpt_count 5 reject",
         NULL,
         {":1:17: rcpt_count: expected <, <=, >, >=, == or != and a number"},
         NULL},
        {"rcpt rcpt_count > reject",
         NULL,
         {":1:19: rcpt_count: expected a number after '>'"},
         NULL},
        {"rcpt rcpt_count > five reject",
         NULL,
         {":1:19: rcpt_count: expected a whole number, not 'five'"},
         NULL},
        {"rcpt rcpt_count > -1 reject",
         NULL,
         {"expected a whole number, not '-1'"},
         NULL},
        {"rcpt rcpt_count > 99999999999999999999999 reject",
         NULL,
         {"expected a whole number"},
         NULL},
        /* expansion */
        {"connect client $nope reject", NULL, {":1:16: unknown parameter $nope\n"}, NULL},
        {"connect client 192.0.2.1 ${stres?{x}} reject",
         NULL,
         {":1:26: unknown parameter $stres; did you mean $stress?"},
         NULL},
        {"connect client ${stress reject",
         NULL,
         {":1:16: missing '}' to close '${'"},
         NULL},
        {"rcpt rcpt_count > ${stress?{5}} reject",
         NULL,
         {":1:19: rcpt_count: expected a whole number, not '' (in the normal "
          "personality)"},
         "stress personality"},
        {"rcpt rcpt_count > ${stress?{5}:{x}} reject",
         NULL,
         {"rcpt_count: expected a whole number, not 'x' (in the normal personality)"},
         "stress personality"},
        {"rcpt rcpt_count > ${stress?{y}:{x}} reject",
         NULL,
         {"not 'x' (in the normal personality)", "not 'y' (in the stress personality)"},
         NULL},
        {"rcpt stress rcpt_count > ${stress?{5}} reject", NULL, {0}, NULL}, /* loads */
        {"rcpt rcpt_count > ${stress?{5}} reject",
         "stress=",
         {"not ''\n"},
         "personality"},
        {"connect client \"$nope\" reject",
         NULL,
         {":1:17: unknown parameter $nope"},
         NULL},
        {"connect client \"\\\"$nope\" reject",
         NULL,
         {":1:19: unknown parameter $nope"},
         NULL},
        /* reply codes */
        {"connect any reject 450",
         NULL,
         {":1:20: reject needs a 5xx reply code, not 450 (tempfail sends 4xx)"},
         NULL},
        {"connect any tempfail 550",
         NULL,
         {":1:22: tempfail needs a 4xx reply code, not 550 (reject sends 5xx)"},
         NULL},
        {"connect any reject 5500",
         NULL,
         {":1:20: bad reply code '5500': expected three digits such as 550"},
         NULL},
        {"connect any reject 5x0 x", NULL, {"bad reply code '5x0'"}, NULL},
        {"connect any reject 570",
         NULL,
         {"bad reply code '570': the second digit must be 0-5"},
         NULL},
        {"connect any reject 5.7.1 x",
         NULL,
         {":1:20: '5.7.1' is an enhanced status code: give the reply code first (550 "
          "5.7.1)"},
         NULL},
        {"connect any reject 521 4.7.1 \"Service unavailable\"",
         NULL,
         {":1:24: enhanced status code 4.7.1 does not match reply code 521: Postfix "
          "would "
          "drop the reply and disable the milter for the session; use 5.7.1"},
         NULL},
        {"connect any tempfail 421 5.7.1",
         NULL,
         {"does not match reply code 421", "use 4.7.1"},
         NULL},
        {"connect any reject 550 5.7",
         NULL,
         {":1:24: bad enhanced status code '5.7': expected CLASS.SUBJECT.DETAIL such as "
          "5.7.1"},
         NULL},
        {"connect any reject 550 5.1000.1",
         NULL,
         {"bad enhanced status code '5.1000.1'"},
         NULL},
        {"connect any reject 550 5.1.1000", NULL, {"bad enhanced status code"}, NULL},
        {"connect any reject 550 5..1", NULL, {"bad enhanced status code"}, NULL},
        {"connect any reject 550 55.1.1", NULL, {"bad enhanced status code"}, NULL},
        {"connect any reject 550 5.1.1.1", NULL, {"bad enhanced status code"}, NULL},
        {"connect any reject 550 5.7.1 5.7.2", NULL, {0}, NULL}, /* TEXT "5.7.2" */
        {"connect any tempfail ${stress?{421}:{521}}",
         NULL,
         {":1:22: tempfail needs a 4xx reply code, not 521 (reject sends 5xx) (in the "
          "normal "
          "personality)"},
         "stress personality"},
        {"connect any tempfail ${stress?{421 4.7.0}:{450 4.7.1 x}}",
         NULL,
         {"expected one reply code and at most one enhanced status code (in the normal"},
         NULL},
        {"connect any tempfail ${stress?{421 4.7.0}} 4.7.1",
         NULL,
         {":1:22: bad reply code '': expected three digits such as 451 (in the normal",
          ":1:22: expected one reply code and at most one enhanced status code (in the "
          "stress"},
         NULL},
        {"connect any tempfail ${stress?{421 4.7.0}:{421}} 4.7.1",
         NULL,
         {"expected one reply code and at most one enhanced status code (in the stress"},
         NULL},
        /* texts */
        {"connect any reject 550 5.7.1 \"$client_adr blocked\"",
         NULL,
         {":1:31: unknown name $client_adr in the text: expected a parameter or "
          "$client_addr, "
          "$client_name, $helo_name, $sender, $recipient, $queue_id, $rule, $stage, "
          "$stress"},
         NULL},
        {"connect any reject 550 5.7.1 $client_addr ${oops",
         NULL,
         {":1:43: missing '}' to close '${'"},
         NULL},
        {"connect any reject 550 \"a\\\\b \\\"c\\\" $bad\"",
         NULL,
         {":1:36: unknown name $bad"},
         NULL},
        {"connect any tag X-A $bad", NULL, {":1:21: unknown name $bad"}, NULL},
        {"connect any reject 550 a\rb",
         NULL,
         {":1:24: the text must not contain CR or LF"},
         NULL},
        /* include and file: */
        {"include", NULL, {"rules.conf:1: include needs a file name"}, NULL},
        {"include no-such.conf",
         NULL,
         {"rules.conf:1: include ",
          "/no-such.conf: cannot open: No such file or directory"},
         NULL},
        {"include /dev/null",
         NULL,
         {"rules.conf:1: include /dev/null: not a regular file"},
         NULL},
        {"include .", NULL, {"include ", "not a regular file"}, NULL},
        {"connect client file:no-such.list reject",
         NULL,
         {":1:16: file:no-such.list: cannot open: No such file or directory"},
         NULL},
        {"connect client file: reject",
         NULL,
         {":1:16: file:: expected a file name"},
         NULL},
        /* the rest of the file still works around rules */
        {"connect any reject\nsyslog_name = \nlisten_backlog = x",
         NULL,
         {":2: syslog_name: must not be empty",
          ":3: listen_backlog: bad integer value 'x'"},
         NULL},
        {"connect = x", NULL, {"rules.conf:1: unknown parameter 'connect'"}, NULL},
        {"connect client\n  192.0.2.1/24 reject",
         NULL,
         {"rules.conf:1:16: client: '192.0.2.1/24' has bits set"},
         NULL},
        {"a\0b", NULL, {"rules.conf:1: a NUL byte: this is not a text file"}, NULL},
};

START_TEST(test_errors)
{
	const struct err_case *t = &err_cases[_i];
	strbuf err = STRBUF_INIT, name = STRBUF_INIT;
	size_t len = strlen(t->text);
	char *ov[1] = {(char *)t->o};
	conf *c;
	size_t i;

	/* The NUL case: the text goes on after its first NUL. */
	if (strcmp(t->text, "a") == 0)
		len = 3;
	conf_name(&name);
	c = conf_load_text(name.s, t->text, len, ov, t->o != NULL ? 1 : 0, &err);
	if (t->want[0] == NULL) {
		ck_assert_msg(c != NULL, "'%s': %s", t->text, strbuf_str(&err));
		conf_unref(c);
	} else {
		ck_assert_msg(c == NULL, "'%s' loaded", t->text);
	}
	for (i = 0; i < 3 && t->want[i] != NULL; i++)
		ck_assert_msg(strstr(strbuf_str(&err), t->want[i]) != NULL,
		              "'%s': error\n%s lacks '%s'", t->text, strbuf_str(&err),
		              t->want[i]);
	if (t->absent != NULL)
		ck_assert_msg(strstr(strbuf_str(&err), t->absent) == NULL,
		              "'%s': error\n%s has '%s'", t->text, strbuf_str(&err),
		              t->absent);
	strbuf_free(&err);
	strbuf_free(&name);
}
END_TEST

/* Several errors in one file: each rule is reported, in file order, once. */
/* A bad parameter a rule uses is reported once, where the parameter is. */
START_TEST(test_param_error_once)
{
	strbuf err = STRBUF_INIT;
	const char *p;
	size_t lines = 0;

	ck_assert_ptr_null(load("syslog_name = ${x\nconnect macro $syslog_name reject", NULL, &err));
	ck_assert_msg(strstr(err.s, "rules.conf:1: syslog_name: column 1: missing '}'") != NULL,
	              "%s", err.s);
	for (p = err.s; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	ck_assert_msg(lines == 1, "%s", err.s);
	strbuf_free(&err);
}
END_TEST

START_TEST(test_error_order)
{
	strbuf err = STRBUF_INIT;
	const char *text = "connect client 1 reject\n"
	                   "syslog_name = ok\n"
	                   "helo recipient @x reject\n"
	                   "connect any reject 521 4.7.1\n";
	const char *a, *b, *c;

	ck_assert_ptr_null(load(text, NULL, &err));
	a = strstr(err.s, "rules.conf:1:16: client: bad address '1'");
	b = strstr(err.s, "rules.conf:3:6: recipient cannot be seen at helo");
	c = strstr(err.s, "rules.conf:4:24: enhanced status code 4.7.1");
	/* Syntax while reading; then what needs the parameters, in file order. */
	ck_assert_msg(a && b && c && b < a && a < c, "%s", err.s);
	ck_assert_ptr_null(strstr(c + 20, "enhanced status code 4.7.1"));
	strbuf_free(&err);
}
END_TEST

/* A reply text: 980 bytes with its parameters, session variables empty. */
START_TEST(test_text_limit)
{
	static const char tail[] = " $client_addr $syslog_name"; /* 2 + 13 bytes */
	strbuf text = STRBUF_INIT, err = STRBUF_INIT;
	conf *c;
	int n;

	for (n = 964; n <= 966; n++) {
		strbuf_reset(&text);
		strbuf_puts(&text, "connect any reject 550 5.7.1 ");
		while (text.len < 29 + (size_t)n)
			strbuf_putc(&text, 'x');
		strbuf_puts(&text, tail);
		strbuf_reset(&err);
		c = load(text.s, NULL, &err);
		if (n + 15 <= 980) {
			ck_assert_msg(c != NULL, "%d: %s", n, strbuf_str(&err));
			conf_unref(c);
		} else {
			ck_assert_ptr_null(c);
			ck_assert_msg(
			        strstr(err.s,
			               ":1:30: the text is 981 bytes long before its "
			               "session variables; a reply text takes at "
			               "most 980") != NULL,
			        "%s", err.s);
		}
	}
	strbuf_free(&text);
	strbuf_free(&err);
}
END_TEST

/* First match, verdicts, and the actions that do not end a stage. */

typedef struct visit_log {
	strbuf seen; /* "name:0|1 " per rule tried */
	const char *stop_at;
} visit_log;

static bool
visit(void *ctx, const rule *r, bool matched)
{
	visit_log *v = ctx;

	strbuf_printf(&v->seen, "%s:%d ", rule_name(r), matched);
	return v->stop_at != NULL && strcmp(v->stop_at, rule_name(r)) == 0;
}

static const char order_rules[] =
        "rcpt name=t1 recipient @a.example tag X-A \"tagged $recipient\"\n"
        "rcpt name=l1 recipient @a.example log reject 550 5.7.1 \"dry\"\n"
        "rcpt name=q1 recipient @a.example quarantine \"held\"\n"
        "rcpt name=c1 recipient @c.example continue\n"
        "rcpt name=r1 recipient @a.example @c.example reject 550 5.1.1 \"no\"\n"
        "rcpt name=r2 any tempfail\n"
        "mail name=m1 sender <> reject\n";

static const struct order_case {
	const char *rcpt;
	const char *stop_at;
	const char *want;  /* rule returned, or NULL */
	const char *trace; /* the visits */
} order_cases[] = {
        {"<u@a.example>", NULL, "r1", "t1:1 l1:1 q1:1 c1:0 r1:1 "},
        {"<u@c.example>", NULL, "c1", "t1:0 l1:0 q1:0 c1:1 "},
        {"<u@b.example>", NULL, "r2", "t1:0 l1:0 q1:0 c1:0 r1:0 r2:1 "},
        {"<u@a.example>", "l1", NULL, "t1:1 l1:1 "},
        {"<u@a.example>", "r1", "r1", "t1:1 l1:1 q1:1 c1:0 r1:1 "},
        {"<u@b.example>", "c1", NULL, "t1:0 l1:0 q1:0 c1:0 "},
};

START_TEST(test_order)
{
	const struct order_case *t = &order_cases[_i];
	conf *c = load_ok(order_rules, NULL);
	visit_log v = {STRBUF_INIT, t->stop_at};
	fact_spec s = {.rcpt = t->rcpt, .sender = "<s@example.org>", .count = 1};
	facts_buf fb;
	const rule *r;

	make_facts(&fb, &s);
	r = rules_eval(conf_rules(c, false), STAGE_RCPT, &fb.f, NULL, NULL, visit, &v);
	if (t->want == NULL)
		ck_assert_ptr_null(r);
	else
		ck_assert_str_eq(r != NULL ? rule_name(r) : "(none)", t->want);
	ck_assert_str_eq(strbuf_str(&v.seen), t->trace);
	free_facts(&fb);
	strbuf_free(&v.seen);
	conf_unref(c);
}
END_TEST

/* Actions as compiled: kind, would, codes, texts. */

static const struct action_case {
	const char *text;
	enum rules_action_kind kind, would;
	const char *code, *ecode, *tmpl, *tag;
} action_cases[] = {
        {"connect any accept", RULES_ACCEPT, RULES_ACCEPT, "", "", NULL, NULL},
        {"connect any continue", RULES_CONTINUE, RULES_CONTINUE, "", "", NULL, NULL},
        {"mail any discard", RULES_DISCARD, RULES_DISCARD, "", "", NULL, NULL},
        {"connect any tempfail", RULES_TEMPFAIL, RULES_TEMPFAIL, "451", "4.7.1",
         "Service unavailable, try again later", NULL},
        {"connect any reject", RULES_REJECT, RULES_REJECT, "550", "5.7.1",
         "Message rejected", NULL},
        {"connect any reject 554", RULES_REJECT, RULES_REJECT, "554", "",
         "Message rejected", NULL},
        {"connect any tempfail 421 4.7.0 \"Busy, try again later\"", RULES_TEMPFAIL,
         RULES_TEMPFAIL, "421", "4.7.0", "Busy, try again later", NULL},
        {"connect any tempfail 450 Busy, later", RULES_TEMPFAIL, RULES_TEMPFAIL, "450",
         "", "Busy, later", NULL},
        {"connect any tempfail Busy", RULES_TEMPFAIL, RULES_TEMPFAIL, "451", "4.7.1",
         "Busy", NULL},
        {"connect any tempfail \"421 is not a code here\"", RULES_TEMPFAIL,
         RULES_TEMPFAIL, "451", "4.7.1", "421 is not a code here", NULL},
        {"connect any reject 554 5.7.1 $client_addr is \"listed\"", RULES_REJECT,
         RULES_REJECT, "554", "5.7.1", "$client_addr is \"listed\"", NULL},
        {"connect any reject 554 5.7.1 \"say \\\"no\\\" \\\\ 100%\"", RULES_REJECT,
         RULES_REJECT, "554", "5.7.1", "say \"no\" \\ 100%", NULL},
        {"connect any tempfail ${stress?{421}:{450}} 4.7.0 x", RULES_TEMPFAIL,
         RULES_TEMPFAIL, "450", "4.7.0", "x", NULL},
        {"connect any tempfail ${stress?{421 4.7.0}:{450 4.7.1}} x", RULES_TEMPFAIL,
         RULES_TEMPFAIL, "450", "4.7.1", "x", NULL},
        {"connect any quarantine held for $client_addr", RULES_QUARANTINE,
         RULES_QUARANTINE, "", "", "held for $client_addr", NULL},
        {"connect any tag X-Client-Listed \"yes ($rule)\"", RULES_TAG, RULES_TAG, "", "",
         "yes ($rule)", "X-Client-Listed"},
        {"connect any log reject 554 5.7.1 would", RULES_LOG, RULES_REJECT, "554",
         "5.7.1", "would", NULL},
        {"connect any log tempfail", RULES_LOG, RULES_TEMPFAIL, "451", "4.7.1",
         "Service unavailable, try again later", NULL},
        {"connect any log accept", RULES_LOG, RULES_ACCEPT, "", "", NULL, NULL},
        {"connect any log tag X-A b", RULES_LOG, RULES_TAG, "", "", "b", "X-A"},
};

static bool
grab(void *ctx, const rule *r, bool matched)
{
	(void)matched;
	*(const rule **)ctx = r;
	return false;
}

/* The first rule of a stage, matched or not. */
static const rule *
first_rule(const rules_table *tab, enum stage stage)
{
	fact_spec s = {0};
	const rule *r = NULL;
	facts_buf fb;

	make_facts(&fb, &s);
	rules_eval(tab, stage, &fb.f, NULL, NULL, grab, &r);
	free_facts(&fb);
	ck_assert_ptr_nonnull(r);
	return r;
}

START_TEST(test_action)
{
	const struct action_case *t = &action_cases[_i];
	conf *c = load_ok(t->text, NULL);
	const rule *r = first_rule(conf_rules(c, false), stage_of(t->text));
	const rules_action *a = rule_action(r);

	ck_assert_int_eq(a->kind, t->kind);
	ck_assert_int_eq(a->would, t->would);
	ck_assert_str_eq(a->code, t->code);
	ck_assert_str_eq(a->ecode, t->ecode);
	if (t->tmpl == NULL)
		ck_assert_ptr_null(a->text);
	else
		ck_assert_str_eq(a->text, t->tmpl);
	if (t->tag == NULL)
		ck_assert_ptr_null(a->tag_name);
	else
		ck_assert_str_eq(a->tag_name, t->tag);
	ck_assert(rules_stage_used(conf_rules(c, false), stage_of(t->text)) ||
	          rules_stage_used(conf_rules(c, true), stage_of(t->text)));
	conf_unref(c);
}
END_TEST

/* MODE, the personalities, and -o stress=... */

static const char mode_rules[] = "connect normal name=n any reject 554\n"
                                 "connect stress name=s any tempfail 421\n"
                                 "connect both name=b any accept\n"
                                 "connect name=d any accept\n";

static const struct mode_case {
	const char *o;
	bool stressed;
	const char *want; /* the verdict's rule */
	size_t count;
} mode_cases[] = {
        {NULL, false, "n", 3},         {NULL, true, "s", 3},
        {"stress=yes", false, "s", 3}, {"stress=yes", true, "s", 3},
        {"stress=", false, "n", 3},    {"stress=", true, "n", 3},
};

START_TEST(test_mode)
{
	const struct mode_case *t = &mode_cases[_i];
	conf *c = load_ok(mode_rules, t->o);
	const rules_table *tab = conf_rules(c, t->stressed);
	fact_spec s = {.stressed = t->stressed};
	facts_buf fb;
	const rule *r;

	make_facts(&fb, &s);
	r = rules_eval(tab, STAGE_CONNECT, &fb.f, NULL, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(rule_name(r), t->want);
	ck_assert_uint_eq(rules_count(tab), t->count);
	free_facts(&fb);
	conf_unref(c);
}
END_TEST

/* A rule only one personality has: its problems do not name a personality. */
START_TEST(test_mode_errors)
{
	strbuf err = STRBUF_INIT;
	conf *c;

	ck_assert_ptr_null(
	        load("connect stress client ${stress?{x}:{1.2.3.4}} reject", NULL, &err));
	ck_assert_msg(strstr(err.s, ":1:23: client: bad address 'x'") != NULL, "%s",
	              err.s);
	ck_assert_ptr_null(strstr(err.s, "personality"));
	strbuf_reset(&err);
	/* Forced normal: a rule only the stress personality has is not compiled. */
	c = load("connect stress client ${stress?{x}:{1.2.3.4}} reject", "stress=", &err);
	ck_assert_msg(c != NULL, "%s", strbuf_str(&err));
	ck_assert_uint_eq(rules_count(conf_rules(c, true)), 0);
	conf_unref(c);
	strbuf_free(&err);
}
END_TEST

/* What a session asks of a table. */

static const struct stage_case {
	const char *text;
	enum stage stage;
	bool used, may_reply, header_set;
} stage_cases[] = {
        {"connect any accept", STAGE_CONNECT, true, true, false},
        {"connect any accept", STAGE_HELO, false, false, false},
        {"connect any continue", STAGE_CONNECT, true, false, false},
        {"connect any tempfail", STAGE_CONNECT, true, true, false},
        {"mail any reject", STAGE_MAIL, true, true, false},
        {"mail any discard", STAGE_MAIL, true, true, false},
        {"mail any tag X-A b", STAGE_MAIL, true, false, false},
        {"mail any quarantine why", STAGE_MAIL, true, false, false},
        {"mail any log reject", STAGE_MAIL, true, false, false},
        {"rcpt any log tempfail\nrcpt recipient <> reject", STAGE_RCPT, true, true,
         false},
        {"header header Subject /x/ reject", STAGE_HEADER, true, true, false},
        {"eoh header Subject /x/ tag X-A b", STAGE_EOH, true, false, true},
        {"body header * /x/ log reject", STAGE_BODY, true, false, true},
        {"eom !header X-A /x/ reject", STAGE_EOM, true, true, true},
        {"eom any reject", STAGE_EOM, true, true, false},
        {"eom any reject", STAGE_DATA, false, false, false},
};

START_TEST(test_stage_questions)
{
	const struct stage_case *t = &stage_cases[_i];
	conf *c = load_ok(t->text, NULL);
	int p;

	for (p = 0; p < 2; p++) {
		const rules_table *tab = conf_rules(c, p);

		ck_assert_int_eq(rules_stage_used(tab, t->stage), t->used);
		ck_assert_int_eq(rules_stage_may_reply(tab, t->stage), t->may_reply);
		ck_assert_int_eq(rules_need_header_set(tab), t->header_set);
	}
	conf_unref(c);
}
END_TEST

START_TEST(test_empty_table)
{
	conf *c = load_ok("syslog_name = x", NULL);
	const rules_table *tab = conf_rules(c, false);
	fact_spec s = {0};
	facts_buf fb;
	int st;

	ck_assert_ptr_nonnull(tab);
	ck_assert_uint_eq(rules_count(tab), 0);
	make_facts(&fb, &s);
	for (st = 0; st < STAGE_N; st++) {
		ck_assert(!rules_stage_used(tab, st));
		ck_assert(!rules_stage_may_reply(tab, st));
		ck_assert_ptr_null(rules_eval(tab, st, &fb.f, NULL, NULL, NULL, NULL));
	}
	ck_assert_ptr_null(rules_eval(tab, STAGE_N, &fb.f, NULL, NULL, NULL, NULL));
	ck_assert_ptr_null(rules_eval(NULL, STAGE_CONNECT, &fb.f, NULL, NULL, NULL, NULL));
	ck_assert(!rules_need_header_set(NULL));
	ck_assert(!rules_stage_used(NULL, STAGE_CONNECT));
	free_facts(&fb);
	conf_unref(c);
}
END_TEST

/* The -n dump: one line per rule, as compiled. */

static const struct dump_case {
	const char *text;
	const char *o;
	bool stressed;
	const char *line; /* after "PATH/rules.conf:" */
} dump_cases[] = {
        {"connect client 127.0.0.0/8 [::1]/128 accept", NULL, false,
         "1: connect both client 127.0.0.0/8 [::1]/128 accept"},
        {"connect normal name=listed client 192.0.2.0/24 reject 554 5.7.1 \"$client_addr "
         "is "
         "listed\"",
         NULL, false,
         "1: connect normal name=listed client 192.0.2.0/24 reject 554 5.7.1 "
         "\"$client_addr is "
         "listed\""},
        {"\n\nhelo stress helo ip_literal tempfail 421 4.7.0 \"Busy, try again later\"",
         NULL, true,
         "3: helo stress helo ip_literal tempfail 421 4.7.0 \"Busy, try again later\""},
        {"rcpt rcpt_count > ${stress?{5}:{100}} tempfail 452 4.5.3 \"Too many "
         "recipients\"",
         NULL, false,
         "1: rcpt both rcpt_count > 100 tempfail 452 4.5.3 \"Too many recipients\""},
        {"rcpt rcpt_count > ${stress?{5}:{100}} tempfail 452 4.5.3 \"Too many "
         "recipients\"",
         NULL, true,
         "1: rcpt both rcpt_count > 5 tempfail 452 4.5.3 \"Too many recipients\""},
        {"rcpt rcpt_count > ${stress?{5}:{100}} tempfail 452 4.5.3 \"Too many "
         "recipients\"",
         "stress=yes", false,
         "1: rcpt both rcpt_count > 5 tempfail 452 4.5.3 \"Too many recipients\""},
        {"header header Subject /lottery/i reject 550 5.7.1 Content rejected", NULL,
         false,
         "1: header both header Subject /lottery/i reject 550 5.7.1 Content rejected"},
        {"header header Subject /lottery/i log reject", NULL, false,
         "1: header both header Subject /lottery/i log reject 550 5.7.1 \"Message "
         "rejected\""},
        {"connect any tempfail", NULL, false,
         "1: connect both any tempfail 451 4.7.1 \"Service unavailable, try again "
         "later\""},
        {"connect !client 10.0.0.0/8 and not stress and client_name \"a b\" \"and\" "
         "unknown "
         "accept",
         NULL, false,
         "1: connect both !client 10.0.0.0/8 and !stress and client_name \"a b\" \"and\" "
         "unknown accept"},
        {"connect macro auth_type PLAIN /^x y$/ tag X-A \"q\\\"uote\"", NULL, false,
         "1: connect both macro {auth_type} PLAIN /^x y$/ tag X-A \"q\\\"uote\""},
        {"connect\n  client\n  ${stress?{10.0.0.0/8 192.168.0.0/16}:{10.0.0.0/8}}\n  "
         "accept",
         NULL, true, "1: connect both client 10.0.0.0/8 192.168.0.0/16 accept"},
        {"connect client ${stress?{10.0.0.0/8}} accept", NULL, false,
         "1: connect both client accept"},
        {"connect client_name \"a\\\\b\\\"c\" x\\y accept", NULL, false,
         "1: connect both client_name \"a\\\\b\\\"c\" \"x\\\\y\" accept"},
        {"connect dnsbl Zen.Test=127.0.0.[2..11] bl.test accept", NULL, false,
         "1: connect both dnsbl zen.test=127.0.0.[2..11] bl.test accept"},
        {"mail stress !rhsbl_sender dbl.test and rhsbl_helo dbl.test and rhsbl_client "
         "x.test log accept",
         NULL, true,
         "1: mail stress !rhsbl_sender dbl.test and rhsbl_helo dbl.test and "
         "rhsbl_client x.test log accept"},
        {"eom body /viagra/i \"/a b/\" tag X-Spam yes", NULL, false,
         "1: eom both body /viagra/i \"/a b/\" tag X-Spam yes"},
        {"mail name=a.b:c-1 sender <> @Example.COM .example.org reject 550", NULL, false,
         "1: mail both name=a.b:c-1 sender <> @Example.COM .example.org reject 550 "
         "\"Message "
         "rejected\""},
};

START_TEST(test_dump)
{
	const struct dump_case *t = &dump_cases[_i];
	conf *c = load_ok(t->text, t->o);
	char *out = dump_rules(conf_rules(c, t->stressed));
	strbuf want = STRBUF_INIT;

	conf_name(&want);
	strbuf_printf(&want, ":%s\n", t->line);
	ck_assert_str_eq(out, want.s);
	free(out);
	strbuf_free(&want);
	conf_unref(c);
}
END_TEST

/*
 * The whole check table: every kind has a sample here; the sample parses at
 * the kind's first stage, -n dumps it, and the dump parses back to the same
 * rule (its dump is the same line).
 */
static const struct {
	const char *kind, *sample;
} table_samples[] = {
        {"client", "client 192.0.2.0/24 [2001:db8::]/32 ::1"},
        {"client_name", "client_name mx.example.com .example.org /^mail/i unknown"},
        {"daemon_name", "daemon_name submission /^smtp/"},
        {"helo", "!helo ip_literal .example.com \"a b\""},
        {"sender", "sender <> user@ @example.com .example.net /x/"},
        {"recipient", "recipient a@example.com /b@/"},
        {"authenticated", "authenticated"},
        {"macro", "macro auth_type PLAIN /x/ \"\" \"reject\""},
        {"rcpt_count", "rcpt_count >= 5"},
        {"header", "header Subject /lottery/i /a b/"},
        {"dnsbl", "dnsbl zen.example.org=127.0.0.[2..11] b.example"},
        {"rhsbl_helo", "rhsbl_helo dbl.example.org"},
        {"rhsbl_sender", "rhsbl_sender dbl.example.org=127.0.1.[2;4..6]"},
        {"rhsbl_client", "rhsbl_client dbl.example.org"},
        {"body", "body /viagra/i"},
        {"virus", "virus /^Eicar/ /x/i"},
        {"spam", "!spam"},
        {"spam_score", "spam_score > 7.5"},
        {"spam_rule", "spam_rule GTUBE /^URIBL_/"},
        {"rspamd_action", "rspamd_action \"reject\" \"soft reject\" greylist"},
        {"rspamd_score", "rspamd_score >= -1"},
        {"rspamd_symbol", "rspamd_symbol GTUBE"},
        {"stress", "stress"},
        {"any", "not any"},
        {"history", "history known unknown"},
};

typedef struct table_row {
	const char *name;
	enum stage first;
	int n;
} table_row;

static void
collect_row(void *ctx, const char *name, const char *syntax, enum stage first,
            enum stage last, unsigned cost, const char *doc)
{
	table_row *rows = ctx;

	(void)syntax, (void)last, (void)cost;
	ck_assert_msg(doc != NULL && *doc != '\0', "%s: no doc", name);
	ck_assert_int_lt(rows[0].n, 64);
	rows[rows[0].n].name = name;
	rows[rows[0].n++].first = first;
}

/* The dumped line without its "FILE:LINE: " and its MODE "both". */
static char *
rule_of_dump(const char *dump)
{
	const char *p = strstr(dump, ": ");
	strbuf b = STRBUF_INIT;
	size_t n;

	ck_assert_ptr_nonnull(p);
	p += 2;
	n = strcspn(p, "\n");
	strbuf_append(&b, p, n);
	return strbuf_detach(&b);
}

START_TEST(test_check_table_round_trip)
{
	table_row rows[64] = {{NULL, STAGE_CONNECT, 0}};
	int n_rows;

	rules_each_check(collect_row, rows);
	n_rows = rows[0].n;
	ck_assert_int_eq(n_rows, N(table_samples));
	for (int i = 0; i < n_rows; i++) {
		const char *sample = NULL;
		strbuf text = STRBUF_INIT;
		char *once, *twice, *line;
		conf *c;

		for (int k = 0; k < N(table_samples); k++)
			if (strcmp(table_samples[k].kind, rows[i].name) == 0)
				sample = table_samples[k].sample;
		ck_assert_msg(sample != NULL, "check kind %s has no sample", rows[i].name);
		strbuf_printf(&text, "%s %s tempfail\n", stage_name(rows[i].first), sample);
		c = load_ok(text.s, NULL);
		once = dump_rules(conf_rules(c, false));
		conf_unref(c);
		line = rule_of_dump(once);
		strbuf_reset(&text);
		strbuf_printf(&text, "%s\n", line);
		c = load_ok(text.s, NULL);
		twice = dump_rules(conf_rules(c, false));
		conf_unref(c);
		ck_assert_str_eq(twice, once);
		free(line);
		free(once);
		free(twice);
		strbuf_free(&text);
	}
}
END_TEST

/* conf_dump() shows the rules after the parameters; without rules, nothing. */
START_TEST(test_conf_dump)
{
	conf *c = load_ok("connect any accept\nmail stress any reject", NULL);
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	const char *rules;

	conf_dump(c, true, fp);
	fclose(fp);
	rules = strstr(buf, "\n# rules\n");
	ck_assert_ptr_nonnull(rules);
	ck_assert_ptr_nonnull(strstr(rules, "rules.conf:1: connect both any accept\n"));
	ck_assert_ptr_nonnull(
	        strstr(rules, "rules.conf:2: mail stress any reject 550 5.7.1"));
	ck_assert_ptr_nonnull(strstr(buf, "syslog_name = milter-stress\n"));
	ck_assert(strstr(buf, "syslog_name") < rules);
	free(buf);
	conf_unref(c);
	c = load_ok("syslog_name = x", NULL);
	buf = NULL;
	fp = open_memstream(&buf, &len);
	conf_dump(c, false, fp);
	fclose(fp);
	ck_assert_ptr_null(strstr(buf, "# rules"));
	free(buf);
	conf_unref(c);
}
END_TEST

/* Templates at run time. */

typedef struct var_set {
	const char *names[8];
	const char *values[8];
} var_set;

static const char *
var_fn(void *ctx, const char *name)
{
	const var_set *v = ctx;
	size_t i;

	for (i = 0; i < 8 && v->names[i] != NULL; i++)
		if (strcmp(v->names[i], name) == 0)
			return v->values[i];
	return NULL;
}

static const struct tmpl_case {
	const char *tmpl;
	var_set vars;
	const char *want;
} tmpl_cases[] = {
        {"$client_addr blocked", {{"client_addr"}, {"192.0.2.1"}}, "192.0.2.1 blocked"},
        {"${client_addr} from ${client_name}",
         {{"client_addr", "client_name"}, {"192.0.2.1", "mx.example"}},
         "192.0.2.1 from mx.example"},
        {"helo $helo_name",
         {{"helo_name"}, {"$client_addr ${stress?{x}}"}},
         "helo $client_addr ${stress?{x}}"},
        {"${helo_name?{said $helo_name}:{silent}}", {{"helo_name"}, {"$x"}}, "said $x"},
        {"${helo_name?{said $helo_name}:{silent}}", {{NULL}, {NULL}}, "silent"},
        {"$unknown_var.", {{NULL}, {NULL}}, "."},
        {"100%", {{NULL}, {NULL}}, "100%"},
        {"a $sender b", {{"sender"}, {"x\r\ny\nz\r"}}, "a xyz b"},
        {"$$5", {{NULL}, {NULL}}, "$5"},
        {"broken ${x", {{NULL}, {NULL}}, "broken ${x"},
        {"", {{NULL}, {NULL}}, ""},
        {"$sender", {{"sender"}, {""}}, ""},
};

START_TEST(test_template)
{
	const struct tmpl_case *t = &tmpl_cases[_i];
	strbuf out = STRBUF_INIT;

	strbuf_puts(&out, "old content");
	rules_expand_text(t->tmpl, var_fn, (void *)&t->vars, &out);
	ck_assert_ptr_nonnull(out.s);
	ck_assert_str_eq(out.s, t->want);
	strbuf_free(&out);
}
END_TEST

/* The 980-byte cut never splits a UTF-8 sequence. */
START_TEST(test_template_cut)
{
	strbuf big = STRBUF_INIT, out = STRBUF_INIT;
	var_set v = {{"sender"}, {NULL}};
	size_t i;

	for (i = 0; i < 979; i++)
		strbuf_putc(&big, 'a');
	strbuf_puts(&big, "\xc3\xa9tail"); /* é at bytes 979-980 */
	v.values[0] = big.s;
	rules_expand_text("$sender", var_fn, &v, &out);
	ck_assert_uint_eq(out.len, 979);
	strbuf_reset(&big);
	for (i = 0; i < 978; i++)
		strbuf_putc(&big, 'a');
	strbuf_puts(&big, "\xc3\xa9tail"); /* é at bytes 978-979: fits */
	v.values[0] = big.s;
	rules_expand_text("$sender", var_fn, &v, &out);
	ck_assert_uint_eq(out.len, 980);
	ck_assert_str_eq(out.s + 978, "\xc3\xa9");
	strbuf_free(&big);
	strbuf_free(&out);
}
END_TEST

static const struct milter_case {
	const char *text;
	const char *want;
} milter_cases[] = {
        {"100% sure", "100%% sure"},
        {"%s%n%%", "%%s%%n%%%%"},
        {"a\r\nb", "ab"},
        {"", ""},
};

START_TEST(test_milter_text)
{
	strbuf out = STRBUF_INIT;

	rules_reply_text_for_milter(milter_cases[_i].text, &out);
	ck_assert_ptr_nonnull(out.s);
	ck_assert_str_eq(out.s, milter_cases[_i].want);
	strbuf_free(&out);
}
END_TEST

START_TEST(test_milter_text_cut)
{
	strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	size_t i;

	/* 489 'a' then '%': doubled, the pair would end at byte 981: dropped whole. */
	for (i = 0; i < 979; i++)
		strbuf_putc(&in, 'a');
	strbuf_puts(&in, "%b");
	rules_reply_text_for_milter(in.s, &out);
	ck_assert_uint_eq(out.len, 979);
	ck_assert_int_eq(out.s[978], 'a');
	strbuf_reset(&in);
	for (i = 0; i < 978; i++)
		strbuf_putc(&in, 'a');
	strbuf_puts(&in, "%b");
	rules_reply_text_for_milter(in.s, &out);
	ck_assert_uint_eq(out.len, 980);
	ck_assert_str_eq(out.s + 978, "%%");
	strbuf_reset(&in);
	for (i = 0; i < 600; i++)
		strbuf_putc(&in, '%');
	rules_reply_text_for_milter(in.s, &out);
	ck_assert_uint_eq(out.len, 980);
	strbuf_reset(&in);
	for (i = 0; i < 979; i++)
		strbuf_putc(&in, 'a');
	strbuf_puts(&in, "\xe2\x82\xac"); /* a 3-byte sequence across the limit */
	rules_reply_text_for_milter(in.s, &out);
	ck_assert_uint_eq(out.len, 979);
	strbuf_free(&in);
	strbuf_free(&out);
}
END_TEST

/* The parameters a template may name, per personality. */
START_TEST(test_rule_text)
{
	conf *c = load_ok("syslog_name = ${stress?{hot}:{cold}}\n"
	                  "connect name=r1 any reject 554 5.7.1 \"$client_addr $syslog_name\"\n",
	                  NULL);

	ck_assert_str_eq(conf_param_text(c, true, "syslog_name"), "hot");
	ck_assert_str_eq(conf_param_text(c, false, "syslog_name"), "cold");
	ck_assert_str_eq(conf_param_text(c, false, "milter_timeout"), "600s");
	ck_assert_ptr_null(conf_param_text(c, false, "client_addr"));
	ck_assert_ptr_null(conf_param_text(c, false, "stress"));
	conf_unref(c);
}
END_TEST

/* include and file: lists. */

START_TEST(test_include)
{
	conf *c;
	strbuf err = STRBUF_INIT;
	fact_spec s = {.addr = "198.51.100.7"};
	facts_buf fb;
	const rule *r;
	char *out;

	ck_assert_int_eq(mkdir_p("inc"), 0);
	write_file("inc/rules.inc", "# included\n"
	                            "syslog_name = from-include\n"
	                            "connect name=inc client file:blocked.list reject\n"
	                            "include more.inc\n");
	write_file("inc/blocked.list", "# one per line\n"
	                               "192.0.2.0/24\n"
	                               "\n"
	                               "  198.51.100.7  \n");
	write_file("inc/more.inc", "mail name=more sender <> reject\n");
	c = load_ok("include inc/rules.inc\n"
	            "connect name=main any accept\n",
	            NULL);
	ck_assert_str_eq(conf_personality(c, false)->syslog_name, "from-include");
	make_facts(&fb, &s);
	r = rules_eval(conf_rules(c, false), STAGE_CONNECT, &fb.f, NULL, NULL, NULL, NULL);
	ck_assert_str_eq(rule_name(r), "inc");
	fb.f.client_addr = "203.0.113.1";
	r = rules_eval(conf_rules(c, false), STAGE_CONNECT, &fb.f, NULL, NULL, NULL, NULL);
	ck_assert_str_eq(rule_name(r), "main");
	free_facts(&fb);
	out = dump_rules(conf_rules(c, false));
	ck_assert_msg(
	        strstr(out,
	               "/inc/rules.inc:3: connect both name=inc client file:blocked.list "
	               "reject 550 5.7.1") != NULL,
	        "%s", out);
	ck_assert_msg(strstr(out, "/inc/more.inc:1: mail both name=more") != NULL, "%s",
	              out);
	free(out);
	conf_unref(c);

	/* Errors name the included file and its line. */
	write_file("inc/more.inc", "\nmail sender nonsense reject\nbogus = 1\n");
	write_file("inc/blocked.list", "192.0.2.0/24\n192.0.2.1/24\n");
	ck_assert_ptr_null(load("include inc/rules.inc", NULL, &err));
	ck_assert_msg(
	        strstr(err.s,
	               "/inc/blocked.list:2: client: '192.0.2.1/24' has bits set") !=
	                NULL,
	        "%s", err.s);
	ck_assert_msg(strstr(err.s, "/inc/more.inc:2:13: sender: bad value 'nonsense'") !=
	                      NULL,
	              "%s", err.s);
	ck_assert_msg(strstr(err.s, "/inc/more.inc:3: unknown parameter 'bogus'") != NULL,
	              "%s", err.s);
	strbuf_reset(&err);

	/* Loops, direct or not, and depth. */
	write_file("inc/more.inc", "include rules.inc\n");
	ck_assert_ptr_null(load("include inc/rules.inc", NULL, &err));
	ck_assert_msg(strstr(err.s, "/inc/more.inc:1: include ") != NULL &&
	                      strstr(err.s,
	                             "/inc/rules.inc: a loop: that file is being read") !=
	                              NULL,
	              "%s", err.s);
	strbuf_reset(&err);
	write_file("inc/more.inc", "include more.inc\n");
	ck_assert_ptr_null(load("include inc/more.inc", NULL, &err));
	ck_assert_msg(strstr(err.s, "a loop") != NULL, "%s", err.s);
	strbuf_reset(&err);
	write_file("inc/more.inc", "include \"../inc/./more.inc\"\n");
	ck_assert_ptr_null(load("include inc/more.inc", NULL, &err));
	ck_assert_msg(strstr(err.s, "a loop") != NULL, "%s", err.s);
	strbuf_reset(&err);
	write_file("rules.conf", "include rules.conf\n");
	ck_assert_ptr_null(load("include rules.conf", NULL, &err));
	ck_assert_msg(strstr(err.s, "rules.conf:1: include ") != NULL &&
	                      strstr(err.s, "a loop"),
	              "%s", err.s);
	remove_file("rules.conf");
	strbuf_reset(&err);
	{
		/* d0 includes d1 ... d9: the ninth level is refused. */
		char name[32], text[64];
		int i;

		for (i = 0; i < 10; i++) {
			snprintf(name, sizeof name, "inc/d%d", i);
			snprintf(text, sizeof text, "include d%d\n", i + 1);
			write_file(name, text);
		}
		ck_assert_ptr_null(load("include inc/d0", NULL, &err));
		ck_assert_msg(
		        strstr(err.s,
		               "/inc/d7:1: include: files nested deeper than 8 levels") !=
		                NULL,
		        "%s", err.s);
		ck_assert_ptr_null(strstr(err.s, "/inc/d8:"));
		for (i = 0; i < 10; i++) {
			snprintf(name, sizeof name, "inc/d%d", i);
			remove_file(name);
		}
	}
	strbuf_free(&err);
	remove_file("inc/rules.inc");
	remove_file("inc/more.inc");
	remove_file("inc/blocked.list");
	remove_file("inc");
}
END_TEST

/* conf_load() reads the file itself and refuses a NUL byte too. */
START_TEST(test_conf_load_file)
{
	strbuf path = STRBUF_INIT, err = STRBUF_INIT;
	conf *c;

	write_file("main.conf", "connect name=x client 192.0.2.1 reject\n");
	strbuf_printf(&path, "%s/main.conf", unit_tmpdir());
	c = conf_load(path.s, NULL, 0, &err);
	ck_assert_msg(c != NULL, "%s", strbuf_str(&err));
	ck_assert_uint_eq(rules_count(conf_rules(c, false)), 1);
	conf_unref(c);
	{
		FILE *fp = fopen(path.s, "w");

		ck_assert_ptr_nonnull(fp);
		fwrite("a = b\n\nc\0d\n", 1, 11, fp);
		fclose(fp);
	}
	ck_assert_ptr_null(conf_load(path.s, NULL, 0, &err));
	ck_assert_msg(strstr(err.s, "main.conf:3: a NUL byte") != NULL, "%s", err.s);
	strbuf_reset(&err);
	ck_assert_ptr_null(conf_load(unit_tmpdir(), NULL, 0, &err));
	ck_assert_msg(strstr(err.s, ": read error: Is a directory\n") != NULL, "%s", err.s);
	strbuf_reset(&err);
	{
		FILE *fp = fopen(path.s, "w");

		ck_assert_ptr_nonnull(fp);
		fwrite("192.0.2.1\n\0\n", 1, 12, fp);
		fclose(fp);
	}
	ck_assert_ptr_null(load("connect client file:main.conf reject", NULL, &err));
	ck_assert_msg(strstr(err.s, ":1:16: file:main.conf: the file has a NUL byte") != NULL,
	              "%s", err.s);
	remove_file("main.conf");
	strbuf_free(&path);
	strbuf_free(&err);
}
END_TEST

/* Any number of threads evaluate one table at once. */

static void *
eval_worker(void *arg)
{
	const rules_table *tab = arg;
	fact_spec s = {.addr = "2001:db8::5",
	               .helo = "[192.0.2.1]",
	               .headers = "Subject: lottery"};
	facts_buf fb;
	int i, hits = 0;

	make_facts(&fb, &s);
	for (i = 0; i < 2000; i++) {
		hits += rules_eval(tab, STAGE_CONNECT, &fb.f, NULL, NULL, NULL, NULL) != NULL;
		hits += rules_eval(tab, STAGE_HEADER, &fb.f, NULL, NULL, NULL, NULL) != NULL;
	}
	free_facts(&fb);
	return (void *)(intptr_t)hits;
}

START_TEST(test_threads)
{
	conf *c = load_ok("connect client 2001:db8::/32 reject\n"
	                  "header header Subject /lot+ery/i reject\n",
	                  NULL);
	pthread_t th[4];
	void *hits;
	int i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, eval_worker,
		                                (void *)conf_rules(c, false)),
		                 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i], &hits), 0);
		ck_assert_int_eq((intptr_t)hits, 4000);
	}
	conf_unref(c);
}
END_TEST

/* The address module on its own. */

static const struct cidr_case {
	const char *block, *ip;
	bool ok, want;
} cidr_cases[] = {
        {"0.0.0.0/0", "255.255.255.255", true, true},
        {"192.0.2.128/25", "192.0.2.127", true, false},
        {"192.0.2.128/25", "192.0.2.128", true, true},
        {"192.0.2.1/32", "192.0.2.1", true, true},
        {"::/0", "::", true, true},
        {"2001:db8::/127", "2001:db8::1", true, true},
        {"2001:db8::/128", "2001:db8::1", true, false},
        {"[2001:db8::]", "2001:db8::", true, true},
        {"2001:db8:8000::/33", "2001:db8:7fff::1", true, false},
        {"01.2.3.4", NULL, false, false},
        {"1.2.3", NULL, false, false},
        {"1.2.3.4/+1", NULL, false, false},
        {"1.2.3.4/1234", NULL, false, false},
        {"", NULL, false, false},
        {"[]", NULL, false, false},
};

START_TEST(test_cidr)
{
	const struct cidr_case *t = &cidr_cases[_i];
	strbuf why = STRBUF_INIT;
	addr_cidr block;
	addr_ip ip;

	ck_assert_int_eq(addr_cidr_parse(t->block, &block, &why), t->ok);
	ck_assert_int_eq(why.len == 0, t->ok);
	if (t->ip != NULL) {
		ck_assert(addr_ip_parse(t->ip, &ip));
		ck_assert_int_eq(addr_cidr_match(&block, &ip), t->want);
	}
	strbuf_free(&why);
}
END_TEST

START_TEST(test_names)
{
	enum stage st;

	ck_assert_str_eq(stage_name(STAGE_EOH), "eoh");
	ck_assert_str_eq(stage_name(STAGE_N), "?");
	ck_assert_str_eq(rules_action_name(RULES_QUARANTINE), "quarantine");
	ck_assert_str_eq(rules_action_name((enum rules_action_kind)99), "?");
	ck_assert(stage_parse("rcpt", 4, &st) && st == STAGE_RCPT);
	ck_assert(stage_parse("rcpt_limit", 4, &st) && st == STAGE_RCPT);
	ck_assert(!stage_parse("rcpt_limit", 10, &st));
	ck_assert(!stage_parse("", 0, &st));
}
END_TEST

/* A subject long enough to exhaust the JIT's stack: the interpreter takes over. */
START_TEST(test_long_subject)
{
	conf *c = load_ok("eoh header X-Long /^(a|b)*c$/ accept\n"
	                  "eoh header X-Long /^(a|b)*d$/ reject\n",
	                  NULL);
	strbuf value = STRBUF_INIT;
	rules_header h = {"X-Long", NULL};
	rules_facts f = {0};
	const rule *r;
	int i;

	for (i = 0; i < 20000; i++)
		strbuf_puts(&value, "ab");
	strbuf_putc(&value, 'c');
	h.value = value.s;
	f.headers = &h;
	f.n_headers = 1;
	r = rules_eval(conf_rules(c, false), STAGE_EOH, &f, NULL, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(rule_action(r)->kind, RULES_ACCEPT);
	value.s[value.len - 1] = 'x';
	ck_assert_ptr_null(rules_eval(conf_rules(c, false), STAGE_EOH, &f, NULL, NULL, NULL, NULL));
	strbuf_free(&value);
	conf_unref(c);
}
END_TEST

/* Catastrophic backtracking stops at the match limit: no match, no hang. */
START_TEST(test_backtracking)
{
	conf *c = load_ok("header header Subject /^(a+)+$/ reject", NULL);
	rules_header h = {"Subject", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"};
	rules_facts f = {0};

	f.header = &h;
	ck_assert_ptr_null(rules_eval(conf_rules(c, false), STAGE_HEADER, &f, NULL, NULL, NULL, NULL));
	conf_unref(c);
}
END_TEST

/* Expensive checks: DNS through a fake provider, body over a scanner. */

/* Deadlines are the contract: allow this much for a slow, shared machine. */
#define MARGIN_MS 300

/*
 * The zones the tests look things up in, as a DNS server would answer:
 * zen.test and dbl.test list these names and no others; slow.test never
 * answers; bl.invalid is refused (a server that does not serve it).
 */
static const fake_dns_answer dns_table[] = {
        {DNSBL_IP, "127.0.0.2", "zen.test", FAKE_LISTED, "127.0.0.2", "listed here", 0},
        {DNSBL_IP, "127.0.0.3", "zen.test", FAKE_LISTED, "127.0.0.99", NULL, 0},
        {DNSBL_IP, "2001:db8::1", "zen.test", FAKE_LISTED, "127.0.0.4", NULL, 0},
        {DNSBL_NAME, "spam.example", "dbl.test", FAKE_LISTED, "127.0.1.2", "bad domain",
         0},
        {DNSBL_IP, NULL, "slow.test", FAKE_TIMEOUT, NULL, NULL, 0},
        {DNSBL_NAME, NULL, "slow.test", FAKE_TIMEOUT, NULL, NULL, 0},
        {DNSBL_IP, NULL, "bl.invalid", FAKE_ERROR, NULL, NULL, 0},
        /* Two slow zones, for a stage that waits for both at once. */
        {DNSBL_IP, NULL, "late1.test", FAKE_NOT_LISTED, NULL, NULL, 300},
        {DNSBL_IP, NULL, "late2.test", FAKE_LISTED, "127.0.0.2", NULL, 300},
};

static fake_dns *
dns_fake(void)
{
	return fake_dns_create(dns_table, N(dns_table));
}

/* What the session's var() does: the facts and the $rbl_* of info. */
typedef struct verdict_vars {
	const rules_facts *f;
	const rules_eval_info *info;
} verdict_vars;

static const char *
verdict_var(void *ctx, const char *name)
{
	const verdict_vars *v = ctx;

	if (strcmp(name, "client_addr") == 0)
		return v->f->client_addr;
	if (strcmp(name, "rbl_domain") == 0)
		return strbuf_str(&v->info->rbl_domain);
	if (strcmp(name, "rbl_what") == 0)
		return strbuf_str(&v->info->rbl_what);
	if (strcmp(name, "rbl_reason") == 0)
		return strbuf_str(&v->info->rbl_reason);
	if (strcmp(name, "rbl_class") == 0)
		return strbuf_str(&v->info->rbl_class);
	return NULL;
}

static const struct dns_case {
	const char *text;
	fact_spec facts;
	const char *want; /* the verdict's text expanded; NULL: no verdict */
	unsigned queries; /* lookups asked of the provider */
	unsigned skipped, failed;
} dns_cases[] = {
        /* a listed client, the verdict's text with the TXT record */
        {"connect dnsbl zen.test reject 554 5.7.1 \"$client_addr listed by $rbl_domain "
         "($rbl_class $rbl_what): $rbl_reason\"",
         {.addr = "127.0.0.2"},
         "127.0.0.2 listed by zen.test (Client host 127.0.0.2): listed here",
         1,
         0,
         0},
        {"connect dnsbl ZEN.test reject \"$rbl_domain\"",
         {.addr = "127.0.0.2"},
         "zen.test",
         1,
         0,
         0},
        /* not listed; not an address: nothing asked */
        {"connect dnsbl zen.test reject", {.addr = "127.0.0.5"}, NULL, 1, 0, 0},
        {"connect dnsbl zen.test reject", {.addr = "unknown"}, NULL, 0, 0, 0},
        {"connect !dnsbl zen.test reject \"[$rbl_domain]\"",
         {.addr = "127.0.0.5"},
         "[]",
         1,
         0,
         0},
        /* the filter: 127.0.0.99 is no listing for [2..11] */
        {"connect dnsbl zen.test=127.0.0.[2..11] reject",
         {.addr = "127.0.0.3"},
         NULL,
         1,
         0,
         0},
        {"connect dnsbl zen.test=127.0.0.[2..11] zen.test=127.0.0.99 reject "
         "\"$rbl_what\"",
         {.addr = "127.0.0.3"},
         "127.0.0.3",
         1,
         0,
         0},
        {"connect !dnsbl zen.test=127.0.0.[2..11] reject \"clean\"",
         {.addr = "127.0.0.3"},
         "clean",
         1,
         0,
         0},
        /* IPv6, mapped IPv4 */
        {"connect dnsbl zen.test reject \"$rbl_what\"",
         {.addr = "2001:db8::1"},
         "2001:db8::1",
         1,
         0,
         0},
        {"connect dnsbl zen.test reject \"$rbl_what\"",
         {.addr = "::ffff:127.0.0.2"},
         "::ffff:127.0.0.2",
         1,
         0,
         0},
        /* RHSBL: sender, helo, client name */
        {"mail rhsbl_sender dbl.test reject \"$rbl_class $rbl_what: $rbl_reason\"",
         {.sender = "<Someone@Spam.Example>"},
         "Sender address Spam.Example: bad domain",
         1,
         0,
         0},
        {"mail rhsbl_sender dbl.test reject", {.sender = "<>"}, NULL, 0, 0, 0},
        {"mail rhsbl_sender dbl.test reject",
         {.sender = "<a@ham.example>"},
         NULL,
         1,
         0,
         0},
        {"helo rhsbl_helo dbl.test reject \"$rbl_class\"",
         {.helo = "spam.example."},
         "Helo command",
         1,
         0,
         0},
        {"helo rhsbl_helo dbl.test reject", {.helo = "[127.0.0.2]"}, NULL, 0, 0, 0},
        {"helo rhsbl_helo dbl.test reject", {.helo = "127.0.0.2"}, NULL, 0, 0, 0},
        {"connect rhsbl_client dbl.test reject \"$rbl_class\"",
         {.name = "spam.example"},
         "Client host",
         1,
         0,
         0},
        {"connect rhsbl_client dbl.test reject", {.name = "unknown"}, NULL, 0, 0, 0},
        {"connect rhsbl_client dbl.test reject", {.name = "[127.0.0.2]"}, NULL, 0, 0, 0},
        /* one lookup for the same name in the same zone, whatever the filters */
        {"connect client 10.0.0.0/8 and dnsbl zen.test reject\n"
         "connect dnsbl zen.test=127.0.0.4 tag X-A b\n"
         "connect dnsbl zen.test=127.0.0.2 reject \"$rbl_domain\"",
         {.addr = "127.0.0.2"},
         "zen.test",
         1,
         0,
         0},
        /* an answer the rule needs and did not get: no verdict, even with ! */
        {"connect dnsbl bl.invalid reject",
         {.addr = "127.0.0.2"},
         NULL,
         1,
         0,
         RULES_COST_DNSBL},
        {"connect !dnsbl bl.invalid reject",
         {.addr = "127.0.0.2"},
         NULL,
         1,
         0,
         RULES_COST_DNSBL},
        /* under stress: a "both" rule's lookups are skipped, a "stress" one's run */
        {"connect dnsbl zen.test reject\nconnect !dnsbl zen.test reject",
         {.stressed = true, .addr = "127.0.0.2"},
         NULL,
         0,
         RULES_COST_DNSBL,
         0},
        {"connect name=b dnsbl zen.test reject\n"
         "connect stress name=s dnsbl zen.test tempfail 421 4.7.1 \"$rbl_domain\"",
         {.stressed = true, .addr = "127.0.0.2"},
         "zen.test",
         1,
         RULES_COST_DNSBL,
         0},
        {"connect normal dnsbl zen.test reject \"normal\"",
         {.addr = "127.0.0.2"},
         "normal",
         1,
         0,
         0},
};

START_TEST(test_dns)
{
	const struct dns_case *t = &dns_cases[_i];
	conf *c = load_ok(t->text, NULL);
	fake_dns *dns = dns_fake();
	rules_expensive x = {fake_dns_provider(dns),
	                     budget_deadline(budget_now_ms(), 5000), NULL, NULL};
	rules_eval_info info;
	strbuf text = STRBUF_INIT;
	facts_buf fb;
	const rule *r;

	rules_eval_info_init(&info);
	make_facts(&fb, &t->facts);
	r = rules_eval(conf_rules(c, t->facts.stressed), stage_of(t->text), &fb.f, &x,
	                  &info, NULL, NULL);
	if (t->want == NULL) {
		ck_assert_msg(r == NULL, "'%s': verdict %s", t->text,
		              r != NULL ? rule_name(r) : "");
	} else {
		verdict_vars vv = {&fb.f, &info};

		ck_assert_msg(r != NULL, "'%s': no verdict", t->text);
		rules_expand_text(rule_action(r)->text, verdict_var, &vv, &text);
		ck_assert_str_eq(strbuf_str(&text), t->want);
	}
	ck_assert_uint_eq(info.queries, t->queries);
	ck_assert_uint_eq(fake_dns_asked(dns), t->queries);
	ck_assert_uint_eq(fake_dns_open_calls(dns), 0);
	ck_assert_uint_eq(info.skipped, t->skipped);
	ck_assert_uint_eq(info.failed, t->failed);
	/* A failed lookup is logged with its zone and the server's answer. */
	ck_assert_str_eq(strbuf_str(&info.failed_what),
	                 t->failed ? "bl.invalid (fake: refused)" : "");
	ck_assert_uint_eq(info.timed_out, 0);
	strbuf_free(&text);
	free_facts(&fb);
	rules_eval_info_free(&info);
	fake_dns_free(dns);
	conf_unref(c);
}
END_TEST

/*
 * The connect stage of c for a client at addr, DNS through dns within
 * budget ms: the verdict, info filled in, *took how long it took.
 */
static const rule *
dns_connect(conf *c, fake_dns *dns, const char *addr, long long budget,
            rules_eval_info *info, long long *took)
{
	long long t0 = budget_now_ms();
	rules_expensive x = {fake_dns_provider(dns), budget_deadline(t0, budget), NULL, NULL};
	fact_spec spec = {.addr = addr};
	facts_buf fb;
	const rule *r;

	make_facts(&fb, &spec);
	r = rules_eval(conf_rules(c, false), STAGE_CONNECT, &fb.f, &x, info, NULL,
	               NULL);
	*took = budget_now_ms() - t0;
	free_facts(&fb);
	return r;
}

/* Counts visit() calls per rule of the table. */
typedef struct visits {
	const rules_table *t;
	unsigned n[8];
} visits;

static bool
count_visit(void *ctx, const rule *r, bool matched)
{
	visits *v = ctx;

	(void)matched;
	for (size_t i = 0; i < rules_count(v->t) && i < 8; i++)
		if (rules_rule(v->t, i) == r)
			v->n[i]++;
	return false;
}

/*
 * A run that must not block pauses at the first rule whose lookup is not
 * in, before visit() sees it; going on later (waiting or not) gives the
 * verdict rules_eval() gives, every rule visited once, in order. pause_at:
 * how many rules were tried before the pause (-1: no pause); sleep_ms
 * before going on.
 */
static const struct run_case {
	const char *text;
	int pause_at;
	long long sleep_ms;
	bool go_waits;
	const char *want; /* the verdict's text; NULL: none */
	unsigned visited; /* rules visited in all */
} run_cases[] = {
        /* late2 answers after 300 ms: the run pauses at rule 2 */
        {"connect client 10.0.0.1 reject \"cheap\"\n"
         "connect dnsbl late2.test reject \"late\"\n"
         "connect dnsbl zen.test reject \"zen\"",
         1, 0, true, "late", 2},
        /* the answer came in meanwhile: going on without waiting decides */
        {"connect client 10.0.0.1 reject \"cheap\"\n"
         "connect dnsbl late2.test reject \"late\"\n"
         "connect dnsbl zen.test reject \"zen\"",
         1, 400, false, "late", 2},
        /* an answer already in (zen: no delay) does not pause */
        {"connect dnsbl zen.test reject \"zen\"\n"
         "connect dnsbl late2.test reject \"late\"",
         -1, 0, false, "zen", 1},
        /* a cheap verdict before any lookup is needed: no pause */
        {"connect client 127.0.0.2 reject \"cheap\"\n"
         "connect dnsbl late2.test reject \"late\"",
         -1, 0, false, "cheap", 1},
        /* a zone that never answers: the run waits until its deadline */
        {"connect dnsbl slow.test reject \"slow\"\n"
         "connect client 127.0.0.2 reject \"cheap\"",
         0, 0, true, "cheap", 2},
};

START_TEST(test_run_pauses)
{
	const struct run_case *t = &run_cases[_i];
	conf *c = load_ok(t->text, NULL);
	const rules_table *tab = conf_rules(c, false);
	fake_dns *dns = dns_fake();
	rules_expensive x = {fake_dns_provider(dns), budget_deadline(budget_now_ms(), 1000),
	                     NULL, NULL};
	fact_spec spec = {.addr = "127.0.0.2"};
	visits v = {tab, {0}};
	rules_eval_info info;
	facts_buf fb;
	rules_run *run;
	const rule *r;
	bool paused = true;
	unsigned visited = 0;

	rules_eval_info_init(&info);
	make_facts(&fb, &spec);
	run = rules_run_start(tab, STAGE_CONNECT, &fb.f, &x, &info);
	ck_assert_ptr_nonnull(run);
	r = rules_run_go(run, &fb.f, budget_now_ms(), count_visit, &v, &paused);
	for (size_t i = 0; i < 8; i++)
		visited += v.n[i];
	if (t->pause_at < 0) {
		ck_assert_msg(!paused, "'%s': paused", t->text);
	} else {
		ck_assert_msg(paused && r == NULL, "'%s': no pause", t->text);
		ck_assert_uint_eq(visited, (unsigned)t->pause_at);
		if (t->sleep_ms > 0) {
			struct timespec ts = {0, t->sleep_ms * 1000000};

			nanosleep(&ts, NULL);
		}
		r = rules_run_go(run, &fb.f, t->go_waits ? RULES_NO_PAUSE : budget_now_ms(),
		                 count_visit, &v, &paused);
		ck_assert_msg(!paused, "'%s': paused again", t->text);
		visited = 0;
		for (size_t i = 0; i < 8; i++)
			visited += v.n[i];
	}
	ck_assert_uint_eq(visited, t->visited);
	for (size_t i = 0; i < 8; i++)
		ck_assert_uint_le(v.n[i], 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(rule_action(r)->text, t->want);
	rules_run_end(run);
	ck_assert_uint_eq(fake_dns_open_calls(dns), 0);
	free_facts(&fb);
	rules_eval_info_free(&info);
	fake_dns_free(dns);
	conf_unref(c);
}
END_TEST

/* A zone whose server never answers: back by the deadline, no verdict. */
START_TEST(test_dns_timeout)
{
	conf *c = load_ok("connect dnsbl slow.test reject\n"
	                  "connect !dnsbl slow.test reject\n"
	                  "connect dnsbl zen.test reject \"$rbl_domain\"",
	                  NULL);
	fake_dns *dns = dns_fake();
	long long took;
	rules_eval_info info;
	const rule *r;

	rules_eval_info_init(&info);
	r = dns_connect(c, dns, "127.0.0.2", 300, &info, &took);
	ck_assert_msg(took >= 290 && took <= 300 + MARGIN_MS, "took %lld ms", took);
	/* The listed zone answered in parallel: its rule still decides. */
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(strbuf_str(&info.rbl_domain), "zen.test");
	ck_assert_uint_eq(info.timed_out, RULES_COST_DNSBL);
	ck_assert_msg(strncmp(strbuf_str(&info.timeout_what), "slow.test after ", 16) ==
	                      0,
	              "timeout_what '%s'", strbuf_str(&info.timeout_what));
	ck_assert_int_ge(info.dns_ms, 290);
	ck_assert_uint_eq(info.queries, 2);
	ck_assert_uint_eq(fake_dns_open_calls(dns), 0);
	rules_eval_info_free(&info);
	fake_dns_free(dns);
	conf_unref(c);
}
END_TEST

/*
 * Short-circuit: all lookups start at once, the rules wait in file order
 * for what each needs. A listed zone before the dead one decides at once;
 * the dead one before it is waited for until the deadline, and a listing
 * its filter excludes decides nothing.
 */
static const struct sc_case {
	const char *text;
	const char *want; /* the verdict's text */
	bool waits;       /* for slow.test, until the deadline */
	unsigned queries;
	unsigned txt; /* of them, asking the list's reason: a reply says $rbl_reason */
} sc_cases[] = {
        {"connect dnsbl zen.test reject \"$rbl_domain $rbl_reason\"\n"
         "connect dnsbl slow.test reject \"slow\"",
         "zen.test listed here", false, 2, 2},
        {"connect dnsbl slow.test reject \"slow\"\n"
         "connect dnsbl zen.test reject \"$rbl_domain $rbl_reason\"",
         "zen.test listed here", true, 2, 2},
        {"connect dnsbl zen.test=127.0.0.[3..9] reject \"filtered\"\n"
         "connect dnsbl zen.test=127.0.0.2 reject \"$rbl_domain\"\n"
         "connect dnsbl slow.test reject \"slow\"",
         "zen.test", false, 2, 0},
        {"connect dnsbl zen.test=127.0.0.[3..9] reject \"filtered\"\n"
         "connect dnsbl slow.test reject \"slow\"\n"
         "connect dnsbl zen.test reject \"$rbl_domain\"",
         "zen.test", true, 2, 0},
        /* tag is no verdict: the stage goes on, and waits */
        {"connect dnsbl zen.test tag X-Listed yes\n"
         "connect !dnsbl slow.test reject \"slow\"\n"
         "connect any reject \"last\"",
         "last", true, 2, 0},
};

START_TEST(test_dns_short_circuit)
{
	const struct sc_case *t = &sc_cases[_i];
	const long long budget = 1500;
	conf *c = load_ok(t->text, NULL);
	fake_dns *dns = dns_fake();
	long long t0 = budget_now_ms(), took;
	rules_expensive x = {fake_dns_provider(dns), budget_deadline(t0, budget), NULL, NULL};
	fact_spec spec = {.addr = "127.0.0.2"};
	verdict_vars vv;
	rules_eval_info info;
	strbuf text = STRBUF_INIT;
	facts_buf fb;
	const rule *r;

	rules_eval_info_init(&info);
	make_facts(&fb, &spec);
	r = rules_eval(conf_rules(c, false), STAGE_CONNECT, &fb.f, &x, &info, NULL,
	                  NULL);
	took = budget_now_ms() - t0;
	ck_assert_msg(r != NULL, "'%s': no verdict", t->text);
	vv = (verdict_vars){&fb.f, &info};
	rules_expand_text(rule_action(r)->text, verdict_var, &vv, &text);
	ck_assert_str_eq(strbuf_str(&text), t->want);
	ck_assert_uint_eq(info.queries, t->queries);
	/* Every lookup was sent at the start, needed in the end or not. */
	ck_assert_uint_eq(fake_dns_asked(dns), t->queries);
	ck_assert_uint_eq(fake_dns_asked_txt(dns), t->txt);
	ck_assert_uint_eq(fake_dns_open_calls(dns), 0);
	if (t->waits) {
		ck_assert_msg(took >= budget - 10 && took <= budget + MARGIN_MS,
		              "'%s': took %lld ms", t->text, took);
		ck_assert_uint_eq(info.timed_out, RULES_COST_DNSBL);
		ck_assert_msg(strncmp(strbuf_str(&info.timeout_what), "slow.test after ",
		                      16) == 0,
		              "timeout_what '%s'", strbuf_str(&info.timeout_what));
	} else {
		/* The contract: far less than the budget. */
		ck_assert_msg(took < 1000, "'%s': took %lld ms", t->text, took);
		ck_assert_uint_eq(info.timed_out, 0);
		ck_assert_str_eq(strbuf_str(&info.timeout_what), "");
	}
	ck_assert_uint_eq(info.skipped, 0);
	ck_assert_uint_eq(info.failed, 0);
	strbuf_free(&text);
	free_facts(&fb);
	rules_eval_info_free(&info);
	fake_dns_free(dns);
	conf_unref(c);
}
END_TEST

/*
 * The lookups of a stage run at once: two zones that each answer after
 * 300 ms cost the stage about 300 ms, not 600, and the listing of the
 * second is found.
 */
START_TEST(test_dns_parallel)
{
	conf *c = load_ok("connect dnsbl late1.test reject \"late1\"\n"
	                  "connect dnsbl late2.test reject \"$rbl_domain\"",
	                  NULL);
	fake_dns *dns = dns_fake();
	long long took;
	rules_eval_info info;
	const rule *r;

	rules_eval_info_init(&info);
	r = dns_connect(c, dns, "192.0.2.1", 2000, &info, &took);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(strbuf_str(&info.rbl_domain), "late2.test");
	ck_assert_msg(took >= 295 && took < 300 + MARGIN_MS, "took %lld ms", took);
	ck_assert_uint_eq(info.queries, 2);
	ck_assert_uint_eq(fake_dns_waits(dns), 2);
	ck_assert_uint_eq(fake_dns_open_calls(dns), 0);
	rules_eval_info_free(&info);
	fake_dns_free(dns);
	conf_unref(c);
}
END_TEST

/* Without a DNS context, and through rules_eval(): skipped, never a verdict. */
START_TEST(test_dns_no_ctx)
{
	conf *c = load_ok("connect dnsbl zen.test reject\nconnect !dnsbl zen.test reject",
	                  NULL);
	rules_expensive x = {NULL, budget_deadline(budget_now_ms(), 1000), NULL, NULL};
	fact_spec spec = {.addr = "127.0.0.2"};
	rules_eval_info info;
	facts_buf fb;

	rules_eval_info_init(&info);
	make_facts(&fb, &spec);
	ck_assert_ptr_null(
	        rules_eval(conf_rules(c, false), STAGE_CONNECT, &fb.f, NULL, NULL, NULL, NULL));
	ck_assert_ptr_null(rules_eval(conf_rules(c, false), STAGE_CONNECT, &fb.f, &x,
	                                 &info, NULL, NULL));
	ck_assert_uint_eq(info.skipped, RULES_COST_DNSBL);
	ck_assert_uint_eq(info.queries, 0);
	ck_assert_ptr_null(rules_eval(conf_rules(c, false), STAGE_CONNECT, &fb.f, NULL,
	                                 &info, NULL, NULL));
	ck_assert_uint_eq(info.skipped, RULES_COST_DNSBL);
	/* info is reset for each stage: nothing left from the one before. */
	strbuf_puts(&info.rbl_domain, "stale");
	ck_assert_ptr_null(rules_eval(conf_rules(c, false), STAGE_HELO, &fb.f, NULL,
	                                 &info, NULL, NULL));
	ck_assert_uint_eq(info.skipped, 0);
	ck_assert_str_eq(strbuf_str(&info.rbl_domain), "");
	free_facts(&fb);
	rules_eval_info_free(&info);
	conf_unref(c);
}
END_TEST

static const char body_rules[] = "body body /viagra/i reject \"body\"\n"
                                 "eom body /lottery/ /prize/ reject \"both\"\n"
                                 "eom stress body /prize/ tempfail \"stress\"\n"
                                 "eom !body /viagra/i tag X-Clean yes\n";

static const rule *
eval_body(conf *c, bool stressed, enum stage stage, const char *body, bool scanner,
          rules_eval_info *info)
{
	const rules_table *t = conf_rules(c, stressed);
	fact_spec spec = {.stressed = stressed};
	bodyscan *bs = bodyscan_start(rules_body_set(t), 0, 4096, 64);
	rules_expensive x = {NULL, budget_deadline(budget_now_ms(), 1000),
	                     scanner ? bs : NULL, NULL};
	const rule *r;
	facts_buf fb;

	/* In two chunks, the cut inside a line. */
	bodyscan_feed(bs, body, strlen(body) / 2);
	bodyscan_feed(bs, body + strlen(body) / 2, strlen(body) - strlen(body) / 2);
	make_facts(&fb, &spec);
	r = rules_eval(t, stage, &fb.f, &x, info, NULL, NULL);
	free_facts(&fb);
	bodyscan_free(bs);
	return r;
}

START_TEST(test_body)
{
	conf *c = load_ok(body_rules, NULL);
	const char *won = "Dear friend,\r\nyou won a prize!\r\n";
	rules_eval_info info;
	const rule *r;

	rules_eval_info_init(&info);
	/* One set per table, each regex once. */
	ck_assert_ptr_nonnull(rules_body_set(conf_rules(c, false)));
	ck_assert_uint_eq(bodyscan_set_size(rules_body_set(conf_rules(c, false))), 3);
	ck_assert_uint_eq(bodyscan_set_size(rules_body_set(conf_rules(c, true))), 3);

	ck_assert_ptr_null(eval_body(c, false, STAGE_BODY, won, true, &info));
	ck_assert_uint_eq(info.skipped, 0);
	r = eval_body(c, false, STAGE_BODY, "buy VIAGRA\n", true, &info);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(rule_action(r)->text, "body");
	r = eval_body(c, false, STAGE_EOM, won, true, &info);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(rule_action(r)->text, "both");
	ck_assert_ptr_null(eval_body(c, false, STAGE_EOM, "hello\n", true, &info));

	/* Under stress the "both" rule is skipped, the "stress" rule runs. */
	r = eval_body(c, true, STAGE_EOM, won, true, &info);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(rule_action(r)->text, "stress");
	ck_assert_uint_eq(info.skipped, RULES_COST_BODY);
	ck_assert_ptr_null(eval_body(c, true, STAGE_BODY, "viagra\n", true, &info));
	ck_assert_uint_eq(info.skipped, RULES_COST_BODY);

	/* No scanner: skipped, never a verdict from !body. */
	ck_assert_ptr_null(eval_body(c, false, STAGE_EOM, won, false, &info));
	ck_assert_uint_eq(info.skipped, RULES_COST_BODY);
	rules_eval_info_free(&info);
	conf_unref(c);
}
END_TEST

/* Does a stage run an expensive check, for a session stressed or not? */
START_TEST(test_stage_expensive)
{
	conf *c = load_ok("connect dnsbl zen.test reject\n"
	                  "helo stress rhsbl_helo dbl.test reject\n"
	                  "mail sender <> reject\n",
	                  NULL);
	const rules_table *n = conf_rules(c, false), *s = conf_rules(c, true);

	ck_assert(rules_stage_expensive(n, STAGE_CONNECT, false));
	ck_assert(!rules_stage_expensive(s, STAGE_CONNECT, true));
	ck_assert(!rules_stage_expensive(n, STAGE_HELO, false));
	ck_assert(rules_stage_expensive(s, STAGE_HELO, true));
	ck_assert(!rules_stage_expensive(n, STAGE_MAIL, false));
	ck_assert(!rules_stage_expensive(NULL, STAGE_MAIL, false));
	ck_assert(rules_stage_used(n, STAGE_CONNECT));
	ck_assert_ptr_null(rules_body_set(n));
	conf_unref(c);
}
END_TEST

Suite *rules_suite(void);

Suite *
rules_suite(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("core");
	TCase *dns = tcase_create("dns");

	tcase_add_loop_test(tc, test_match, 0, N(match_cases));
	tcase_add_loop_test(tc, test_errors, 0, N(err_cases));
	tcase_add_test(tc, test_error_order);
	tcase_add_test(tc, test_param_error_once);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_long_subject);
	tcase_add_test(tc, test_backtracking);
	tcase_add_test(tc, test_text_limit);
	tcase_add_loop_test(tc, test_order, 0, N(order_cases));
	tcase_add_loop_test(tc, test_action, 0, N(action_cases));
	tcase_add_loop_test(tc, test_mode, 0, N(mode_cases));
	tcase_add_test(tc, test_mode_errors);
	tcase_add_loop_test(tc, test_stage_questions, 0, N(stage_cases));
	tcase_add_test(tc, test_empty_table);
	tcase_add_loop_test(tc, test_dump, 0, N(dump_cases));
	tcase_add_test(tc, test_check_table_round_trip);
	tcase_add_test(tc, test_conf_dump);
	tcase_add_loop_test(tc, test_template, 0, N(tmpl_cases));
	tcase_add_test(tc, test_template_cut);
	tcase_add_loop_test(tc, test_milter_text, 0, N(milter_cases));
	tcase_add_test(tc, test_milter_text_cut);
	tcase_add_test(tc, test_rule_text);
	tcase_add_test(tc, test_include);
	tcase_add_test(tc, test_conf_load_file);
	tcase_add_test(tc, test_threads);
	tcase_add_loop_test(tc, test_cidr, 0, N(cidr_cases));
	tcase_add_test(tc, test_dns_no_ctx);
	tcase_add_test(tc, test_body);
	tcase_add_test(tc, test_stage_expensive);
	suite_add_tcase(s, tc);

	/* DNS through the fake provider: no server, only the clock. */
	tcase_set_timeout(dns, 60);
	tcase_add_loop_test(dns, test_dns, 0, N(dns_cases));
	tcase_add_test(dns, test_dns_timeout);
	tcase_add_loop_test(dns, test_dns_short_circuit, 0, N(sc_cases));
	tcase_add_test(dns, test_dns_parallel);
	tcase_add_loop_test(dns, test_run_pauses, 0, N(run_cases));
	suite_add_tcase(s, dns);
	return s;
}

int
main(void)
{
	return unit_run_in_tmpdir(rules_suite(), "check_rules");
}
