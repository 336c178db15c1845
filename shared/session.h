/*
 * session - one SMTP session as the milter sees it, with no libmilter in sight
 *
 * The daemon's callbacks translate MTA events into calls here and the results
 * back into libmilter calls, so everything that decides is testable without a
 * socket. Life cycle:
 *
 *   session_create(conf, name, addr)   at connect; takes a conf reference, so
 *                                      the session keeps the snapshot it
 *                                      started on across reloads
 *   session_set_stress(s, value)       at connect: picks the personality
 *   session_helo / session_mail / session_rcpt / session_header
 *   session_set_queue_id               whenever the MTA tells it
 *   session_eom(s, ...)                end of message: the header to add, the
 *                                      forged copies to remove, the log line
 *   session_abort(s, ...)              message aborted: the log line, if a
 *                                      message was in progress
 *   session_free(s)                    at close; drops the conf reference
 *
 * session_enter()/session_leave() bracket each callback; the time in between
 * is what a message's log line reports as ms=.
 *
 * Concurrency: a session is used by one callback at a time (libmilter
 * serialises a connection's callbacks, though on varying threads). Sessions
 * share only the read-only conf snapshot.
 */
#ifndef MS_SESSION_H
#define MS_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "strbuf.h"
#include "stress.h"

typedef struct session session;

/* name/addr may be NULL (unknown); they are copied. */
session *session_create(conf *c, const char *client_name, const char *client_addr);
void session_free(session *s); /* NULL-safe */

void session_enter(session *s);
void session_leave(session *s);

void session_set_stress(session *s, const char *macro_value);
const stress_state *session_stress(const session *s);
/* The parameters of this session's personality. */
const struct conf_values *session_params(const session *s);
const char *session_stress_macro(const session *s);

void session_helo(session *s, const char *helo);
void session_mail(session *s, const char *from); /* starts a message */
void session_rcpt(session *s, const char *rcpt);
/* Counts copies of the stress header the client sent (they will be removed). */
void session_header(session *s, const char *name);
void session_set_queue_id(session *s, const char *qid); /* NULL ignored */

/*
 * End of message. header_value receives the stress header's value, or stays
 * empty when no header is to be added; *n_forged is how many copies of the
 * header arrived with the message (remove them, indexes 1..n). log_line
 * receives the verdict line. Ends the message.
 */
void session_eom(session *s, strbuf *header_value, size_t *n_forged,
		 strbuf *log_line);

/* Message aborted. Returns true and fills log_line if one was in progress. */
bool session_abort(session *s, strbuf *log_line);

/* The client as Postfix logs it: name[addr]. */
void session_format_client(const session *s, strbuf *out);

#endif
