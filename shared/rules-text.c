/* rules-text - reply texts and templates, and the -n dump; see rules.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "rules-int.h"

const char *const rules_template_vars[] = {
        "client_addr", "client_name", "helo_name", "sender", "recipient",
        "queue_id",    "rule",        "stage",     "stress", "rbl_domain",
        "rbl_what",    "rbl_reason",  "rbl_class", "virus_name",
        "spam_score",  "spam_required", "spam_rules", "rspamd_action",
        "rspamd_score", "rspamd_required", "rspamd_symbols", NULL,
};

bool
rules_is_template_var(const char *name)
{
	for (size_t i = 0; rules_template_vars[i] != NULL; i++)
		if (strcmp(rules_template_vars[i], name) == 0)
			return true;
	return false;
}

void
rules_dump(const rules_table *t, FILE *fp)
{
	for (size_t i = 0; t != NULL && i < t->n; i++)
		fprintf(fp, "%s\n", t->v[i]->shown);
}

/* Where to cut s so that at most max bytes stay and no UTF-8 sequence splits. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	size_t cut = max;

	if (len <= max)
		return len;
	/* s[cut] is the first byte dropped: back up to the start of its character. */
	while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
		cut--;
	return cut;
}

/* Drop CR and LF from b after byte start, then cut it to the reply limit. */
static void
sanitize(strbuf *b, size_t start)
{
	size_t i, j;

	for (i = j = start; i < b->len; i++)
		if (b->s[i] != '\r' && b->s[i] != '\n')
			b->s[j++] = b->s[i];
	b->len = j;
	b->len = start + utf8_cut(b->s + start, b->len - start, RULES_TEXT_MAX);
	b->s[b->len] = '\0';
}

static void
expand_template(const char *tmpl, const expand_ops *ops, void *ctx, strbuf *out)
{
	strbuf_reset(out);
	strbuf_append(out, "", 0); /* out->s is a string even when the text is empty */
	if (tmpl == NULL)
		return;
	/* Not EXPAND_RECURSE: a HELO name with "$x" in it stays "$x". */
	if (expand_str(out, tmpl, ops, ctx, NULL) < 0) {
		/* Checked at load; a template from elsewhere is shown as written. */
		strbuf_reset(out);
		strbuf_puts(out, tmpl);
	}
	sanitize(out, 0);
}

void
rules_expand_text(const char *tmpl, rules_var_fn var, void *ctx, strbuf *out)
{
	expand_ops ops = {var, NULL, 0};

	expand_template(tmpl, &ops, ctx, out);
}

void
rules_reply_text_for_milter(const char *text, strbuf *out)
{
	size_t cut, run;
	const char *p;

	strbuf_reset(out);
	strbuf_append(out, "", 0);
	for (p = text != NULL ? text : ""; *p; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (*p == '%')
			strbuf_putc(out, '%');
		strbuf_putc(out, *p);
	}
	if (out->len <= RULES_TEXT_MAX)
		return;
	cut = utf8_cut(out->s, out->len, RULES_TEXT_MAX);
	/* Every '%' here is doubled: an odd run before the cut would split a pair. */
	for (run = 0; run < cut && out->s[cut - 1 - run] == '%'; run++)
		;
	if (run % 2 == 1)
		cut--;
	out->len = cut;
	out->s[cut] = '\0';
}
