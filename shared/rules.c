/* rules - the stress-conditional rule table; see rules.h. */
#include "config.h"

#include "rules.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "regex.h"

#include "addr.h"
#include "budget.h"
#include "names.h"
#include "textfile.h"

/*
 * Hostile headers meet administrators' regexes here: bound the work one
 * match may do, well below PCRE2's default of ten million.
 */
#define RE_MATCH_LIMIT 1000000

#define NAME_MAX_LEN 64

/* Postfix sends it with MAIL FROM when the client authenticated. */
#define AUTH_MACRO "{auth_authen}"

/* Names. */

static const char *const action_names[] = {
        "accept", "continue", "tempfail", "reject", "discard", "quarantine", "tag", "log",
};

#define N_ACTIONS (sizeof action_names / sizeof action_names[0])

#define ACTION_LIST "accept, continue, tempfail, reject, discard, quarantine, tag or log"

enum check_kind {
	K_CLIENT,
	K_CLIENT_NAME,
	K_HELO,
	K_SENDER,
	K_RECIPIENT,
	K_AUTHENTICATED,
	K_MACRO,
	K_RCPT_COUNT,
	K_HEADER,
	K_DNSBL,
	K_RHSBL_HELO,
	K_RHSBL_SENDER,
	K_RHSBL_CLIENT,
	K_BODY,
	K_STRESS,
	K_ANY,
	K_N_KINDS
};

#define ZONE_EXPECTS "a zone, optionally with =FILTER (zen.example.org=127.0.0.[2..11])"

/* What each kind is called, what it takes, and from which stages it can see. */
static const struct kind_desc {
	const char *name;
	bool values; /* takes VALUE... */
	enum stage first, last;
	const char *expects; /* for "expected ..." */
} kinds[K_N_KINDS] = {
        [K_CLIENT] = {"client", true, STAGE_CONNECT, STAGE_EOM,
                      "an address or network (192.0.2.0/24, [2001:db8::]/32)"},
        [K_CLIENT_NAME] = {"client_name", true, STAGE_CONNECT, STAGE_EOM,
                           "a name, .domain, /regex/ or unknown"},
        [K_HELO] = {"helo", true, STAGE_HELO, STAGE_EOM,
                    "a name, .domain, /regex/ or ip_literal"},
        [K_SENDER] = {"sender", true, STAGE_MAIL, STAGE_EOM,
                      "user@domain, user@, @domain, .domain, /regex/ or <>"},
        [K_RECIPIENT] = {"recipient", true, STAGE_RCPT, STAGE_RCPT,
                         "user@domain, user@, @domain, .domain, /regex/ or <>"},
        [K_AUTHENTICATED] = {"authenticated", false, STAGE_CONNECT, STAGE_EOM, NULL},
        [K_MACRO] = {"macro", true, STAGE_CONNECT, STAGE_EOM, "a value or /regex/"},
        [K_RCPT_COUNT] = {"rcpt_count", false, STAGE_RCPT, STAGE_EOM, NULL},
        [K_HEADER] = {"header", true, STAGE_HEADER, STAGE_EOM, "a /regex/"},
        [K_DNSBL] = {"dnsbl", true, STAGE_CONNECT, STAGE_EOM, ZONE_EXPECTS},
        [K_RHSBL_HELO] = {"rhsbl_helo", true, STAGE_HELO, STAGE_EOM, ZONE_EXPECTS},
        [K_RHSBL_SENDER] = {"rhsbl_sender", true, STAGE_MAIL, STAGE_EOM, ZONE_EXPECTS},
        [K_RHSBL_CLIENT] = {"rhsbl_client", true, STAGE_CONNECT, STAGE_EOM, ZONE_EXPECTS},
        [K_BODY] = {"body", true, STAGE_BODY, STAGE_EOM, "a /regex/"},
        [K_STRESS] = {"stress", false, STAGE_CONNECT, STAGE_EOM, NULL},
        [K_ANY] = {"any", false, STAGE_CONNECT, STAGE_EOM, NULL},
};

enum cmp_op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE };

static const char *const op_names[] = {"<", "<=", ">", ">=", "==", "!="};

#define N_OPS (sizeof op_names / sizeof op_names[0])

#define MODE_NORMAL 1u
#define MODE_STRESS 2u
#define MODE_BOTH (MODE_NORMAL | MODE_STRESS)

static const char *const default_text[] = {
        [RULES_TEMPFAIL] = "Service unavailable, try again later",
        [RULES_REJECT] = "Message rejected",
};

const char *const rules_template_vars[] = {
        "client_addr", "client_name", "helo_name", "sender", "recipient",
        "queue_id",    "rule",        "stage",     "stress", "rbl_domain",
        "rbl_what",    "rbl_reason",  "rbl_class", NULL,
};

/* Parsed rules: tokens as written, before expansion. */

typedef struct rtoken {
	char *text; /* unquoted and unescaped; NULL: absent */
	char *raw;  /* quoted: the bytes between the quotes, as written */
	size_t col; /* 1-based column of the first byte in the logical line */
	bool quoted;
	bool regex; /* /.../flags */
} rtoken;

typedef struct pcheck {
	enum check_kind kind;
	bool negate;
	size_t col;     /* of the kind */
	enum cmp_op op; /* rcpt_count */
	rtoken arg;     /* macro NAME, header NAME, rcpt_count N */
	rtoken *values;
	size_t n_values;
} pcheck;

typedef struct paction {
	enum rules_action_kind kind, would;
	size_t col;
	rtoken code, ecode, tag, text;
} paction;

typedef struct prule {
	char *file;
	unsigned line;
	char *name;
	enum stage stage;
	unsigned mode;
	bool mode_given;
	pcheck *checks;
	size_t n_checks;
	paction action;
} prule;

struct rules_source {
	prule **v;
	size_t n;
};

/* Compiled rules. */

enum value_kind {
	V_CIDR,   /* client */
	V_EXACT,  /* names: case-insensitive */
	V_SUFFIX, /* .domain: subdomains only */
	V_REGEX,
	V_UNKNOWN,    /* client_name unknown */
	V_IP_LITERAL, /* helo ip_literal */
	V_NULL,       /* <> */
	V_ADDRESS,    /* user@domain */
	V_LOCAL,      /* user@ */
	V_DOMAIN,     /* @domain */
	V_STRING,     /* macro: case-sensitive */
	V_ZONE,       /* dnsbl, rhsbl_*: s the zone in lower case, maybe a filter */
	V_BODY,       /* body: s the /regex/flags, body_idx its place in the set */
};

typedef struct value {
	enum value_kind kind;
	char *s; /* V_EXACT V_SUFFIX (with its dot) V_ADDRESS V_LOCAL V_DOMAIN V_STRING */
	size_t len;
	addr_cidr cidr;
	pcre2_code *re;
	dnsbl_filter *filter; /* V_ZONE; NULL: any A record lists */
	size_t body_idx;      /* V_BODY */
} value;

typedef struct check {
	enum check_kind kind;
	bool negate;
	enum cmp_op op;
	unsigned long long n;
	char *name;    /* macro: as asked of the MTA; header: NULL for '*' */
	bool presence; /* macro written without values: set and not empty */
	value *v;
	size_t n_values;
} check;

struct rule {
	const rules_table *table;
	char *name;
	enum stage stage;
	unsigned mode;  /* MODE_*: a "stress" rule runs expensive checks under stress */
	unsigned costs; /* RULES_COST_* of its checks */
	check *checks;
	size_t n_checks;
	rules_action action;
	char *text;     /* owned by action.text */
	char *tag_name; /* owned by action.tag_name */
	char *shown;    /* the rules_dump() line, without the newline */
};

struct rules_table {
	rule **v;
	size_t n;
	rule **stage_v[STAGE_N];
	size_t stage_n[STAGE_N];
	bool may_reply[STAGE_N];
	const char **macros[STAGE_N]; /* NULL-terminated; names owned by rules */
	size_t n_macros[STAGE_N];
	bool need_header_set;
	bool stressed;
	rules_var_fn param;
	void *param_ctx;
	pcre2_match_context *mctx;
	char **body_pat; /* the body regexes, each once, in body_idx order */
	size_t n_body;
	bodyscan_set *body;
};

/* Small helpers. */

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Room for element n of an array of n: doubles at powers of two. */
static void *
grow(void *v, size_t n, size_t size)
{
	if (n > 0 && (n & (n - 1)) != 0)
		return v;
	if (n > SIZE_MAX / 2 / size)
		ms_panic("array too large");
	return ms_xrealloc(v, (n > 0 ? 2 * n : 1) * size);
}

static bool
word_is(const rtoken *t, const char *word)
{
	return t->text != NULL && !t->quoted && !t->regex && strcmp(t->text, word) == 0;
}

static int
find_name(const char *const *names, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], word) == 0)
			return (int)i;
	return -1;
}

static int
action_of(const rtoken *t)
{
	if (t->text == NULL || t->quoted || t->regex)
		return -1;
	return find_name(action_names, N_ACTIONS, t->text);
}

static int
kind_of(const char *word)
{
	int i;

	for (i = 0; i < K_N_KINDS; i++)
		if (strcmp(kinds[i].name, word) == 0)
			return i;
	return -1;
}

/* Ends a check's values: an action word or "and", unquoted. */
static bool
ends_values(const rtoken *t)
{
	return action_of(t) >= 0 || word_is(t, "and");
}

static void
rtoken_free(rtoken *t)
{
	free(t->text);
	free(t->raw);
	memset(t, 0, sizeof *t);
}

/* The column of byte offset (1-based) of t->text in the logical line. */
static size_t
token_column(const rtoken *t, size_t offset)
{
	size_t i = 0, o;

	if (offset == 0)
		return t->col;
	if (!t->quoted || t->raw == NULL)
		return t->col + offset - 1;
	/* Walk the escapes: \" and \\ are two bytes as written, one in text. */
	for (o = 1; o < offset && t->raw[i] != '\0'; o++)
		i += t->raw[i] == '\\' && (t->raw[i + 1] == '"' || t->raw[i + 1] == '\\')
		             ? 2
		             : 1;
	return t->col + 1 + i;
}

/* The lexer: one logical line, token by token. */

typedef struct lexer {
	const char *line;
	const char *p;
	const char *file;
	unsigned lineno;
	rules_report_fn report;
	void *ctx;
	bool failed;
} lexer;

