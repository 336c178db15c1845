/* log - syslog and stderr logging; see log.h. */
#include "config.h"

#include "log.h"
#include "strbuf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* openlog() keeps the pointer it is given, so the ident lives here. */
static char log_ident[64] = "milter-stress";
static bool log_to_stderr;
static int log_level_verbose;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_hook_fn log_hook;
static void *log_hook_ctx;

void
log_set_hook(log_hook_fn hook, void *ctx)
{
	log_hook = hook;
	log_hook_ctx = ctx;
}

void
log_init(const char *ident, bool to_stderr)
{
	pthread_mutex_lock(&log_lock);
	closelog();
	snprintf(log_ident, sizeof log_ident, "%s", ident);
	log_to_stderr = to_stderr;
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	pthread_mutex_unlock(&log_lock);
}

void
log_set_verbose(int level)
{
	__atomic_store_n(&log_level_verbose, level, __ATOMIC_RELAXED);
}

int
log_verbose(void)
{
	return __atomic_load_n(&log_level_verbose, __ATOMIC_RELAXED);
}

static const char *
prefix(int prio)
{
	switch (prio) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
		return "fatal: ";
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	default:
		return "";
	}
}

static void log_v(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
log_v(int prio, const char *fmt, va_list ap)
{
	strbuf line = STRBUF_INIT;

	strbuf_puts(&line, prefix(prio));
	strbuf_vprintf(&line, fmt, ap);
	pthread_mutex_lock(&log_lock);
	if (log_hook != NULL)
		log_hook(log_hook_ctx, prio, strbuf_str(&line));
	syslog(prio, "%s", strbuf_str(&line));
	if (log_to_stderr) {
		strbuf out = STRBUF_INIT;

		strbuf_printf(&out, "%s[%ld]: %s\n", log_ident, (long)getpid(),
			      strbuf_str(&line));
		/* One write per line: concurrent sessions never interleave. */
		if (write(STDERR_FILENO, out.s, out.len) < 0) {
			/* Nowhere left to report it. */
		}
		strbuf_free(&out);
	}
	pthread_mutex_unlock(&log_lock);
	strbuf_free(&line);
}

void
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(prio, fmt, ap);
	va_end(ap);
}

void
log_debug(int level, const char *fmt, ...)
{
	va_list ap;

	if (log_verbose() < level)
		return;
	va_start(ap, fmt);
	log_v(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

/*
 * Not through log_v(): a panic may come from inside the log lock's holder
 * (an allocation in log_v()), and it must reach stderr even when the
 * daemon never asked for stderr (after detaching it is /dev/null, but in
 * the foreground and under test it is what a person reads).
 */
void
ms_panic_at(const char *func, const char *fmt, ...)
{
	char line[1024];
	int n;
	va_list ap;

	n = snprintf(line, sizeof line, "panic: %s: ", func);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	syslog(LOG_CRIT, "%s", line);
	fprintf(stderr, "%s[%ld]: %s\n", log_ident, (long)getpid(), line);
	abort();
}
