/*
 * rules - the stress-conditional rule table: parse, compile, evaluate, print
 *
 * SYNTAX (one logical line of the config file, main.cf continuation rules)
 *	STAGE [MODE] [name=NAME] CHECK [and CHECK]... ACTION [ARGS]
 *
 *	STAGE	connect helo mail rcpt data header eoh body eom
 *	MODE	normal | stress | both (default): the personalities that have it.
 *		"stress" right before "and" or an action is the check, not the
 *		mode ("connect stress reject" is the stress check in both).
 *	NAME	for the logs ([A-Za-z0-9_.:-], at most 64); default FILE:LINE
 *	CHECK	[!]KIND [OP] VALUE...   several VALUEs are alternatives (or);
 *		"and" joins checks; "!" (or "not") negates one
 *	ACTION	accept | continue | tempfail [CODE [ECODE]] [TEXT]
 *		| reject [CODE [ECODE]] [TEXT] | discard | quarantine TEXT
 *		| tag NAME TEXT | log ACTION...        (log: a dry run)
 *
 *	A check's values end at the first bare word that is an action name
 *	or "and"; quote a value ("reject") to use such a word. Tokens are
 *	split at white space; "double quotes" group (\" and \\ escape); a
 *	token that starts with / is a regex /.../flags up to the next
 *	unescaped / (PCRE2, byte-wise, flags i m s x; may contain spaces).
 *	${...} and $(...) keep spaces inside them. file:PATH as a value reads
 *	one value per line from PATH (a regular file, relative to the
 *	directory of the file that has the rule; blank lines and # comments
 *	skipped; lines are taken literally).
 *
 *	CODE is the unquoted token after tempfail/reject when it starts with
 *	a digit or is one ${...} reference; ECODE likewise after CODE.
 *	TEXT is the rest of the line: either one "quoted string" or the
 *	words as written. A quoted TEXT may start with a digit or ${.
 *
 *	Expansion: check values, rcpt_count's number, macro and header
 *	NAMEs, CODE, ECODE and tag NAMEs are expanded at load time per
 *	personality ($param, ${stress?{a}:{b}}) with the parameter rules
 *	(unknown names are errors). Keywords and /regex/ tokens are not
 *	expanded ($ is the regex anchor). An unquoted value whose expansion
 *	has white space gives several values; one that expands to nothing
 *	gives none, and a check with no values left matches nothing. TEXT is
 *	a template expanded per verdict (rules_expand_text()) with the
 *	session's variables (rules_template_vars) and the parameters; it is
 *	syntax-checked at load.
 *
 *	The kinds are the rows of the check table (rules-checks.c): one row
 *	per kind says its name, value syntax, stages, cost and the session
 *	fact it reads; rules_each_check() hands the rows out.
 *	Kinds and what they match (strings case-insensitively unless said):
 *	client		addresses and CIDR blocks, IPv4 and IPv6, [::1]/128 and
 *			2001:db8::/32 both accepted (see addr.h); a client
 *			address that is unknown or not an IP matches none
 *	client_name	exact name, .domain (its subdomains only), /re/,
 *			unknown (no name, "unknown", or "[addr]": Postfix's
 *			form for a client whose name did not verify)
 *	daemon_name	Postfix's {daemon_name} (sent at connect by default):
 *			milter_macro_daemon_name, $myhostname unless master.cf
 *			sets it per service; a name exactly (with case) or /re/
 *	helo		exact, .domain, /re/, ip_literal ([192.0.2.1],
 *			[IPv6:2001:db8::1], [2001:db8::1] or a bare address)
 *	sender, recipient  user@domain, user@ (any domain), @domain (that
 *			domain only), .domain (its subdomains only), /re/, <>
 *			(the null sender); the MTA's <> are removed first
 *	authenticated	(no values) the macro {auth_authen} is not empty
 *	macro NAME	the macro is sent and equals a value (case-sensitive)
 *			or matches /re/; no values: sent and not empty. A NAME
 *			of more than one letter gets braces ({auth_type}).
 *	rcpt_count OP N	OP one of < <= > >= == !=, N a whole number after
 *			expansion; at rcpt the current recipient is counted
 *	header NAME|* /re/...  the header stage: the current header; eoh,
 *			body, eom: any header of the message. The regex runs
 *			over the value, with * over "Name: value".
 *	stress		(no values) the session is stressed
 *	any		(no values) always
 *	A fact the MTA did not send (NULL) matches no value; "!" then makes
 *	the check true.
 *
 *	Expensive kinds (see COST below):
 *	dnsbl ZONE[=FILTER]...	the client address listed in a DNSBL zone
 *			(IPv4 or IPv6; a client address that is not an IP
 *			matches none). FILTER is Postfix's reject_rbl_client
 *			d.d.d.d pattern (127.0.0.[2..11], see dnsbl.h): only A
 *			records it takes count; without one any A record does
 *	rhsbl_helo ZONE[=FILTER]...	the HELO name in an RHSBL; an address
 *			literal or a name that is not a domain matches none
 *	rhsbl_sender ZONE[=FILTER]...	the sender's domain (after the last
 *			@); the null sender matches none
 *	rhsbl_client ZONE[=FILTER]...	the client's verified name; unknown
 *			and [addr] match none
 *	body /re/...	a body line matched the regex (bodyscan.h: per line,
 *			raw body) in the part of the body scanned so far
 *	Zones are domain names, compared in lower case.
 *
 * VALIDATION AT LOAD
 *	tempfail takes 4xx, reject takes 5xx (second digit 0-5); ECODE is
 *	class.subject.detail with class = the reply code's first digit and
 *	subject and detail 0-999 ("521 4.7.1" is refused: Postfix would
 *	drop the reply and disable the milter for the session); TEXT at most
 *	980 bytes with its parameters expanded and session variables empty,
 *	no CR/LF; discard is refused at connect and helo; quarantine needs a
 *	TEXT; tag NAME must be a header name; checks that a stage cannot see
 *	are refused: helo from helo on, sender from mail on, recipient at
 *	rcpt only, rcpt_count from rcpt on, header at header, eoh, body and
 *	eom; rhsbl_helo from helo on, rhsbl_sender from mail on, body at
 *	body and eom; the others everywhere. A FILTER must parse. Errors
 *	are "FILE:LINE:COLUMN: message" (COLUMN counts bytes in the logical
 *	line, continuation lines joined with one space), or "FILE:LINE:
 *	message" for a line of a file: list.
 *
 * DEFAULTS
 *	tempfail without CODE: 451 4.7.1 "Service unavailable, try again
 *	later"; reject without CODE: 550 5.7.1 "Message rejected". A CODE
 *	without ECODE leaves ecode "" (pass NULL to smfi_setreply); a CODE
 *	without TEXT gets the default text.
 *
 * EVALUATION
 *	Rules of a stage run in file order. rules_eval() calls visit() for
 *	every rule it tries, matched or not (for -vv traces); a matched rule
 *	whose action is a verdict (accept continue tempfail reject discard)
 *	ends the stage and is returned, whatever visit() answered for it.
 *	When visit() returns true for any other rule, evaluation stops and
 *	rules_eval() returns NULL. tag, quarantine and log never end a
 *	stage: the caller collects them from visit(). A regex that exceeds
 *	PCRE2's match limit counts as not matching.
 *
 * COST
 *	dnsbl and rhsbl_* are RULES_COST_DNSBL, body is RULES_COST_BODY; the
 *	others are cheap. rules_eval() runs expensive checks with what x
 *	gives it: a DNS provider (provider.h) and the stage's deadline, the message's body
 *	scanner. Under stress (facts->stressed) the expensive checks of a
 *	rule whose MODE is "both" are skipped: an administrator asks for them
 *	under stress with a rule in MODE "stress". Without a DNS provider or a
 *	scanner they are skipped too.
 *
 *	A skipped check, and a DNS check that got no answer (timeout, error,
 *	breaker open) for a zone that could have listed the subject, is
 *	unknown: its rule does not match, with or without "!", so no verdict
 *	ever comes from what was not looked at. info says what was skipped,
 *	timed out or failed.
 *
 *	DNS: at the start of a stage every lookup its runnable rules need is
 *	sent at once, identical names in one zone once (the FILTERs are
 *	applied here, to the A records that came back). Then the rules run
 *	in file order, and a rule waits only for the lookups it needs, each
 *	at most until x->deadline_ms (all of them are under way meanwhile):
 *	one stage costs at most its slowest lookup, not their sum. Once the
 *	stage is decided (a rule with a verdict matches, visit() stops it,
 *	the rules run out), the lookups still out are abandoned
 *	(the provider's finish(): cancelled, their late answers still cached): a
 *	listed client need not wait for a slower zone of a later rule. The
 *	result is the one waiting for all of them would give, only sooner;
 *	a rule never runs on a cancelled lookup. A lookup whose rule an
 *	earlier cheap check rules out is still sent (the cache keeps it for
 *	the next session), but nothing waits for it. info's timed_out,
 *	failed and DNS skipped count the lookups the evaluated rules waited
 *	for; queries counts all that were asked.
 *
 *	Body: all body regexes of a table form one bodyscan_set
 *	(rules_body_set()); the caller makes the message's scanner from it
 *	and feeds it the body; a body check is true once any of its regexes
 *	matched a line.
 *
 *	The $rbl_* template variables: before visit() is called for a matched
 *	rule, and for the rule rules_eval() returns, info->rbl_domain (the
 *	zone), rbl_what (the address or domain looked up), rbl_reason (the
 *	TXT record, "" without one) and rbl_class (Postfix's words: "Client
 *	host", "Helo command", "Sender address") describe the first listing that made the
 *rule match; all "" when it matched without one. The caller's var() hands them to
 *rules_expand_text().
 *
 * CONCURRENCY
 *	The LOADING functions run on the thread that loads the config and
 *	keep no global state. A rules_table is never modified after
 *	rules_compile() returns: any number of threads evaluate it at once
 *	without locks (PCRE2 match data is per call; a JIT-compiled match
 *	uses about 32 KiB of the caller's stack). Pointers into it live as
 *	long as the conf snapshot that owns it.
 */
