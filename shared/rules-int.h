/*
 * rules-int - what the files of the rules module share, and nothing else sees
 *
 * DESCRIPTION
 *	The rules module is six files, one job each, over the types below:
 *
 *	rules-syntax.c	lexer and parser: a logical line into a prule
 *			(tokens as written, before expansion)
 *	rules-checks.c	THE CHECK TABLE: one row per check kind (name,
 *			stages, value syntax, cost, fact, parse, match)
 *	rules-actions.c	THE ACTION TABLE: one row per action (verdict,
 *			reply class, stages, defaults, milter flags), and
 *			reply-code validation
 *	rules-compile.c	a prule, per personality, into a rule: expansion,
 *			values, file: lists, templates; tables; rules_compile()
 *	rules-eval.c	evaluation of a stage, the expensive checks through
 *			their providers, questions about a table
 *	rules-text.c	reply texts and templates, the -n dump
 *
 *	A new check kind is a row of rules_checks[] and its functions (and,
 *	when it reads a session fact that rules_facts lacks, that field and
 *	the session code that fills it): the parser, the compiler, the
 *	evaluator, negotiation, -n, the manual's table and the fuzz
 *	dictionary all read the row. A new action is a row of
 *	rules_actions[] and, for a verdict, its handling in session-verdict.c.
 *	See doc/ARCHITECTURE.md.
 */
#ifndef MS_RULES_INT_H
#define MS_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "regex.h"

#include "addr.h"
#include "rules.h"
#include "scan.h"
#include "strbuf.h"

/* A rule name: [A-Za-z0-9_.:-], at most this long. */
#define RULES_NAME_MAX 64

#define MODE_NORMAL 1u
#define MODE_STRESS 2u
#define MODE_BOTH (MODE_NORMAL | MODE_STRESS)

/* ---- small helpers ---- */

static inline bool
rules_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static inline bool
rules_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Room for element n of an array of n: doubles at powers of two. */
void *rules_grow(void *v, size_t n, size_t size);

/* ---- parsed rules: tokens as written, before expansion ---- */

typedef struct rtoken {
	char *text; /* unquoted and unescaped; NULL: absent */
	char *raw;  /* quoted: the bytes between the quotes, as written */
	size_t col; /* 1-based column of the first byte in the logical line */
	bool quoted;
	bool regex; /* /.../flags */
} rtoken;

enum cmp_op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE, OP_N };

extern const char *const rules_op_names[OP_N];

typedef struct pcheck {
	unsigned kind; /* index in rules_checks[] */
	bool negate;
	size_t col;     /* of the kind */
	enum cmp_op op; /* CS_COUNT */
	rtoken arg;     /* CS_MACRO, CS_NAMED: NAME; CS_COUNT: N */
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

void rules_rtoken_free(rtoken *t);
/* The column of byte offset (1-based) of t->text in the logical line. */
size_t rules_token_column(const rtoken *t, size_t offset);

/* ---- compiled rules ---- */

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
	V_STRING,     /* macro, daemon_name: case-sensitive */
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
	unsigned kind; /* index in rules_checks[] */
	bool negate;
	enum cmp_op op;
	unsigned long long n;
	double x;      /* CS_SCORE */
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
	/* RULES_COST_* of the checks of rules whose mode has MODE_NORMAL: what
	   the calm personality checks at each stage (rules_calm_costs()) */
	unsigned calm_costs[STAGE_N];
	bool need_header_set;
	bool want_rbl_reason; /* a rule's text may say $rbl_reason: DNSBL listings ask TXT */
	bool stressed;
	pcre2_match_context *mctx;
	char **body_pat; /* the body regexes, each once, in body_idx order */
	size_t n_body;
	bodyscan_set *body;
};

/* ---- compilation context, shared by the compiler and the value parsers ---- */

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

