/* clamd - ClamAV's zINSTREAM; see clamd.h. */
#include "config.h"

#include "clamd.h"

#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "scanio.h"

/* clamd's replies are a line; anything longer is not clamd. */
#define CLAMD_REPLY_MAX 4096

static bool
ends_with(const char *s, size_t n, const char *tail)
{
	size_t tn = strlen(tail);

	return n >= tn && memcmp(s + n - tn, tail, tn) == 0;
}

bool
clamd_reply_parse(const char *s, size_t n, scan_result *out, strbuf *why)
{
	const char *name;
	size_t sp;

	/* One reply, its terminator (NUL or newline) and trailing space off. */
	if (memchr(s, '\0', n) != NULL)
		n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n == 0 || memchr(s, '\n', n) != NULL) {
		strbuf_puts(why, n == 0 ? "clamd: empty reply"
		                        : "clamd: reply of several lines");
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			strbuf_puts(why, "clamd: control characters in the reply");
			return false;
		}
	/* The verdict is the last word; the name runs from the last ": " to it. */
	for (sp = n; sp > 0 && s[sp - 1] != ' '; sp--)
		;
	if (ends_with(s, n, " ERROR")) {
		strbuf_puts(why, "clamd: ");
		strbuf_append(why, s, n);
		return false;
	}
	name = NULL;
	for (size_t i = sp; sp > 0 && i >= 2; i--)
		if (s[i - 2] == ':' && s[i - 1] == ' ') {
			name = s + i;
			break;
		}
	if (name != NULL && name == s + sp && n - sp == 2 && ends_with(s, n, "OK")) {
		out->infected = false;
		strbuf_reset(&out->virus);
		return true;
	}
	if (name != NULL && name < s + sp - 1 && ends_with(s, n, " FOUND")) {
		out->infected = true;
		strbuf_reset(&out->virus);
		strbuf_append(&out->virus, name, (size_t)(s + sp - 1 - name));
		return true;
	}
	strbuf_puts(why, "clamd: unexpected reply: ");
	strbuf_append(why, s, n > 200 ? 200 : n);
	return false;
}

enum scan_status
clamd_scan(const char *endpoint, const scan_message *m, long long deadline,
           scan_result *out)
{
	static const char cmd[] = "zINSTREAM"; /* with its NUL */
	strbuf reply = STRBUF_INIT, ignored = STRBUF_INIT;
	enum scan_status st;
	int fd = scanio_connect(endpoint, deadline, &out->why, &st);

	if (fd < 0)
		return st;
	st = scanio_send(fd, cmd, sizeof cmd, deadline, &out->why);
	if (st == SCAN_OK)
		st = scanio_send_spool(fd, m->spool, true, deadline, &out->why);
	if (st == SCAN_ERROR) {
		/* clamd may have replied and closed (its size limit): read it. */
		scanio_recv_all(fd, &reply, CLAMD_REPLY_MAX, deadline, &ignored);
		if (reply.len > 0) {
			strbuf_reset(&out->why);
			st = SCAN_OK;
		}
	} else if (st == SCAN_OK) {
		st = scanio_recv_all(fd, &reply, CLAMD_REPLY_MAX, deadline, &out->why);
	}
	scanio_close(fd, st);
	out->answered = reply.len > 0;
	if (st == SCAN_OK &&
	    !clamd_reply_parse(strbuf_str(&reply), reply.len, out, &out->why))
		st = SCAN_ERROR;
	strbuf_free(&reply);
	strbuf_free(&ignored);
	return st;
}
