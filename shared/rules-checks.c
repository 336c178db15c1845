/* rules-checks - the check table: every check kind, one row each; see rules-int.h. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "names.h"
#include "rules-int.h"

/* Postfix sends it with MAIL FROM when the client authenticated. */
#define AUTH_MACRO "{auth_authen}"

#define FACT(field) offsetof(rules_facts, field)

/* ---- values ---- */

static bool
compile_regex(cctx *c, const char *word, const where *w, value *v)
{
	strbuf why = STRBUF_INIT;
	size_t column = 0;

	if (strrchr(word, '/') == word) {
		rules_problem_in(c, w, 0, "missing '/' to close the regex '%s'", word);
		return false;
	}
	v->re = regex_compile(word, &why, &column);
	if (v->re == NULL) {
		rules_problem_in(c, w, column, "%s", strbuf_str(&why));
		strbuf_free(&why);
		return false;
	}
	strbuf_free(&why);
	v->kind = V_REGEX;
	return true;
}

static void
set_string(value *v, enum value_kind kind, const char *s, size_t n)
{
	v->kind = kind;
	v->s = ms_xstrndup(s, n);
	v->len = n;
}

static bool
name_value(value *v, const char *word)
{
	size_t n = strlen(word);

	if (word[0] == '.') {
		if (n == 1)
			return false;
		set_string(v, V_SUFFIX, word, n);
		return true;
	}
	set_string(v, V_EXACT, word, n);
	return true;
}

static bool
address_value(value *v, const char *word)
{
	size_t n = strlen(word), i;
	const char *at = NULL;

	if (n > 2 && word[0] == '<' && word[n - 1] == '>') {
		word++;
		n -= 2;
	}
	if (n == 2 && word[0] == '<' && word[1] == '>') {
		v->kind = V_NULL;
		return true;
	}
	for (i = 0; i < n; i++)
		if (word[i] == '@')
			at = word + i;
	if (at != NULL && n == 1)
		return false;
	if (at == word)
		set_string(v, V_DOMAIN, word, n);
	else if (at == word + n - 1)
		set_string(v, V_LOCAL, word, n);
	else if (at != NULL)
		set_string(v, V_ADDRESS, word, n);
	else if (word[0] == '.' && n > 1)
		set_string(v, V_SUFFIX, word, n);
	else
		return false;
	return true;
}

