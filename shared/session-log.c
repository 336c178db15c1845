/*
 * session-log - the verdict log line, and a reply as it logs; see
 * session-int.h. One Postfix-style line per verdict and per message's end
 * (session.h): the queue id, the stress state and its source, the stage,
 * the rule, the action, the client and envelope, what was skipped, the
 * scanners' results, and the milliseconds spent inside the milter.
 */
#include "config.h"

#include "session-int.h"
#include "log.h"
#include "msgscan.h"
#include "personality.h"

void
session_format_client(const session *s, strbuf *out)
{
	strbuf_printf(out, "%s[%s]", s->client_name ? s->client_name : "unknown",
	              s->client_addr ? s->client_addr : "unknown");
}

/* Postfix shows addresses in angle brackets; libmilter passes them as sent. */
static void
put_addr(strbuf *out, const char *key, const char *addr)
{
	if (addr == NULL)
		return;
	if (addr[0] == '<')
		strbuf_printf(out, " %s=%s", key, addr);
	else
		strbuf_printf(out, " %s=<%s>", key, addr);
}

/* "QID: stress=yes(macro) stage=S [rule=R] action=A client=... ms=N" */
void
sess_log_line(const session *s, const char *stage, const char *rule_id,
              const char *action)
{
	strbuf out = STRBUF_INIT;

	strbuf_printf(&out, "%s: stress=", s->queue_id ? s->queue_id : "NOQUEUE");
	personality_format_log(&s->stress, &s->persona, &out);
	strbuf_printf(&out, " stage=%s", stage);
	if (rule_id != NULL)
		strbuf_printf(&out, " rule=%s", rule_id);
	strbuf_printf(&out, " action=%s client=", action);
	session_format_client(s, &out);
	if (s->helo != NULL)
		strbuf_printf(&out, " helo=<%s>", s->helo);
	put_addr(&out, "from", s->from);
	put_addr(&out, "to", s->rcpt != NULL ? s->rcpt : s->first_rcpt);
	if (s->n_rcpt > 1)
		strbuf_printf(&out, " nrcpt=%zu", s->n_rcpt);
	if ((s->skipped | s->skipped_session) != 0) {
		strbuf_puts(&out, " skipped=");
		rules_format_costs(s->skipped | s->skipped_session, &out);
	}
	msgscan_format_log(s->mscan, &out);
	strbuf_printf(&out, " ms=%.3f", (double)sess_busy_ns(s) / 1e6);
	log_msg(LOG_INFO, "%s", out.s);
	strbuf_free(&out);
}

const char *
sess_answer_name(enum session_answer a)
{
	static const char *const names[] = {
	        [SESSION_CONTINUE] = "continue", [SESSION_ACCEPT] = "accept",
	        [SESSION_TEMPFAIL] = "tempfail", [SESSION_REJECT] = "reject",
	        [SESSION_DISCARD] = "discard",   [SESSION_SKIP] = "skip",
	};

	return names[a];
}

void
sess_describe_reply(const session_reply *r, strbuf *out)
{
	strbuf_puts(out, sess_answer_name(r->answer));
	if (r->code[0] != '\0')
		strbuf_printf(out, " %s", r->code);
	if (r->ecode[0] != '\0')
		strbuf_printf(out, " %s", r->ecode);
}
