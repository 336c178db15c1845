/* regex - /pattern/flags words with PCRE2; see regex.h. */
#include "config.h"

#include "regex.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool
parse_flags(const char *word, const char *flags, uint32_t *opts, strbuf *why,
	    size_t *column)
{
	for (const char *f = flags; *f != '\0'; f++) {
		switch (*f) {
		case 'i':
			*opts |= PCRE2_CASELESS;
			break;
		case 'm':
			*opts |= PCRE2_MULTILINE;
			break;
		case 's':
			*opts |= PCRE2_DOTALL;
			break;
		case 'x':
			*opts |= PCRE2_EXTENDED;
			break;
		default:
			strbuf_printf(why, "unknown regex flag '%c': expected i, m, s or x", *f);
			*column = (size_t)(f - word);
			return false;
		}
	}
	return true;
}

pcre2_code *
regex_compile(const char *word, strbuf *why, size_t *column)
{
	const char *end = strrchr(word, '/');
	uint32_t opts = 0;
	PCRE2_SIZE off;
	pcre2_code *re;
	int rc;

	if (word[0] != '/' || end == word) {
		strbuf_printf(why, "expected /regex/flags, got '%s'", word);
		*column = 0;
		return NULL;
	}
	if (!parse_flags(word, end + 1, &opts, why, column))
		return NULL;
	re = pcre2_compile((PCRE2_SPTR)(word + 1), (size_t)(end - word - 1), opts, &rc, &off,
			   NULL);
	if (re == NULL) {
		PCRE2_UCHAR msg[256];

		if (pcre2_get_error_message(rc, msg, sizeof msg) < 0)
			snprintf((char *)msg, sizeof msg, "error %d", rc);
		strbuf_printf(why, "bad regex %s: %s at offset %zu of the pattern", word,
			      (const char *)msg, (size_t)off);
		*column = 1 + (size_t)off;
		return NULL;
	}
	/* Without JIT (not built in, no executable memory) the interpreter runs. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}
