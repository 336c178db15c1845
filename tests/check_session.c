/*
 * Unit tests for the session: personality, rule verdicts at every stage and
 * their replies, both personalities from one rule set, dry runs, tags and
 * quarantine, error_limit and rcpt_limit, the log lines, and the protocol
 * flags negotiated from the rules.
 */
#include "config.h"

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "mproto.h"
#include "runtime.h"
#include "session.h"
#include "strbuf.h"

static strbuf logged = STRBUF_INIT;

static session *
start(conf *c, unit_macros *m, const char *addr, session_reply *r)
{
	session *s = session_create(c, NULL, "mx.example", addr);

	conf_unref(c); /* the session holds its own reference */
	session_set_macros(s, unit_macro, m);
	session_reply_init(r);
	session_on_connect(s, r);
	return s;
}

static void
again(session_reply *r)
{
	session_reply_free(r);
	session_reply_init(r);
}

/* Play a transaction up to `stage' and return the reply there. */
enum { AT_CONNECT, AT_HELO, AT_MAIL, AT_RCPT, AT_DATA, AT_HEADER, AT_EOH, AT_EOM };

static void
play(session *s, int until, session_reply *r, session_changes *ch)
{
	if (until == AT_CONNECT || r->answer != SESSION_CONTINUE)
		return;
	again(r);
	session_on_helo(s, "[192.0.2.1]", r);
	if (until == AT_HELO)
		return;
	again(r);
	session_on_mail(s, "<>", r);
	if (until == AT_MAIL)
		return;
	again(r);
	session_on_rcpt(s, "<user@bad.example>", r);
	if (until == AT_RCPT)
		return;
	again(r);
	session_on_data(s, r);
	if (until == AT_DATA)
		return;
	again(r);
	session_on_header(s, "Subject", "You won the LOTTERY", r);
	if (until == AT_HEADER)
		return;
	again(r);
	session_on_header(s, "X-Spam", "yes", r);
	again(r);
	session_on_eoh(s, r);
	if (until == AT_EOH)
		return;
	again(r);
	session_on_eom(s, r, ch);
}

static const struct verdict_case {
	const char *rule;
	int stage;
	enum session_answer answer;
	const char *code, *ecode, *text;
} verdict_cases[] = {
        {"connect client 192.0.2.0/24 reject 554 5.7.1 \"blocked $client_addr\"\n",
         AT_CONNECT, SESSION_REJECT, "554", "5.7.1", "blocked 192.0.2.1"},
        {"helo helo ip_literal tempfail 421 4.7.0 \"Busy, try again later\"\n", AT_HELO,
         SESSION_TEMPFAIL, "421", "4.7.0", "Busy, try again later"},
        {"mail sender <> reject\n", AT_MAIL, SESSION_REJECT, "550", "5.7.1", NULL},
        {"rcpt recipient @bad.example reject 550 5.1.1 \"no such user $recipient\"\n",
         AT_RCPT, SESSION_REJECT, "550", "5.1.1", "no such user <user@bad.example>"},
        {"data any tempfail 451 4.3.0 \"later\"\n", AT_DATA, SESSION_TEMPFAIL, "451",
         "4.3.0", "later"},
        {"header header Subject /lottery/i reject 550 5.7.1 \"Content rejected\"\n",
         AT_HEADER, SESSION_REJECT, "550", "5.7.1", "Content rejected"},
        {"eoh header X-Spam /^yes$/ discard\n", AT_EOH, SESSION_DISCARD, "", "", NULL},
        {"eom any reject 554 5.7.1 \"at the end, rule $rule\"\n", AT_EOM, SESSION_REJECT,
         "554", "5.7.1", NULL},
        {"rcpt any continue\nrcpt any reject\n", AT_RCPT, SESSION_CONTINUE, "", "", NULL},
        {"rcpt !recipient @bad.example reject\n", AT_RCPT, SESSION_CONTINUE, "", "",
         NULL},
};