void
rules_lower_zone(char *s)
{
	for (; *s != '\0' && *s != '='; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* ZONE[=FILTER] of dnsbl and rhsbl_*. */
static bool
parse_zone(cctx *c, const check_desc *d, const char *word, const where *w, value *v)
{
	const char *eq = strchr(word, '=');
	size_t n = eq != NULL ? (size_t)(eq - word) : strlen(word);
	strbuf why = STRBUF_INIT;

	if (!names_domain(word, n)) {
		rules_problem_in(c, w, 0,
		                 "%s: bad zone '%.*s': expected a domain name such as "
		                 "zen.example.org",
		                 d->name, (int)n, word);
		return false;
	}
	if (eq != NULL && (v->filter = dnsbl_filter_parse(eq + 1, &why)) == NULL) {
		rules_problem_in(c, w, n + 1, "%s: bad filter '%s': %s", d->name, eq + 1,
		                 strbuf_str(&why));
		strbuf_free(&why);
		return false;
	}
	set_string(v, V_ZONE, word, n);
	rules_lower_zone(v->s);
	return true;
}

/* A body regex: compiled here for its problems, by the table's set for use. */
static bool
parse_body(cctx *c, const check_desc *d, const char *word, const where *w, value *v)
{
	if (word[0] != '/') {
		rules_problem_in(c, w, 0, "%s: '%s' is not a /regex/", d->name, word);
		return false;
	}
	if (!compile_regex(c, word, w, v))
		return false;
	pcre2_code_free(v->re);
	v->re = NULL;
	set_string(v, V_BODY, word, strlen(word));
	return true;
}

static bool
parse_client(cctx *c, const check_desc *d, const char *word, const where *w, value *v)
{
	strbuf why = STRBUF_INIT;
	bool ok;

	v->kind = V_CIDR;
	if (!(ok = addr_cidr_parse(word, &v->cidr, &why)))
		rules_problem_in(c, w, 0, "%s: %s", d->name, strbuf_str(&why));
	strbuf_free(&why);
	return ok;
}

/* A value of its own syntax failed: the row says what was expected. */
static bool
bad_value(cctx *c, const check_desc *d, const char *word, const where *w)
{
	rules_problem_in(c, w, 0, "%s: bad value '%s': expected %s", d->name, word,
	                 d->expects);
	return false;
}

static bool
parse_client_name(cctx *c, const check_desc *d, const char *word, const where *w,
                  value *v)
{
	if (strcasecmp(word, "unknown") == 0) {
		v->kind = V_UNKNOWN;
		return true;
	}
	return name_value(v, word) || bad_value(c, d, word, w);
}

static bool
parse_helo(cctx *c, const check_desc *d, const char *word, const where *w, value *v)
{
	if (strcasecmp(word, "ip_literal") == 0) {
		v->kind = V_IP_LITERAL;
		return true;
	}
	return name_value(v, word) || bad_value(c, d, word, w);
}

static bool
parse_address(cctx *c, const check_desc *d, const char *word, const where *w, value *v)
{
	return address_value(v, word) || bad_value(c, d, word, w);
}

/* history: known or unknown, the session's verdict from the client history. */
static bool
parse_history(cctx *c, const check_desc *d, const char *word, const where *w, value *v)
{
	if (strcmp(word, "known") != 0 && strcmp(word, "unknown") != 0)
		return bad_value(c, d, word, w);
	set_string(v, V_STRING, word, strlen(word));
	return true;
}

/* macro, daemon_name: the value exactly, with case. */
static bool
parse_string(cctx *c, const check_desc *d, const char *word, const where *w, value *v)
{
	(void)c;
	(void)d;
	(void)w;
	set_string(v, V_STRING, word, strlen(word));
	return true;
}

bool
rules_value_parse(cctx *c, const check_desc *d, const char *word, const where *w,
                  value *v)
{
	memset(v, 0, sizeof *v);
	if (*word == '\0' && !d->empty_ok) {
		rules_problem_in(c, w, 0, "%s: empty value: expected %s", d->name,
		                 d->expects);
		return false;
	}
	if (word[0] == '/' && d->regex)
		return compile_regex(c, word, w, v);
	if (d->parse == NULL) {
		rules_problem_in(c, w, 0, "%s: '%s' is not a /regex/", d->name, word);
		return false;
	}
	return d->parse(c, d, word, w, v);
}

void
rules_value_free(value *v)
{
	free(v->s);
	pcre2_code_free(v->re);
	dnsbl_filter_free(v->filter);
}

/* ---- matching ---- */

bool
rules_re_match(const rules_table *t, const pcre2_code *re, const char *s, size_t n)
{
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	int rc;

	if (md == NULL)
		ms_panic("out of memory");
	rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, t->mctx);
	/* The JIT's stack is small and fixed; the interpreter's is on the heap. */
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
		rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_JIT, md, t->mctx);
	pcre2_match_data_free(md);
	return rc >= 0;
}

static bool
ends_with_ci(const char *s, size_t n, const char *tail, size_t tn)
{
	return n >= tn && strncasecmp(s + n - tn, tail, tn) == 0;
}

/* client_name and helo. */
static bool
match_name(const rules_table *t, const value *v, const char *s)
{
	if (v->kind == V_UNKNOWN)
		return s == NULL || strcasecmp(s, "unknown") == 0 || s[0] == '[';
	if (s == NULL)
		return false;
	switch (v->kind) {
	case V_EXACT:
		return strcasecmp(s, v->s) == 0;
	case V_SUFFIX:
		/* .example.com: below example.com, not example.com itself */
		return strlen(s) > v->len && ends_with_ci(s, strlen(s), v->s, v->len);
	case V_REGEX:
		return rules_re_match(t, v->re, s, strlen(s));
	case V_IP_LITERAL:
		return addr_is_literal(s);
	default:
		return false;
	}
}

