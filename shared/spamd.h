/*
 * spamd - SpamAssassin's daemon: SYMBOLS over SPAMC/1.5, and its replies
 *
 * SYNOPSIS
 *	st = spamd_scan("inet:783@127.0.0.1", &m, deadline, &res);
 *	ok = spamd_reply_parse(reply, len, &res, &why);
 *
 * DESCRIPTION
 *	spamd_scan() connects, sends "SYMBOLS SPAMC/1.5" with Content-length
 *	(and User, when m->user is set), a blank line and the spooled
 *	message, and reads the reply until spamd closes the connection.
 *
 *	spamd_reply_parse() reads a whole reply: the status line
 *	"SPAMD/1.1 0 EX_OK" (a code other than 0 is spamd's error, its text
 *	in why), header lines up to a blank line, of which
 *	"Spam: True ; 15.0 / 5.0" (True/False or Yes/No, any case, the
 *	score and the threshold as decimals, maybe negative) is required and
 *	"Content-length" bounds the body when present; the body is the
 *	matched rule names, separated by commas (and white space). Lines end
 *	in CRLF or LF. False with the reason in why for anything else.
 *
 * CONCURRENCY
 *	No state; any thread, any number at once.
 */
#ifndef MS_SPAMD_H
#define MS_SPAMD_H

#include <stdbool.h>
#include <stddef.h>

#include "scan.h"

enum scan_status spamd_scan(const char *endpoint, const scan_message *m,
                            long long deadline, scan_result *out);
bool spamd_reply_parse(const char *s, size_t n, scan_result *out, strbuf *why);

#endif
