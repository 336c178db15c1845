/* session - per-connection state and per-message verdict lines; see session.h. */
#include "config.h"

#include "session.h"

#include <stdlib.h>
#include <strings.h>
#include <time.h>

struct session {
	conf *conf;
	stress_state stress;
	char *client_name;
	char *client_addr;
	char *helo;
	/* The message in progress. */
	bool in_message;
	const char *last_stage;
	char *queue_id;
	char *from;
	char *first_rcpt;
	size_t n_rcpt;
	size_t n_forged;
	/* Time spent inside callbacks since the last message ended. */
	long long busy_ns;
	struct timespec entered;
};

static char *
dup_or_null(const char *s)
{
	return s != NULL ? ms_xstrdup(s) : NULL;
}

static void
replace(char **slot, const char *value)
{
	free(*slot);
	*slot = dup_or_null(value);
}

session *
session_create(conf *c, const char *client_name, const char *client_addr)
{
	session *s = ms_xcalloc(1, sizeof *s);

	conf_ref(c);
	s->conf = c;
	s->client_name = dup_or_null(client_name);
	s->client_addr = dup_or_null(client_addr);
	s->last_stage = "connect";
	return s;
}

static void
end_message(session *s)
{
	s->in_message = false;
	s->n_rcpt = 0;
	s->n_forged = 0;
	s->busy_ns = 0;
	replace(&s->queue_id, NULL);
	replace(&s->from, NULL);
	replace(&s->first_rcpt, NULL);
}

void
session_free(session *s)
{
	if (s == NULL)
		return;
	end_message(s);
	free(s->client_name);
	free(s->client_addr);
	free(s->helo);
	conf_unref(s->conf);
	free(s);
}

void
session_enter(session *s)
{
	clock_gettime(CLOCK_MONOTONIC, &s->entered);
}

void
session_leave(session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	s->busy_ns += (long long)(now.tv_sec - s->entered.tv_sec) * 1000000000LL +
		      (now.tv_nsec - s->entered.tv_nsec);
}

void
session_set_stress(session *s, const char *macro_value)
{
	s->stress = stress_decide(s->conf, macro_value);
}

const stress_state *
session_stress(const session *s)
{
	return &s->stress;
}

const struct conf_values *
session_params(const session *s)
{
	return conf_personality(s->conf, s->stress.stressed);
}

const char *
session_stress_macro(const session *s)
{
	return stress_macro_name(s->conf);
}

void
session_helo(session *s, const char *helo)
{
	replace(&s->helo, helo);
	s->last_stage = "helo";
}

void
session_mail(session *s, const char *from)
{
	long long busy = s->busy_ns;

	end_message(s);
	s->busy_ns = busy; /* time spent before MAIL belongs to this message */
	s->in_message = true;
	replace(&s->from, from);
	s->last_stage = "mail";
}

void
session_rcpt(session *s, const char *rcpt)
{
	if (s->n_rcpt++ == 0)
		replace(&s->first_rcpt, rcpt);
	s->last_stage = "rcpt";
}

void
session_header(session *s, const char *name)
{
	const char *ours = session_params(s)->stress_header;

	s->last_stage = "header";
	if (ours[0] != '\0' && strcasecmp(name, ours) == 0)
		s->n_forged++;
}

void
session_set_queue_id(session *s, const char *qid)
{
	if (qid != NULL && qid[0] != '\0')
		replace(&s->queue_id, qid);
}

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

static void
format_line(const session *s, const char *stage, const char *action, strbuf *out)
{
	strbuf_printf(out, "%s: stress=", s->queue_id ? s->queue_id : "NOQUEUE");
	stress_format_log(&s->stress, out);
	strbuf_printf(out, " stage=%s action=%s client=", stage, action);
	session_format_client(s, out);
	if (s->helo != NULL)
		strbuf_printf(out, " helo=<%s>", s->helo);
	put_addr(out, "from", s->from);
	put_addr(out, "to", s->first_rcpt);
	if (s->n_rcpt > 1)
		strbuf_printf(out, " nrcpt=%zu", s->n_rcpt);
	strbuf_printf(out, " ms=%.3f", (double)s->busy_ns / 1e6);
}

void
session_eom(session *s, strbuf *header_value, size_t *n_forged, strbuf *log_line)
{
	const struct conf_values *p = session_params(s);

	*n_forged = s->n_forged;
	if (p->stress_header[0] != '\0' &&
	    (s->stress.stressed || p->stress_header_always))
		stress_format_header(&s->stress, header_value);
	format_line(s, "eom", "accept", log_line);
	end_message(s);
	s->last_stage = "eom";
}

bool
session_abort(session *s, strbuf *log_line)
{
	if (!s->in_message)
		return false;
	format_line(s, s->last_stage, "aborted", log_line);
	end_message(s);
	return true;
}
