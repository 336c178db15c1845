/*
 * conf-int - what conf.c and conf-value.c share, nothing for other modules
 *
 * A parameter's row in the schema (params.h, one X() line each) and the
 * typed values of parameters: conf_value_parse() stores the typed form of
 * text s in the field (false, with why in msg, on a bad value or one out of
 * the row's bounds); conf_value_format() appends it the way -n prints it
 * (times and sizes in the largest exact unit, so the text parses back to
 * the same value); conf_format_time() is that for a time in ms;
 * conf_list_free() frees a CONF_LIST field.
 */
#ifndef MS_CONF_INT_H
#define MS_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "params.h"
#include "strbuf.h"

typedef bool (*conf_validator)(const char *value, strbuf *why);

typedef struct param_desc {
	const char *name;
	conf_type type;
	const char *def;
	long long min;
	long long max;
	conf_validator valid;
	const char *doc;
	size_t offset; /* of the field in struct conf_values */
} param_desc;

/* The blanks of Postfix's syntax, and every space. */
static inline bool
conf_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static inline bool
conf_is_space(char c)
{
	return conf_is_blank(c) || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

bool conf_value_parse(const param_desc *p, const char *s, void *field, strbuf *msg);
void conf_value_format(strbuf *b, const param_desc *p, const void *field);
void conf_format_time(strbuf *b, long long ms);
void conf_list_free(conf_list *l);

#endif