#ifndef MS_RULES_H
#define MS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bodyscan.h"
#include "dnsbl.h"
#include "expand.h"
#include "provider.h"
#include "scan.h"
#include "stage.h"
#include "strbuf.h"

enum rules_action_kind {
	RULES_ACCEPT,
	RULES_CONTINUE,
	RULES_TEMPFAIL,
	RULES_REJECT,
	RULES_DISCARD,
	RULES_QUARANTINE,
	RULES_TAG,
	RULES_LOG,
	RULES_PERSONALITY, /* the personality table: not a verdict, see rules_personality() */
	RULES_N_ACTIONS
};

/* The longest reply text libmilter's smfi_setreply() takes. */
#define RULES_TEXT_MAX 980

typedef struct rules_action {
	enum rules_action_kind kind;
	/* RULES_LOG: what it would do (never RULES_LOG); otherwise == kind. */
	enum rules_action_kind would;
	char code[4];   /* tempfail/reject: "451"; "" for other kinds */
	char ecode[12]; /* "4.7.1"; "" when the rule gave none */
	/* template: reply text (never NULL for tempfail/reject), quarantine
	   reason, tag value; NULL for the other kinds */
	const char *text;
	const char *tag_name; /* RULES_TAG: the header name */
	bool to_stress;       /* RULES_PERSONALITY: the stress one, else the normal one */
} rules_action;

