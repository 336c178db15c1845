/* mastercf - smtpd services and their process limits; see mastercf.h. */
#include "config.h"

#include "mastercf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "budget.h"

#define DAEMON_NAME_PARAM "milter_macro_daemon_name"
#define MAX_FIELDS 7 /* name type private unpriv chroot wakeup maxproc */

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A word of a logical line: a run of non-blanks, or "{...}" whole. */
typedef struct word {
	const char *p;
	size_t n;
} word;

static bool
next_word(const char **pp, const char *end, word *w)
{
	const char *p = *pp;

	while (p < end && is_space(*p))
		p++;
	if (p == end)
		return false;
	w->p = p;
	if (*p == '{') {
		while (p < end && *p != '}')
			p++;
		if (p < end)
			p++;
	} else {
		while (p < end && !is_space(*p))
			p++;
	}
	w->n = (size_t)(p - w->p);
	*pp = p;
	return true;
}

static bool
word_is(const word *w, const char *s)
{
	return strlen(s) == w->n && memcmp(w->p, s, w->n) == 0;
}

static const char *
trim(const char *p, const char *end, size_t *n)
{
	while (p < end && is_space(*p))
		p++;
	while (end > p && is_space(end[-1]))
		end--;
	*n = (size_t)(end - p);
	return p;
}

/* $service_name and ${service_name} in value, as master does for -o. */
static char *
expand_service_name(const char *v, size_t n, const char *service)
{
	strbuf b = STRBUF_INIT;
	static const char *const forms[] = {"${service_name}", "$(service_name)",
	                                    "$service_name"};

	for (size_t i = 0; i < n;) {
		size_t k;

		for (k = 0; k < 3; k++) {
			size_t len = strlen(forms[k]);

			if (n - i >= len && memcmp(v + i, forms[k], len) == 0) {
				strbuf_puts(&b, service);
				i += len;
				break;
			}
		}
		if (k == 3)
			strbuf_putc(&b, v[i++]);
	}
	strbuf_putc(&b, '\0'); /* an empty value is a value */
	b.len--;
	return strbuf_detach(&b);
}

/* One -o argument "name=value" or "{ name = value }": the daemon name? */
static void
take_option(const word *w, const char *service, char **daemon_name)
{
	const char *p = w->p, *end = w->p + w->n, *eq, *name;
	size_t name_n, value_n;
	const char *value;

	if (w->n >= 2 && *p == '{' && end[-1] == '}') {
		p++;
		end--;
	}
	eq = memchr(p, '=', (size_t)(end - p));
	if (eq == NULL)
		return;
	name = trim(p, eq, &name_n);
	value = trim(eq + 1, end, &value_n);
	if (name_n != strlen(DAEMON_NAME_PARAM) || memcmp(name, DAEMON_NAME_PARAM, name_n) != 0)
		return;
	free(*daemon_name);
	*daemon_name = expand_service_name(value, value_n, service);
}

static long long
parse_maxproc(const word *w, long long default_limit)
{
	long long v = 0;

	if (word_is(w, "-"))
		return default_limit;
	for (size_t i = 0; i < w->n; i++) {
		if (w->p[i] < '0' || w->p[i] > '9')
			return -1;
		v = v * 10 + (w->p[i] - '0');
		if (v > MASTERCF_MAX_LIMIT)
			v = MASTERCF_MAX_LIMIT; /* far past any count */
	}
	return w->n > 0 ? v : -1;
}