static void lex_error(lexer *lx, size_t col, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
lex_error(lexer *lx, size_t col, const char *fmt, ...)
{
	strbuf msg = STRBUF_INIT;
	va_list ap;

	if (lx->failed)
		return;
	lx->failed = true;
	va_start(ap, fmt);
	strbuf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (lx->report != NULL)
		lx->report(lx->ctx, lx->file, lx->lineno, col, strbuf_str(&msg));
	strbuf_free(&msg);
}

static size_t
col_of(const lexer *lx, const char *p)
{
	return (size_t)(p - lx->line) + 1;
}

static void
skip_blanks(lexer *lx)
{
	while (is_blank(*lx->p))
		lx->p++;
}

/* The close that balances the open at p[0], or NULL. */
static const char *
balanced(const char *p)
{
	char open = *p, close = open == '{' ? '}' : ')';
	int level = 0;

	for (; *p; p++) {
		if (*p == open)
			level++;
		else if (*p == close && --level == 0)
			return p;
	}
	return NULL;
}

static bool
lex_quoted(lexer *lx, rtoken *t)
{
	const char *start = lx->p + 1, *q;
	strbuf text = STRBUF_INIT;

	for (q = start; *q != '"'; q++) {
		if (*q == '\0') {
			strbuf_free(&text);
			lex_error(lx, col_of(lx, lx->p),
			          "missing '\"' to close this string");
			return false;
		}
		if (*q == '\\' && (q[1] == '"' || q[1] == '\\'))
			q++;
		strbuf_putc(&text, *q);
	}
	if (q[1] != '\0' && !is_blank(q[1])) {
		strbuf_free(&text);
		lex_error(lx, col_of(lx, q + 1),
		          "expected white space after the closing '\"'");
		return false;
	}
	t->quoted = true;
	t->text = strbuf_detach(&text);
	t->raw = ms_xstrndup(start, (size_t)(q - start));
	lx->p = q + 1;
	return true;
}

static bool
lex_regex(lexer *lx, rtoken *t)
{
	const char *q;

	for (q = lx->p + 1; *q != '/'; q++) {
		if (*q == '\0') {
			lex_error(lx, col_of(lx, lx->p),
			          "missing '/' to close this regex");
			return false;
		}
		if (*q == '\\' && q[1] != '\0')
			q++;
	}
	for (q++; *q != '\0' && !is_blank(*q); q++) {
		if (strchr("imsx", *q) == NULL) {
			if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))
				lex_error(
				        lx, col_of(lx, q),
				        "unknown regex flag '%c': expected i, m, s or x",
				        *q);
			else
				lex_error(lx, col_of(lx, q),
				          "expected white space after the regex's "
				          "closing '/'");
			return false;
		}
	}
	t->regex = true;
	t->text = ms_xstrndup(lx->p, (size_t)(q - lx->p));
	lx->p = q;
	return true;
}

static void
lex_word(lexer *lx, rtoken *t)
{
	const char *q = lx->p, *close;

	while (*q != '\0' && !is_blank(*q)) {
		/* A ${...} keeps its spaces: ${stress?{a b}:{c}} is one token. */
		if (q[0] == '$' && (q[1] == '{' || q[1] == '(') &&
		    (close = balanced(q + 1)) != NULL) {
			q = close + 1;
			continue;
		}
		q++;
	}
	t->text = ms_xstrndup(lx->p, (size_t)(q - lx->p));
	lx->p = q;
}

/* 1: a token in t; 0: end of line; -1: error (reported). */
static int
lex_next(lexer *lx, rtoken *t)
{
	memset(t, 0, sizeof *t);
	skip_blanks(lx);
	if (*lx->p == '\0')
		return 0;
	t->col = col_of(lx, lx->p);
	if (*lx->p == '"')
		return lex_quoted(lx, t) ? 1 : -1;
	if (*lx->p == '/')
		return lex_regex(lx, t) ? 1 : -1;
	lex_word(lx, t);
	return 1;
}

/* The next token without consuming it; see lex_next(). */
static int
lex_peek(lexer *lx, rtoken *t)
{
	const char *save = lx->p;
	int rc = lex_next(lx, t);

	lx->p = save;
	return rc;
}

static bool
at_end(lexer *lx)
{
	skip_blanks(lx);
	return *lx->p == '\0';
}

/* TEXT: the rest of the line, one quoted string or the words as written. */
static bool
lex_text(lexer *lx, rtoken *t)
{
	memset(t, 0, sizeof *t);
	skip_blanks(lx);
	if (*lx->p == '\0')
		return true;
	t->col = col_of(lx, lx->p);
	if (*lx->p == '"') {
		if (!lex_quoted(lx, t))
			return false;
		if (!at_end(lx)) {
			lex_error(lx, col_of(lx, lx->p),
			          "text after the quoted TEXT: quote all of it or none");
			rtoken_free(t);
			return false;
		}
		return true;
	}
	t->text = ms_xstrdup(lx->p);
	lx->p += strlen(lx->p);
	return true;
}

/* The parser: a logical line into a prule. */

static void
paction_free(paction *a)
{
	rtoken_free(&a->code);
	rtoken_free(&a->ecode);
	rtoken_free(&a->tag);
	rtoken_free(&a->text);
}

static void
prule_free(prule *r)
{
	size_t i, j;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_checks; i++) {
		rtoken_free(&r->checks[i].arg);
		for (j = 0; j < r->checks[i].n_values; j++)
			rtoken_free(&r->checks[i].values[j]);
		free(r->checks[i].values);
	}
	free(r->checks);
	paction_free(&r->action);
	free(r->file);
	free(r->name);
	free(r);
}

static bool
valid_rule_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789_.:-") == n;
}

/* Is the unquoted token a CODE or ECODE? A digit first, or one ${...}. */
static bool
looks_like_code(const rtoken *t)
{
	const char *close;

	if (t->text == NULL || t->quoted || t->regex)
		return false;
	if (is_digit(t->text[0]))
		return true;
	if (t->text[0] != '$' || (t->text[1] != '{' && t->text[1] != '('))
		return false;
	close = balanced(t->text + 1);
	return close != NULL && close[1] == '\0';
}

static bool parse_action(lexer *lx, prule *r, rtoken *word, bool inner);

/* Is the next token a CODE or ECODE? Only a bare word can be one. */
static bool
code_follows(lexer *lx)
{
	rtoken t;
	bool yes;

	skip_blanks(lx);
	/* Not lex_peek() on a quote or slash: a TEXT such as "/tmp is full" is no regex.
	 */
	if (!is_digit(*lx->p) && *lx->p != '$')
		return false;
	lex_peek(lx, &t);
	yes = looks_like_code(&t);
	rtoken_free(&t);
	return yes;
}

/* CODE and ECODE, if the next tokens are such; then the TEXT. */
static bool
parse_reply(lexer *lx, paction *a)
{
	if (code_follows(lx)) {
		lex_next(lx, &a->code);
		if (code_follows(lx))
			lex_next(lx, &a->ecode);
	}
	return lex_text(lx, &a->text);
}

static bool
parse_action_args(lexer *lx, prule *r, paction *a)
{
	const char *what = action_names[a->would];

	switch (a->would) {
	case RULES_DISCARD:
		if (stage_get(r->stage)->session_wide) {
			lex_error(lx, a->col,
			          "discard is not possible at %s (Postfix refuses it "
			          "before MAIL FROM); use reject or tempfail",
			          stage_name(r->stage));
			return false;
		}
		/* FALLTHROUGH */
	case RULES_ACCEPT:
	case RULES_CONTINUE:
		if (!at_end(lx)) {
			lex_error(lx, col_of(lx, lx->p), "unexpected text after '%s'",
			          what);
			return false;
		}
		return true;
	case RULES_TEMPFAIL:
	case RULES_REJECT:
		return parse_reply(lx, a);
	case RULES_QUARANTINE:
		if (!lex_text(lx, &a->text))
			return false;
		if (a->text.text == NULL) {
			lex_error(lx, col_of(lx, lx->p),
			          "quarantine needs a TEXT: the reason");
			return false;
		}
		return true;
	case RULES_TAG:
		if (lex_next(lx, &a->tag) <= 0 || !lex_text(lx, &a->text)) {
			lex_error(lx, col_of(lx, lx->p),
			          "tag needs a header NAME and a TEXT");
			return false;
		}
		if (a->text.text == NULL) {
			lex_error(lx, col_of(lx, lx->p),
			          "tag needs a TEXT after the header name");
			return false;
		}
		return true;
	case RULES_LOG:
		break;
	}
	ms_panic("unknown action");
	return false;
}

/* word is an action name; the rest of the line is its arguments. */
static bool
parse_action(lexer *lx, prule *r, rtoken *word, bool inner)
{
	paction *a = &r->action;
	int kind = action_of(word);
	rtoken next;
	int rc;

	if (kind == RULES_LOG) {
		if (inner) {
			lex_error(lx, word->col, "log takes an action other than log");
			return false;
		}
		if ((rc = lex_next(lx, &next)) < 0)
			return false;
		if (rc == 0 || action_of(&next) < 0) {
			lex_error(lx, rc == 0 ? col_of(lx, lx->p) : next.col,
			          "log needs the action it pretends to take (log reject "
			          "...)");
			rtoken_free(&next);
			return false;
		}
		a->kind = RULES_LOG;
		a->col = word->col;
		rc = parse_action(lx, r, &next, true);
		rtoken_free(&next);
		return rc;
	}
	if (!inner)
		a->kind = (enum rules_action_kind)kind;
	a->would = (enum rules_action_kind)kind;
	a->col = word->col;
	return parse_action_args(lx, r, a);
}

static void
list_kinds(strbuf *b)
{
	int i;

	for (i = 0; i < K_N_KINDS; i++)
		strbuf_printf(b, "%s%s",
		              i == 0               ? ""
		              : i == K_N_KINDS - 1 ? " or "
		                                   : ", ",
		              kinds[i].name);
}

static bool
bad_check(lexer *lx, const rtoken *t)
{
	strbuf all = STRBUF_INIT;

	list_kinds(&all);
	if (action_of(t) >= 0)
		lex_error(lx, t->col,
		          "expected a check before '%s' (write 'any' to match every "
		          "session)",
		          t->text);
	else
		lex_error(lx, t->col, "unknown check '%s': expected %s", t->text,
		          strbuf_str(&all));
	strbuf_free(&all);
	return false;
}