typedef struct rule rule;               /* opaque */
typedef struct rules_table rules_table; /* opaque; one per personality */

/* "name" from name=NAME, else "FILE:LINE". */
const char *rule_name(const rule *r);
const rules_action *rule_action(const rule *r);
enum stage rule_stage(const rule *r);

/* What a rule may look at. Strings are NULL when unknown. */
typedef struct rules_header {
	const char *name;
	const char *value;
} rules_header;

typedef struct rules_facts {
	bool stressed;
	const char *client_addr; /* "192.0.2.1", "2001:db8::1" */
	const char *client_name; /* as the MTA gave it; "unknown" or "[addr]" when
	                            it has no verified name */
	const char *daemon_name; /* {daemon_name}: milter_macro_daemon_name */
	const char *helo;
	const char *sender;    /* as the MTA gave it, with or without <>; "<>" null */
	const char *recipient; /* the current one, at rcpt */
	size_t rcpt_count;     /* recipients so far, the current one included */
	const rules_header *header;  /* the current one, at header */
	const rules_header *headers; /* all so far, at eoh and later */
	size_t n_headers;
	/* Any macro by name ("{auth_authen}", "i"); NULL when not sent. */
	const char *(*macro)(void *ctx, const char *name);
	void *macro_ctx;
	const char *history; /* "known" or "unknown" (history.h) */
} rules_facts;

