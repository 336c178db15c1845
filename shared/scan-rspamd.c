/* scan-rspamd - rspamd as the third scanner: scan.h's result from rspamd.h's client. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "rspamd.h"
#include "scan.h"
#include "scanners.h"

static void *
client_new(const char *endpoint, strbuf *why)
{
	return rspamd_client_new(endpoint, why);
}

static void
client_free(void *client)
{
	rspamd_client_free(client);
}

static enum scan_status
scan(void *client, const char *endpoint, const scan_message *m, long long deadline,
     scan_result *out)
{
	rspamd_request rq = RSPAMD_REQUEST_INIT;
	rspamd_reply r = RSPAMD_REPLY_INIT;
	enum scan_status st;
	size_t len = 0;

	(void)endpoint;
	rq.ip = m->ip;
	rq.helo = m->helo;
	rq.from = m->from;
	rq.queue_id = m->queue_id;
	rq.user = m->user;
	rq.hostname = m->hostname;
	rq.settings_id =
	        m->settings_id != NULL && *m->settings_id != '\0' ? m->settings_id : NULL;
	rq.rcpt = m->rcpt;
	rq.nrcpt = m->nrcpt;
	if ((rq.mem = spool_mem(m->spool, &len)) != NULL) {
		rq.mem_len = len;
	} else {
		rq.fd = spool_fd(m->spool);
		rq.fd_len = spool_size(m->spool);
	}
	switch (rspamd_scan(client, &rq, deadline, NULL, &r, &out->why)) {
	case RSPAMD_OK:
		st = SCAN_OK;
		out->answered = true;
		snprintf(out->action, sizeof out->action, "%s", r.action);
		out->score = r.score;
		out->required = r.required;
		out->spam = strcmp(r.action, "no action") != 0;
		for (size_t i = 0; i < r.nsymbols; i++)
			scan_result_add_symbol(out, r.symbols[i], strlen(r.symbols[i]));
		break;
	case RSPAMD_TIMEOUT:
		st = SCAN_TIMEOUT;
		break;
	default:
		st = SCAN_ERROR;
		break;
	}
	rspamd_reply_free(&r);
	return st;
}

const scanner_ops scan_rspamd_ops = {client_new, client_free, scan};