static bool
parse_values(lexer *lx, pcheck *c)
{
	rtoken t;
	int rc;

	while ((rc = lex_peek(lx, &t)) > 0 && !ends_values(&t)) {
		rtoken_free(&t);
		c->values = grow(c->values, c->n_values, sizeof *c->values);
		lex_next(lx, &c->values[c->n_values++]);
	}
	if (rc < 0)
		return false;
	if (c->n_values == 0) {
		lex_error(lx, rc > 0 ? t.col : col_of(lx, lx->p), "%s: expected %s",
		          kinds[c->kind].name, kinds[c->kind].expects);
		rtoken_free(&t);
		return false;
	}
	rtoken_free(&t);
	return true;
}

static bool
parse_count(lexer *lx, pcheck *c)
{
	rtoken t;
	int op, rc;

	if ((rc = lex_next(lx, &t)) <= 0 ||
	    (op = find_name(op_names, N_OPS, t.quoted ? "" : t.text)) < 0) {
		if (rc >= 0)
			lex_error(lx, rc > 0 ? t.col : col_of(lx, lx->p),
			          "rcpt_count: expected <, <=, >, >=, == or != and a "
			          "number");
		rtoken_free(&t);
		return false;
	}
	rtoken_free(&t);
	c->op = (enum cmp_op)op;
	if ((rc = lex_next(lx, &c->arg)) <= 0 || ends_values(&c->arg)) {
		if (rc >= 0)
			lex_error(lx, rc > 0 ? c->arg.col : col_of(lx, lx->p),
			          "rcpt_count: expected a number after '%s'",
			          op_names[op]);
		return false;
	}
	return true;
}

/* After the kind: its operator, name and values. */
static bool
parse_check_args(lexer *lx, pcheck *c)
{
	int rc;

	if (c->kind == K_RCPT_COUNT)
		return parse_count(lx, c);
	if (c->kind == K_MACRO || c->kind == K_HEADER) {
		if ((rc = lex_next(lx, &c->arg)) <= 0 || c->arg.regex) {
			if (rc >= 0)
				lex_error(lx, rc > 0 ? c->arg.col : col_of(lx, lx->p),
				          "%s: expected a %s name first",
				          kinds[c->kind].name,
				          c->kind == K_MACRO ? "macro" : "header (or *)");
			return false;
		}
		if (c->kind == K_MACRO) {
			rtoken t;

			/* Without values: the macro is set. */
			if ((rc = lex_peek(lx, &t)) < 0)
				return false;
			if (rc == 0 || ends_values(&t)) {
				rtoken_free(&t);
				return true;
			}
			rtoken_free(&t);
		}
	}
	if (kinds[c->kind].values)
		return parse_values(lx, c);
	return true;
}

static bool
parse_check(lexer *lx, prule *r, rtoken *t)
{
	pcheck *c;
	const char *word = t->text;
	bool negate = false;
	int kind;

	if (word_is(t, "!") || word_is(t, "not")) {
		rtoken_free(t);
		if (lex_next(lx, t) <= 0) {
			lex_error(lx, col_of(lx, lx->p),
			          "expected a check after the negation");
			return false;
		}
		negate = true;
		word = t->text;
	} else if (!t->quoted && !t->regex && word[0] == '!' && word[1] != '\0') {
		negate = true;
		word++;
	}
	if (t->quoted || t->regex || (kind = kind_of(word)) < 0)
		return bad_check(lx, t);
	if (r->stage < kinds[kind].first || r->stage > kinds[kind].last) {
		if (kinds[kind].first == kinds[kind].last)
			lex_error(lx, t->col, "%s cannot be seen at %s: only at %s",
			          kinds[kind].name, stage_name(r->stage),
			          stage_name(kinds[kind].first));
		else
			lex_error(lx, t->col,
			          "%s cannot be seen at %s: it is known from %s on",
			          kinds[kind].name, stage_name(r->stage),
			          stage_name(kinds[kind].first));
		return false;
	}
	r->checks = grow(r->checks, r->n_checks, sizeof *r->checks);
	c = &r->checks[r->n_checks++];
	memset(c, 0, sizeof *c);
	c->kind = (enum check_kind)kind;
	c->negate = negate;
	c->col = t->col;
	if (!parse_check_args(lx, c))
		return false;
	if (!kinds[kind].values && kind != K_RCPT_COUNT) {
		rtoken next;
		int rc = lex_peek(lx, &next);
		bool bad = rc < 0 || (rc > 0 && !ends_values(&next));

		if (rc > 0 && bad)
			lex_error(lx, next.col, "%s takes no values", kinds[kind].name);
		rtoken_free(&next);
		if (bad)
			return false;
	}
	return true;
}

/* "stress" after the stage is the mode, unless a check would be missing. */
static bool
stress_is_mode(lexer *lx)
{
	const char *save = lx->p;
	rtoken t;
	int rc;

	lex_next(lx, &t); /* "stress" itself */
	rtoken_free(&t);
	rc = lex_peek(lx, &t);
	lx->p = save;
	if (rc <= 0) {
		rtoken_free(&t);
		return rc < 0; /* an error there is reported anyway */
	}
	rc = !ends_values(&t);
	rtoken_free(&t);
	return rc;
}

/* MODE and name=NAME, in either order. */
static bool
parse_prefix(lexer *lx, prule *r)
{
	rtoken t;
	int rc;

	while ((rc = lex_peek(lx, &t)) > 0 && !t.quoted && !t.regex) {
		if ((word_is(&t, "normal") || word_is(&t, "both") ||
		     (word_is(&t, "stress") && stress_is_mode(lx))) &&
		    !r->mode_given) {
			r->mode = word_is(&t, "normal")   ? MODE_NORMAL
			          : word_is(&t, "stress") ? MODE_STRESS
			                                  : MODE_BOTH;
			r->mode_given = true;
		} else if (strncmp(t.text, "name=", 5) == 0 && r->name == NULL) {
			if (!valid_rule_name(t.text + 5)) {
				lex_error(lx, t.col + 5,
				          "bad rule name '%s': expected 1 to %d letters, "
				          "digits, '_', '.', ':' or '-'",
				          t.text + 5, NAME_MAX_LEN);
				rtoken_free(&t);
				return false;
			}
			r->name = ms_xstrdup(t.text + 5);
		} else {
			break;
		}
		rtoken_free(&t);
		lex_next(lx, &t);
		rtoken_free(&t);
	}
	rtoken_free(&t);
	return rc >= 0;
}

static bool
parse_rule(lexer *lx, prule *r)
{
	rtoken t;
	int rc;

	if (!parse_prefix(lx, r))
		return false;
	for (;;) {
		if ((rc = lex_next(lx, &t)) <= 0) {
			if (rc == 0)
				lex_error(lx, col_of(lx, lx->p),
				          "expected a check and an action (any reject, "
				          "client 192.0.2.1 accept, ...)");
			return false;
		}
		if (!parse_check(lx, r, &t))
			break;
		rtoken_free(&t);
		if ((rc = lex_next(lx, &t)) <= 0) {
			if (rc == 0)
				lex_error(lx, col_of(lx, lx->p),
				          "expected 'and' or an action (" ACTION_LIST
				          ")");
			return false;
		}
		if (word_is(&t, "and")) {
			rtoken_free(&t);
			continue;
		}
		if (action_of(&t) < 0) {
			lex_error(lx, t.col,
			          "expected 'and' or an action (" ACTION_LIST
			          "), not '%s'",
			          t.text);
			break;
		}
		rc = parse_action(lx, r, &t, false);
		rtoken_free(&t);
		return rc;
	}
	rtoken_free(&t);
	return false;
}

rules_source *
rules_source_create(void)
{
	return ms_xcalloc(1, sizeof(rules_source));
}

void
rules_source_free(rules_source *src)
{
	size_t i;

	if (src == NULL)
		return;
	for (i = 0; i < src->n; i++)
		prule_free(src->v[i]);
	free(src->v);
	free(src);
}

bool
rules_source_add(rules_source *src, const char *file, unsigned line, const char *text,
                 rules_report_fn report, void *ctx)
{
	lexer lx = {text, text, file, line, report, ctx, false};
	prule *r = ms_xcalloc(1, sizeof *r);
	rtoken t;

	r->file = ms_xstrdup(file);
	r->line = line;
	r->mode = MODE_BOTH;
	if (lex_next(&lx, &t) <= 0 || t.quoted || t.regex ||
	    !stage_parse(t.text, strlen(t.text), &r->stage)) {
		lex_error(&lx, 1,
		          "expected a stage (connect, helo, mail, rcpt, data, header, "
		          "eoh, body or eom)");
		rtoken_free(&t);
		prule_free(r);
		return false;
	}
	rtoken_free(&t);
	if (!parse_rule(&lx, r) || lx.failed) {
		lex_error(&lx, col_of(&lx, lx.p), "bad rule");
		prule_free(r);
		return false;
	}
	src->v = grow(src->v, src->n, sizeof *src->v);
	src->v[src->n++] = r;
	return true;
}

/* Compilation: one parsed rule, one personality. */

typedef struct problem {
	char *file;
	unsigned line;
	size_t col;
	char *msg; /* NULL: inside a parameter's value, reported there */
} problem;

typedef struct problems {
	problem *v;
	size_t n;
} problems;

typedef struct cctx {
	const prule *pr;
	const rules_env *env;
	rules_table *t;
	problems *ps;
} cctx;

/* Where a word came from, for its problems. */
typedef struct where {
	const char *file;
	unsigned line;
	size_t col;    /* 0: no column (a line of a file: list) */
	bool verbatim; /* the word stands as written at col: offsets are columns */
} where;

/* msg NULL: a problem reported elsewhere, which still fails the rule. */
static void
add_problem(cctx *c, const char *file, unsigned line, size_t col, char *msg)
{
	problem *p;

	c->ps->v = grow(c->ps->v, c->ps->n, sizeof *c->ps->v);
	p = &c->ps->v[c->ps->n++];
	p->file = ms_xstrdup(file);
	p->line = line;
	p->col = col;
	p->msg = msg;
}

