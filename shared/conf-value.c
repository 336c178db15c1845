/* conf-value - the typed values of parameters: units, parsing, bounds, formatting; see
 * conf-int.h. */
#include "config.h"

#include "conf-int.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct unit {
	const char *name;
	long long mult;
} unit;

static const unit time_units[] = {
        {"ms", 1},
        {"s", CONF_SEC},
        {"m", 60 * CONF_SEC},
        {"h", 3600 * CONF_SEC},
        {"d", CONF_DAY},
        {"w", 7 * CONF_DAY},
};

static const unit size_units[] = {
        {"k", CONF_KIB},
        {"m", CONF_MIB},
        {"g", 1024 * CONF_MIB},
};

#define N_UNITS(a) (sizeof(a) / sizeof((a)[0]))

/* Prints in the largest unit that is exact: readable and round-trips. */
void
conf_format_time(strbuf *b, long long ms)
{
	static const unit big[] = {
	        {"w", 7 * CONF_DAY}, {"d", CONF_DAY}, {"h", 3600 * CONF_SEC}};
	size_t i;

	if (ms % CONF_SEC != 0) {
		strbuf_printf(b, "%lldms", ms);
		return;
	}
	for (i = 0; i < N_UNITS(big); i++) {
		if (ms != 0 && ms % big[i].mult == 0) {
			strbuf_printf(b, "%lld%s", ms / big[i].mult, big[i].name);
			return;
		}
	}
	strbuf_printf(b, "%llds", ms / CONF_SEC);
}

static void
format_size(strbuf *b, long long bytes)
{
	size_t i = N_UNITS(size_units);

	while (i-- > 0) {
		if (bytes != 0 && bytes % size_units[i].mult == 0) {
			strbuf_printf(b, "%lld%s", bytes / size_units[i].mult,
			              size_units[i].name);
			return;
		}
	}
	strbuf_printf(b, "%lld", bytes);
}

static void
format_number(strbuf *b, conf_type type, long long v)
{
	if (type == CONF_TIME)
		conf_format_time(b, v);
	else if (type == CONF_SIZE)
		format_size(b, v);
	else
		strbuf_printf(b, "%lld", v);
}

/* Leading decimal digits of s; *rest after them. False: none, or overflow. */
static bool
scan_digits(const char *s, long long *num, const char **rest, bool *too_big)
{
	long long v = 0;

	*too_big = false;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		int d = *s - '0';

		if (v > (LLONG_MAX - d) / 10) {
			*too_big = true;
			return false;
		}
		v = v * 10 + d;
	}
	*num = v;
	*rest = s;
	return true;
}

static const unit *
find_unit(const char *name, const unit *units, size_t n_units, bool any_case)
{
	size_t i;

	for (i = 0; i < n_units; i++) {
		if (any_case ? strcasecmp(name, units[i].name) == 0
		             : strcmp(name, units[i].name) == 0)
			return &units[i];
	}
	return NULL;
}

/*
 * A number with an optional unit from units (none: dflt); 1 on success,
 * 0 on bad syntax, -1 when the result does not fit.
 */
static int
parse_scaled(const char *s, const unit *units, size_t n_units, long long dflt,
             bool any_case, long long *out)
{
	const char *rest;
	const unit *u;
	long long num, mult = dflt;
	bool too_big;

	if (!scan_digits(s, &num, &rest, &too_big))
		return too_big ? -1 : 0;
	if (*rest != '\0') {
		if ((u = find_unit(rest, units, n_units, any_case)) == NULL)
			return 0;
		mult = u->mult;
	}
	if (num > LLONG_MAX / mult)
		return -1;
	*out = num * mult;
	return 1;
}

static bool
parse_int(const param_desc *p, const char *s, long long *out, strbuf *msg)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (conf_is_space(*s) || end == s || *end != '\0') {
		strbuf_printf(msg, "%s: bad integer value '%s': expected a whole number",
		              p->name, s);
		return false;
	}
	if (errno == ERANGE) {
		strbuf_printf(msg, "%s: integer value '%s' is too large", p->name, s);
		return false;
	}
	return true;
}

