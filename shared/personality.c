/* personality - the stress decision and the client's part in it, as text; see personality.h. */
#include "config.h"

#include "personality.h"

void
personality_format_log(const stress_state *effective, const personality *p, strbuf *out)
{
	stress_format_log(effective, out);
	if (p->client != NULL)
		strbuf_printf(out, " client=%s", p->client);
	if (p->rule != NULL)
		strbuf_printf(out, " personality=%s(rule=%s,at=%s,stress=%s)",
		              effective->stressed ? "stress" : "normal", p->rule,
		              stage_name(p->at), p->decided.stressed ? "yes" : "no");
}

void
personality_format_header(const stress_state *effective, const personality *p, strbuf *out)
{
	if (p->client == NULL && p->rule == NULL) {
		stress_format_header(effective, out);
		return;
	}
	strbuf_printf(out, "%s (source=%s", effective->stressed ? "yes" : "no",
	              stress_source_name(effective->source));
	if (p->rule != NULL)
		strbuf_printf(out, "; stress=%s", p->decided.stressed ? "yes" : "no");
	if (p->client != NULL)
		strbuf_printf(out, "; client=%s", p->client);
	if (p->rule != NULL) {
		strbuf_printf(out, "; rule=%s", p->rule);
		if (p->at != STAGE_CONNECT)
			strbuf_printf(out, "; at=%s", stage_name(p->at));
	}
	strbuf_putc(out, ')');
}
