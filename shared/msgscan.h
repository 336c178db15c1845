/*
 * msgscan - one message on its way to the content scanners
 *
 * SYNOPSIS
 *	ms = msgscan_start(kinds, spool_memory, size_limit, spool_dir);	at MAIL FROM
 *	msgscan_rcpt(ms, rcpt);			each accepted recipient
 *	msgscan_header(ms, name, value);	each header
 *	msgscan_body(ms, chunk, len);		each body chunk
 *	if (!msgscan_wants_body(ms)) ...	the rest need not come
 *	msgscan_run(ms, provider, &env, deadline, budgets);	at eom
 *	x.scan = msgscan_results(ms);		for the rules
 *	v = msgscan_var(ms, "spam_score", &buf);	templates
 *	msgscan_format_log(ms, &line);		" scan=clamd:clean,spamd:2.1/5.0"
 *	msgscan_free(ms);
 *
 * DESCRIPTION
 *	A session whose end-of-message rules ask scanners (kinds: SCAN_BIT()s,
 *	only those with a socket) spools the message as the MTA sends it:
 *	"Name: value" CRLF per header, a blank line, the body as it comes
 *	(CRLF already). The spool (spool.h) keeps scan_spool_memory bytes in
 *	memory and the rest in a private file, and gives up past
 *	scan_size_limit.
 *
 *	msgscan_run() asks every scanner of kinds at once through the
 *	provider, each until the earlier of its own budget and the eom
 *	deadline. A message over scan_size_limit asks none: each is
 *	SCAN_SKIPPED "larger than scan_size_limit"; a spool that failed
 *	(disk full) gives SCAN_ERROR. Failures are logged here, once per
 *	scanner and message. The scanners not in kinds stay SCAN_NOT_RUN (a
 *	check on them is skipped).
 *
 *	Template variables: $virus_name, $spam_score, $spam_required,
 *	$spam_rules (comma separated), $rspamd_action, $rspamd_score,
 *	$rspamd_required, $rspamd_symbols; "" when the scanner did not give
 *	them. Scores are written with two decimals.
 *
 * CONCURRENCY
 *	One session's: used by one callback at a time. msgscan_run() blocks
 *	its caller until the last scanner is final.
 */
#ifndef MS_MSGSCAN_H
#define MS_MSGSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "scan.h"
#include "strbuf.h"

typedef struct msgscan msgscan;

msgscan *msgscan_start(unsigned kinds, size_t spool_memory, long long size_limit,
                       const char *spool_dir);
void msgscan_free(msgscan *ms); /* NULL-safe */

void msgscan_rcpt(msgscan *ms, const char *rcpt);
void msgscan_header(msgscan *ms, const char *name, const char *value);
void msgscan_body(msgscan *ms, const unsigned char *chunk, size_t len);
bool msgscan_wants_body(const msgscan *ms);

/* The envelope the scanners are told; strings may be NULL. */
typedef struct msgscan_env {
	const char *queue_id, *ip, *helo, *from, *user, *hostname, *settings_id;
} msgscan_env;

void msgscan_run(msgscan *ms, const scan_provider *p, const msgscan_env *env,
                 long long deadline, const long long budget_ms[SCAN_N]);
const scan_result *msgscan_results(const msgscan *ms); /* NULL before run */
/* The SCAN_BIT()s of the scanners asked that gave no answer (skipped,
   timed out, failed): the session lists them in skipped= whether or not a
   rule got as far as looking. */
unsigned msgscan_lost(const msgscan *ms);
const char *msgscan_var(const msgscan *ms, const char *name, strbuf *buf);
void msgscan_format_log(const msgscan *ms, strbuf *out);

#endif