/* sender and recipient: s (n bytes) without its angle brackets. */
static bool
match_address(const rules_table *t, const value *v, const char *s, size_t n)
{
	const char *at = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '@')
			at = s + i;
	switch (v->kind) {
	case V_NULL:
		return n == 0;
	case V_REGEX:
		return rules_re_match(t, v->re, s, n);
	case V_ADDRESS:
		return n == v->len && strncasecmp(s, v->s, n) == 0;
	case V_LOCAL:
		return at != NULL && (size_t)(at - s) + 1 == v->len &&
		       strncasecmp(s, v->s, v->len) == 0;
	case V_DOMAIN:
		return at != NULL && n - (size_t)(at - s) == v->len &&
		       strncasecmp(at, v->s, v->len) == 0;
	case V_SUFFIX:
		return at != NULL && n - (size_t)(at - s) - 1 > v->len &&
		       ends_with_ci(s, n, v->s, v->len);
	default:
		return false;
	}
}

static bool
any_address(const rules_table *t, const check *ck, const char *s)
{
	size_t n, i;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s++;
		n -= 2;
	}
	for (i = 0; i < ck->n_values; i++)
		if (match_address(t, &ck->v[i], s, n))
			return true;
	return false;
}

static bool
any_name(const rules_table *t, const check *ck, const char *s)
{
	size_t i;

	for (i = 0; i < ck->n_values; i++)
		if (match_name(t, &ck->v[i], s))
			return true;
	return false;
}

static bool
any_client(const check *ck, const char *s)
{
	addr_ip ip;
	size_t i;

	if (!addr_ip_parse(s, &ip))
		return false;
	for (i = 0; i < ck->n_values; i++)
		if (addr_cidr_match(&ck->v[i].cidr, &ip))
			return true;
	return false;
}

static const char *
macro_value(const rules_facts *f, const char *name)
{
	return f->macro != NULL ? f->macro(f->macro_ctx, name) : NULL;
}

static bool
match_header(const rules_table *t, const check *ck, const rules_header *h, strbuf *tmp)
{
	const char *subject;
	size_t i, n;

	if (h == NULL || h->name == NULL)
		return false;
	if (ck->name != NULL && strcasecmp(h->name, ck->name) != 0)
		return false;
	subject = h->value != NULL ? h->value : "";
	n = strlen(subject);
	if (ck->name == NULL) {
		strbuf_reset(tmp);
		strbuf_printf(tmp, "%s: %s", h->name, subject);
		subject = strbuf_str(tmp);
		n = tmp->len;
	}
	for (i = 0; i < ck->n_values; i++)
		if (rules_re_match(t, ck->v[i].re, subject, n))
			return true;
	return false;
}

static bool
any_header(const rules_table *t, const check *ck, enum stage stage, const rules_facts *f)
{
	strbuf tmp = STRBUF_INIT;
	bool m = false;
	size_t i;

	if (stage == STAGE_HEADER)
		m = match_header(t, ck, f->header, &tmp);
	else
		for (i = 0; !m && f->headers != NULL && i < f->n_headers; i++)
			m = match_header(t, ck, &f->headers[i], &tmp);
	strbuf_free(&tmp);
	return m;
}

/* rcpt_count (exact as a double far beyond any count) and the scores. */
static bool
compare(enum cmp_op op, double a, double b)
{
	switch (op) {
	case OP_LT:
		return a < b;
	case OP_LE:
		return a <= b;
	case OP_GT:
		return a > b;
	case OP_GE:
		return a >= b;
	case OP_EQ:
		return a == b;
	case OP_NE:
		return a != b;
	case OP_N:
		break;
	}
	return false;
}
/* The matchers of the table's cheap rows. */

static bool
m_client(const check_in *in, const check *ck)
{
	return any_client(ck, in->fact);
}

/* client_name and helo */
static bool
m_name(const check_in *in, const check *ck)
{
	return any_name(in->t, ck, in->fact);
}

/* sender and recipient */
static bool
m_address(const check_in *in, const check *ck)
{
	return any_address(in->t, ck, in->fact);
}

/* A value exactly (with case) or a regex; no values: present and not empty. */
static bool
any_string(const rules_table *t, const check *ck, const char *val)
{
	if (val == NULL)
		return false;
	if (ck->presence)
		return *val != '\0';
	for (size_t i = 0; i < ck->n_values; i++) {
		const value *v = &ck->v[i];

		if (v->kind == V_REGEX ? rules_re_match(t, v->re, val, strlen(val))
		                       : strcmp(val, v->s) == 0)
			return true;
	}
	return false;
}