/* A problem at a column of the rule's own line. */
void rules_problem_at(cctx *c, size_t col, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A problem offset bytes into a word that came from w. */
void rules_problem_in(cctx *c, const where *w, size_t offset, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* ---- the check table (rules-checks.c) ---- */

/* How a check is written after its kind. */
enum check_syntax {
	CS_NONE,   /* no values: authenticated, stress, any */
	CS_VALUES, /* VALUE...: client, helo, dnsbl, ... */
	CS_NAMED,  /* NAME VALUE...: header */
	CS_MACRO,  /* NAME [VALUE...]: macro */
	CS_COUNT,  /* OP N: rcpt_count */
	CS_OPTIONAL, /* [VALUE...]: virus; no values: any */
	CS_SCORE,  /* OP NUMBER (a decimal, maybe negative): spam_score */
};

/* What a cheap check's matcher sees. */
typedef struct check_in {
	const rules_table *t; /* for its regex match limit */
	enum stage stage;
	const rules_facts *f;
	const char *fact; /* the row's fact, NULL when the MTA did not send it */
} check_in;

#define RULES_NO_FACT ((size_t)-1)

typedef struct check_desc {
	const char *name;
	enum check_syntax syntax;
	enum stage first, last; /* the stages that can see it */
	const char *expects;    /* for "expected ...", and the manual */
	unsigned cost;          /* 0: cheap; RULES_COST_*: its provider */
	bool regex;             /* a /regex/ value is matched against the fact */
	bool empty_ok;          /* "" is a value (macro: set but empty) */
	bool header_set;        /* at eoh and later it reads every header */
	size_t fact;            /* offsetof(rules_facts, ...) of the string it
	                           reads; RULES_NO_FACT */
	/* One value that is not a regex, after expansion; NULL: every value
	   must be a /regex/. False after rules_problem_in(). */
	bool (*parse)(cctx *c, const struct check_desc *d, const char *word,
	              const where *w, value *v);
	/* Cheap checks: does the session match? NULL for expensive ones. */
	bool (*match)(const check_in *in, const check *ck);
	/* RULES_COST_DNSBL: what is looked up (NULL: nothing to look up),
	   how, and Postfix's words for it ($rbl_class). */
	const char *(*subject)(const rules_facts *f, strbuf *buf);
	enum dnsbl_kind qkind;
	const char *rbl_class;
	const char *doc; /* one line for the manual's table */
	/* RULES_COST_<scanner>: which scanner, and does its result match? */
	enum scan_kind scan;
	bool (*scan_match)(const rules_table *t, const scan_result *r, const check *ck);
} check_desc;

/* Room for the table's rows in a stage's evaluation (rules-checks.c asserts it). */
#define RULES_MAX_CHECKS 32

extern const check_desc rules_checks[];
extern const unsigned rules_n_checks;

/* The row called word, or -1. */
int rules_check_find(const char *word);
/* One value of a check of kind d, after expansion; false after a problem. */
bool rules_value_parse(cctx *c, const check_desc *d, const char *word, const where *w,
                       value *v);
void rules_value_free(value *v);
/* A ZONE[=FILTER] in lower case up to the '=', as DNS compares it. */
void rules_lower_zone(char *s);
/* re against s (n bytes) with the table's match limit. */
bool rules_re_match(const rules_table *t, const pcre2_code *re, const char *s, size_t n);

/* ---- the action table (rules-actions.c) ---- */

enum action_args {
	A_NONE,  /* nothing may follow */
	A_REPLY, /* [CODE [ECODE]] [TEXT] */
	A_TEXT,  /* TEXT, required */
	A_TAG,   /* NAME TEXT */
	A_LOG,   /* another action */
	A_PERSONALITY, /* normal | stress */
};

typedef struct action_desc {
	const char *name;
	bool verdict; /* a matched rule ends the stage */
	bool replies; /* answers the MTA: the stage cannot be negotiated NR */
	enum action_args args;
	char reply_class;           /* A_REPLY: '4' or '5' */
	const char *default_code;   /* A_REPLY */
	const char *default_ecode;  /* A_REPLY */
	const char *default_text;   /* A_REPLY */
	bool before_mail;           /* allowed at session-wide stages (connect, helo) */
	unsigned long milter_flags; /* PROTO_F_* the MTA must grant */
} action_desc;

extern const action_desc rules_actions[];
extern const unsigned rules_n_actions;

/* The action an unquoted, non-regex token names, or -1. */
int rules_action_of(const rtoken *t);
/* "accept, continue, ... or log" */
void rules_list_actions(strbuf *b);
/* s is a reply code of kind's class (tempfail 4xx, reject 5xx); why says not. */
bool rules_code_ok(enum rules_action_kind kind, const char *s, strbuf *why);
/* s is an enhanced status code that fits code; why says not. */
bool rules_ecode_ok(const char *code, const char *s, strbuf *why);
bool rules_looks_like_ecode(const char *s);

/* ---- templates (rules-text.c) ---- */

/* Is name one of rules_template_vars? */
bool rules_is_template_var(const char *name);

#endif
