/*
 * probe-message - the message milter-probe sends: headers and body
 *
 * DESCRIPTION
 *	From --message (an RFC 5322 file: headers, a blank line, the body),
 *	or from --header and --body, or made up: five default headers
 *	(From, To, Subject, Date, Message-ID) and a line of text, or
 *	--headers N and --body-size N of filler for a message of a
 *	realistic shape. Lines end in CRLF, as on the wire; a folded header
 *	keeps its lines, joined by \n. See probe.h.
 */
#include "config.h"

#include "probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BODY "This is a test message from milter-probe.\n"

static void
read_file(const char *path, strbuf *out)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char buf[65536];
	size_t n;

	if (fp == NULL)
		probe_usage_error("%s: %s", path, strerror(errno));
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
		strbuf_append(out, buf, n);
	if (ferror(fp))
		probe_usage_error("%s: read error", path);
	if (fp != stdin)
		fclose(fp);
}

/* Lines end in CRLF on the wire; a last line without a newline gets one. */
static void
to_crlf(strbuf *out, const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		size_t end = i > start && p[i - 1] == '\r' ? i - 1 : i;

		strbuf_append(out, p + start, end - start);
		strbuf_append(out, "\r\n", 2);
		start = i + 1;
	}
	if (start < n) {
		strbuf_append(out, p + start, n - start);
		strbuf_append(out, "\r\n", 2);
	}
}

/* Length of the header name if line starts "Name:" (spaces before ':' ok). */
static size_t
header_name_len(const char *p, size_t n)
{
	size_t len = 0, i = 0;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':') {
		i++;
		len++;
	}
	if (len == 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':' ? len : 0;
}

static void
add_header(probe_opts *opts, const char *p, size_t n, size_t name_len)
{
	probe_header *h = PROBE_PUSH(opts->hdrs, opts->nhdr);
	const char *colon = memchr(p, ':', n);

	h->name = ms_xstrndup(p, name_len);
	h->value = ms_xstrndup(colon + 1, n - (size_t)(colon + 1 - p));
}

/* Headers until the blank line, then the body; folded lines joined by \n. */
static void
parse_message(probe_opts *opts, const strbuf *msg, const char *path)
{
	const char *p = strbuf_str(msg), *end = p + msg->len;
	strbuf cur = STRBUF_INIT;
	size_t cur_name = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		size_t n = (size_t)((nl != NULL ? nl : end) - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0 && (p[0] == ' ' || p[0] == '\t') && cur_name > 0) {
			strbuf_putc(&cur, '\n');
			strbuf_append(&cur, p, n);
			p = next;
			continue;
		}
		if (cur_name > 0) {
			add_header(opts, cur.s, cur.len, cur_name);
			cur_name = 0;
		}
		if (n == 0) {
			p = next;
			break;
		}
		if ((cur_name = header_name_len(p, n)) == 0)
			break; /* not a header: the body starts here */
		strbuf_reset(&cur);
		strbuf_append(&cur, p, n);
		p = next;
	}
	if (cur_name > 0)
		add_header(opts, cur.s, cur.len, cur_name);
	strbuf_free(&cur);
	if (opts->nhdr == 0)
		fprintf(stderr, "%s: warning: %s has no headers\n", PROBE_NAME, path);
	to_crlf(&opts->body, p, (size_t)(end - p));
}

static void
default_headers(probe_opts *opts)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	strbuf h = STRBUF_INIT;
	const char *from = opts->from[0];

	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (strcmp(from, "<>") == 0)
		from = "<MAILER-DAEMON@" PROBE_MTA_HOSTNAME ">";
	strbuf_printf(&h, "From: %s", from);
	add_header(opts, h.s, h.len, 4);
	strbuf_reset(&h);
	strbuf_printf(&h, "To: %s", opts->rcpts[0][0]);
	add_header(opts, h.s, h.len, 2);
	strbuf_reset(&h);
	strbuf_puts(&h, "Subject: milter-probe test message");
	add_header(opts, h.s, h.len, 7);
	strbuf_reset(&h);
	strbuf_printf(&h, "Date: %s", date);
	add_header(opts, h.s, h.len, 4);
	strbuf_reset(&h);
	strbuf_printf(&h, "Message-ID: <%s@%s>", opts->queue_id, PROBE_MTA_HOSTNAME);
	add_header(opts, h.s, h.len, 10);
	strbuf_free(&h);
}