static bool
m_string(const check_in *in, const check *ck)
{
	return any_string(in->t, ck, in->fact);
}

static bool
m_macro(const check_in *in, const check *ck)
{
	return any_string(in->t, ck, macro_value(in->f, ck->name));
}

static bool
m_authenticated(const check_in *in, const check *ck)
{
	const char *auth = macro_value(in->f, AUTH_MACRO);

	(void)ck;
	return auth != NULL && *auth != '\0';
}

static bool
m_rcpt_count(const check_in *in, const check *ck)
{
	return compare(ck->op, (double)in->f->rcpt_count, (double)ck->n);
}

static bool
m_header(const check_in *in, const check *ck)
{
	return any_header(in->t, ck, in->stage, in->f);
}

static bool
m_stress(const check_in *in, const check *ck)
{
	(void)ck;
	return in->f->stressed;
}

static bool
m_any(const check_in *in, const check *ck)
{
	(void)in;
	(void)ck;
	return true;
}

/* What the DNS rows look up. */

/* s (n bytes) without a final dot, if it is a domain name. */
static const char *
domain_subject(strbuf *buf, const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (!names_domain(s, n))
		return NULL;
	strbuf_reset(buf);
	strbuf_append(buf, s, n);
	return strbuf_str(buf);
}

static const char *
s_client_addr(const rules_facts *f, strbuf *buf)
{
	addr_ip ip;

	(void)buf;
	return f->client_addr != NULL && addr_ip_parse(f->client_addr, &ip)
	               ? f->client_addr
	               : NULL;
}

/* An address literal is no name to look up. */
static const char *
s_helo(const rules_facts *f, strbuf *buf)
{
	if (f->helo == NULL || addr_is_literal(f->helo))
		return NULL;
	return domain_subject(buf, f->helo, strlen(f->helo));
}

static const char *
s_sender_domain(const rules_facts *f, strbuf *buf)
{
	const char *s = f->sender, *at;
	size_t n;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s++;
		n -= 2;
	}
	for (at = s + n; at > s && at[-1] != '@'; at--)
		;
	if (at == s)
		return NULL; /* the null sender, or no domain */
	return domain_subject(buf, at, n - (size_t)(at - s));
}

/* Postfix's "unknown" and "[addr]" are names that did not verify. */
static const char *
s_client_name(const rules_facts *f, strbuf *buf)
{
	const char *s = f->client_name;

	if (s == NULL || s[0] == '[' || strcasecmp(s, "unknown") == 0)
		return NULL;
	return domain_subject(buf, s, strlen(s));
}

/* What the scanner rows match in a result (SCAN_OK). */

static bool
sm_virus(const rules_table *t, const scan_result *r, const check *ck)
{
	if (!r->infected)
		return false;
	if (ck->presence)
		return true;
	for (size_t i = 0; i < ck->n_values; i++)
		if (rules_re_match(t, ck->v[i].re, r->virus.s, r->virus.len))
			return true;
	return false;
}

static bool
sm_score(const rules_table *t, const scan_result *r, const check *ck)
{
	(void)t;
	return compare(ck->op, r->score, ck->x);
}

/* spam_rule, rspamd_symbol: a name exactly (scanners' names are upper case
   by custom, compared with case) or a /regex/. */
static bool
sm_symbol(const rules_table *t, const scan_result *r, const check *ck)
{
	for (size_t k = 0; k < r->nsymbols; k++)
		if (any_string(t, ck, r->symbols[k]))
			return true;
	return false;
}

static bool
sm_spam(const rules_table *t, const scan_result *r, const check *ck)
{
	(void)t;
	(void)ck;
	return r->spam;
}

/* rspamd_action: the words as rspamd writes them ("soft reject"), any case. */
static bool
sm_action(const rules_table *t, const scan_result *r, const check *ck)
{
	for (size_t i = 0; i < ck->n_values; i++) {
		const value *v = &ck->v[i];

		if (v->kind == V_REGEX ? rules_re_match(t, v->re, r->action, strlen(r->action))
		                       : strcasecmp(r->action, v->s) == 0)
			return true;
	}
	return false;
}

