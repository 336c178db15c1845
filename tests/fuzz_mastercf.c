/*
 * fuzz_mastercf - libFuzzer target: what `postconf -M` prints, and
 * service_limits.
 *
 * The input is taken as postconf -M output (any bytes): mastercf_parse()
 * must keep only smtpd services, each with a name, a type and a limit from
 * 0 to MASTERCF_MAX_LIMIT, and mastercf_limits() must give distinct names,
 * each with a limit from 1 to MASTERCF_MAX_LIMIT, and a log line per
 * service. The same bytes up to the first NUL are then a service_limits
 * value: a list that parses has distinct names and limits in bounds, and
 * one that does not says why and returns nothing.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mastercf.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_limits(const mastercf_limits_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].service == NULL || l->v[i].limit < 1 ||
		    l->v[i].limit > MASTERCF_MAX_LIMIT)
			abort();
		for (size_t k = 0; k < i; k++)
			if (strcmp(l->v[i].service, l->v[k].service) == 0)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mastercf_services s;
	mastercf_limits_list l;
	strbuf log = STRBUF_INIT, why = STRBUF_INIT;
	char *text = ms_xstrndup((const char *)data, size);
	size_t lines = 0;
	bool is_auto;

	mastercf_parse((const char *)data, size, 100, &s);
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].name[0] == '\0' || s.v[i].type[0] == '\0' || s.v[i].limit < 0 ||
		    s.v[i].limit > MASTERCF_MAX_LIMIT)
			abort();
	mastercf_limits(&s, &l, &log);
	check_limits(&l);
	for (size_t i = 0; i < log.len; i++)
		lines += log.s[i] == '\n';
	if (lines < s.n)
		abort();
	mastercf_limits_free(&l);
	mastercf_services_free(&s);

	if (mastercf_parse_limits(text, &is_auto, &l, &why)) {
		if (why.len != 0 || (is_auto && l.n != 0) || (!is_auto && l.n == 0))
			abort();
		check_limits(&l);
	} else if (why.len == 0 || l.n != 0) {
		abort();
	}
	mastercf_limits_free(&l);
	strbuf_free(&log);
	strbuf_free(&why);
	free(text);
	return 0;
}
