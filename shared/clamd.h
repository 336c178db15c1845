/*
 * clamd - the ClamAV daemon's INSTREAM command and its replies
 *
 * SYNOPSIS
 *	st = clamd_scan("unix:/run/clamav/clamd.ctl", &m, deadline, &res);
 *	ok = clamd_reply_parse(reply, len, &res, &why);
 *
 * DESCRIPTION
 *	clamd_scan() connects, sends "zINSTREAM" and the spooled message in
 *	chunks (a 4-byte length in network order each, a zero length at the
 *	end), and reads the one reply; clamd then closes the connection.
 *	It returns the result's status; res->why says why when not SCAN_OK.
 *
 *	clamd_reply_parse() reads one reply (clamd ends it with a NUL after
 *	a z-command, with a newline after an n-command; either, or none, is
 *	taken): "stream: OK" is clean, "stream: NAME FOUND" infected with NAME
 *	(clamd's ExtendedDetectionInfo adds "(hash:size)" to the name: kept as
 *	it is), anything ending in "ERROR" ("INSTREAM size limit exceeded.
 *	ERROR", "stream: ... ERROR") is clamd's error, and anything else is
 *	an error too ("UNKNOWN COMMAND", "COMMAND READ TIMED OUT", a control
 *	character inside the line, garbage).
 *	False with the reason in why for the errors.
 *
 * CONCURRENCY
 *	No state; any thread, any number at once.
 */
#ifndef MS_CLAMD_H
#define MS_CLAMD_H

#include <stdbool.h>
#include <stddef.h>

#include "scan.h"

enum scan_status clamd_scan(const char *endpoint, const scan_message *m,
                            long long deadline, scan_result *out);
bool clamd_reply_parse(const char *s, size_t n, scan_result *out, strbuf *why);

#endif
