/*
 * stage - the stages of an SMTP session as a milter sees them, one row each
 *
 * SYNOPSIS
 *	const stage_desc *d = stage_get(STAGE_RCPT);
 *	d->name, d->nr_flag, d->skip_flag, d->session_wide, ...
 *	long long ms = stage_budget(params, STAGE_RCPT);
 *	long long postfix_ms = stage_timeout(params, STAGE_RCPT);
 *
 * DESCRIPTION
 *	Every fact about a stage that more than one module needs lives in
 *	its row of the stage table (stage.c): its name in rules and logs; the
 *	protocol flags that tell the MTA not to wait for its reply (NR) and
 *	not to send it at all; whether milter-stress may negotiate it away
 *	when no rule needs it; the parameter that holds its time budget, and
 *	the one that holds Postfix's timeout for it, which the budget must fit
 *	in (budget.h); whether it belongs to the session (connect, helo:
 *	before any message, so an accept there ends the session and a tag
 *	there applies to every message) or to one message; the macro stage
 *	whose macros the MTA sends with it. A new fact about stages is a new
 *	column here, not a switch in the module that needs it.
 *
 *	Stages are in protocol order: a later stage has a larger value.
 *
 * CONCURRENCY
 *	The table is constant: any thread reads it.
 */
#ifndef MS_STAGE_H
#define MS_STAGE_H

#include <stdbool.h>
#include <stddef.h>

struct conf_values;

enum stage {
	STAGE_CONNECT,
	STAGE_HELO,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_DATA,
	STAGE_HEADER,
	STAGE_EOH,
	STAGE_BODY,
	STAGE_EOM,
	STAGE_N
};

typedef struct stage_desc {
	const char *name; /* "connect", as rules and logs write it */
	/* PROTO_P_NR_*: the MTA does not wait for a reply when no rule can
	   give one; 0: always answered (eom, and the stages smtpd sends,
	   stage.c). */
	unsigned long nr_flag;
	/* PROTO_P_NO*: the MTA does not send the stage; 0: eom, always sent. */
	unsigned long skip_flag;
	/* Negotiated away (skip_flag) when no rule of either personality
	   needs it. The others stay: the session's log line needs the
	   envelope, and a DATA stage turned off still sends its macro packet,
	   which Nagle then holds for 40 ms (doc/ARCHITECTURE.md). */
	bool skippable;
	bool session_wide;  /* before any message: connect, helo */
	const char *budget; /* its budget parameter: "connect_budget" */
	/* Postfix's timeout for its reply, as our parameter of the same name
	   says it: "milter_command_timeout". */
	const char *timeout;
	int macro_stage;        /* PROTO_M_*; -1: the MTA sends none with it */
	const char *macro_list; /* Postfix's parameter for those macros */
} stage_desc;

/* stage must be < STAGE_N (a panic otherwise). */
const stage_desc *stage_get(enum stage stage);
/* The name, "?" for a value outside the table. */
const char *stage_name(enum stage stage);
/* The stage called name (len bytes, not NUL-terminated); false if none. */
bool stage_parse(const char *name, size_t len, enum stage *stage);
/* Appends "connect, helo, ... or eom" to b, for messages. */
struct strbuf;
void stage_list(struct strbuf *b);
/* The stage's budget in ms in these parameters. */
long long stage_budget(const struct conf_values *p, enum stage stage);
/* Postfix's timeout for the stage in ms, as these parameters say it. */
long long stage_timeout(const struct conf_values *p, enum stage stage);

#endif