/* Return true to stop evaluating (the caller decided). */
typedef bool (*rules_visit_fn)(void *ctx, const rule *r, bool matched);

/* Cost classes, bits of rules_eval_info's masks: one per scanner (scan.h's
   order), so that skipped= names each. */
enum {
	RULES_COST_DNSBL = 1u << 0,
	RULES_COST_BODY = 1u << 1,
	RULES_COST_CLAMD = 1u << 2,
	RULES_COST_SPAMD = 1u << 3,
	RULES_COST_RSPAMD = 1u << 4,
};
#define RULES_COST_OF_SCAN(k) (RULES_COST_CLAMD << (unsigned)(k))
#define RULES_COST_SCAN (RULES_COST_CLAMD | RULES_COST_SPAMD | RULES_COST_RSPAMD)
/* The classes' names in skipped=, in bit order: "dnsbl,body,clamd,...". */
void rules_format_costs(unsigned costs, strbuf *out);

/* What the expensive checks may use; see COST. */
typedef struct rules_expensive {
	const dns_provider *dns; /* NULL: DNS checks are skipped */
	long long deadline_ms;   /* absolute, budget_now_ms() clock: the stage's budget */
	const bodyscan *body;    /* the message's scanner at body/eom; NULL: body
	                            checks skipped */
	const scan_result *scan; /* at eom: [SCAN_N], each scanner's result (one
	                            not run: SCAN_NOT_RUN); NULL: scan checks
	                            skipped */
} rules_expensive;

typedef struct rules_eval_info {
	unsigned skipped;    /* RULES_COST_* not run: stress, breaker open, no
	                        ctx or scanner */
	unsigned timed_out;  /* RULES_COST_DNSBL: a lookup hit the deadline;
	                        RULES_COST_<scanner>: its scan did */
	unsigned failed;     /* RULES_COST_DNSBL: SERVFAIL, REFUSED, ...;
	                        RULES_COST_<scanner>: an error, its breaker open */
	unsigned queries;    /* DNS lookups asked of dnsbl in this stage */
	strbuf timeout_what; /* "zen.example.org after 1000 ms": the first one */
	strbuf failed_what;  /* "zen.example.org (<name>: <error>)": the first one */
	long long dns_ms;    /* time spent waiting on DNS in this stage */
	/* $rbl_domain $rbl_what $rbl_reason $rbl_class; see COST */
	strbuf rbl_domain, rbl_what, rbl_reason, rbl_class;
} rules_eval_info;

void rules_eval_info_init(rules_eval_info *info);
void rules_eval_info_free(rules_eval_info *info); /* and ready for reuse */

/*
 * Evaluate the rules of a stage. x NULL: the expensive checks are skipped.
 * info (may be NULL) is reset first, so one info serves stage after stage.
 * Blocks for DNS at most until x->deadline_ms.
 */
const rule *rules_eval(const rules_table *t, enum stage stage, const rules_facts *f,
                       const rules_expensive *x, rules_eval_info *info,
                       rules_visit_fn visit, void *ctx);