/* ---- the table ---- */

#define ADDRESS_EXPECTS "user@domain, user@, @domain, .domain, /regex/ or <>"
#define ZONE_EXPECTS "a zone, optionally with =FILTER (zen.example.org=127.0.0.[2..11])"

/* The rows of a cheap check and of a DNS check; the rest are written out. */
#define CHEAP(name, syntax, first, expects, fact, parse, match, doc)                     \
	{                                                                                \
		name, syntax, first, STAGE_EOM, expects, 0, true, false, false, fact,    \
		        parse, match, NULL, DNSBL_IP, NULL, doc, NO_SCAN                 \
	}
#define DNS(name, first, subject, qkind, rbl_class, doc)                                 \
	{                                                                                \
		name, CS_VALUES, first, STAGE_EOM, ZONE_EXPECTS, RULES_COST_DNSBL,       \
		        false, false, false, RULES_NO_FACT, parse_zone, NULL, subject,   \
		        qkind, rbl_class, doc, NO_SCAN                                   \
	}

/* Not a scanner's row. */
#define NO_SCAN SCAN_N, NULL
/* A scanner's row: at eom only, its cost class, its result's matcher. */
#define SCAN(name, syntax, kind, expects, parse, match, doc)                             \
	{                                                                                \
		name, syntax, STAGE_EOM, STAGE_EOM, expects, RULES_COST_OF_SCAN(kind),   \
		        true, false, false, RULES_NO_FACT, parse, NULL, NULL, DNSBL_IP,  \
		        NULL, doc, kind, match                                           \
	}

/*
 * In the order the manual lists them. The stages: from the first that can
 * see the fact to eom (recipient: rcpt only; header: from header on).
 */
