/* stress - personality selection; see stress.h. */
#include "config.h"

#include "stress.h"

#include <string.h>
#include <strings.h>

static bool
is_stress_value(const conf_list *values, const char *v)
{
	for (size_t i = 0; i < values->n; i++)
		if (strcasecmp(values->v[i], v) == 0)
			return true;
	return false;
}

stress_state
stress_decide(const conf *c, enum stress_force force, stress_macro_fn fn, void *ctx)
{
	const struct conf_values *normal = conf_personality(c, false);
	stress_state st = {false, STRESS_SRC_NONE};
	const char *value;
	bool forced;

	if (conf_stress_forced(c, &forced)) {
		st.stressed = forced;
		st.source = STRESS_SRC_FORCED;
		return st;
	}
	if (force != STRESS_FORCE_NONE) {
		st.stressed = force == STRESS_FORCE_ON;
		st.source = STRESS_SRC_CONTROL;
		return st;
	}
	if (fn == NULL || (value = fn(ctx, normal->stress_macro)) == NULL)
		return st;
	st.source = STRESS_SRC_MACRO;
	st.stressed = is_stress_value(&normal->stress_values, value);
	return st;
}

static const struct {
	const char *name;
	unsigned bit;
} stress_uses[] = {
        {"macro", STRESS_USE_MACRO},
        {"sessions", STRESS_USE_SESSIONS},
        {"latency", STRESS_USE_LATENCY},
};

bool
stress_sources_parse(const char *text, unsigned *mask, strbuf *why)
{
	const char *p = text;

	*mask = 0;
	while (*p != '\0') {
		size_t n = strcspn(p, ", \t"), i;

		for (i = 0; n > 0 && i < sizeof stress_uses / sizeof stress_uses[0]; i++)
			if (strlen(stress_uses[i].name) == n &&
			    strncasecmp(p, stress_uses[i].name, n) == 0)
				break;
		if (n > 0 && i == sizeof stress_uses / sizeof stress_uses[0]) {
			strbuf_printf(why, "unknown stress source '%.*s': expected macro, "
			              "sessions or latency", (int)(n > 64 ? 64 : n), p);
			return false;
		}
		if (n > 0)
			*mask |= stress_uses[i].bit;
		p += n;
		p += strspn(p, ", \t");
	}
	return true;
}

stress_state
stress_with_load(stress_state st, unsigned sources, bool load_stressed,
                 enum stress_source load_src)
{
	if (st.source == STRESS_SRC_FORCED || st.source == STRESS_SRC_CONTROL)
		return st;
	if (!(sources & STRESS_USE_MACRO))
		st = (stress_state){false, STRESS_SRC_NONE};
	if (!st.stressed && load_stressed) {
		st.stressed = true;
		st.source = load_src;
	}
	return st;
}

const char *
stress_source_name(enum stress_source src)
{
	switch (src) {
	case STRESS_SRC_MACRO:
		return "macro";
	case STRESS_SRC_FORCED:
		return "forced";
	case STRESS_SRC_CONTROL:
		return "control";
	case STRESS_SRC_SESSIONS:
		return "sessions";
	case STRESS_SRC_LATENCY:
		return "latency";
	case STRESS_SRC_ENDPOINT:
		return "endpoint";
	case STRESS_SRC_NONE:
	case STRESS_SRC_N:
		break;
	}
	return "none";
}

const char *
stress_force_name(enum stress_force force)
{
	switch (force) {
	case STRESS_FORCE_ON:
		return "on";
	case STRESS_FORCE_OFF:
		return "off";
	case STRESS_FORCE_NONE:
		break;
	}
	return "auto";
}

void
stress_format_log(const stress_state *st, strbuf *out)
{
	strbuf_printf(out, "%s(%s)", st->stressed ? "yes" : "no",
		      stress_source_name(st->source));
}

void
stress_format_header(const stress_state *st, strbuf *out)
{
	if (!st->stressed && st->source == STRESS_SRC_MACRO) {
		strbuf_puts(out, "no");
		return;
	}
	strbuf_printf(out, "%s (source=%s)", st->stressed ? "yes" : "no",
		      stress_source_name(st->source));
}