/*
 * The same evaluation in steps, for a stage that must not block (the
 * session hands it on to a later stage; see session.h, DELAYED STAGES).
 * rules_run_start() resets info, collects the stage's lookups and sends
 * them (x is copied; its deadline holds for the whole run); NULL when
 * there is nothing to evaluate (t NULL, a bad stage). rules_run_go() goes
 * on from where the run stopped, with facts f (read during the call only,
 * so the caller may pass fresh ones each time). With pause_after an
 * absolute time (budget_now_ms() clock) rather than RULES_NO_PAUSE, a
 * rule that needs a lookup waits for it only until then: if it is not in
 * by then, the run pauses, sets *paused and returns NULL, before visit()
 * sees that rule; going on later tries that rule again from its first check, so
 * every rule is visited once, in file order, whatever the pauses. It
 * returns what rules_eval() would, once not paused. rules_run_end()
 * abandons what is still out and frees the run (NULL: a no-op). info
 * must outlive the run; a run is used by one thread at a time.
 */
typedef struct rules_run rules_run;
#define RULES_NO_PAUSE (-1LL) /* rules_run_go(): wait as rules_eval() does */
rules_run *rules_run_start(const rules_table *t, enum stage stage, const rules_facts *f,
                           const rules_expensive *x, rules_eval_info *info);
const rule *rules_run_go(rules_run *run, const rules_facts *f, long long pause_after,
                         rules_visit_fn visit, void *ctx, bool *paused);
void rules_run_end(rules_run *run);

/*
 * The personality table: the first rule of the stage (connect or mail)
 * whose action is personality and whose checks match f, or NULL. Such
 * rules have cheap checks only (the compiler refuses others), so this
 * never blocks. rules_eval() passes over them (visit() sees them).
 */
const rule *rules_personality(const rules_table *t, enum stage stage, const rules_facts *f);

/*
 * Has the table of the personality stressed (or not) a personality rule
 * that names the other one? Then a session that starts in it may still
 * become the other, and must negotiate what both need.
 */
bool rules_may_switch(const rules_table *t, bool stressed);

/* The table's body regexes, for bodyscan_start(); NULL when it has none. */
const bodyscan_set *rules_body_set(const rules_table *t);

/* Would rules_eval() run any expensive check at the stage (a DNS
   lookup, a look at the scanner) for a session stressed or not? */
bool rules_stage_expensive(const rules_table *t, enum stage stage, bool stressed);

/*
 * The RULES_COST_* of the expensive checks that rules of mode normal or both
 * have at the stage: what the calm personality checks there, from the calm
 * table (conf_rules(c, false)). Under stress none of them runs (a rule of mode
 * both skips them, one of mode normal is not in the stress table), so a
 * stressed session that reaches the stage reports them as skipped.
 */
unsigned rules_calm_costs(const rules_table *t, enum stage stage);

/* The SCAN_BIT()s of the scanners that rules at the stage would ask,
   for a session stressed or not (rules of mode stress only, under stress). */
unsigned rules_stage_scans(const rules_table *t, enum stage stage, bool stressed);
/* The SCAN_BIT()s of the scanners any rule of the table asks. */
unsigned rules_scans(const rules_table *t);

/* Does any rule of this table run at the stage? Could one reply there? */
bool rules_stage_used(const rules_table *t, enum stage stage);
/* (a verdict that answers the MTA: accept, tempfail, reject, discard) */
bool rules_stage_may_reply(const rules_table *t, enum stage stage);
/* Does any rule look at the whole header set (so the session must keep it)? */
bool rules_need_header_set(const rules_table *t);
size_t rules_count(const rules_table *t); /* rules in the table */
const rule *rules_rule(const rules_table *t, size_t i); /* i < rules_count() */
/*
 * -n: every rule of the table, one line each, "FILE:LINE: STAGE MODE
 * [name=NAME] CHECKS ACTION ARGS" as compiled: values expanded, regexes
 * and TEXT as written, the effective code, ecode and text of tempfail
 * and reject. conf_dump() prints it after the parameters.
 */
void rules_dump(const rules_table *t, FILE *fp);

const char *rules_action_name(enum rules_action_kind kind);
/* The PROTO_F_* modification flags every action together may need. */
unsigned long rules_milter_flags(void);