/* --headers N: the first N of the default headers, then filler up to N. */
static void
shape_headers(probe_opts *opts, unsigned long n)
{
	strbuf h = STRBUF_INIT;

	default_headers(opts);
	while (opts->nhdr > n) {
		opts->nhdr--;
		free(opts->hdrs[opts->nhdr].name);
		free(opts->hdrs[opts->nhdr].value);
	}
	for (unsigned long i = opts->nhdr + 1; i <= n; i++) {
		strbuf_reset(&h);
		strbuf_printf(&h,
		              "X-Probe-Filler-%lu: header %lu of %lu, to give the "
		              "message a realistic shape",
		              i, i, n);
		add_header(opts, h.s, h.len, strcspn(h.s, ":"));
	}
	strbuf_free(&h);
}

/* --body-size N: N bytes of 76-byte CRLF lines of text (the last shorter). */
static void
shape_body(strbuf *body, unsigned long size)
{
	static const char line[] = "The quick brown fox jumps over the lazy dog; "
	                           "milter-probe filler text.....\r\n";
	size_t len = sizeof line - 1;

	strbuf_reset(body);
	while (body->len + len <= size)
		strbuf_append(body, line, len);
	if (body->len + 2 <= size) { /* a short last line, still CRLF-ended */
		strbuf_append(body, line, size - body->len - 2);
		strbuf_puts(body, "\r\n");
	}
	while (body->len < size)
		strbuf_putc(body, '\n');
}

/* The --header arguments; a multi-line one is a folded header. */
static void
header_args(probe_opts *opts, const char *const *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *h = args[i];
		size_t len = strlen(h), name_len = header_name_len(h, len);
		strbuf folded = STRBUF_INIT;

		if (name_len == 0)
			probe_usage_error("--header: expected 'Name: value', got '%s'",
			                  h);
		/* Folded lines are joined with \n. */
		for (size_t j = 0; j < len; j++)
			if (h[j] != '\r' || h[j + 1] != '\n')
				strbuf_putc(&folded, h[j]);
		add_header(opts, folded.s, folded.len, name_len);
		strbuf_free(&folded);
	}
}

void
probe_message_build(probe_opts *opts, const probe_message_args *a)
{
	if (a->message_file != NULL && (a->body_file != NULL || a->nheaders > 0))
		probe_usage_error("--message excludes --header and --body");
	if (a->gen_headers >= 0 && (a->message_file != NULL || a->nheaders > 0))
		probe_usage_error("--headers excludes --header and --message");
	if (a->gen_body >= 0 && (a->message_file != NULL || a->body_file != NULL))
		probe_usage_error("--body-size excludes --body and --message");
	header_args(opts, a->headers, a->nheaders);
	if (a->message_file != NULL) {
		strbuf msg = STRBUF_INIT;

		read_file(a->message_file, &msg);
		parse_message(opts, &msg, a->message_file);
		strbuf_free(&msg);
	} else {
		strbuf raw = STRBUF_INIT;

		if (a->gen_headers >= 0)
			shape_headers(opts, (unsigned long)a->gen_headers);
		else if (opts->nhdr == 0)
			default_headers(opts);
		if (a->body_file != NULL)
			read_file(a->body_file, &raw);
		else
			strbuf_puts(&raw, DEFAULT_BODY);
		to_crlf(&opts->body, raw.s, raw.len);
		strbuf_free(&raw);
		if (a->gen_body >= 0)
			shape_body(&opts->body, (unsigned long)a->gen_body);
	}
}