static void
parse_line(const char *p, const char *end, long long default_limit, mastercf_services *out)
{
	word f[MAX_FIELDS], cmd, w;
	char *name, *daemon_name = NULL;
	long long limit;

	if (memchr(p, '\0', (size_t)(end - p)) != NULL)
		return; /* not postconf's: its lines are text */
	for (int i = 0; i < MAX_FIELDS; i++)
		if (!next_word(&p, end, &f[i]))
			return;
	if (!next_word(&p, end, &cmd) || !word_is(&cmd, "smtpd"))
		return;
	if ((limit = parse_maxproc(&f[6], default_limit)) < 0)
		return;
	name = ms_xstrndup(f[0].p, f[0].n);
	while (next_word(&p, end, &w)) {
		if (word_is(&w, "-o")) {
			if (!next_word(&p, end, &w))
				break;
			take_option(&w, name, &daemon_name);
		} else if (w.n > 2 && w.p[0] == '-' && w.p[1] == 'o') {
			word rest = {w.p + 2, w.n - 2};

			take_option(&rest, name, &daemon_name);
		}
	}
	out->v = ms_xrealloc(out->v, (out->n + 1) * sizeof *out->v);
	out->v[out->n].name = name;
	out->v[out->n].type = ms_xstrndup(f[1].p, f[1].n);
	out->v[out->n].limit = limit;
	out->v[out->n].daemon_name = daemon_name;
	out->n++;
}

void
mastercf_parse(const char *text, size_t len, long long default_limit,
               mastercf_services *out)
{
	const char *p = text, *end = text + len;

	out->v = NULL;
	out->n = 0;
	while (p < end) {
		const char *start = p, *eol;

		/* a logical line: continuation lines start with whitespace */
		do {
			eol = memchr(p, '\n', (size_t)(end - p));
			p = eol != NULL ? eol + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		if (!is_space(*start) && *start != '#')
			parse_line(start, p, default_limit, out);
	}
}

void
mastercf_services_free(mastercf_services *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].type);
		free(s->v[i].daemon_name);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static mastercf_limit *
find_limit(mastercf_limits_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].service, name) == 0)
			return &l->v[i];
	return NULL;
}

static void
add_limit(mastercf_limits_list *l, const char *name, long long limit)
{
	l->v = ms_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n].service = ms_xstrdup(name);
	l->v[l->n].limit = limit;
	l->n++;
}

void
mastercf_limits(const mastercf_services *s, mastercf_limits_list *out, strbuf *log)
{
	/* names a service without a limit made unlimited */
	mastercf_limits_list unlimited = {NULL, 0};

	out->v = NULL;
	out->n = 0;
	for (size_t i = 0; i < s->n; i++) {
		const mastercf_service *sv = &s->v[i];
		bool named = sv->daemon_name != NULL && sv->daemon_name[0] != '\0';
		const char *key = named ? sv->daemon_name : MASTERCF_DEFAULT_SERVICE;
		mastercf_limit *l = find_limit(out, key);

		strbuf_printf(log, "service %s (%s): ", sv->name, sv->type);
		if (sv->limit <= 0) {
			strbuf_printf(log, "no process limit: %s not counted\n", key);
			if (find_limit(&unlimited, key) == NULL)
				add_limit(&unlimited, key, 1);
			continue;
		}
		if (!named)
			strbuf_printf(log, "no milter_macro_daemon_name, counted as %s", key);
		else
			strbuf_printf(log, "daemon name %s", key);
		if (l == NULL) {
			add_limit(out, key, sv->limit);
			strbuf_printf(log, ", limit %lld\n", sv->limit);
		} else {
			l->limit += sv->limit;
			if (l->limit > MASTERCF_MAX_LIMIT)
				l->limit = MASTERCF_MAX_LIMIT;
			strbuf_printf(log, ", limit %lld shared: %lld\n", sv->limit, l->limit);
		}
	}
	/* a name with an unlimited service has no limit at all */
	for (size_t i = 0; i < unlimited.n; i++) {
		mastercf_limit *l = find_limit(out, unlimited.v[i].service);

		if (l != NULL) {
			free(l->service);
			*l = out->v[--out->n];
		}
	}
	mastercf_limits_free(&unlimited);
}

void
mastercf_limits_free(mastercf_limits_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].service);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