static char *message(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *
message(const char *fmt, va_list ap)
{
	strbuf msg = STRBUF_INIT;

	strbuf_vprintf(&msg, fmt, ap);
	return strbuf_detach(&msg);
}

static void problem_at(cctx *c, size_t col, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void problem_in(cctx *c, const where *w, size_t offset, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* A problem at a column of the rule's own line. */
static void
problem_at(cctx *c, size_t col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_problem(c, c->pr->file, c->pr->line, col, message(fmt, ap));
	va_end(ap);
}

/* A problem offset bytes into a word that came from w. */
static void
problem_in(cctx *c, const where *w, size_t offset, const char *fmt, ...)
{
	size_t col = w->col == 0 ? 0 : w->verbatim ? w->col + offset : w->col;
	va_list ap;

	va_start(ap, fmt);
	add_problem(c, w->file, w->line, col, message(fmt, ap));
	va_end(ap);
}

static void
problem_silent(cctx *c)
{
	add_problem(c, c->pr->file, c->pr->line, 0, NULL);
}

static void
problems_free(problems *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		free(ps->v[i].file);
		free(ps->v[i].msg);
	}
	free(ps->v);
	ps->v = NULL;
	ps->n = 0;
}

/* A token's text expanded with the parameters, blanks at its ends dropped. */
static bool
expand_token(cctx *c, const rtoken *t, strbuf *out)
{
	expand_error e = EXPAND_ERROR_INIT;
	strbuf x = STRBUF_INIT;
	const char *s, *end;
	bool ok = true;

	if (c->env->expand == NULL) {
		strbuf_puts(&x, t->text);
	} else if (expand_str(&x, t->text, c->env->expand, c->env->expand_ctx, &e) < 0) {
		if (e.nested)
			problem_silent(c);
		else
			problem_at(c, token_column(t, e.column), "%s",
			           strbuf_str(&e.msg));
		ok = false;
	}
	if (ok) {
		for (s = strbuf_str(&x); is_blank(*s); s++)
			;
		for (end = s + strlen(s); end > s && is_blank(end[-1]); end--)
			;
		strbuf_append(out, s, (size_t)(end - s));
	}
	strbuf_free(&x);
	expand_error_free(&e);
	return ok;
}

static bool
compile_regex(cctx *c, const char *word, const where *w, value *v)
{
	strbuf why = STRBUF_INIT;
	size_t column = 0;

	if (strrchr(word, '/') == word) {
		problem_in(c, w, 0, "missing '/' to close the regex '%s'", word);
		return false;
	}
	v->re = regex_compile(word, &why, &column);
	if (v->re == NULL) {
		problem_in(c, w, column, "%s", strbuf_str(&why));
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

/* ZONE[=FILTER]: the zone in lower case, as DNS compares it. */
static void
lower_zone(char *s)
{
	for (; *s != '\0' && *s != '='; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* ZONE[=FILTER] of dnsbl and rhsbl_*. */
static bool
zone_value(cctx *c, enum check_kind kind, const char *word, const where *w, value *v)
{
	const char *eq = strchr(word, '=');
	size_t n = eq != NULL ? (size_t)(eq - word) : strlen(word);
	strbuf why = STRBUF_INIT;

	if (!names_domain(word, n)) {
		problem_in(c, w, 0,
		           "%s: bad zone '%.*s': expected a domain name such as "
		           "zen.example.org",
		           kinds[kind].name, (int)n, word);
		return false;
	}
	if (eq != NULL && (v->filter = dnsbl_filter_parse(eq + 1, &why)) == NULL) {
		problem_in(c, w, n + 1, "%s: bad filter '%s': %s", kinds[kind].name,
		           eq + 1, strbuf_str(&why));
		strbuf_free(&why);
		return false;
	}
	set_string(v, V_ZONE, word, n);
	lower_zone(v->s);
	return true;
}

/* A body regex: compiled here for its problems, by the table's set for use. */
static bool
body_value(cctx *c, const char *word, const where *w, value *v)
{
	if (!compile_regex(c, word, w, v))
		return false;
	pcre2_code_free(v->re);
	v->re = NULL;
	set_string(v, V_BODY, word, strlen(word));
	return true;
}

static bool
is_dns_kind(enum check_kind kind)
{
	return kind == K_DNSBL || kind == K_RHSBL_HELO || kind == K_RHSBL_SENDER ||
	       kind == K_RHSBL_CLIENT;
}

/* One value of a check, after expansion; false after a problem. */
static bool
parse_value(cctx *c, enum check_kind kind, const char *word, const where *w, value *v)
{
	strbuf why = STRBUF_INIT;
	bool ok = true;

	memset(v, 0, sizeof *v);
	if (*word == '\0' && kind != K_MACRO) {
		problem_in(c, w, 0, "%s: empty value: expected %s", kinds[kind].name,
		           kinds[kind].expects);
		return false;
	}
	if (kind == K_BODY) {
		if (word[0] == '/')
			return body_value(c, word, w, v);
		problem_in(c, w, 0, "body: '%s' is not a /regex/", word);
		return false;
	}
	if (is_dns_kind(kind))
		return zone_value(c, kind, word, w, v);
	if (word[0] == '/' && kind != K_CLIENT)
		return compile_regex(c, word, w, v);
	switch (kind) {
	case K_CLIENT:
		v->kind = V_CIDR;
		if (!(ok = addr_cidr_parse(word, &v->cidr, &why)))
			problem_in(c, w, 0, "client: %s", strbuf_str(&why));
		break;
	case K_CLIENT_NAME:
		if (strcasecmp(word, "unknown") == 0)
			v->kind = V_UNKNOWN;
		else
			ok = name_value(v, word);
		break;
	case K_HELO:
		if (strcasecmp(word, "ip_literal") == 0)
			v->kind = V_IP_LITERAL;
		else
			ok = name_value(v, word);
		break;
	case K_SENDER:
	case K_RECIPIENT:
		ok = address_value(v, word);
		break;
	case K_MACRO:
		set_string(v, V_STRING, word, strlen(word));
		break;
	case K_HEADER:
		problem_in(c, w, 0, "header: '%s' is not a /regex/", word);
		return false;
	default:
		ms_panic("a check kind without values");
	}
	if (!ok && why.len == 0)
		problem_in(c, w, 0, "%s: bad value '%s': expected %s", kinds[kind].name,
		           word, kinds[kind].expects);
	strbuf_free(&why);
	return ok;
}

static value *
new_value(check *ck)
{
	ck->v = grow(ck->v, ck->n_values, sizeof *ck->v);
	return &ck->v[ck->n_values++];
}

static void
value_free(value *v)
{
	free(v->s);
	pcre2_code_free(v->re);
	dnsbl_filter_free(v->filter);
}

/* For the dump: quoted when it would not read back as the same one word. */
static void
put_word(strbuf *b, const char *w, bool was_quoted)
{
	const char *p;
	bool quote = was_quoted || *w == '\0' || *w == '/' || *w == '!' || *w == '"' ||
	             find_name(action_names, N_ACTIONS, w) >= 0 || strcmp(w, "and") == 0;

	for (p = w; *p && !quote; p++)
		quote = is_blank(*p) || *p == '"' || *p == '\\';
	if (!quote) {
		strbuf_puts(b, w);
		return;
	}
	strbuf_putc(b, '"');
	for (p = w; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_putc(b, '\\');
		strbuf_putc(b, *p);
	}
	strbuf_putc(b, '"');
}

/* file:PATH: one value per line. */
static bool
file_values(cctx *c, check *ck, const char *name, const where *w)
{
	strbuf text = STRBUF_INIT, why = STRBUF_INIT;
	char *path = textfile_path(c->pr->file, name);
	const char *p, *nl, *s, *e;
	unsigned lineno = 0;
	bool ok = true;

	if (*name == '\0' || !textfile_read(path, true, &text, &why)) {
		problem_in(c, w, 0, "file:%s: %s", name,
		           *name == '\0' ? "expected a file name" : strbuf_str(&why));
		ok = false;
	} else if (memchr(text.s, '\0', text.len) != NULL) {
		problem_in(c, w, 0, "file:%s: the file has a NUL byte", name);
		ok = false;
	}
	for (p = strbuf_str(&text); ok && *p; p = *nl ? nl + 1 : nl) {
		where lw = {path, ++lineno, 0, false};
		value v;

		nl = p + strcspn(p, "\n");
		for (s = p; s < nl && is_blank(*s); s++)
			;
		for (e = nl; e > s && is_blank(e[-1]); e--)
			;
		if (s == e || *s == '#')
			continue;
		{
			char *word = ms_xstrndup(s, (size_t)(e - s));

			if (parse_value(c, ck->kind, word, &lw, &v))
				*new_value(ck) = v;
			else
				ok = false;
			free(word);
		}
	}
	free(path);
	strbuf_free(&text);
	strbuf_free(&why);
	return ok;
}

/* One value token: expanded, split, each word parsed. */
static bool
token_values(cctx *c, check *ck, const rtoken *t, strbuf *shown)
{
	where w = {c->pr->file, c->pr->line, t->col, !t->quoted};
	strbuf x = STRBUF_INIT;
	const char *p;
	bool ok = true;
	value v;

	if (t->regex) {
		strbuf_printf(shown, " %s", t->text);
		if (!parse_value(c, ck->kind, t->text, &w, &v))
			return false;
		*new_value(ck) = v;
		return true;
	}
	if (!expand_token(c, t, &x))
		return false;
	/* Offsets inside an expanded word are not columns of the line. */
	if (strchr(t->text, '$') != NULL)
		w.verbatim = false;
	for (p = strbuf_str(&x); *p || t->quoted; p += strspn(p, " \t")) {
		size_t n = t->quoted ? strlen(p) : strcspn(p, " \t");
		char *word = ms_xstrndup(p, n);

		strbuf_putc(shown, ' ');
		if (!t->quoted && strncmp(word, "file:", 5) == 0) {
			put_word(shown, word, false);
			ok = file_values(c, ck, word + 5, &w) && ok;
		} else {
			if (is_dns_kind(ck->kind))
				lower_zone(word);
			put_word(shown, word, t->quoted);
			if (parse_value(c, ck->kind, word, &w, &v))
				*new_value(ck) = v;
			else
				ok = false;
		}
		free(word);
		p += n;
		if (t->quoted)
			break;
	}
	strbuf_free(&x);
	return ok;
}

static bool
parse_count_value(const char *s, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!is_digit(*s))
		return false;
	for (; is_digit(*s); s++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return false;
		v = v * 10 + (unsigned)(*s - '0');
	}
	*out = v;
	return *s == '\0';
}

static bool
valid_macro_name(const char *s)
{
	size_t n = strlen(s);

	if (n > 2 && s[0] == '{' && s[n - 1] == '}') {
		s++;
		n -= 2;
	}
	return n > 0 && strcspn(s, " \t{}") == n;
}

/* As libmilter names macros: one letter bare, longer names in braces. */
static char *
macro_name(const char *s)
{
	strbuf b = STRBUF_INIT;

	if (s[0] == '{' || s[1] == '\0')
		return ms_xstrdup(s);
	strbuf_printf(&b, "{%s}", s);
	return strbuf_detach(&b);
}

/* The expanded argument of rcpt_count, macro or header. */
static bool
check_arg(cctx *c, const pcheck *pc, check *ck, strbuf *shown)
{
	strbuf x = STRBUF_INIT;
	const char *s;
	bool ok;

	if (!expand_token(c, &pc->arg, &x))
		return false;
	s = strbuf_str(&x);
	switch (pc->kind) {
	case K_RCPT_COUNT:
		if (!(ok = parse_count_value(s, &ck->n)))
			problem_at(c, pc->arg.col,
			           "rcpt_count: expected a whole number, not '%s'", s);
		strbuf_printf(shown, " %s %s", op_names[pc->op], s);
		break;
	case K_MACRO:
		if (!(ok = valid_macro_name(s)))
			problem_at(
			        c, pc->arg.col,
			        "macro: bad macro name '%s': expected a name such as i, "
			        "auth_type or {auth_type}",
			        s);
		else
			ck->name = macro_name(s);
		strbuf_printf(shown, " %s", ok ? ck->name : s);
		break;
	case K_HEADER:
		ok = strcmp(s, "*") == 0 || names_header(s);
		if (!ok)
			problem_at(
			        c, pc->arg.col,
			        "header: bad header name '%s': expected printable ASCII "
			        "without spaces or ':', or *",
			        s);
		else if (strcmp(s, "*") != 0)
			ck->name = ms_xstrdup(s);
		strbuf_printf(shown, " %s", s);
		break;
	default:
		ms_panic("a check kind without an argument");
		ok = false;
	}
	strbuf_free(&x);
	return ok;
}

static bool
compile_check(cctx *c, const pcheck *pc, check *ck, strbuf *shown)
{
	bool ok = true;
	size_t i;

	ck->kind = pc->kind;
	ck->negate = pc->negate;
	ck->presence = pc->kind == K_MACRO && pc->n_values == 0;
	ck->op = pc->op;
	strbuf_printf(shown, "%s%s", pc->negate ? "!" : "", kinds[pc->kind].name);
	if (pc->arg.text != NULL && !check_arg(c, pc, ck, shown))
		ok = false;
	for (i = 0; i < pc->n_values; i++)
		if (!token_values(c, ck, &pc->values[i], shown))
			ok = false;
	return ok;
}

/* Reply codes. */

static bool
is_runtime_var(const char *name)
{
	size_t i;

	for (i = 0; rules_template_vars[i] != NULL; i++)
		if (strcmp(rules_template_vars[i], name) == 0)
			return true;
	return false;
}

static bool
looks_like_ecode(const char *s)
{
	return is_digit(s[0]) && s[1] == '.';
}

/* Whether s is a reply code for kind (tempfail: 4xx, reject: 5xx); why says not. */
static bool
code_ok(enum rules_action_kind kind, const char *s, strbuf *why)
{
	char want = kind == RULES_TEMPFAIL ? '4' : '5';

	if (looks_like_ecode(s)) {
		strbuf_printf(
		        why,
		        "'%s' is an enhanced status code: give the reply code first "
		        "(%s %s)",
		        s, kind == RULES_TEMPFAIL ? "451" : "550", s);
		return false;
	}
	if (strlen(s) != 3 || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2])) {
		strbuf_printf(why,
		              "bad reply code '%s': expected three digits such as %s", s,
		              kind == RULES_TEMPFAIL ? "451" : "550");
		return false;
	}
	if (s[0] != want) {
		if (kind == RULES_TEMPFAIL)
			strbuf_printf(why,
			              "tempfail needs a 4xx reply code, not %s (reject "
			              "sends 5xx)",
			              s);
		else
			strbuf_printf(why,
			              "reject needs a 5xx reply code, not %s (tempfail "
			              "sends 4xx)",
			              s);
		return false;
	}
	if (s[1] > '5') {
		strbuf_printf(why, "bad reply code '%s': the second digit must be 0-5",
		              s);
		return false;
	}
	return true;
}

/* A check's verdict at a column: the reason in why becomes the problem. */
static bool
reported(cctx *c, size_t col, bool ok, strbuf *why)
{
	if (!ok)
		problem_at(c, col, "%s", strbuf_str(why));
	strbuf_free(why);
	return ok;
}

static bool
valid_code(cctx *c, size_t col, enum rules_action_kind kind, const char *s)
{
	strbuf why = STRBUF_INIT;

	return reported(c, col, code_ok(kind, s, &why), &why);
}

/* 1 to 3 digits, then the character end; *p moves past them. */
static bool
scan_part(const char **p, char end)
{
	size_t n = 0;

	while (is_digit(**p) && n < 4) {
		(*p)++;
		n++;
	}
	return n >= 1 && n <= 3 && **p == end;
}

static bool
ecode_form(const char *s)
{
	const char *p = s + 2;

	if (!is_digit(s[0]) || s[1] != '.' || !scan_part(&p, '.'))
		return false;
	p++;
	return scan_part(&p, '\0');
}

/* Whether s is an enhanced status code that fits the reply code. */
static bool
ecode_ok(const char *code, const char *s, strbuf *why)
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

static bool
valid_ecode(cctx *c, size_t col, const char *code, const char *s)
{
	strbuf why = STRBUF_INIT;

	return reported(c, col, ecode_ok(code, s, &why), &why);
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
	if (!code_ok(kind, strbuf_str(&word), why))
		goto out;
	snprintf(code, 4, "%s", word.s);
	ecode[0] = '\0';
	if (looks_like_ecode(p)) {
		next_word(&p, &word);
		if (!ecode_ok(code, strbuf_str(&word), why))
			goto out;
		snprintf(ecode, 12, "%s", word.s);
	}
	strbuf_reset(text);
	strbuf_puts(text, *p != '\0' ? p : default_text[kind]);
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

/* CODE and ECODE of tempfail and reject, with the defaults. */
static bool
compile_codes(cctx *c, const paction *pa, rules_action *a)
{
	strbuf x = STRBUF_INIT, y = STRBUF_INIT;
	const char *code, *ecode = NULL;
	char *sp;
	bool ok = false;

	if (pa->code.text == NULL) {
		snprintf(a->code, sizeof a->code, "%s",
		         pa->would == RULES_TEMPFAIL ? "451" : "550");
		snprintf(a->ecode, sizeof a->ecode, "%s",
		         pa->would == RULES_TEMPFAIL ? "4.7.1" : "5.7.1");
		return true;
	}
	if (!expand_token(c, &pa->code, &x))
		goto out;
	code = strbuf_str(&x);
	/* ${stress?{421 4.7.0}:{450 4.7.1}} gives both at once. */
	if ((sp = strpbrk(x.s != NULL ? x.s : "", " \t")) != NULL) {
		*sp++ = '\0';
		ecode = sp + strspn(sp, " \t");
		if (pa->ecode.text != NULL || strpbrk(ecode, " \t") != NULL) {
			problem_at(c, pa->code.col,
			           "expected one reply code and at most one enhanced "
			           "status code");
			goto out;
		}
	}
	if (!valid_code(c, pa->code.col, pa->would, code))
		goto out;
	if (pa->ecode.text != NULL) {
		if (!expand_token(c, &pa->ecode, &y))
			goto out;
		ecode = strbuf_str(&y);
		if (strpbrk(ecode, " \t") != NULL) {
			problem_at(c, pa->ecode.col,
			           "expected one enhanced status code, not '%s'", ecode);
			goto out;
		}
	}
	if (ecode != NULL && *ecode != '\0' &&
	    !valid_ecode(c, pa->ecode.text != NULL ? pa->ecode.col : pa->code.col, code,
	                 ecode))
		goto out;
	/* Both were checked: they fit. */
	snprintf(a->code, sizeof a->code, "%s", code);
	if (ecode != NULL)
		snprintf(a->ecode, sizeof a->ecode, "%s", ecode);
	ok = true;
out:
	strbuf_free(&x);
	strbuf_free(&y);
	return ok;
}

/* Templates. */

static const char *
template_check_lookup(void *ctx, const char *name)
{
	const rules_env *env = ctx;

	if (is_runtime_var(name))
		return "";
	if (env->expand == NULL || env->expand->lookup == NULL)
		return NULL;
	return env->expand->lookup(env->expand_ctx, name);
}

static void
template_unknown(void *ctx, const char *name, strbuf *msg)
{
	size_t i;

	(void)ctx;
	strbuf_printf(msg, "unknown name $%s in the text: expected a parameter or", name);
	for (i = 0; rules_template_vars[i] != NULL; i++)
		strbuf_printf(msg, "%s $%s", i == 0 ? "" : ",", rules_template_vars[i]);
}

static const char *
template_size_lookup(void *ctx, const char *name)
{
	const rules_env *env = ctx;

	if (is_runtime_var(name) || env->param == NULL)
		return "";
	return env->param(env->param_ctx, name);
}

/* Syntax and names of a TEXT, and what it costs before any session variable. */
static bool
check_template(cctx *c, const rtoken *t, bool reply)
{
	static const expand_ops checking = {template_check_lookup, template_unknown,
	                                    EXPAND_UNKNOWN_IS_ERROR};
	static const expand_ops sizing = {template_size_lookup, NULL, 0};
	expand_error e = EXPAND_ERROR_INIT;
	strbuf x = STRBUF_INIT;
	bool ok = true;

	if (expand_str(&x, t->text, &checking, (void *)c->env, &e) < 0) {
		problem_at(c, token_column(t, e.column), "%s", strbuf_str(&e.msg));
		ok = false;
	}
	strbuf_reset(&x);
	if (ok && expand_str(&x, t->text, &sizing, (void *)c->env, NULL) == 0) {
		if (strpbrk(strbuf_str(&x), "\r\n") != NULL) {
			problem_at(c, t->col, "the text must not contain CR or LF");
			ok = false;
		} else if (reply && x.len > RULES_TEXT_MAX) {
			problem_at(c, t->col,
			           "the text is %zu bytes long before its session "
			           "variables; "
			           "a reply text takes at most %d",
			           x.len, RULES_TEXT_MAX);
			ok = false;
		}
	}
	strbuf_free(&x);
	expand_error_free(&e);
	return ok;
}

static void
show_text(strbuf *shown, const rtoken *t)
{
	strbuf_putc(shown, ' ');
	if (t->quoted)
		strbuf_printf(shown, "\"%s\"", t->raw);
	else
		strbuf_puts(shown, t->text);
}

static bool
compile_action(cctx *c, const paction *pa, rule *r, strbuf *shown)
{
	rules_action *a = &r->action;
	strbuf x = STRBUF_INIT;
	bool ok = true;

	a->kind = pa->kind;
	a->would = pa->would;
	strbuf_printf(shown, " %s%s", pa->kind == RULES_LOG ? "log " : "",
	              action_names[pa->would]);
	if (pa->would == RULES_TEMPFAIL || pa->would == RULES_REJECT) {
		if (!compile_codes(c, pa, a))
			return false;
		strbuf_printf(shown, " %s%s%s", a->code, *a->ecode ? " " : "", a->ecode);
		if (pa->text.text == NULL) {
			r->text = ms_xstrdup(default_text[pa->would]);
			strbuf_printf(shown, " \"%s\"", r->text);
		}
	}
	if (pa->would == RULES_TAG) {
		if (!expand_token(c, &pa->tag, &x))
			return false;
		if (!names_header(strbuf_str(&x))) {
			problem_at(c, pa->tag.col,
			           "tag: bad header name '%s': expected printable ASCII "
			           "without "
			           "spaces or ':'",
			           strbuf_str(&x));
			ok = false;
		}
		strbuf_printf(shown, " %s", strbuf_str(&x));
		r->tag_name = strbuf_detach(&x);
	}
	if (pa->text.text != NULL) {
		show_text(shown, &pa->text);
		if (!check_template(c, &pa->text,
		                    pa->would == RULES_TEMPFAIL ||
		                            pa->would == RULES_REJECT))
			ok = false;
		r->text = ms_xstrdup(pa->text.text);
	}
	a->text = r->text;
	a->tag_name = r->tag_name;
	strbuf_free(&x);
	return ok;
}

static void
rule_free(rule *r)
{
	size_t i, j;

	if (r == NULL)
		return;
	for (i = 0; i < r->n_checks; i++) {
		for (j = 0; j < r->checks[i].n_values; j++)
			value_free(&r->checks[i].v[j]);
		free(r->checks[i].v);
		free(r->checks[i].name);
	}
	free(r->checks);
	free(r->name);
	free(r->text);
	free(r->tag_name);
	free(r->shown);
	free(r);
}

static unsigned
check_cost(enum check_kind kind)
{
	if (is_dns_kind(kind))
		return RULES_COST_DNSBL;
	return kind == K_BODY ? RULES_COST_BODY : 0;
}

static rule *
compile_rule(cctx *c)
{
	const prule *pr = c->pr;
	rule *r = ms_xcalloc(1, sizeof *r);
	strbuf shown = STRBUF_INIT, name = STRBUF_INIT;
	bool ok = true;
	size_t i;

	r->table = c->t;
	r->stage = pr->stage;
	r->mode = pr->mode;
	strbuf_printf(&name, "%s:%u", pr->file, pr->line);
	strbuf_printf(&shown, "%s: %s %s", strbuf_str(&name), stage_name(pr->stage),
	              pr->mode == MODE_BOTH     ? "both"
	              : pr->mode == MODE_STRESS ? "stress"
	                                        : "normal");
	if (pr->name != NULL) {
		strbuf_printf(&shown, " name=%s", pr->name);
		strbuf_reset(&name);
		strbuf_puts(&name, pr->name);
	}
	r->name = strbuf_detach(&name);
	r->checks = ms_xcalloc(pr->n_checks, sizeof *r->checks);
	r->n_checks = pr->n_checks;
	for (i = 0; i < pr->n_checks; i++) {
		strbuf_puts(&shown, i == 0 ? " " : " and ");
		if (!compile_check(c, &pr->checks[i], &r->checks[i], &shown))
			ok = false;
		r->costs |= check_cost(pr->checks[i].kind);
	}
	if (!compile_action(c, &pr->action, r, &shown))
		ok = false;
	r->shown = strbuf_detach(&shown);
	if (!ok || c->ps->n > 0) {
		rule_free(r);
		return NULL;
	}
	return r;
}

/* Tables. */

static bool
replies(enum rules_action_kind kind)
{
	return kind == RULES_ACCEPT || kind == RULES_TEMPFAIL || kind == RULES_REJECT ||
	       kind == RULES_DISCARD;
}

static rules_table *
table_create(const rules_env *env)
{
	rules_table *t = ms_xcalloc(1, sizeof *t);

	t->stressed = env->stressed;
	t->param = env->param;
	t->param_ctx = env->param_ctx;
	if ((t->mctx = pcre2_match_context_create(NULL)) == NULL)
		ms_panic("out of memory");
	pcre2_set_match_limit(t->mctx, RE_MATCH_LIMIT);
	return t;
}

/* A macro the rules of stage s ask for, once. */
static void
add_macro(rules_table *t, enum stage s, const char *name)
{
	size_t i;

	for (i = 0; i < t->n_macros[s]; i++)
		if (strcmp(t->macros[s][i], name) == 0)
			return;
	/* n + 2: the new name and the NULL after it. */
	t->macros[s] =
	        ms_xrealloc(t->macros[s], (t->n_macros[s] + 2) * sizeof *t->macros[s]);
	t->macros[s][t->n_macros[s]++] = name;
	t->macros[s][t->n_macros[s]] = NULL;
}

/* A body check's regexes into the table's list, each once. */
static void
add_body(rules_table *t, check *ck)
{
	size_t i, k;

	for (i = 0; i < ck->n_values; i++) {
		for (k = 0; k < t->n_body; k++)
			if (strcmp(t->body_pat[k], ck->v[i].s) == 0)
				break;
		if (k == t->n_body) {
			t->body_pat = grow(t->body_pat, t->n_body, sizeof *t->body_pat);
			t->body_pat[t->n_body++] = ck->v[i].s;
		}
		ck->v[i].body_idx = k;
	}
}

/* The one scanner set of a table; its regexes compiled once already. */
static bool
table_body_set(rules_table *t, rules_report_fn report, void *ctx)
{
	strbuf err = STRBUF_INIT;

	if (t->n_body == 0)
		return true;
	t->body = bodyscan_compile((const char *const *)t->body_pat, t->n_body, &err);
	if (t->body == NULL && report != NULL)
		report(ctx, "body", 0, 0, strbuf_str(&err));
	strbuf_free(&err);
	return t->body != NULL;
}

static void
table_add(rules_table *t, rule *r)
{
	enum stage s = r->stage;
	size_t i;

	t->v = grow(t->v, t->n, sizeof *t->v);
	t->v[t->n++] = r;
	t->stage_v[s] = grow(t->stage_v[s], t->stage_n[s], sizeof *t->stage_v[s]);
	t->stage_v[s][t->stage_n[s]++] = r;
	if (replies(r->action.kind))
		t->may_reply[s] = true;
	for (i = 0; i < r->n_checks; i++) {
		if (r->checks[i].kind == K_HEADER && s >= STAGE_EOH)
			t->need_header_set = true;
		if (r->checks[i].kind == K_MACRO)
			add_macro(t, s, r->checks[i].name);
		if (r->checks[i].kind == K_AUTHENTICATED)
			add_macro(t, s, AUTH_MACRO);
		if (r->checks[i].kind == K_BODY)
			add_body(t, &r->checks[i]);
	}
}

void
rules_table_free(rules_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		rule_free(t->v[i]);
	for (i = 0; i < STAGE_N; i++) {
		free(t->stage_v[i]);
		free(t->macros[i]);
	}
	free(t->v);
	free(t->body_pat);
	bodyscan_set_free(t->body);
	pcre2_match_context_free(t->mctx);
	free(t);
}

static bool
same_problem(const problem *a, const problem *b)
{
	return a->line == b->line && a->col == b->col && strcmp(a->file, b->file) == 0 &&
	       a->msg != NULL && b->msg != NULL && strcmp(a->msg, b->msg) == 0;
}

static bool
has_problem(const problems *ps, const problem *p)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (same_problem(&ps->v[i], p))
			return true;
	return false;
}

static void
report_one(const problem *p, const char *suffix, rules_report_fn report, void *ctx)
{
	strbuf msg = STRBUF_INIT;

	if (p->msg == NULL || report == NULL)
		return;
	strbuf_printf(&msg, "%s%s", p->msg, suffix);
	report(ctx, p->file, p->line, p->col, strbuf_str(&msg));
	strbuf_free(&msg);
}

static const char *
personality_suffix(const rules_env *env)
{
	return env->stressed ? " (in the stress personality)"
	                     : " (in the normal personality)";
}

/* Each problem once; one that only one of two personalities has says which. */
static void
report_problems(problems ps[2], const bool in[2], const rules_env env[2],
                rules_report_fn report, void *ctx)
{
	size_t i;
	int p;

	if (!in[0] || !in[1]) {
		for (p = 0; p < 2; p++)
			for (i = 0; i < ps[p].n; i++)
				report_one(&ps[p].v[i], "", report, ctx);
		return;
	}
	for (i = 0; i < ps[0].n; i++)
		report_one(&ps[0].v[i],
		           has_problem(&ps[1], &ps[0].v[i]) ? ""
		                                            : personality_suffix(&env[0]),
		           report, ctx);
	for (i = 0; i < ps[1].n; i++)
		if (!has_problem(&ps[0], &ps[1].v[i]))
			report_one(&ps[1].v[i], personality_suffix(&env[1]), report, ctx);
}

bool
rules_compile(const rules_source *src, const rules_env env[2], rules_table *out[2],
              rules_report_fn report, void *ctx)
{
	bool ok = true;
	size_t i;
	int p;

	for (p = 0; p < 2; p++)
		out[p] = table_create(&env[p]);
	for (i = 0; src != NULL && i < src->n; i++) {
		problems ps[2] = {{NULL, 0}, {NULL, 0}};
		bool in[2];

		for (p = 0; p < 2; p++) {
			cctx c = {src->v[i], &env[p], out[p], &ps[p]};
			rule *r;

			in[p] = (src->v[i]->mode &
			         (env[p].stressed ? MODE_STRESS : MODE_NORMAL)) != 0;
			if (!in[p])
				continue;
			if ((r = compile_rule(&c)) != NULL)
				table_add(out[p], r);
			else
				ok = false;
		}
		report_problems(ps, in, env, report, ctx);
		problems_free(&ps[0]);
		problems_free(&ps[1]);
	}
	for (p = 0; p < 2; p++)
		if (!table_body_set(out[p], report, ctx))
			ok = false;
	return ok;
}

/* Evaluation. */

static bool
re_match(const rules_table *t, const pcre2_code *re, const char *s, size_t n)
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
		return re_match(t, v->re, s, strlen(s));
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
		return re_match(t, v->re, s, n);
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
any_macro(const rules_table *t, const check *ck, const rules_facts *f)
{
	const char *val = macro_value(f, ck->name);
	size_t i;

	if (val == NULL)
		return false;
	if (ck->presence)
		return *val != '\0';
	for (i = 0; i < ck->n_values; i++) {
		const value *v = &ck->v[i];

		if (v->kind == V_REGEX ? re_match(t, v->re, val, strlen(val))
		                       : strcmp(val, v->s) == 0)
			return true;
	}
	return false;
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
		if (re_match(t, ck->v[i].re, subject, n))
			return true;
	return false;
}

static bool
any_header(const rules_table *t, const check *ck, enum stage stage,
           const rules_facts *f)
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

static bool
compare(enum cmp_op op, unsigned long long a, unsigned long long b)
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
	}
	return false;
}

/* Expensive checks. */

/* The DNS kinds, in the order of eval_ctx's subjects. */
static const struct dns_kind {
	enum check_kind kind;
	enum dnsbl_kind qkind;
	const char *class; /* $rbl_class, in Postfix's words (default_rbl_reply) */
} dns_kinds[] = {
        {K_DNSBL, DNSBL_IP, "Client host"},
        {K_RHSBL_HELO, DNSBL_NAME, "Helo command"},
        {K_RHSBL_SENDER, DNSBL_NAME, "Sender address"},
        {K_RHSBL_CLIENT, DNSBL_NAME, "Client host"},
};

#define N_DNS_KINDS (sizeof dns_kinds / sizeof dns_kinds[0])

static size_t
dns_kind_index(enum check_kind kind)
{
	size_t i;

	for (i = 0; i < N_DNS_KINDS; i++)
		if (dns_kinds[i].kind == kind)
			return i;
	ms_panic("not a DNS check kind");
	return 0;
}

/* One evaluation of a stage. */
typedef struct eval_ctx {
	const rules_table *t;
	enum stage stage;
	const rules_facts *f;
	const rules_expensive *x;
	rules_eval_info *info;
	/* What each DNS kind looks up, NULL for nothing (unknown, not a name). */
	const char *subject[N_DNS_KINDS];
	strbuf subject_buf[N_DNS_KINDS];
	dnsbl_query *q;
	size_t n_q;
	provider_call *call; /* q[]'s lookups, from x->dns->start() */
	bool *waited;     /* q[i] is in: dnsbl_wait() returned for it */
	/* The current rule's first listing, for $rbl_*. */
	const dnsbl_query *hit;
	size_t hit_kind;
} eval_ctx;

enum tri { T_NO, T_YES, T_UNKNOWN };

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
sender_domain(strbuf *buf, const char *s)
{
	size_t n = strlen(s);
	const char *at;

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

static void
find_subjects(eval_ctx *e)
{
	const rules_facts *f = e->f;
	addr_ip ip;

	if (f->client_addr != NULL && addr_ip_parse(f->client_addr, &ip))
		e->subject[0] = f->client_addr;
	if (f->helo != NULL && !addr_is_literal(f->helo))
		e->subject[1] =
		        domain_subject(&e->subject_buf[1], f->helo, strlen(f->helo));
	if (f->sender != NULL)
		e->subject[2] = sender_domain(&e->subject_buf[2], f->sender);
	/* Postfix's "unknown" and "[addr]" are names that did not verify. */
	if (f->client_name != NULL && f->client_name[0] != '[' &&
	    strcasecmp(f->client_name, "unknown") != 0)
		e->subject[3] = domain_subject(&e->subject_buf[3], f->client_name,
		                               strlen(f->client_name));
}

/* Under stress only a rule in MODE stress runs its expensive checks. */
static bool
runs_expensive(const rule *r, bool stressed)
{
	return !stressed || r->mode == MODE_STRESS;
}

static dnsbl_query *
find_query(const eval_ctx *e, enum dnsbl_kind qkind, const char *subject,
           const char *zone)
{
	size_t i;

	for (i = 0; i < e->n_q; i++)
		if (e->q[i].kind == qkind && strcmp(e->q[i].zone, zone) == 0 &&
		    strcasecmp(e->q[i].subject, subject) == 0)
			return &e->q[i];
	return NULL;
}

/* Every lookup the stage's runnable rules need, each name and zone once. */
static void
collect_queries(eval_ctx *e)
{
	const rules_table *t = e->t;
	size_t i, j, k;

	for (i = 0; i < t->stage_n[e->stage]; i++) {
		const rule *r = t->stage_v[e->stage][i];

		if (!(r->costs & RULES_COST_DNSBL) || !runs_expensive(r, e->f->stressed))
			continue;
		for (j = 0; j < r->n_checks; j++) {
			const check *ck = &r->checks[j];
			size_t d;

			if (!is_dns_kind(ck->kind))
				continue;
			d = dns_kind_index(ck->kind);
			if (e->subject[d] == NULL)
				continue;
			for (k = 0; k < ck->n_values; k++) {
				if (find_query(e, dns_kinds[d].qkind, e->subject[d],
				               ck->v[k].s) != NULL)
					continue;
				e->q = grow(e->q, e->n_q, sizeof *e->q);
				/* No filter: each value applies its own. */
				dnsbl_query_init(&e->q[e->n_q++], dns_kinds[d].qkind,
				                 e->subject[d], ck->v[k].s, NULL);
			}
		}
	}
}

/* Sends all of them at once; each is waited for when a rule needs it. */
static void
start_queries(eval_ctx *e)
{
	if (e->n_q == 0)
		return;
	e->waited = ms_xcalloc(e->n_q, sizeof *e->waited);
	e->call = e->x->dns->start(e->x->dns->self, e->q, e->n_q, e->x->deadline_ms);
	e->info->queries += (unsigned)e->n_q;
}

/* Waits for q (at most until the deadline) the first time a rule needs it. */
static void
need_query(eval_ctx *e, const dnsbl_query *q)
{
	rules_eval_info *info = e->info;
	size_t i = (size_t)(q - e->q);
	long long t0;

	if (e->waited[i])
		return;
	t0 = budget_now_ms();
	e->x->dns->wait(e->call, i);
	info->dns_ms += budget_now_ms() - t0;
	e->waited[i] = true;
	switch (q->status) {
	case DNSBL_TIMEOUT:
		if (info->timed_out == 0)
			strbuf_printf(&info->timeout_what, "%s after %lld ms", q->zone,
			              q->ms);
		info->timed_out |= RULES_COST_DNSBL;
		break;
	case DNSBL_ERROR:
		info->failed |= RULES_COST_DNSBL;
		break;
	case DNSBL_SKIPPED:
		info->skipped |= RULES_COST_DNSBL;
		break;
	default:
		break;
	}
}

/* A listing counts when one of its A records passes the value's filter. */
static enum tri
zone_result(const dnsbl_query *q, const value *v)
{
	unsigned i;

	switch (q->status) {
	case DNSBL_LISTED:
		if (v->filter == NULL)
			return T_YES;
		for (i = 0; i < q->naddr; i++)
			if (dnsbl_filter_match(v->filter, q->addr[i]))
				return T_YES;
		return T_NO;
	case DNSBL_NOT_LISTED:
		return T_NO;
	default:
		return T_UNKNOWN;
	}
}

static enum tri
dns_check(eval_ctx *e, const rule *r, const check *ck)
{
	size_t d = dns_kind_index(ck->kind), i;
	enum tri res = T_NO;

	if (e->x == NULL || e->x->dns == NULL || !runs_expensive(r, e->f->stressed)) {
		e->info->skipped |= RULES_COST_DNSBL;
		return T_UNKNOWN;
	}
	if (e->subject[d] == NULL)
		return T_NO;
	for (i = 0; i < ck->n_values; i++) {
		const dnsbl_query *q =
		        find_query(e, dns_kinds[d].qkind, e->subject[d], ck->v[i].s);
		enum tri one = T_UNKNOWN;

		if (q != NULL) {
			need_query(e, q);
			one = zone_result(q, &ck->v[i]);
		}

		if (one == T_YES) {
			if (e->hit == NULL && !ck->negate) {
				e->hit = q;
				e->hit_kind = d;
			}
			return T_YES;
		}
		if (one == T_UNKNOWN)
			res = T_UNKNOWN;
	}
	return res;
}

static enum tri
body_check(eval_ctx *e, const rule *r, const check *ck)
{
	size_t i;

	if (e->x == NULL || e->x->body == NULL || !runs_expensive(r, e->f->stressed)) {
		e->info->skipped |= RULES_COST_BODY;
		return T_UNKNOWN;
	}
	for (i = 0; i < ck->n_values; i++)
		if (bodyscan_matched(e->x->body, ck->v[i].body_idx))
			return T_YES;
	return T_NO;
}

static bool
check_matches(const rules_table *t, const check *ck, enum stage stage,
              const rules_facts *f)
{
	const char *auth;

	switch (ck->kind) {
	case K_CLIENT:
		return any_client(ck, f->client_addr);
	case K_CLIENT_NAME:
		return any_name(t, ck, f->client_name);
	case K_HELO:
		return any_name(t, ck, f->helo);
	case K_SENDER:
		return any_address(t, ck, f->sender);
	case K_RECIPIENT:
		return any_address(t, ck, f->recipient);
	case K_AUTHENTICATED:
		auth = macro_value(f, AUTH_MACRO);
		return auth != NULL && *auth != '\0';
	case K_MACRO:
		return any_macro(t, ck, f);
	case K_RCPT_COUNT:
		return compare(ck->op, f->rcpt_count, ck->n);
	case K_HEADER:
		return any_header(t, ck, stage, f);
	case K_STRESS:
		return f->stressed;
	case K_ANY:
		return true;
	default:
		break;
	}
	ms_panic("unknown check kind");
	return false;
}

static enum tri
check_eval(eval_ctx *e, const rule *r, const check *ck)
{
	if (is_dns_kind(ck->kind))
		return dns_check(e, r, ck);
	if (ck->kind == K_BODY)
		return body_check(e, r, ck);
	return check_matches(e->t, ck, r->stage, e->f) ? T_YES : T_NO;
}

/* An unknown check fails its rule, negated or not. */
static bool
rule_matches(eval_ctx *e, const rule *r)
{
	size_t i;

	e->hit = NULL;
	for (i = 0; i < r->n_checks; i++) {
		enum tri m = check_eval(e, r, &r->checks[i]);

		if (m == T_UNKNOWN || (m == T_YES) == r->checks[i].negate)
			return false;
	}
	return true;
}

static void
set_rbl_vars(const eval_ctx *e)
{
	rules_eval_info *info = e->info;
	const dnsbl_query *q = e->hit;

	strbuf_reset(&info->rbl_domain);
	strbuf_reset(&info->rbl_what);
	strbuf_reset(&info->rbl_reason);
	strbuf_reset(&info->rbl_class);
	/* Strings even when empty: a var() may hand them out as they are. */
	strbuf_append(&info->rbl_domain, "", 0);
	strbuf_append(&info->rbl_what, "", 0);
	strbuf_append(&info->rbl_reason, "", 0);
	strbuf_append(&info->rbl_class, "", 0);
	if (q == NULL)
		return;
	strbuf_puts(&info->rbl_domain, q->zone);
	strbuf_puts(&info->rbl_what, q->subject);
	strbuf_puts(&info->rbl_reason, strbuf_str(&q->txt));
	strbuf_puts(&info->rbl_class, dns_kinds[e->hit_kind].class);
}

static bool
is_verdict(enum rules_action_kind kind)
{
	return kind == RULES_ACCEPT || kind == RULES_CONTINUE || kind == RULES_TEMPFAIL ||
	       kind == RULES_REJECT || kind == RULES_DISCARD;
}

void
rules_eval_info_init(rules_eval_info *info)
{
	memset(info, 0, sizeof *info);
	strbuf_init(&info->timeout_what);
	strbuf_init(&info->rbl_domain);
	strbuf_init(&info->rbl_what);
	strbuf_init(&info->rbl_reason);
	strbuf_init(&info->rbl_class);
}

void
rules_eval_info_free(rules_eval_info *info)
{
	strbuf_free(&info->timeout_what);
	strbuf_free(&info->rbl_domain);
	strbuf_free(&info->rbl_what);
	strbuf_free(&info->rbl_reason);
	strbuf_free(&info->rbl_class);
	rules_eval_info_init(info);
}

static void
info_reset(rules_eval_info *info)
{
	eval_ctx none = {.info = info};

	info->skipped = info->timed_out = info->failed = info->queries = 0;
	info->dns_ms = 0;
	strbuf_reset(&info->timeout_what);
	strbuf_append(&info->timeout_what, "", 0);
	set_rbl_vars(&none);
}

static const rule *
eval_rules(eval_ctx *e, rules_visit_fn visit, void *ctx)
{
	const rules_table *t = e->t;
	size_t i;

	for (i = 0; i < t->stage_n[e->stage]; i++) {
		const rule *r = t->stage_v[e->stage][i];
		bool matched = rule_matches(e, r), stop;

		if (matched)
			set_rbl_vars(e);
		stop = visit != NULL && visit(ctx, r, matched);
		if (matched && is_verdict(r->action.kind))
			return r;
		if (stop)
			return NULL;
	}
	return NULL;
}

const rule *
rules_eval_ex(const rules_table *t, enum stage stage, const rules_facts *f,
              const rules_expensive *x, rules_eval_info *info, rules_visit_fn visit,
              void *ctx)
{
	rules_eval_info mine;
	eval_ctx e;
	const rule *r;
	size_t i;

	if (info == NULL) {
		rules_eval_info_init(&mine);
		info = &mine;
	}
	info_reset(info);
	if (t == NULL || f == NULL || (unsigned)stage >= STAGE_N) {
		if (info == &mine)
			rules_eval_info_free(&mine);
		return NULL;
	}
	memset(&e, 0, sizeof e);
	e.t = t;
	e.stage = stage;
	e.f = f;
	e.x = x;
	e.info = info;
	for (i = 0; i < N_DNS_KINDS; i++)
		strbuf_init(&e.subject_buf[i]);
	if (x != NULL && x->dns != NULL) {
		find_subjects(&e);
		collect_queries(&e);
		start_queries(&e);
	}
	r = eval_rules(&e, visit, ctx);
	/* The rules are decided: what no rule waited for is abandoned. */
	if (e.call != NULL)
		x->dns->finish(e.call);
	free(e.waited);
	for (i = 0; i < e.n_q; i++)
		dnsbl_query_free(&e.q[i]);
	free(e.q);
	for (i = 0; i < N_DNS_KINDS; i++)
		strbuf_free(&e.subject_buf[i]);
	if (info == &mine)
		rules_eval_info_free(&mine);
	return r;
}

const rule *
rules_eval(const rules_table *t, enum stage stage, const rules_facts *f,
           rules_visit_fn visit, void *ctx)
{
	return rules_eval_ex(t, stage, f, NULL, NULL, visit, ctx);
}

const bodyscan_set *
rules_body_set(const rules_table *t)
{
	return t != NULL ? t->body : NULL;
}

bool
rules_stage_expensive(const rules_table *t, enum stage stage, bool stressed)
{
	size_t i;

	if (t == NULL || (unsigned)stage >= STAGE_N)
		return false;
	for (i = 0; i < t->stage_n[stage]; i++)
		if (t->stage_v[stage][i]->costs != 0 &&
		    runs_expensive(t->stage_v[stage][i], stressed))
			return true;
	return false;
}

/* Questions about a table. */

bool
rules_stage_used(const rules_table *t, enum stage stage)
{
	return t != NULL && (unsigned)stage < STAGE_N && t->stage_n[stage] > 0;
}

bool
rules_stage_may_reply(const rules_table *t, enum stage stage)
{
	return t != NULL && (unsigned)stage < STAGE_N && t->may_reply[stage];
}

bool
rules_need_header_set(const rules_table *t)
{
	return t != NULL && t->need_header_set;
}

const char *const *
rules_stage_macros(const rules_table *t, enum stage stage)
{
	static const char *const none[] = {NULL};

	if (t == NULL || (unsigned)stage >= STAGE_N || t->macros[stage] == NULL)
		return none;
	return t->macros[stage];
}

size_t
rules_count(const rules_table *t)
{
	return t != NULL ? t->n : 0;
}

void
rules_dump(const rules_table *t, FILE *fp)
{
	size_t i;

	for (i = 0; t != NULL && i < t->n; i++)
		fprintf(fp, "%s\n", t->v[i]->shown);
}

const char *
rule_name(const rule *r)
{
	return r->name;
}

const rules_action *
rule_action(const rule *r)
{
	return &r->action;
}

enum stage
rule_stage(const rule *r)
{
	return r->stage;
}

const char *
rules_action_name(enum rules_action_kind kind)
{
	return (unsigned)kind < N_ACTIONS ? action_names[kind] : "?";
}

/* Reply texts. */

/* Where to cut s so that at most max bytes stay and no UTF-8 sequence splits. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	size_t cut = max;

	if (len <= max)
		return len;
	/* s[cut] is the first byte dropped: back up to the start of its character. */
	while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	return cut;
}

/* Drop CR and LF from b after byte start, then cut it to the reply limit. */
static void
sanitize(strbuf *b, size_t start)
{
	size_t i, j;

	for (i = j = start; i < b->len; i++)
		if (b->s[i] != '\r' && b->s[i] != '\n')
			b->s[j++] = b->s[i];
	b->len = j;
	b->len = start + utf8_cut(b->s + start, b->len - start, RULES_TEXT_MAX);
	b->s[b->len] = '\0';
}

static void
expand_template(const char *tmpl, const expand_ops *ops, void *ctx, strbuf *out)
{
	strbuf_reset(out);
	strbuf_append(out, "", 0); /* out->s is a string even when the text is empty */
	if (tmpl == NULL)
		return;
	/* Not EXPAND_RECURSE: a HELO name with "$x" in it stays "$x". */
	if (expand_str(out, tmpl, ops, ctx, NULL) < 0) {
		/* Checked at load; a template from elsewhere is shown as written. */
		strbuf_reset(out);
		strbuf_puts(out, tmpl);
	}
	sanitize(out, 0);
}

void
rules_expand_text(const char *tmpl, rules_var_fn var, void *ctx, strbuf *out)
{
	expand_ops ops = {var, NULL, 0};

	expand_template(tmpl, &ops, ctx, out);
}

typedef struct rule_vars {
	const rule *r;
	rules_var_fn var;
	void *ctx;
} rule_vars;

static const char *
rule_var(void *ctx, const char *name)
{
	const rule_vars *rv = ctx;
	const rules_table *t = rv->r->table;
	const char *v = rv->var != NULL ? rv->var(rv->ctx, name) : NULL;

	if (v != NULL)
		return v;
	if (strcmp(name, "rule") == 0)
		return rv->r->name;
	if (strcmp(name, "stage") == 0)
		return stage_name(rv->r->stage);
	if (strcmp(name, "stress") == 0)
		return t->stressed ? "yes" : "";
	return t->param != NULL ? t->param(t->param_ctx, name) : NULL;
}

void
rule_expand_text(const rule *r, rules_var_fn var, void *ctx, strbuf *out)
{
	rule_vars rv = {r, var, ctx};
	expand_ops ops = {rule_var, NULL, 0};

	expand_template(r->action.text, &ops, &rv, out);
}

void
rules_reply_text_for_milter(const char *text, strbuf *out)
{
	size_t cut, run;
	const char *p;

	strbuf_reset(out);
	strbuf_append(out, "", 0);
	for (p = text != NULL ? text : ""; *p; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (*p == '%')
			strbuf_putc(out, '%');
		strbuf_putc(out, *p);
	}
	if (out->len <= RULES_TEXT_MAX)
		return;
	cut = utf8_cut(out->s, out->len, RULES_TEXT_MAX);
	/* Every '%' here is doubled: an odd run before the cut would split a pair. */
	for (run = 0; run < cut && out->s[cut - 1 - run] == '%'; run++)
		;
	if (run % 2 == 1)
		cut--;
	out->len = cut;
	out->s[cut] = '\0';
}
