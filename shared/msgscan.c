/* msgscan - one message on its way to the content scanners; see msgscan.h. */
#include "config.h"

#include "msgscan.h"

#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "log.h"
#include "spool.h"

struct msgscan {
	unsigned kinds;
	spool *sp;
	bool body_started; /* the blank line after the headers is written */
	char **rcpt;
	size_t nrcpt;
	bool ran;
	scan_result res[SCAN_N];
	const char *queue_id; /* for the log, while running */
};

msgscan *
msgscan_start(unsigned kinds, size_t spool_memory, long long size_limit,
              const char *spool_dir)
{
	msgscan *ms = ms_xcalloc(1, sizeof *ms);

	ms->kinds = kinds;
	ms->sp = spool_create(spool_memory, size_limit, spool_dir);
	for (int k = 0; k < SCAN_N; k++)
		scan_result_init(&ms->res[k]);
	return ms;
}

void
msgscan_free(msgscan *ms)
{
	if (ms == NULL)
		return;
	spool_free(ms->sp);
	for (size_t i = 0; i < ms->nrcpt; i++)
		free(ms->rcpt[i]);
	free(ms->rcpt);
	for (int k = 0; k < SCAN_N; k++)
		scan_result_free(&ms->res[k]);
	free(ms);
}

void
msgscan_rcpt(msgscan *ms, const char *rcpt)
{
	if (rcpt == NULL)
		return;
	ms->rcpt = ms_xrealloc(ms->rcpt, (ms->nrcpt + 1) * sizeof *ms->rcpt);
	ms->rcpt[ms->nrcpt++] = ms_xstrdup(rcpt);
}

void
msgscan_header(msgscan *ms, const char *name, const char *value)
{
	strbuf line = STRBUF_INIT;

	strbuf_printf(&line, "%s: %s\r\n", name, value != NULL ? value : "");
	spool_write(ms->sp, line.s, line.len);
	strbuf_free(&line);
}

static void
end_headers(msgscan *ms)
{
	if (!ms->body_started) {
		spool_write(ms->sp, "\r\n", 2);
		ms->body_started = true;
	}
}

void
msgscan_body(msgscan *ms, const unsigned char *chunk, size_t len)
{
	end_headers(ms);
	spool_write(ms->sp, chunk, len);
}

bool
msgscan_wants_body(const msgscan *ms)
{
	return !spool_over(ms->sp) && spool_error(ms->sp) == NULL;
}

static void
all_kinds(msgscan *ms, enum scan_status st, const char *why)
{
	for (int k = 0; k < SCAN_N; k++)
		if (ms->kinds & SCAN_BIT(k)) {
			ms->res[k].status = st;
			strbuf_puts(&ms->res[k].why, why);
		}
}

void
msgscan_run(msgscan *ms, const scan_provider *p, const msgscan_env *env,
            long long deadline, const long long budget_ms[SCAN_N])
{
	long long now = budget_now_ms(), dl[SCAN_N];
	scan_message m = {
	        .spool = ms->sp,
	        .ip = env->ip,
	        .helo = env->helo,
	        .from = env->from,
	        .queue_id = env->queue_id,
	        .user = env->user,
	        .hostname = env->hostname,
	        .settings_id = env->settings_id,
	        .rcpt = (const char *const *)ms->rcpt,
	        .nrcpt = ms->nrcpt,
	};

	end_headers(ms);
	ms->ran = true;
	if (spool_over(ms->sp)) {
		all_kinds(ms, SCAN_SKIPPED, "larger than scan_size_limit");
		return;
	}
	if (spool_error(ms->sp) != NULL) {
		all_kinds(ms, SCAN_ERROR, spool_error(ms->sp));
		return;
	}
	for (int k = 0; k < SCAN_N; k++) {
		long long own = budget_deadline(now, budget_ms[k]);

		dl[k] = own < deadline ? own : deadline;
		m.budget_ms[k] = budget_ms[k];
	}
	if (p == NULL) {
		all_kinds(ms, SCAN_SKIPPED, "no scanners");
		return;
	}
	p->scan(p->self, ms->kinds, &m, dl, ms->res);
	for (int k = 0; k < SCAN_N; k++) {
		const scan_result *r = &ms->res[k];

		if ((ms->kinds & SCAN_BIT(k)) &&
		    (r->status == SCAN_TIMEOUT || r->status == SCAN_ERROR))
			log_msg(LOG_WARNING, "%s: %s scan %s after %lld ms: %s",
			        env->queue_id != NULL ? env->queue_id : "NOQUEUE",
			        scan_kind_name((enum scan_kind)k),
			        scan_status_name(r->status), r->ms, strbuf_str(&r->why));
	}
}

