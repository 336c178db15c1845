/*
 * personality - why a session has the personality it has: the stress source,
 * then the client
 *
 * SYNOPSIS
 *	p.decided = stress_decide(...);		what the stress source said
 *	p.client = "known";			the client history, NULL without one
 *	p.rule = rule_name(r); p.at = STAGE_CONNECT;	a personality rule overrode it
 *	personality_format_log(&effective, &p, &line);
 *	personality_format_header(&effective, &p, &value);
 *
 * DESCRIPTION
 *	stress.c decides whether the smtpd is stressed; the personality
 *	table (rules with the action personality, rules.h) may then give a
 *	client the other personality: "stressed by the macro, but this client
 *	keeps the normal personality because rule R matched (its history says
 *	known)". A session records both, and its log line and stress header
 *	say both.
 *
 *	effective is the stress state the session uses (its source is the
 *	stress decision's); p says what overrode it.
 *
 * HEADER GRAMMAR (milter-stress.conf(5), The stress header)
 *	value = ("yes" | "no") [" (" item *("; " item) ")"]
 *	item  = "source=" SOURCE	what decided stress (stress.h)
 *	      | "stress=" ("yes"|"no")	what SOURCE said, when a rule overrode it
 *	      | "client=" ("known"|"unknown")	the client history's verdict
 *	      | "rule=" NAME		the personality rule that overrode it
 *	      | "at=mail"		it did so at MAIL FROM (for the rest)
 *	Without a client history and a rule, the value is stress.h's, as
 *	before ("yes (source=macro)", "no").
 *
 * LOG FORM
 *	"yes(macro)" as stress.h's, then " client=known" with a history, then
 *	" personality=normal(rule=R,at=connect,stress=yes)" when a rule
 *	overrode the stress decision.
 *
 * CONCURRENCY
 *	Pure functions; any thread.
 */
#ifndef MS_PERSONALITY_H
#define MS_PERSONALITY_H

#include <stdbool.h>

#include "stage.h"
#include "strbuf.h"
#include "stress.h"

typedef struct personality {
	stress_state decided; /* what the stress source said */
	const char *client;   /* "known", "unknown"; NULL: no history store */
	const char *rule;     /* the personality rule that overrode decided; NULL */
	enum stage at;        /* where it did: STAGE_CONNECT or STAGE_MAIL */
} personality;

void personality_format_log(const stress_state *effective, const personality *p,
                            strbuf *out);
void personality_format_header(const stress_state *effective, const personality *p,
                               strbuf *out);

#endif
