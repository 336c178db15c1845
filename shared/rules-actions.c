/* rules-actions - the action table, and the reply codes it takes; see rules-int.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "protocol.h"
#include "rules-int.h"

/*
 * Indexed by enum rules_action_kind. A verdict ends its stage; one that
 * replies keeps its stage from being negotiated "no reply". Postfix refuses
 * DISCARD before MAIL FROM. The milter flags are what the MTA must allow at
 * negotiation for the action to work.
 */
const action_desc rules_actions[] = {
        [RULES_ACCEPT] = {"accept", true, true, A_NONE, 0, NULL, NULL, NULL, true, 0},
        [RULES_CONTINUE] = {"continue", true, false, A_NONE, 0, NULL, NULL, NULL, true,
                            0},
        [RULES_TEMPFAIL] = {"tempfail", true, true, A_REPLY, '4', "451", "4.7.1",
                            "Service unavailable, try again later", true, 0},
        [RULES_REJECT] = {"reject", true, true, A_REPLY, '5', "550", "5.7.1",
                          "Message rejected", true, 0},
        [RULES_DISCARD] = {"discard", true, true, A_NONE, 0, NULL, NULL, NULL, false, 0},
        [RULES_QUARANTINE] = {"quarantine", false, false, A_TEXT, 0, NULL, NULL, NULL,
                              true, PROTO_F_QUARANTINE},
        [RULES_TAG] = {"tag", false, false, A_TAG, 0, NULL, NULL, NULL, true,
                       PROTO_F_ADDHDRS},
        [RULES_LOG] = {"log", false, false, A_LOG, 0, NULL, NULL, NULL, true, 0},
        [RULES_PERSONALITY] = {"personality", false, false, A_PERSONALITY, 0, NULL, NULL,
                               NULL, true, 0},
};

const unsigned rules_n_actions = sizeof rules_actions / sizeof rules_actions[0];
_Static_assert(sizeof rules_actions / sizeof rules_actions[0] == RULES_N_ACTIONS,
               "a row of the action table per enum rules_action_kind");

int
rules_action_of(const rtoken *t)
{
	if (t->text == NULL || t->quoted || t->regex)
		return -1;
	for (unsigned i = 0; i < rules_n_actions; i++)
		if (strcmp(rules_actions[i].name, t->text) == 0)
			return (int)i;
	return -1;
}

const char *
rules_action_name(enum rules_action_kind kind)
{
	return (unsigned)kind < rules_n_actions ? rules_actions[kind].name : "?";
}

void
rules_list_actions(strbuf *b)
{
	for (unsigned i = 0; i < rules_n_actions; i++)
		strbuf_put_item(b, i, rules_n_actions, rules_actions[i].name);
}

unsigned long
rules_milter_flags(void)
{
	unsigned long flags = 0;

	for (unsigned i = 0; i < rules_n_actions; i++)
		flags |= rules_actions[i].milter_flags;
	return flags;
}

/* Reply codes. */

bool
rules_looks_like_ecode(const char *s)
{
	return rules_is_digit(s[0]) && s[1] == '.';
}

/* The other action with a reply code: what to use instead. */
static const action_desc *
other_reply(const action_desc *a)
{
	for (unsigned i = 0; i < rules_n_actions; i++)
		if (rules_actions[i].args == A_REPLY && &rules_actions[i] != a)
			return &rules_actions[i];
	return a;
}

bool
rules_code_ok(enum rules_action_kind kind, const char *s, strbuf *why)
{
	const action_desc *a = &rules_actions[kind], *o = other_reply(a);

	if (rules_looks_like_ecode(s)) {
		strbuf_printf(
		        why,
		        "'%s' is an enhanced status code: give the reply code first "
		        "(%s %s)",
		        s, a->default_code, s);
		return false;
	}
	if (strlen(s) != 3 || !rules_is_digit(s[0]) || !rules_is_digit(s[1]) ||
	    !rules_is_digit(s[2])) {
		strbuf_printf(why,
		              "bad reply code '%s': expected three digits such as %s", s,
		              a->default_code);
		return false;
	}
	if (s[0] != a->reply_class) {
		strbuf_printf(why, "%s needs a %cxx reply code, not %s (%s sends %cxx)",
		              a->name, a->reply_class, s, o->name, o->reply_class);
		return false;
	}
	if (s[1] > '5') {
		strbuf_printf(why, "bad reply code '%s': the second digit must be 0-5",
		              s);
		return false;
	}
	return true;
}

/* 1 to 3 digits, then the character end; *p moves past them. */
static bool
scan_part(const char **p, char end)
{
	size_t n = 0;

	while (rules_is_digit(**p) && n < 4) {
		(*p)++;
		n++;
	}
	return n >= 1 && n <= 3 && **p == end;
}

static bool
ecode_form(const char *s)
{
	const char *p = s + 2;

	if (!rules_is_digit(s[0]) || s[1] != '.' || !scan_part(&p, '.'))
		return false;
	p++;
	return scan_part(&p, '\0');
}

/* Whether s is an enhanced status code that fits the reply code. */
bool
rules_ecode_ok(const char *code, const char *s, strbuf *why)
{
	if (!ecode_form(s)) {
		strbuf_printf(
		        why,
		        "bad enhanced status code '%s': expected CLASS.SUBJECT.DETAIL "
		        "such as %c.7.1",
		        s, code[0]);
		return false;
	}
	if (s[0] != code[0]) {
		strbuf_printf(why,
		              "enhanced status code %s does not match reply code %s: "
		              "Postfix would drop the reply and disable the milter for "
		              "the session; use %c%s",
		              s, code, code[0], s + 1);
		return false;
	}
	return true;
}

/* The next word of *p (up to a blank), copied to out; *p moves past it and blanks. */
static void
next_word(const char **p, strbuf *out)
{
	size_t n = strcspn(*p, " \t");

	strbuf_reset(out);
	strbuf_append(out, *p, n);
	*p += n;
	*p += strspn(*p, " \t");
}

bool
rules_parse_reply(enum rules_action_kind kind, const char *spec, char code[4],
                  char ecode[12], strbuf *text, strbuf *why)
{
	const char *p = spec + strspn(spec, " \t");
	strbuf word = STRBUF_INIT;
	bool ok = false;

	next_word(&p, &word);
	if (!rules_code_ok(kind, strbuf_str(&word), why))
		goto out;
	snprintf(code, 4, "%s", word.s);
	ecode[0] = '\0';
	if (rules_looks_like_ecode(p)) {
		next_word(&p, &word);
		if (!rules_ecode_ok(code, strbuf_str(&word), why))
			goto out;
		snprintf(ecode, 12, "%s", word.s);
	}
	strbuf_reset(text);
	strbuf_puts(text, *p != '\0' ? p : rules_actions[kind].default_text);
	if (strpbrk(strbuf_str(text), "\r\n") != NULL) {
		strbuf_puts(why, "the text must not contain CR or LF");
		goto out;
	}
	if (text->len > RULES_TEXT_MAX) {
		strbuf_printf(why,
		              "the text is %zu bytes long; a reply text takes at most %d",
		              text->len, RULES_TEXT_MAX);
		goto out;
	}
	ok = true;
out:
	strbuf_free(&word);
	return ok;
}
