/*
 * fuzz_rules - libFuzzer target: a config file of arbitrary bytes through
 * conf_load_text(), and when it loads, every stage of both rule tables
 * evaluated against a few fixed sessions (IPv4, IPv6, mapped, all unknown,
 * odd bytes everywhere), with every verdict's text expanded and escaped as
 * the daemon would; once more with the expensive checks on, a body scanned
 * for the table's body regexes and no DNS context (nothing is sent). An
 * odd-sized input is loaded with -o stress=yes.
 *
 * include and file: in the input read files relative to the current
 * directory; the loader only ever reads, and refuses anything but regular
 * files, so a run cannot block or write.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "rules.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct session_facts {
	rules_facts f;
	const char *const *macros; /* name, value, ..., NULL */
} session_facts;

static const char *
macro(void *ctx, const char *name)
{
	const session_facts *s = ctx;
	size_t i;

	for (i = 0; s->macros[i] != NULL; i += 2)
		if (strcmp(s->macros[i], name) == 0)
			return s->macros[i + 1];
	return NULL;
}

static const char *
var(void *ctx, const char *name)
{
	const session_facts *s = ctx;

	if (strcmp(name, "client_addr") == 0)
		return s->f.client_addr;
	if (strcmp(name, "client_name") == 0)
		return s->f.client_name;
	if (strcmp(name, "helo_name") == 0)
		return s->f.helo;
	if (strcmp(name, "sender") == 0)
		return s->f.sender;
	if (strcmp(name, "recipient") == 0)
		return s->f.recipient;
	return NULL;
}

/* What the daemon does with a rule it meets: expand its text, escape it. */
static bool
visit(void *ctx, const rule *r, bool matched)
{
	strbuf text = STRBUF_INIT, reply = STRBUF_INIT;

	if (matched) {
		rules_expand_text(rule_action(r)->text, var, ctx, &text);
		rules_reply_text_for_milter(strbuf_str(&text), &reply);
	}
	strbuf_free(&text);
	strbuf_free(&reply);
	return false;
}

static const rules_header odd_headers[] = {
        {"Subject", "lottery \xff\xfe\x80 $stress %s%n"},
        {"X-Empty", ""},
        {"From", NULL},
        {"Received", "from x (\x01\x7f) by y; $client_addr ${stress?{a}:{b}}"},
};

static const char *const no_macros[] = {NULL};
static const char *const some_macros[] = {
        "{auth_authen}", "alice", "{daemon_name}", "smtp\xff", "i", "", "j",
        "mx.example",    NULL};

static void
evaluate(const conf *c)
{
	const session_facts sessions[] = {
	        {{false, "192.0.2.1", "mx.example.com", "smtp", "mx.example.com",
	          "<a@example.com>", "<b@example.net>", 1, &odd_headers[0], odd_headers,
	          4, macro, NULL, "known"},
	         some_macros},
	        {{true, "2001:db8::1", "[2001:db8::1]", "submission", "[IPv6:2001:db8::1]", "<>",
	          "<postmaster>", 101, &odd_headers[1], odd_headers, 2, macro, NULL, "unknown"},
	         no_macros},
	        {{true, "::ffff:10.0.0.1", "unknown", "", "192.0.2.1", "", "<x@[192.0.2.1]>",
	          6, &odd_headers[2], odd_headers + 2, 2, macro, NULL, "known"},
	         some_macros},
	        {{false, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL},
	         no_macros},
	        {{true, "\xff garbage $x", "\x80\x81.example", "smtp\xff$x", "$client_addr%",
	          "<\xff@\xfe>", "<@\x01>", (size_t)-1, &odd_headers[3], odd_headers + 3,
	          1, macro, NULL, "\xff"},
	         some_macros},
	};
	static const char body[] = "Dear friend\r\nyou won the lottery \xff\r\nprize";
	rules_eval_info info;
	size_t i;
	int p, st;

	rules_eval_info_init(&info);
	for (p = 0; p < 2; p++) {
		const rules_table *t = conf_rules(c, p);
		const bodyscan_set *set = rules_body_set(t);
		bodyscan *bs = set != NULL ? bodyscan_start(set, 0, 64, 16) : NULL;
		/* No DNS context: DNS checks are skipped, never sent. */
		rules_expensive x = {NULL, 0, bs, NULL};

		if (bs != NULL) {
			bodyscan_feed(bs, body, sizeof body - 1);
			bodyscan_finish(bs);
		}
		for (i = 0; i < sizeof sessions / sizeof sessions[0]; i++) {
			session_facts s = sessions[i];

			s.f.macro_ctx = &s;
			for (st = 0; st < STAGE_N; st++) {
				(void)rules_eval(t, (enum stage)st, &s.f, NULL, NULL, visit,
				                 &s);
				(void)rules_eval(t, (enum stage)st, &s.f, &x,
				                    &info, visit, &s);
			}
		}
		bodyscan_free(bs);
	}
	rules_eval_info_free(&info);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char *stress_yes[] = {(char *)"stress=yes"};
	strbuf err = STRBUF_INIT;
	conf *c;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	c = conf_load_text("fuzz.conf", (const char *)data, size, stress_yes, size % 2,
	                   &err);
	if (c != NULL) {
		evaluate(c);
		conf_dump(c, false, devnull);
		conf_dump(c, true, devnull);
		conf_unref(c);
	}
	strbuf_free(&err);
	return 0;
}
