/* names - domain and header name syntax; see names.h. */
#include "config.h"

#include "names.h"

static bool
is_label_byte(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

bool
names_domain(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > NAMES_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!is_label_byte(s[i]) || ++label > 63) {
			return false;
		}
	}
	return label > 0;
}

bool
names_header(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0')
		return false;
	for (; *p; p++)
		if (*p < 33 || *p > 126 || *p == ':')
			return false;
	return true;
}