bool
mastercf_parse_limits(const char *text, bool *auto_limits, mastercf_limits_list *out,
                      strbuf *why)
{
	const char *p = text;

	out->v = NULL;
	out->n = 0;
	*auto_limits = false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strcmp(p, "auto") == 0) {
		*auto_limits = true;
		return true;
	}
	while (*p != '\0') {
		const char *name = p, *eq;
		char *end, *key;
		long long v;

		while (*p != '\0' && *p != '=' && *p != ',' && !is_space(*p))
			p++;
		if (*p != '=' || p == name) {
			strbuf_puts(why, "expected auto or a list of SERVICE=LIMIT "
			                 "(smtpd=100, submission=20)");
			goto fail;
		}
		eq = p++;
		errno = 0;
		v = strtoll(p, &end, 10);
		if (end == p || errno != 0 || v < 1 || v > MASTERCF_MAX_LIMIT ||
		    (*end != '\0' && *end != ',' && !is_space(*end))) {
			strbuf_printf(why, "the limit of %.*s must be a number from 1 to %lld",
			              (int)(eq - name), name, MASTERCF_MAX_LIMIT);
			goto fail;
		}
		key = ms_xstrndup(name, (size_t)(eq - name));
		if (find_limit(out, key) != NULL) {
			strbuf_printf(why, "%s is given twice", key);
			free(key);
			goto fail;
		}
		add_limit(out, key, v);
		free(key);
		p = end;
		while (*p == ',' || is_space(*p))
			p++;
	}
	if (out->n == 0) {
		strbuf_puts(why, "expected auto or a list of SERVICE=LIMIT");
		goto fail;
	}
	return true;
fail:
	mastercf_limits_free(out);
	return false;
}

/*
 * The output of postconf ARG... (stdin /dev/null, stderr discarded); false
 * when it did not exit 0 within MASTERCF_TIMEOUT_MS, which kills it: a
 * postconf that hangs must not hang a start or a reload.
 */
static bool
run(const char *postconf, const char *const *args, strbuf *out, strbuf *why)
{
	const char *argv[8];
	long long deadline = budget_deadline(budget_now_ms(), MASTERCF_TIMEOUT_MS);
	int fds[2], st = 0, null_fd;
	size_t n = 0;
	pid_t pid;
	bool ok = true;

	argv[n++] = postconf;
	for (size_t i = 0; args[i] != NULL && n < 7; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		strbuf_printf(why, "pipe: %s", strerror(errno));
		return false;
	}
	pid = fork();
	if (pid < 0) {
		strbuf_printf(why, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (pid == 0) {
		null_fd = open("/dev/null", O_RDWR);
		if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(fds[1], 1) < 0 ||
		    dup2(null_fd, 2) < 0)
			_exit(126);
		execvp(postconf, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = {fds[0], POLLIN, 0};
		char buf[4096];
		ssize_t got;
		int rc = poll(&pfd, 1, (int)budget_left(deadline));

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			strbuf_printf(why, "%s %s gave no answer within %d s", postconf, args[0],
			              MASTERCF_TIMEOUT_MS / 1000);
			kill(pid, SIGKILL);
			ok = false;
			break;
		}
		got = read(fds[0], buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		strbuf_append(out, buf, (size_t)got);
	}
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (ok && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			strbuf_printf(why, "cannot run %s (not installed?)", postconf);
		else
			strbuf_printf(why, "%s %s failed (exit %d)", postconf, args[0],
			              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		ok = false;
	}
	return ok;
}

bool
mastercf_read_local(const char *postconf, strbuf *text, long long *default_limit,
                    strbuf *why)
{
	static const char *const m_args[] = {"-M", NULL};
	static const char *const d_args[] = {"-h", "default_process_limit", NULL};
	strbuf out = STRBUF_INIT;
	bool ok;
	char *end;
	long long v;

	if (postconf == NULL)
		postconf = "postconf";
	ok = run(postconf, m_args, text, why);
	if (ok && (ok = run(postconf, d_args, &out, why))) {
		v = strtoll(strbuf_str(&out), &end, 10);
		if (end == strbuf_str(&out) || v < 0) {
			strbuf_printf(why, "%s -h default_process_limit printed no number",
			              postconf);
			ok = false;
		} else {
			*default_limit = v;
		}
	}
	strbuf_free(&out);
	return ok;
}
