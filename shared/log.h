/*
 * log - syslog (facility mail) in Postfix's style, and stderr in the foreground
 *
 * log_init() opens syslog with the given ident and LOG_PID; with to_stderr the
 * same lines also go to stderr as "IDENT[PID]: text", so a foreground run reads
 * like a maillog. Warnings and errors carry Postfix's "warning: " / "error: "
 * prefixes. log_debug() lines appear only when the verbosity (-v count) is at
 * least their level.
 *
 * Concurrency: every function may be called from any thread. Lines are written
 * whole (one write per line to stderr; syslog locks internally). log_init()
 * may run again on reload while other threads log.
 */
#ifndef MS_LOG_H
#define MS_LOG_H

#include <stdbool.h>
#include <syslog.h>

void log_init(const char *ident, bool to_stderr);
void log_set_verbose(int level);
int log_verbose(void);

/* prio: LOG_ERR, LOG_WARNING, LOG_NOTICE or LOG_INFO. */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_debug(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Test seam: when set, every line (without ident or prefix) also goes to
 * hook(ctx, prio, line). Set it before any thread logs; NULL removes it.
 */
typedef void (*log_hook_fn)(void *ctx, int prio, const char *line);
void log_set_hook(log_hook_fn hook, void *ctx);

#endif
