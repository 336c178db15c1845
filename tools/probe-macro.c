/*
 * probe-macro - the macros milter-probe sends, as Postfix would
 *
 * DESCRIPTION
 *	At each stage Postfix sends the macros of its milter_*_macros list
 *	for that stage, or of the list the milter asked for at negotiation,
 *	with the values its smtpd knows by then; a name without a value is
 *	left out. A -m definition overrides any value, or adds a name to
 *	the default list of its stage. See probe.h.
 */
#include "config.h"

#include "mproto.h"
#include "probe.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Postfix's default milter_*_macros (mail_params.h, Postfix 3.7). */
static const char *const default_lists[PROTO_M_COUNT] = {
        [PROTO_M_CONNECT] = "j {daemon_name} {daemon_addr} v _",
        [PROTO_M_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} "
                         "{cert_issuer}",
        [PROTO_M_MAIL] = "i {auth_type} {auth_authen} {auth_author} {mail_addr} "
                         "{mail_host} {mail_mailer}",
        [PROTO_M_RCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
        [PROTO_M_DATA] = "i",
        [PROTO_M_EOM] = "i",
        [PROTO_M_EOH] = "i",
};

static char *
canon_name(const char *name)
{
	strbuf b = STRBUF_INIT;

	if (name[0] == '{')
		strbuf_puts(&b, name);
	else
		strbuf_printf(&b, "{%s}", name);
	return strbuf_detach(&b);
}

static bool
same_macro(const char *a, const char *b)
{
	char *ca = canon_name(a), *cb = canon_name(b);
	bool same = strcmp(ca, cb) == 0;

	free(ca);
	free(cb);
	return same;
}

static const char *
strip_brackets(strbuf *b, const char *addr)
{
	size_t n = strlen(addr);

	strbuf_reset(b);
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		strbuf_append(b, addr + 1, n - 2);
	else
		strbuf_puts(b, addr);
	return strbuf_str(b);
}

/*
 * The value Postfix would give a macro: a -m definition (this stage first),
 * else what smtpd knows at this stage (smtpd_milter_eval()), else none.
 * Stages after MAIL have larger PROTO_M_* numbers.
 */
static const char *
macro_value(const probe_opts *opts, int stage, const char *name, const char *rcpt_addr,
            strbuf *scratch)
{
	char *c;
	const char *v = NULL;

	for (size_t i = 0; i < opts->nmacro; i++)
		if (opts->macros[i].stage == stage &&
		    same_macro(opts->macros[i].name, name))
			return opts->macros[i].value;
	for (size_t i = 0; i < opts->nmacro; i++)
		if (same_macro(opts->macros[i].name, name))
			return opts->macros[i].value;

	c = canon_name(name);
	strbuf_reset(scratch);
	if (strcmp(c, "{j}") == 0) {
		v = PROBE_MTA_HOSTNAME;
	} else if (strcmp(c, "{daemon_name}") == 0 || strcmp(c, "{v}") == 0) {
		v = PROBE_NAME;
	} else if (strcmp(c, "{_}") == 0) {
		strbuf_printf(scratch, "%s [%s]", opts->client_name,
		              opts->family == MPROTO_FAM_INET ||
		                              opts->family == MPROTO_FAM_INET6
		                      ? opts->client_addr
		                      : "127.0.0.1");
		v = strbuf_str(scratch);
	} else if (strcmp(c, "{i}") == 0 && stage >= PROTO_M_MAIL) {
		v = opts->queue_id;
	} else if (strcmp(c, "{mail_addr}") == 0 && stage >= PROTO_M_MAIL) {
		v = strip_brackets(scratch, opts->from[0]);
	} else if (strcmp(c, "{rcpt_addr}") == 0 && rcpt_addr != NULL) {
		v = strip_brackets(scratch, rcpt_addr);
	} else if (strcmp(c, "{client_addr}") == 0) {
		/* Postfix gives the RFC 5321 form: "IPv6:" before IPv6. */
		if (opts->family == MPROTO_FAM_INET6)
			strbuf_printf(scratch, "IPv6:%s", opts->client_addr);
		else if (opts->family == MPROTO_FAM_INET)
			strbuf_puts(scratch, opts->client_addr);
		else
			strbuf_puts(scratch, "127.0.0.1");
		v = strbuf_str(scratch);
	} else if (strcmp(c, "{client_name}") == 0 || strcmp(c, "{client_ptr}") == 0) {
		v = opts->client_name;
	} else if (strcmp(c, "{client_port}") == 0) {
		strbuf_printf(scratch, "%u", opts->client_port);
		v = strbuf_str(scratch);
	}
	free(c);
	return v;
}

/* Split a macro name list at spaces and commas, as Postfix does. */
static size_t
split_list(const char *list, char ***names)
{
	size_t n = 0;
	const char *p = list;

	*names = NULL;
	while (*p != '\0') {
		size_t len;

		p += strspn(p, " \t\r\n,");
		if ((len = strcspn(p, " \t\r\n,")) == 0)
			break;
		*PROBE_PUSH(*names, n) = ms_xstrndup(p, len);
		p += len;
	}
	return n;
}

/* Names without a value are left out, as Postfix does. */
int
probe_macros_put(strbuf *out, const probe_opts *opts, const char *milter_list, int stage,
                 int cmd, const char *rcpt_addr)
{
	char **names;
	size_t n;
	mproto_macro *m = NULL;
	size_t nm = 0;
	strbuf *scratch;
	int rc;

	if (milter_list != NULL && milter_list[0] != '\0') {
		n = split_list(milter_list, &names);
	} else {
		n = split_list(default_lists[stage], &names);
		for (size_t i = 0; i < opts->nmacro; i++) {
			bool dup = false;

			if (opts->macros[i].stage != stage)
				continue;
			for (size_t j = 0; j < n && !dup; j++)
				dup = same_macro(names[j], opts->macros[i].name);
			if (!dup)
				*PROBE_PUSH(names, n) = ms_xstrdup(opts->macros[i].name);
		}
	}
	scratch = ms_xcalloc(n + 1, sizeof *scratch);
	for (size_t i = 0; i < n; i++) {
		const char *v =
		        macro_value(opts, stage, names[i], rcpt_addr, &scratch[i]);

		if (v != NULL) {
			mproto_macro *mm = PROBE_PUSH(m, nm);

			mm->name = names[i];
			mm->value = v;
		}
	}
	rc = mproto_put_macros(out, cmd, m, nm);
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		strbuf_free(&scratch[i]);
	}
	free(names);
	free(scratch);
	free(m);
	return rc;
}