START_TEST(test_verdicts)
{
	const struct verdict_case *tc = &verdict_cases[_i];
	unit_macros m = {"no", NULL, "QTEST1"};
	session_reply r;
	session_changes ch;
	session *s = start(unit_conf_text(tc->rule, NULL, NULL), &m, "192.0.2.1", &r);

	session_changes_init(&ch);
	play(s, tc->stage, &r, &ch);
	ck_assert_int_eq(r.answer, tc->answer);
	ck_assert_str_eq(r.code, tc->code);
	ck_assert_str_eq(r.ecode, tc->ecode);
	if (tc->text != NULL)
		ck_assert_str_eq(strbuf_str(&r.text), tc->text);
	if (tc->answer != SESSION_CONTINUE)
		ck_assert_msg(strstr(strbuf_str(&logged), " rule=") != NULL,
		              "verdict without rule in the log: %s", strbuf_str(&logged));
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/* One rule set, two personalities: the seed scenario. */
static const char *const two_personalities =
        "connect normal client 192.0.2.0/24 reject 554 5.7.1 \"$client_addr listed\"\n"
        "connect stress client 192.0.2.0/24 tempfail 421 4.7.1 \"$client_addr listed, "
        "busy\"\n";

static const struct personality_case {
	const char *macro;
	const char *force;
	enum session_answer answer;
	const char *code;
} personality_cases[] = {
        {"no", NULL, SESSION_REJECT, "554"},
        {"yes", NULL, SESSION_TEMPFAIL, "421"},
        {NULL, NULL, SESSION_REJECT, "554"},
        {"no", "stress=yes", SESSION_TEMPFAIL, "421"},
        {"yes", "stress=", SESSION_REJECT, "554"},
};

START_TEST(test_personalities)
{
	const struct personality_case *tc = &personality_cases[_i];
	unit_macros m = {tc->macro, NULL, NULL};
	session_reply r;
	session *s = start(unit_conf_text(two_personalities, tc->force, NULL), &m, "192.0.2.9", &r);

	ck_assert_int_eq(r.answer, tc->answer);
	ck_assert_str_eq(r.code, tc->code);
	session_reply_free(&r);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

START_TEST(test_unlisted_client)
{
	unit_macros m = {"yes", NULL, NULL};
	session_reply r;
	session *s = start(unit_conf_text(two_personalities, NULL, NULL), &m, "198.51.100.1", &r);

	ck_assert_int_eq(r.answer, SESSION_CONTINUE);
	session_reply_free(&r);
	session_free(s);
}
END_TEST

START_TEST(test_personality_params)
{
	unit_macros m = {"yes", NULL, NULL};
	session_reply r;
	session *s = start(unit_conf_text("milter_timeout = ${stress?{10s}:{300s}}\n", NULL, NULL),
	                   &m, "192.0.2.1", &r);

	ck_assert_int_eq(session_params(s)->milter_timeout, 10000);
	session_reply_free(&r);
	session_free(s);
	m.stress = "no";
	s = start(unit_conf_text("milter_timeout = ${stress?{10s}:{300s}}\n", NULL, NULL), &m,
	          "192.0.2.1", &r);
	ck_assert_int_eq(session_params(s)->milter_timeout, 300000);
	session_reply_free(&r);
	session_free(s);
}
END_TEST

/* The stress header at end of message, by stress state and settings. */
static const struct eom_case {
	const char *o1;
	const char *macro;
	const char *header; /* NULL = none added */
} eom_cases[] = {
        {NULL, "yes", "yes (source=macro)"},
        {NULL, "no", "no"},
        {NULL, NULL, "no (source=none)"},
        {"stress=yes", "no", "yes (source=forced)"},
        {"stress_header_always=no", "no", NULL},
        {"stress_header_always=no", "yes", "yes (source=macro)"},
        {"stress_header=", "yes", NULL},
};

START_TEST(test_eom_header)
{
	const struct eom_case *tc = &eom_cases[_i];
	unit_macros m = {tc->macro, NULL, NULL};
	session_reply r;
	session_changes ch;
	session *s = start(unit_conf_text("", tc->o1, NULL), &m, "192.0.2.1", &r);

	session_changes_init(&ch);
	play(s, AT_EOM, &r, &ch);
	ck_assert_int_eq(r.answer, SESSION_ACCEPT);
	if (tc->header == NULL) {
		ck_assert_uint_eq(ch.n_add, 0);
	} else {
		ck_assert_uint_eq(ch.n_add, 1);
		ck_assert_str_eq(ch.add[0].name, "X-Stress");
		ck_assert_str_eq(ch.add[0].value, tc->header);
	}
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

START_TEST(test_log_line_and_forged)
{
	unit_macros m = {"yes", NULL, NULL};
	session_reply r;
	session_changes ch;
	session *s = start(unit_conf_text("", NULL, NULL), &m, "2001:db8::1", &r);
	const char *want = "4ABCDEF: stress=yes(macro) stage=eom action=accept "
	                   "client=mx.example[2001:db8::1] helo=<helo.example> "
	                   "from=<a@example.org> to=<b@example.net> nrcpt=2 ms=";

	session_changes_init(&ch);
	session_on_helo(s, "helo.example", &r);
	session_on_mail(s, "<a@example.org>", &r);
	m.qid = "4ABCDEF";
	session_on_rcpt(s, "b@example.net", &r);
	session_on_rcpt(s, "<c@example.net>", &r);
	session_on_header(s, "Subject", "hi", &r);
	session_on_header(s, "x-stress", "no", &r); /* forged by the client, any case */
	session_on_header(s, "X-Stress", "no", &r);
	strbuf_reset(&logged);
	session_on_eom(s, &r, &ch);
	ck_assert_uint_eq(ch.n_forged, 2);
	ck_assert_str_eq(ch.forged_name, "X-Stress");
	ck_assert_msg(strncmp(strbuf_str(&logged), want, strlen(want)) == 0, "line: %s",
	              strbuf_str(&logged));
	/* The next message starts clean; an abort before its end is logged. */
	m.qid = NULL;
	strbuf_reset(&logged);
	session_on_abort(s);
	ck_assert_str_eq(strbuf_str(&logged), "");
	session_on_mail(s, "<>", &r);
	session_on_abort(s);
	ck_assert_msg(strstr(strbuf_str(&logged),
	                     "NOQUEUE: stress=yes(macro) stage=mail action=aborted") !=
	                      NULL,
	              "line: %s", strbuf_str(&logged));
	ck_assert_msg(strstr(strbuf_str(&logged), " from=<> ") != NULL, "line: %s",
	              strbuf_str(&logged));
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

START_TEST(test_unknown_client)
{
	conf *c = unit_conf_text("", NULL, NULL);
	session *s = session_create(c, NULL, NULL, NULL);
	strbuf out = STRBUF_INIT;

	conf_unref(c);
	session_format_client(s, &out);
	ck_assert_str_eq(out.s, "unknown[unknown]");
	strbuf_free(&out);
	session_free(s);
}
END_TEST

/* A dry run logs what it would do and lets the message through. */
START_TEST(test_dry_run)
{
	unit_macros m = {"no", NULL, "QDRY"};
	session_reply r;
	session_changes ch;
	session *s =
	        start(unit_conf_text("rcpt name=dry any log reject 550 5.7.1 \"x\"\n", NULL, NULL),
	              &m, "192.0.2.1", &r);

	session_changes_init(&ch);
	play(s, AT_EOM, &r, &ch);
	ck_assert_int_eq(r.answer, SESSION_ACCEPT);
	ck_assert_msg(strstr(strbuf_str(&logged),
	                     "stage=rcpt rule=dry action=log(would reject 550 5.7.1)") !=
	                      NULL,
	              "log: %s", strbuf_str(&logged));
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

START_TEST(test_tag_and_quarantine)
{
	unit_macros m = {"no", NULL, NULL};
	session_reply r;
	session_changes ch;
	session *s = start(unit_conf_text("connect any tag X-Client \"$client_addr\"\n"
	                        "mail any tag X-Tagged \"from $sender\"\n"
	                        "rcpt any quarantine \"held for $recipient\"\n",
	                        NULL, NULL),
	                   &m, "192.0.2.1", &r);

	session_changes_init(&ch);
	play(s, AT_EOM, &r, &ch);
	ck_assert_int_eq(r.answer, SESSION_ACCEPT);
	ck_assert_uint_eq(ch.n_add, 3); /* X-Stress, then the tags */
	ck_assert_str_eq(ch.add[1].name, "X-Client");
	ck_assert_str_eq(ch.add[1].value, "192.0.2.1");
	ck_assert_str_eq(ch.add[2].name, "X-Tagged");
	ck_assert_str_eq(ch.add[2].value, "from <>");
	ck_assert_str_eq(ch.quarantine, "held for <user@bad.example>");
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/* accept ends the rules, but the stress header still needs the end of message. */
START_TEST(test_accept)
{
	unit_macros m = {"no", NULL, NULL};
	session_reply r;
	session_changes ch;
	session *s = start(unit_conf_text("connect client 192.0.2.0/24 accept\n"
	                        "mail any reject\n",
	                        NULL, NULL),
	                   &m, "192.0.2.1", &r);

	ck_assert_int_eq(r.answer, SESSION_CONTINUE);
	session_changes_init(&ch);
	play(s, AT_EOM, &r, &ch);
	ck_assert_int_eq(r.answer, SESSION_ACCEPT);
	ck_assert_uint_eq(ch.n_add, 1);
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	/* With no header to add, accept tells the MTA to stop calling. */
	s = start(unit_conf_text("connect client 192.0.2.0/24 accept\n", "stress_header=", NULL),
	          &m, "192.0.2.1", &r);
	ck_assert_int_eq(r.answer, SESSION_ACCEPT);
	session_reply_free(&r);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/*
 * No verdict at connect, and nothing later can act: accept at connect, so
 * the MTA stops calling for the session. Anything still to do keeps it.
 */
static const struct nothing_left_case {
	const char *rules;
	const char *o1, *o2;
	const char *stress;
	int answer;
} nothing_left_cases[] = {
        {"connect client 10.0.0.0/8 reject\n", "stress_header=", "rcpt_limit=0", "no",
         SESSION_ACCEPT},
        /* a rule at a later stage, in this personality */
        {"connect client 10.0.0.0/8 reject\nmail any reject\n",
         "stress_header=", "rcpt_limit=0", "no", SESSION_CONTINUE},
        /* ... but not in this one */
        {"connect client 10.0.0.0/8 reject\nmail normal any reject\n",
         "stress_header=", "rcpt_limit=0", "yes", SESSION_ACCEPT},
        /* the recipient limit still counts */
        {"connect client 10.0.0.0/8 reject\n", "stress_header=", NULL, "no",
         SESSION_CONTINUE},
        /* the stress header (and removing forged copies) needs the end of message */
        {"connect client 10.0.0.0/8 reject\n", "rcpt_limit=0", NULL, "no",
         SESSION_CONTINUE},
};

START_TEST(test_nothing_left)
{
	const struct nothing_left_case *c = &nothing_left_cases[_i];
	unit_macros m = {c->stress, NULL, NULL};
	session_reply r;
	session *s = start(unit_conf_text(c->rules, c->o1, c->o2), &m, "192.0.2.1", &r);

	ck_assert_int_eq(r.answer, c->answer);
	if (c->answer == SESSION_ACCEPT)
		ck_assert(strstr(logged.s,
		                 " stage=connect rule=nothing_left action=accept ") !=
		          NULL);
	session_reply_free(&r);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/* error_limit: after N rejections, 421 4.7.0 at the next stage. */
static const struct limit_case {
	const char *macro;
	const char *o1;
	int rejects_before_421;
} limit_cases[] = {
        {"no", "error_limit=3", 3},
        {"yes", NULL, 1}, /* the stress default, like Postfix's */
        {"no", NULL, 20},
};

START_TEST(test_error_limit)
{
	const struct limit_case *tc = &limit_cases[_i];
	unit_macros m = {tc->macro, NULL, NULL};
	session_reply r;
	session *s = start(unit_conf_text("rcpt recipient @bad.example reject 550 5.1.1 \"no\"\n",
	                        tc->o1, NULL),
	                   &m, "192.0.2.1", &r);

	session_on_mail(s, "<a@example.org>", &r);
	for (int i = 0; i < tc->rejects_before_421; i++) {
		again(&r);
		session_on_rcpt(s, "<x@bad.example>", &r);
		ck_assert_str_eq(r.code, "550");
	}
	again(&r);
	session_on_rcpt(s, "<ok@example.net>", &r);
	ck_assert_int_eq(r.answer, SESSION_TEMPFAIL);
	ck_assert_str_eq(r.code, "421");
	ck_assert_str_eq(r.ecode, "4.7.0");
	ck_assert_msg(
	        strstr(strbuf_str(&logged), "rule=error_limit action=tempfail 421 4.7.0"),
	        "log: %s", strbuf_str(&logged));
	session_reply_free(&r);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

START_TEST(test_rcpt_limit)
{
	unit_macros m = {"no", NULL, NULL};
	session_reply r;
	session *s =
	        start(unit_conf_text("", "rcpt_limit=2", "error_limit=100"), &m, "192.0.2.1", &r);

	session_on_mail(s, "<a@example.org>", &r);
	for (int i = 0; i < 2; i++) {
		again(&r);
		session_on_rcpt(s, "<ok@example.net>", &r);
		ck_assert_int_eq(r.answer, SESSION_CONTINUE);
	}
	strbuf_reset(&logged);
	for (int i = 0; i < 4; i++) {
		again(&r);
		session_on_rcpt(s, i == 0 ? "<three@example.net>" : "<more@example.net>", &r);
		ck_assert_int_eq(r.answer, SESSION_TEMPFAIL);
		ck_assert_str_eq(r.code, "452");
		ck_assert_str_eq(r.ecode, "4.5.3");
	}
	/* The first 452 is logged as a verdict, the others in one line at DATA. */
	const char *first = "stage=rcpt rule=rcpt_limit action=tempfail 452 4.5.3 client=";
	const char *line = strstr(strbuf_str(&logged), first);
	ck_assert_msg(line != NULL && strstr(line, " to=<three@example.net> ") != NULL &&
	                      strchr(line, '\n') == strbuf_str(&logged) + logged.len - 1,
	              "log: %s", strbuf_str(&logged));
	again(&r);
	session_on_data(s, &r);
	ck_assert_int_eq(r.answer, SESSION_CONTINUE);
	ck_assert_msg(strstr(strbuf_str(&logged), "stage=rcpt rule=rcpt_limit action=tempfail "
	                                          "452 4.5.3 (3 more recipients) client=") !=
	                      NULL,
	              "log: %s", strbuf_str(&logged));
	/* An abort says it for the recipients of a message that had no DATA. */
	session_on_abort(s);
	again(&r);
	session_on_mail(s, "<b@example.org>", &r);
	for (int i = 0; i < 4; i++) {
		again(&r);
		session_on_rcpt(s, "<x@example.net>", &r);
	}
	strbuf_reset(&logged);
	session_on_abort(s);
	line = strstr(strbuf_str(&logged), "(1 more recipient) client=");
	ck_assert_msg(line != NULL && strstr(line, "action=aborted") != NULL, "log: %s",
	              strbuf_str(&logged));
	session_reply_free(&r);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/* A 452 asks for the other recipients later: not an error, even under stress. */
START_TEST(test_rcpt_limit_not_an_error)
{
	unit_macros m = {"yes", NULL, NULL};
	session_reply r;
	session *s = start(unit_conf_text("", "rcpt_limit=1", NULL), &m, "192.0.2.1", &r);

	session_on_mail(s, "<a@example.org>", &r);
	session_on_rcpt(s, "<ok@example.net>", &r);
	for (int i = 0; i < 3; i++) {
		again(&r);
		session_on_rcpt(s, "<more@example.net>", &r);
		ck_assert_str_eq(r.code, "452");
	}
	session_reply_free(&r);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/* Body rules: scanned in normal mode, skipped (and said so) under stress. */
static const struct body_case {
	const char *macro;
	const char *o1;
	const char *chunk1, *chunk2;
	enum session_answer after_first; /* the answer to the first chunk */
	enum session_answer at_eom;
	const char *header;
} body_cases[] = {
        {"no", NULL, "hello\r\nYou won the lot", "tery!\r\n", SESSION_CONTINUE,
         SESSION_REJECT, NULL},
        {"no", NULL, "hello\r\n", "nothing here\r\n", SESSION_CONTINUE, SESSION_ACCEPT,
         "no"},
        {"yes", NULL, "You won the lottery\r\n", "more\r\n", SESSION_SKIP, SESSION_ACCEPT,
         "yes (source=macro); skipped=body"},
        {"no", "body_scan_limit=1k",
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n"
         "0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
         "lottery past the limit\r\n", SESSION_SKIP, SESSION_ACCEPT, "no"},
};

START_TEST(test_body)
{
	const struct body_case *tc = &body_cases[_i];
	unit_macros m = {tc->macro, NULL, NULL};
	session_reply r;
	session_changes ch;
	session *s = start(
	        unit_conf_text("eom body /lottery/i reject 550 5.7.1 \"content\"\n", tc->o1, NULL),
	        &m, "192.0.2.1", &r);

	session_changes_init(&ch);
	session_on_mail(s, "<a@example.org>", &r);
	session_on_rcpt(s, "<b@example.net>", &r);
	again(&r);
	session_on_body(s, (const unsigned char *)tc->chunk1, strlen(tc->chunk1), &r);
	ck_assert_int_eq(r.answer, tc->after_first);
	if (r.answer == SESSION_CONTINUE) {
		again(&r);
		session_on_body(s, (const unsigned char *)tc->chunk2, strlen(tc->chunk2),
		                &r);
	}
	again(&r);
	session_on_eom(s, &r, &ch);
	ck_assert_int_eq(r.answer, tc->at_eom);
	{
		session_counts n;

		/* Each test runs in its own process: the counters start at zero. */
		session_get_counts(&n);
		ck_assert_uint_eq(n.messages, 1);
		ck_assert_uint_eq(n.skipped_body, strstr(tc->header ? tc->header : "",
		                                         "skipped=body") != NULL);
		ck_assert_uint_eq(n.rejected, tc->at_eom == SESSION_REJECT);
	}
	if (tc->header != NULL) {
		ck_assert_uint_eq(ch.n_add, 1);
		ck_assert_str_eq(ch.add[0].value, tc->header);
	}
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/*
 * Under stress, skipped= names every expensive check of the calm personality
 * at a stage the session reached, whatever its rule's mode; the log line and
 * the counters say the same. The unit tests have no DNS provider: a calm
 * session reports a DNS check it reaches as skipped, hence the cheap guard
 * in front of some.
 */
static const struct calm_case {
	const char *text;
	const char *o1;
	const char *macro;
	int until;
	const char *header;   /* at eom; NULL: no message */
	const char *log_has;  /* in the last log line; NULL: not checked */
	unsigned dnsbl, body; /* the counters */
} calm_cases[] = {
        /* mode normal: only in the calm table, reported all the same */
        {"connect normal dnsbl bl.test reject\neom normal body /lottery/i reject\n", NULL,
         "yes", AT_EOM, "yes (source=macro); skipped=dnsbl,body",
         " skipped=dnsbl,body ms=", 1, 1},
        /* the calm personality itself skips nothing it did not reach */
        {"connect normal client 203.0.113.0/24 and dnsbl bl.test reject\n", NULL, "no",
         AT_EOM, "no", NULL, 0, 0},
        /* stressed: the calm personality has the check at connect, so it is listed */
        {"connect normal client 203.0.113.0/24 and dnsbl bl.test reject\n", NULL, "yes",
         AT_EOM, "yes (source=macro); skipped=dnsbl", NULL, 1, 0},
        /* helo is session-wide, like connect */
        {"helo normal rhsbl_helo dbl.test reject\n", NULL, "yes", AT_EOM,
         "yes (source=macro); skipped=dnsbl", NULL, 1, 0},
        /* mode both, as before */
        {"connect dnsbl bl.test reject\n", NULL, "yes", AT_EOM,
         "yes (source=macro); skipped=dnsbl", NULL, 1, 0},
        /* a stage not reached is not listed: no body chunk, no body stage */
        {"body normal body /lottery/i reject\n", NULL, "yes", AT_EOM,
         "yes (source=macro)", NULL, 0, 0},
        /* a session refused at connect never reached mail */
        {"mail normal rhsbl_sender dbl.test reject\nconnect stress any tempfail 421 "
         "4.7.1 busy\n",
         NULL, "yes", AT_CONNECT, NULL,
         "action=tempfail 421 4.7.1 client=mx.example[192.0.2.1] ms=", 0, 0},
        /* ... and its verdict line lists what connect skipped */
        {"connect normal dnsbl bl.test reject\nconnect stress any tempfail 421 4.7.1 "
         "busy\n",
         NULL, "yes", AT_CONNECT, NULL,
         "action=tempfail 421 4.7.1 client=mx.example[192.0.2.1] skipped=dnsbl ms=", 0,
         0},
        /* -o stress=yes: no calm personality is compiled, only mode both counts */
        {"connect normal dnsbl bl.test reject\neom body /lottery/i reject\n",
         "stress=yes", "no", AT_EOM, "yes (source=forced); skipped=body", NULL, 0, 1},
};

START_TEST(test_calm_skipped)
{
	const struct calm_case *tc = &calm_cases[_i];
	unit_macros m = {tc->macro, NULL, NULL};
	session_reply r;
	session_changes ch;
	session_counts n;
	session *s = start(unit_conf_text(tc->text, tc->o1, NULL), &m, "192.0.2.1", &r);

	session_changes_init(&ch);
	play(s, tc->until, &r, &ch);
	if (tc->header != NULL) {
		ck_assert_int_eq(r.answer, SESSION_ACCEPT);
		ck_assert_uint_eq(ch.n_add, 1);
		ck_assert_str_eq(ch.add[0].value, tc->header);
	}
	if (tc->log_has != NULL)
		ck_assert_msg(strstr(strbuf_str(&logged), tc->log_has) != NULL, "log: %s",
		              strbuf_str(&logged));
	session_get_counts(&n); /* each test runs in its own process */
	ck_assert_uint_eq(n.skipped_dnsbl, tc->dnsbl);
	ck_assert_uint_eq(n.skipped_body, tc->body);
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

/*
 * The grammar of the stress header's value, as milter-stress.conf(5) ("The
 * stress header") writes it:
 *	value  = state [ "; skipped=" kinds ]
 *	state  = "yes (source=" ( "macro" / "forced" / "control" ) ")"
 *	       / "no" [ " (source=" ( "none" / "forced" / "control" ) ")" ]
 *	kinds  = "dnsbl" / "body" / "dnsbl,body"
 */
static bool
eat(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

static bool
eat_source(const char **p, const char *const alt[3])
{
	if (!eat(p, " (source="))
		return false;
	for (int i = 0; i < 3; i++)
		if (eat(p, alt[i]))
			return eat(p, ")");
	return false;
}

static bool
stress_header_ok(const char *v)
{
	static const char *const yes_src[3] = {"macro", "forced", "control"};
	static const char *const no_src[3] = {"none", "forced", "control"};
	const char *p = v;

	if (eat(&p, "yes")) {
		if (!eat_source(&p, yes_src))
			return false;
	} else if (eat(&p, "no")) {
		if (*p == ' ' && !eat_source(&p, no_src))
			return false;
	} else {
		return false;
	}
	if (*p == '\0')
		return true;
	return eat(&p, "; skipped=") &&
	       (strcmp(p, "dnsbl") == 0 || strcmp(p, "body") == 0 ||
	        strcmp(p, "dnsbl,body") == 0);
}

/* Every way a session gets its state, with and without skipped checks. */
static const struct grammar_case {
	const char *o1;
	const char *macro;
	enum stress_force control;
	const char *state; /* the part before any "; skipped=" */
} grammar_cases[] = {
        {NULL, "yes", STRESS_FORCE_NONE, "yes (source=macro)"},
        {NULL, "no", STRESS_FORCE_NONE, "no"},
        {NULL, NULL, STRESS_FORCE_NONE, "no (source=none)"},
        {"stress=yes", "no", STRESS_FORCE_NONE, "yes (source=forced)"},
        {"stress=", "yes", STRESS_FORCE_NONE, "no (source=forced)"},
        {NULL, "no", STRESS_FORCE_ON, "yes (source=control)"},
        {NULL, "yes", STRESS_FORCE_OFF, "no (source=control)"},
};

static const char *const grammar_rules[] = {
        "",
        "connect normal dnsbl bl.test reject\n",
        "eom body /lottery/i reject\n",
        "helo normal rhsbl_helo dbl.test reject\neom normal body /x/ reject\n",
};

START_TEST(test_header_grammar)
{
	static const char *const bad[] = {
	        "yes",
	        "yes (source=none)",
	        "no (source=macro)",
	        "no; skipped=",
	        "yes (source=macro); skipped=body,dnsbl",
	        "yes (source=macro);skipped=dnsbl",
	        "yes (source=macro) skipped=dnsbl",
	        "no (source=none); skipped=dnsbl,",
	};
	const struct grammar_case *tc = &grammar_cases[_i];

	/* The checker refuses what the grammar does not allow. */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(!stress_header_ok(bad[i]), "'%s' passed", bad[i]);
	for (size_t k = 0; k < sizeof grammar_rules / sizeof grammar_rules[0]; k++) {
		unit_macros m = {tc->macro, NULL, NULL};
		runtime *rt = runtime_create();
		session_reply r;
		session_changes ch;
		conf *c = unit_conf_text(grammar_rules[k], tc->o1, NULL);
		session *s = session_create(c, rt, "mx.example", "192.0.2.1");

		conf_unref(c);
		runtime_set_stress(rt, tc->control);
		session_set_macros(s, unit_macro, &m);
		session_reply_init(&r);
		session_on_connect(s, &r);
		session_changes_init(&ch);
		play(s, AT_EOM, &r, &ch);
		ck_assert_uint_eq(ch.n_add, 1);
		ck_assert_msg(stress_header_ok(ch.add[0].value), "rules '%s': '%s'",
		              grammar_rules[k], ch.add[0].value);
		ck_assert_msg(strncmp(ch.add[0].value, tc->state, strlen(tc->state)) == 0,
		              "'%s' does not start with '%s'", ch.add[0].value,
		              tc->state);
		/* The first table has no expensive check: nothing is skipped. */
		if (k == 0)
			ck_assert_str_eq(ch.add[0].value, tc->state);
		session_reply_free(&r);
		session_changes_free(&ch);
		session_free(s);
		runtime_unref(rt);
		strbuf_reset(&logged);
	}
}
END_TEST

/*
 * No rules, the defaults: exactly this. Only eoh and body go (headers stay
 * for stress_header, and the stage table never lets connect to data go);
 * connect to data are answered (never NR: over TCP an unanswered one costs
 * the next 40 ms, ARCHITECTURE F25) and eom always is; headers are NR.
 */
#define DEFAULT_PROFILE (PROTO_P_NOUNKNOWN | PROTO_P_NOEOH | PROTO_P_NOBODY | PROTO_P_NR_HDR)

/* Negotiation: stages no rule needs are off, stages that never reply are NR. */
static const struct proto_case {
	const char *text;
	const char *o1;
	unsigned long on, off;
} proto_cases[] = {
        {"", NULL, DEFAULT_PROFILE, PROTO_P_ALL & ~DEFAULT_PROFILE},
        {"", "stress_header=", PROTO_P_NOHDRS, 0},
        {"header header Subject /x/ reject\n", NULL, 0,
         PROTO_P_NR_HDR | PROTO_P_NOHDRS},
        {"header header Subject /x/ log reject\n", NULL, PROTO_P_NR_HDR,
         PROTO_P_NOHDRS},
        {"data normal any tempfail\n", NULL, 0, PROTO_P_NODATA | PROTO_P_NR_DATA},
        {"data normal any tempfail\n", "stress=yes", 0, PROTO_P_NODATA | PROTO_P_NR_DATA},
        /* nothing left to say at connect to data: still answered */
        {"", "rcpt_limit=0", 0,
         PROTO_P_NR_CONN | PROTO_P_NR_HELO | PROTO_P_NR_MAIL | PROTO_P_NR_RCPT |
                 PROTO_P_NR_DATA},
        {"connect stress client 192.0.2.0/24 tempfail 421 4.7.1\n", NULL, 0,
         PROTO_P_NR_CONN},
        {"eoh any tag X-A b\n", NULL, PROTO_P_NR_EOH, PROTO_P_NOEOH},
        {"eom body /x/ reject\n", NULL, PROTO_P_SKIP,
         PROTO_P_NOBODY | PROTO_P_NR_BODY},
        /* forged copies of the stress header: the milter reads every header */
        {"", NULL, 0, PROTO_P_NOHDRS},
        /* ... unless Postfix's header_checks remove them */
        {"", "stress_header_forged=postfix", PROTO_P_NOHDRS, 0},
};

/* A personality known at negotiation asks only for its own stages. */
START_TEST(test_protocol_known)
{
	conf *c = unit_conf_text("body normal name=b body /x/ reject\n", NULL, NULL);

	ck_assert((session_protocol(c) & PROTO_P_NOBODY) == 0);
	ck_assert((session_protocol_known(c, -1) & PROTO_P_NOBODY) == 0);
	ck_assert((session_protocol_known(c, 0) & PROTO_P_NOBODY) == 0);
	ck_assert((session_protocol_known(c, 1) & PROTO_P_NOBODY) != 0);
	conf_unref(c);
	/* -o stress= pins it whatever negotiation was told */
	c = unit_conf_text("body normal name=b body /x/ reject\n", "stress=", NULL);
	ck_assert((session_protocol_known(c, 1) & PROTO_P_NOBODY) == 0);
	conf_unref(c);
	/* a stressed session a personality rule may make normal asks for both */
	c = unit_conf_text("connect stress client 192.0.2.0/24 personality normal\n"
	         "body normal name=b body /x/ reject\n",
	         NULL, NULL);
	ck_assert((session_protocol_known(c, 1) & PROTO_P_NOBODY) == 0);
	ck_assert((session_protocol_known(c, 0) & PROTO_P_NOBODY) == 0);
	conf_unref(c);
}
END_TEST

START_TEST(test_protocol)
{
	const struct proto_case *tc = &proto_cases[_i];
	conf *c = unit_conf_text(tc->text, tc->o1, NULL);
	unsigned long p = session_protocol(c);

	ck_assert_msg((p & tc->on) == tc->on, "flags 0x%lx lack 0x%lx", p, tc->on & ~p);
	ck_assert_msg((p & tc->off) == 0, "flags 0x%lx have 0x%lx", p, p & tc->off);
	conf_unref(c);
}
END_TEST

/*
 * continue needs no reply: a stage with only continue rules is negotiated
 * "no reply", and such a rule matching there is no cause for a warning.
 */
START_TEST(test_continue_at_no_reply_stage)
{
	unit_macros m = {"no", NULL, NULL};
	session_reply r;
	session_changes ch;
	conf *c = unit_conf_text("eoh header Subject /./ continue\n", NULL, NULL);
	unsigned long p = session_protocol(c);
	session *s;

	ck_assert_msg((p & PROTO_P_NR_EOH) == PROTO_P_NR_EOH, "flags 0x%lx", p);
	s = session_create(c, NULL, "mx.example", "192.0.2.1");
	conf_unref(c);
	session_set_macros(s, unit_macro, &m);
	session_set_protocol(s, p);
	session_reply_init(&r);
	session_on_connect(s, &r);
	session_changes_init(&ch);
	play(s, AT_EOM, &r, &ch);
	ck_assert_int_eq(r.answer, SESSION_ACCEPT);
	ck_assert_msg(strstr(strbuf_str(&logged), "cannot reply") == NULL, "log: %s",
		      strbuf_str(&logged));
	session_reply_free(&r);
	session_changes_free(&ch);
	session_free(s);
	strbuf_reset(&logged);
}
END_TEST

static Suite *
session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("core");

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))
	tcase_add_loop_test(tc, test_verdicts, 0, N(verdict_cases));
	tcase_add_loop_test(tc, test_personalities, 0, N(personality_cases));
	tcase_add_test(tc, test_unlisted_client);
	tcase_add_test(tc, test_personality_params);
	tcase_add_loop_test(tc, test_eom_header, 0, N(eom_cases));
	tcase_add_test(tc, test_log_line_and_forged);
	tcase_add_test(tc, test_unknown_client);
	tcase_add_test(tc, test_dry_run);
	tcase_add_test(tc, test_tag_and_quarantine);
	tcase_add_test(tc, test_accept);
	tcase_add_loop_test(tc, test_nothing_left, 0,
	                    sizeof nothing_left_cases / sizeof nothing_left_cases[0]);
	tcase_add_loop_test(tc, test_error_limit, 0, N(limit_cases));
	tcase_add_test(tc, test_rcpt_limit);
	tcase_add_test(tc, test_rcpt_limit_not_an_error);
	tcase_add_loop_test(tc, test_protocol, 0, N(proto_cases));
	tcase_add_test(tc, test_protocol_known);
	tcase_add_loop_test(tc, test_body, 0, N(body_cases));
	tcase_add_test(tc, test_continue_at_no_reply_stage);
	tcase_add_loop_test(tc, test_calm_skipped, 0, N(calm_cases));
	tcase_add_loop_test(tc, test_header_grammar, 0, N(grammar_cases));
#undef N
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	int rc;

	unit_log_capture(&logged);
	rc = unit_run_in_tmpdir(session_suite(), "check_session");
	strbuf_free(&logged);
	return rc;
}
