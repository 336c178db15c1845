/* spamd - SpamAssassin's SPAMC/1.5 SYMBOLS; see spamd.h. */
#include "config.h"

#include "spamd.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "scanio.h"

/* Headers and a list of rule names: a few KiB; more is not spamd. */
#define SPAMD_REPLY_MAX (256 * 1024)

/* The next line of s[*pos..n), without its CRLF or LF; false at the end. */
static bool
next_line(const char *s, size_t n, size_t *pos, const char **line, size_t *len)
{
	const char *nl;

	if (*pos >= n)
		return false;
	*line = s + *pos;
	nl = memchr(*line, '\n', n - *pos);
	*len = nl != NULL ? (size_t)(nl - *line) : n - *pos;
	*pos += *len + (nl != NULL);
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	return true;
}

/* A decimal from s[*i..n), white space before it skipped. */
static bool
number(const char *s, size_t n, size_t *i, double *out)
{
	char buf[64], *end;
	size_t k = 0;

	while (*i < n && (s[*i] == ' ' || s[*i] == '\t'))
		(*i)++;
	while (*i < n && k < sizeof buf - 1 && strchr("+-.0123456789", s[*i]) != NULL)
		buf[k++] = s[(*i)++];
	buf[k] = '\0';
	if (k == 0)
		return false;
	errno = 0;
	*out = strtod(buf, &end);
	return *end == '\0' && errno == 0 && isfinite(*out);
}

static bool
word_ci(const char *s, size_t n, size_t *i, const char *w)
{
	size_t wn = strlen(w);

	while (*i < n && (s[*i] == ' ' || s[*i] == '\t'))
		(*i)++;
	if (n - *i < wn || strncasecmp(s + *i, w, wn) != 0)
		return false;
	*i += wn;
	return true;
}

/* "True ; 15.0 / 5.0" */
static bool
spam_value(const char *s, size_t n, scan_result *out)
{
	size_t i = 0;

	if (word_ci(s, n, &i, "true") || word_ci(s, n, &i, "yes"))
		out->spam = true;
	else if (word_ci(s, n, &i, "false") || word_ci(s, n, &i, "no"))
		out->spam = false;
	else
		return false;
	if (!word_ci(s, n, &i, ";") || !number(s, n, &i, &out->score) ||
	    !word_ci(s, n, &i, "/") || !number(s, n, &i, &out->required))
		return false;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i == n;
}

static void
symbols(const char *s, size_t n, scan_result *out)
{
	size_t i = 0;

	while (i < n) {
		size_t j;

		while (i < n && strchr(", \t\r\n", s[i]) != NULL)
			i++;
		for (j = i; j < n && strchr(", \t\r\n", s[j]) == NULL; j++)
			;
		if (j > i)
			scan_result_add_symbol(out, s + i, j - i);
		i = j;
	}
}

/* "SPAMD/1.1 0 EX_OK" */
static bool
status_line(const char *line, size_t len, strbuf *why)
{
	size_t i = 6;

	if (len < 6 || memcmp(line, "SPAMD/", 6) != 0) {
		strbuf_puts(why, "spamd: not a SPAMD reply: ");
		strbuf_append(why, line, len > 100 ? 100 : len);
		return false;
	}
	while (i < len && line[i] != ' ')
		i++;
	while (i < len && line[i] == ' ')
		i++;
	if (i < len && line[i] == '0' && (i + 1 == len || line[i + 1] == ' '))
		return true;
	strbuf_puts(why, "spamd: ");
	strbuf_append(why, line, len > 200 ? 200 : len);
	return false;
}

bool
spamd_reply_parse(const char *s, size_t n, scan_result *out, strbuf *why)
{
	const char *line;
	size_t len, pos = 0;
	bool have_spam = false, have_length = false, blank = false;
	double length = 0;

	if (!next_line(s, n, &pos, &line, &len)) {
		strbuf_puts(why, "spamd: empty reply");
		return false;
	}
	if (!status_line(line, len, why))
		return false;
	while (next_line(s, n, &pos, &line, &len)) {
		const char *colon = memchr(line, ':', len);
		size_t nlen, i;

		if (len == 0) {
			blank = true;
			break;
		}
		if (colon == NULL) {
			strbuf_puts(why, "spamd: bad header line");
			return false;
		}
		nlen = (size_t)(colon - line);
		i = nlen + 1;
		if (nlen == 4 && strncasecmp(line, "Spam", 4) == 0) {
			if (!spam_value(line + i, len - i, out)) {
				strbuf_puts(why, "spamd: bad Spam header: ");
				strbuf_append(why, line, len > 200 ? 200 : len);
				return false;
			}
			have_spam = true;
		} else if (nlen == 14 && strncasecmp(line, "Content-length", 14) == 0) {
			if (!number(line + i, len - i, &(size_t){0}, &length) ||
			    length < 0) {
				strbuf_puts(why, "spamd: bad Content-length");
				return false;
			}
			have_length = true;
		}
	}
	if (!have_spam) {
		strbuf_puts(why, "spamd: no Spam header in the reply");
		return false;
	}
	if (blank) {
		size_t body = n - pos;

		if (have_length && length < (double)body)
			body = (size_t)length;
		symbols(s + pos, body, out);
	}
	return true;
}

enum scan_status
spamd_scan(const char *endpoint, const scan_message *m, long long deadline,
           scan_result *out)
{
	strbuf req = STRBUF_INIT, reply = STRBUF_INIT;
	enum scan_status st;
	int fd = scanio_connect(endpoint, deadline, &out->why, &st);

	if (fd < 0)
		return st;
	strbuf_printf(&req, "SYMBOLS SPAMC/1.5\r\nContent-length: %lld\r\n",
	              spool_size(m->spool));
	if (m->user != NULL && *m->user != '\0' && strpbrk(m->user, "\r\n") == NULL)
		strbuf_printf(&req, "User: %s\r\n", m->user);
	strbuf_puts(&req, "\r\n");
	st = scanio_send(fd, req.s, req.len, deadline, &out->why);
	if (st == SCAN_OK)
		st = scanio_send_spool(fd, m->spool, false, deadline, &out->why);
	if (st == SCAN_OK) {
		shutdown(fd, SHUT_WR);
		st = scanio_recv_all(fd, &reply, SPAMD_REPLY_MAX, deadline, &out->why);
	}
	scanio_close(fd, st);
	out->answered = reply.len > 0;
	if (st == SCAN_OK &&
	    !spamd_reply_parse(strbuf_str(&reply), reply.len, out, &out->why))
		st = SCAN_ERROR;
	strbuf_free(&req);
	strbuf_free(&reply);
	return st;
}