/*
 * The check and action tables, for the manual and the fuzz dictionary:
 * fn(ctx, name, syntax, first, last, cost, doc) per check kind in table
 * order; syntax is how its values are written ("VALUE...", "OP N", ...).
 */
typedef void (*rules_check_row_fn)(void *ctx, const char *name, const char *syntax,
                                   enum stage first, enum stage last, unsigned cost,
                                   const char *doc);
void rules_each_check(rules_check_row_fn fn, void *ctx);

/*
 * Expand a TEXT template for a verdict: $client_addr $client_name
 * $helo_name $sender $recipient $queue_id $rule $stage $stress $rbl_domain
 * $rbl_what $rbl_reason $rbl_class and the
 * parameters; values from the network are inserted as they are, never
 * expanded again. The result replaces the content of out (out->s is never
 * NULL afterwards), is cut at 980 bytes (never inside a UTF-8 sequence)
 * and has CR/LF removed. A name var() does not know expands to nothing.
 */
typedef const char *(*rules_var_fn)(void *ctx, const char *name);
void rules_expand_text(const char *tmpl, rules_var_fn var, void *ctx, strbuf *out);

/* The names a template may use besides the parameters; NULL-terminated. */
extern const char *const rules_template_vars[];

/*
 * text (an expanded reply) as smfi_setreply() wants it: every '%'
 * doubled (libmilter treats it as a format), CR/LF dropped, cut to 980
 * bytes without splitting a "%%" or a UTF-8 sequence. Replaces out.
 */
void rules_reply_text_for_milter(const char *text, strbuf *out);

/*
 * A reply written as one value outside a rule, "CODE [ECODE] [TEXT]"
 * (overload_reply), checked as a rule's reply of kind (RULES_TEMPFAIL or
 * RULES_REJECT) is: CODE 4xx or 5xx to match, ECODE of the code's class,
 * TEXT without CR/LF and at most RULES_TEXT_MAX bytes (none: the kind's
 * default text). Fills code, ecode ("" when none) and text; false with the
 * reason in why.
 */
bool rules_parse_reply(enum rules_action_kind kind, const char *spec, char code[4],
                       char ecode[12], strbuf *text, strbuf *why);

/*
 * LOADING (used by conf.c)
 *	src = rules_source_create();
 *	rules_source_add(src, file, line, text, report, ctx);	per rule line
 *	rules_compile(src, env, tables, report, ctx);		both personalities
 *	rules_source_free(src);
 *	... rules_table_free(tables[i]);
 *
 * report() receives each problem once, with the file and line of the rule
 * (or of the line in a file: list) and the column in the logical line (0:
 * none). A problem that shows in only one of two personalities that both
 * have the rule ends in "(in the normal personality)" or "(in the stress
 * personality)". A problem inside a parameter's value is not reported here
 * (the parameter's own check reports it) but still makes the call fail.
 */
typedef void (*rules_report_fn)(void *ctx, const char *file, unsigned line, size_t column,
                                const char *msg);

typedef struct rules_source rules_source; /* parsed rules, before expansion */

rules_source *rules_source_create(void);
void rules_source_free(rules_source *src); /* NULL-safe */
/* One logical line that starts with a stage name; false after report(). */
bool rules_source_add(rules_source *src, const char *file, unsigned line,
                      const char *text, rules_report_fn report, void *ctx);

typedef struct rules_env {
	bool stressed; /* the personality's $stress; picks the rules by MODE */
	/* Expands tokens at load: the parameter lookup with $stress. */
	const expand_ops *expand;
	void *expand_ctx;
	/* Parameter values (expanded) for TEXT at run time; NULL for a name
	   that is not a parameter. param_ctx must outlive the table. */
	rules_var_fn param;
	void *param_ctx;
} rules_env;

/* Tables for env[0] and env[1] in out[0] and out[1], always (maybe empty);
   false when anything was wrong. */
bool rules_compile(const rules_source *src, const rules_env env[2], rules_table *out[2],
                   rules_report_fn report, void *ctx);
void rules_table_free(rules_table *t); /* NULL-safe */

#endif