const scan_result *
msgscan_results(const msgscan *ms)
{
	return ms != NULL && ms->ran ? ms->res : NULL;
}

unsigned
msgscan_lost(const msgscan *ms)
{
	unsigned bits = 0;

	for (int k = 0; ms != NULL && ms->ran && k < SCAN_N; k++)
		if ((ms->kinds & SCAN_BIT(k)) && ms->res[k].status != SCAN_OK)
			bits |= SCAN_BIT(k);
	return bits;
}

static const char *
join_symbols(const scan_result *r, strbuf *buf)
{
	strbuf_reset(buf);
	strbuf_append(buf, "", 0);
	for (size_t i = 0; i < r->nsymbols; i++)
		strbuf_printf(buf, "%s%s", i > 0 ? "," : "", r->symbols[i]);
	return strbuf_str(buf);
}

static const char *
score(double v, strbuf *buf)
{
	strbuf_reset(buf);
	strbuf_printf(buf, "%.2f", v == 0 ? 0.0 : v); /* not "-0.00" */
	return strbuf_str(buf);
}

const char *
msgscan_var(const msgscan *ms, const char *name, strbuf *buf)
{
	const scan_result *c, *s, *r;

	if (ms == NULL || !ms->ran)
		return "";
	c = &ms->res[SCAN_CLAMD];
	s = &ms->res[SCAN_SPAMD];
	r = &ms->res[SCAN_RSPAMD];
	if (strcmp(name, "virus_name") == 0)
		return c->status == SCAN_OK ? strbuf_str(&c->virus) : "";
	if (strncmp(name, "spam_", 5) == 0 && s->status != SCAN_OK)
		return "";
	if (strncmp(name, "rspamd_", 7) == 0 && r->status != SCAN_OK)
		return "";
	if (strcmp(name, "spam_score") == 0)
		return score(s->score, buf);
	if (strcmp(name, "spam_required") == 0)
		return score(s->required, buf);
	if (strcmp(name, "spam_rules") == 0)
		return join_symbols(s, buf);
	if (strcmp(name, "rspamd_action") == 0)
		return r->action;
	if (strcmp(name, "rspamd_score") == 0)
		return score(r->score, buf);
	if (strcmp(name, "rspamd_required") == 0)
		return score(r->required, buf);
	if (strcmp(name, "rspamd_symbols") == 0)
		return join_symbols(r, buf);
	return NULL;
}

void
msgscan_format_log(const msgscan *ms, strbuf *out)
{
	const char *sep = " scan=";

	if (ms == NULL || !ms->ran)
		return;
	for (int k = 0; k < SCAN_N; k++) {
		const scan_result *r = &ms->res[k];

		if (!(ms->kinds & SCAN_BIT(k)))
			continue;
		strbuf_printf(out, "%s%s:", sep, scan_kind_name((enum scan_kind)k));
		sep = ",";
		if (r->status != SCAN_OK)
			strbuf_puts(out, scan_status_name(r->status));
		else if (k == SCAN_CLAMD)
			strbuf_puts(out, r->infected ? strbuf_str(&r->virus) : "clean");
		else if (k == SCAN_SPAMD)
			strbuf_printf(out, "%.2f/%.2f", r->score == 0 ? 0.0 : r->score,
			              r->required);
		else /* "no action" as one word: the line is key=value */
			for (const char *a = r->action; *a; a++)
				strbuf_putc(out, *a == ' ' ? '_' : *a);
		if (k == SCAN_RSPAMD && r->status == SCAN_OK)
			strbuf_printf(out, "/%.2f", r->score == 0 ? 0.0 : r->score);
	}
}