const check_desc rules_checks[] = {
        {"client", CS_VALUES, STAGE_CONNECT, STAGE_EOM,
         "an address or network (192.0.2.0/24, [2001:db8::]/32)", 0, false, false, false,
         FACT(client_addr), parse_client, m_client, NULL, DNSBL_IP, NULL,
         "the client address is in a network", NO_SCAN},
        CHEAP("client_name", CS_VALUES, STAGE_CONNECT,
              "a name, .domain, /regex/ or unknown", FACT(client_name), parse_client_name,
              m_name, "the client's verified host name"),
        CHEAP("daemon_name", CS_VALUES, STAGE_CONNECT, "a service name or /regex/",
              FACT(daemon_name), parse_string, m_string,
              "Postfix's {daemon_name}: milter_macro_daemon_name of the service"),
        CHEAP("helo", CS_VALUES, STAGE_HELO, "a name, .domain, /regex/ or ip_literal",
              FACT(helo), parse_helo, m_name, "the HELO/EHLO name"),
        CHEAP("sender", CS_VALUES, STAGE_MAIL, ADDRESS_EXPECTS, FACT(sender),
              parse_address, m_address, "the envelope sender"),
        {"recipient", CS_VALUES, STAGE_RCPT, STAGE_RCPT, ADDRESS_EXPECTS, 0, true, false,
         false, FACT(recipient), parse_address, m_address, NULL, DNSBL_IP, NULL,
         "the current recipient", NO_SCAN},
        CHEAP("authenticated", CS_NONE, STAGE_CONNECT, NULL, RULES_NO_FACT, NULL,
              m_authenticated, "the client authenticated ({auth_authen} is set)"),
        {"macro", CS_MACRO, STAGE_CONNECT, STAGE_EOM, "a value or /regex/", 0, true, true,
         false, RULES_NO_FACT, parse_string, m_macro, NULL, DNSBL_IP, NULL,
         "a macro the MTA sent", NO_SCAN},
        CHEAP("rcpt_count", CS_COUNT, STAGE_RCPT, "OP N", RULES_NO_FACT, NULL,
              m_rcpt_count, "the recipients so far, the current one included"),
        {"header", CS_NAMED, STAGE_HEADER, STAGE_EOM, "a /regex/", 0, true, false, true,
         RULES_NO_FACT, NULL, m_header, NULL, DNSBL_IP, NULL,
         "the current header; from eoh on, any header", NO_SCAN},
        DNS("dnsbl", STAGE_CONNECT, s_client_addr, DNSBL_IP, "Client host",
            "the client address is listed in a DNSBL"),
        DNS("rhsbl_helo", STAGE_HELO, s_helo, DNSBL_NAME, "Helo command",
            "the HELO name is listed in an RHSBL"),
        DNS("rhsbl_sender", STAGE_MAIL, s_sender_domain, DNSBL_NAME, "Sender address",
            "the sender's domain is listed in an RHSBL"),
        DNS("rhsbl_client", STAGE_CONNECT, s_client_name, DNSBL_NAME, "Client host",
            "the client's verified name is listed in an RHSBL"),
        {"body", CS_VALUES, STAGE_BODY, STAGE_EOM, "a /regex/", RULES_COST_BODY, false,
         false, false, RULES_NO_FACT, parse_body, NULL, NULL, DNSBL_IP, NULL,
         "a line of the body scanned so far", NO_SCAN},
        SCAN("virus", CS_OPTIONAL, SCAN_CLAMD, "a /regex/ for the signature name",
             NULL, sm_virus,
             "clamd found a virus (no values: any; /regex/: its signature's name)"),
        SCAN("spam", CS_NONE, SCAN_SPAMD, NULL, NULL, sm_spam,
             "spamd says spam (its score reached its threshold)"),
        SCAN("spam_score", CS_SCORE, SCAN_SPAMD, "OP NUMBER", NULL, sm_score,
             "spamd's score against a number (7.5, -1)"),
        SCAN("spam_rule", CS_VALUES, SCAN_SPAMD, "a rule name or /regex/", parse_string,
             sm_symbol, "a SpamAssassin rule that hit (GTUBE, URIBL_BLACK)"),
        SCAN("rspamd_action", CS_VALUES, SCAN_RSPAMD,
             "an rspamd action (\"reject\", \"soft reject\", \"add header\", greylist, ...: quote reject) or /regex/",
             parse_string, sm_action, "rspamd's action"),
        SCAN("rspamd_score", CS_SCORE, SCAN_RSPAMD, "OP NUMBER", NULL, sm_score,
             "rspamd's score against a number"),
        SCAN("rspamd_symbol", CS_VALUES, SCAN_RSPAMD, "a symbol name or /regex/",
             parse_string, sm_symbol, "an rspamd symbol that matched (GTUBE)"),
        CHEAP("stress", CS_NONE, STAGE_CONNECT, NULL, RULES_NO_FACT, NULL, m_stress,
              "the session is stressed"),
        CHEAP("any", CS_NONE, STAGE_CONNECT, NULL, RULES_NO_FACT, NULL, m_any, "always"),
        {"history", CS_VALUES, STAGE_CONNECT, STAGE_EOM, "known or unknown", 0, false, false,
         false, FACT(history), parse_history, m_string, NULL, DNSBL_IP, NULL,
         "the client history's verdict (see Client history); unknown without a store", NO_SCAN},
};

const unsigned rules_n_checks = sizeof rules_checks / sizeof rules_checks[0];
_Static_assert(sizeof rules_checks / sizeof rules_checks[0] <= RULES_MAX_CHECKS,
               "RULES_MAX_CHECKS is too small for the check table");

static const char *const syntax_words[] = {
        [CS_NONE] = "",
        [CS_VALUES] = "VALUE...",
        [CS_NAMED] = "NAME VALUE...",
        [CS_MACRO] = "NAME [VALUE...]",
        [CS_COUNT] = "OP N",
        [CS_OPTIONAL] = "[VALUE...]",
        [CS_SCORE] = "OP NUMBER",
};

void
rules_each_check(rules_check_row_fn fn, void *ctx)
{
	for (unsigned i = 0; i < rules_n_checks; i++) {
		const check_desc *d = &rules_checks[i];

		fn(ctx, d->name, syntax_words[d->syntax], d->first, d->last, d->cost,
		   d->doc);
	}
}

int
rules_check_find(const char *word)
{
	for (unsigned i = 0; i < rules_n_checks; i++)
		if (strcmp(rules_checks[i].name, word) == 0)
			return (int)i;
	return -1;
}
