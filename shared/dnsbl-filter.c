/* dnsbl-filter - Postfix's d.d.d.d filter syntax; see dnsbl-filter.h. */
#include "config.h"

#include "dnsbl-filter.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/*
 * Filters: one 256-bit set per octet. Matching is four bit tests, and the
 * parsed form needs no allocation beyond the struct.
 */
struct dnsbl_filter {
	unsigned char set[4][32];
};

static void
set_range(unsigned char *set, unsigned lo, unsigned hi)
{
	for (unsigned v = lo; v <= hi; v++)
		set[v / 8] |= (unsigned char)(1u << (v % 8));
}

/* A decimal 0..255 at *p; false when there is none or it is too big. */
static bool
parse_octet(const char **p, unsigned *out)
{
	const char *s = *p;
	unsigned v = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 255)
			return false;
	}
	*p = s;
	*out = v;
	return true;
}

static bool
filter_fail(strbuf *err, const char *text, const char *at, const char *expected)
{
	strbuf_printf(err, "bad DNSBL filter \"%s\" at column %d: expected %s", text,
	              (int)(at - text) + 1, expected);
	return false;
}

/* One field: a number or [n;n..m;...]. */
static bool
parse_field(const char *text, const char **p, unsigned char *set, strbuf *err)
{
	unsigned lo, hi;

	if (**p != '[') {
		if (!parse_octet(p, &lo))
			return filter_fail(err, text, *p, "a number 0..255 or \"[\"");
		set_range(set, lo, lo);
		return true;
	}
	(*p)++;
	for (;;) {
		if (!parse_octet(p, &lo))
			return filter_fail(err, text, *p, "a number 0..255");
		hi = lo;
		if ((*p)[0] == '.' && (*p)[1] == '.') {
			*p += 2;
			if (!parse_octet(p, &hi))
				return filter_fail(err, text, *p,
				                   "a number 0..255 after \"..\"");
			if (hi < lo)
				return filter_fail(err, text, *p,
				                   "a range that does not run backwards");
		}
		set_range(set, lo, hi);
		if (**p == ']') {
			(*p)++;
			return true;
		}
		if (**p != ';')
			return filter_fail(err, text, *p, "\";\" or \"]\"");
		(*p)++;
	}
}

dnsbl_filter *
dnsbl_filter_parse(const char *text, strbuf *err)
{
	dnsbl_filter *f = ms_xcalloc(1, sizeof *f);
	const char *p = text;
	size_t len = strlen(text);
	char *inner = NULL;

	/* Postfix also takes the whole pattern inside one pair of []. */
	if (len > 2 && text[0] == '[' && text[len - 1] == ']' &&
	    strchr(text + 1, '[') == NULL && strchr(text, ']') == text + len - 1 &&
	    strchr(text, '.') != NULL) {
		inner = ms_xstrndup(text + 1, len - 2);
		p = inner;
	}
	const char *base = inner ? inner : text;
	if (*p == '\0') {
		strbuf_printf(err, "empty DNSBL filter: expected d.d.d.d");
		goto fail;
	}
	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (*p != '.') {
				filter_fail(err, base, p, "\".\" and another field");
				goto fail;
			}
			p++;
		}
		if (!parse_field(base, &p, f->set[i], err))
			goto fail;
	}
	if (*p != '\0') {
		filter_fail(err, base, p, "the end after four fields");
		goto fail;
	}
	free(inner);
	return f;
fail:
	free(inner);
	free(f);
	return NULL;
}

bool
dnsbl_filter_match(const dnsbl_filter *f, const unsigned char addr[4])
{
	if (f == NULL)
		return true;
	for (int i = 0; i < 4; i++)
		if (!(f->set[i][addr[i] / 8] & (1u << (addr[i] % 8))))
			return false;
	return true;
}

void
dnsbl_filter_free(dnsbl_filter *f)
{
	free(f);
}
