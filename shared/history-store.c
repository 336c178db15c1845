/* history-store - the store behind a spec; see history-store.h. */
#include "config.h"

#include "history-store.h"

#include <string.h>

bool
history_store_spec_ok(const char *spec, strbuf *why)
{
	if (spec[0] == '\0' || strcmp(spec, "memory:") == 0)
		return true;
	if (strncmp(spec, "lmdb:", 5) == 0 && spec[5] == '/')
		return true;
	if (strncmp(spec, "redis:", 6) == 0 && spec[6] != '\0')
		return true;
	strbuf_printf(why,
	              "'%s': expected lmdb:/PATH, redis:HOST:PORT, redis:unix:/PATH, "
	              "memory: or nothing (off)",
	              spec);
	return false;
}

history_store *
history_store_open(const char *spec, const history_store_opts *o, strbuf *why,
                   strbuf *why_moved)
{
	if (!history_store_spec_ok(spec, why))
		return NULL;
	if (strncmp(spec, "lmdb:", 5) == 0)
		return history_lmdb_open(spec, spec + 5, o, why, why_moved);
	if (strncmp(spec, "redis:", 6) == 0)
		return history_redis_open(spec, spec + 6, o, why);
	if (strcmp(spec, "memory:") == 0)
		return history_memory_open(spec);
	strbuf_puts(why, "no history store configured");
	return NULL;
}

void
history_store_close(history_store *st)
{
	if (st != NULL)
		st->ops->close(st);
}
