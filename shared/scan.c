/* scan - scanner results; see scan.h. */
#include "config.h"

#include "scan.h"

#include <stdlib.h>
#include <string.h>

const char *
scan_kind_name(enum scan_kind k)
{
	static const char *const names[SCAN_N] = {
	        [SCAN_CLAMD] = "clamd", [SCAN_SPAMD] = "spamd", [SCAN_RSPAMD] = "rspamd"};

	return (unsigned)k < SCAN_N ? names[k] : "?";
}

const char *
scan_status_name(enum scan_status s)
{
	static const char *const names[] = {[SCAN_NOT_RUN] = "not_run",
	                                    [SCAN_OK] = "ok",
	                                    [SCAN_SKIPPED] = "skipped",
	                                    [SCAN_TIMEOUT] = "timeout",
	                                    [SCAN_ERROR] = "error"};

	return (unsigned)s <= SCAN_ERROR ? names[s] : "?";
}

void
scan_result_init(scan_result *r)
{
	memset(r, 0, sizeof *r);
	strbuf_init(&r->why);
	strbuf_init(&r->virus);
}

void
scan_result_free(scan_result *r)
{
	strbuf_free(&r->why);
	strbuf_free(&r->virus);
	for (size_t i = 0; i < r->nsymbols; i++)
		free(r->symbols[i]);
	free(r->symbols);
	scan_result_init(r);
}

void
scan_result_add_symbol(scan_result *r, const char *name, size_t len)
{
	r->symbols = ms_xrealloc(r->symbols, (r->nsymbols + 1) * sizeof *r->symbols);
	r->symbols[r->nsymbols++] = ms_xstrndup(name, len);
}