static bool
parse_time(const param_desc *p, const char *s, long long *out, strbuf *msg)
{
	int rc = parse_scaled(s, time_units, N_UNITS(time_units), CONF_SEC, false, out);

	if (rc == 0)
		strbuf_printf(msg,
		              "%s: bad time value '%s': expected a number with "
		              "an optional unit ms, s, m, h, d or w",
		              p->name, s);
	else if (rc < 0)
		strbuf_printf(msg, "%s: time value '%s' is too large", p->name, s);
	return rc > 0;
}

static bool
parse_size(const param_desc *p, const char *s, long long *out, strbuf *msg)
{
	int rc = parse_scaled(s, size_units, N_UNITS(size_units), 1, true, out);

	if (rc == 0)
		strbuf_printf(msg,
		              "%s: bad size value '%s': expected a number with "
		              "an optional suffix k, m or g",
		              p->name, s);
	else if (rc < 0)
		strbuf_printf(msg, "%s: size value '%s' is too large", p->name, s);
	return rc > 0;
}

static bool
parse_bool(const param_desc *p, const char *s, bool *out, strbuf *msg)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "no") == 0) {
		*out = strcasecmp(s, "yes") == 0;
		return true;
	}
	strbuf_printf(msg, "%s: bad boolean value '%s': expected yes or no", p->name, s);
	return false;
}

static void
split_list(const char *s, conf_list *l)
{
	static const char sep[] = ", \t\r\n";
	const char *p;
	size_t n = 0;

	for (p = s + strspn(s, sep); *p; p += strspn(p, sep)) {
		p += strcspn(p, sep);
		n++;
	}
	l->n = n;
	l->v = ms_xcalloc(n + 1, sizeof *l->v);
	n = 0;
	for (p = s + strspn(s, sep); *p; p += strspn(p, sep)) {
		size_t len = strcspn(p, sep);

		l->v[n++] = ms_xstrndup(p, len);
		p += len;
	}
}

void
conf_list_free(conf_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static bool
check_bounds(const param_desc *p, long long v, strbuf *msg)
{
	if ((p->min == 0 && p->max == 0) || (v >= p->min && v <= p->max))
		return true;
	strbuf_printf(msg, "%s: ", p->name);
	format_number(msg, p->type, v);
	strbuf_puts(msg, " is out of range ");
	format_number(msg, p->type, p->min);
	strbuf_puts(msg, "..");
	format_number(msg, p->type, p->max);
	return false;
}

static bool
parse_number(const param_desc *p, const char *s, long long *out, strbuf *msg)
{
	bool ok;

	if (p->type == CONF_TIME)
		ok = parse_time(p, s, out, msg);
	else if (p->type == CONF_SIZE)
		ok = parse_size(p, s, out, msg);
	else
		ok = parse_int(p, s, out, msg);
	return ok && check_bounds(p, *out, msg);
}

bool
conf_value_parse(const param_desc *p, const char *s, void *field, strbuf *msg)
{
	switch (p->type) {
	case CONF_STRING:
		*(const char **)field = ms_xstrdup(s);
		return true;
	case CONF_LIST:
		split_list(s, field);
		return true;
	case CONF_BOOL:
		return parse_bool(p, s, field, msg);
	case CONF_INT:
	case CONF_SIZE:
	case CONF_TIME:
		return parse_number(p, s, field, msg);
	}
	ms_panic("unknown parameter type");
	return false;
}

void
conf_value_format(strbuf *b, const param_desc *p, const void *f)
{
	const conf_list *l;
	size_t i;

	switch (p->type) {
	case CONF_STRING:
		strbuf_puts(b, *(const char *const *)f);
		return;
	case CONF_LIST:
		l = f;
		for (i = 0; i < l->n; i++)
			strbuf_printf(b, "%s%s", i ? ", " : "", l->v[i]);
		return;
	case CONF_BOOL:
		strbuf_puts(b, *(const bool *)f ? "yes" : "no");
		return;
	case CONF_INT:
	case CONF_SIZE:
	case CONF_TIME:
		format_number(b, p->type, *(const long long *)f);
		return;
	}
	ms_panic("unknown parameter type");
}
