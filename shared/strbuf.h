/*
 * strbuf - a growing, always NUL-terminated byte string
 *
 * For data we did not produce (MTA input, config text): no fixed-size buffers.
 * Allocation failure is fatal (strbuf_* abort with a message): a milter that
 * cannot allocate a few bytes cannot do anything useful, and the MTA then
 * applies its milter_default_action.
 *
 * A strbuf is owned by one thread at a time; nothing here locks.
 */
#ifndef MS_STRBUF_H
#define MS_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct strbuf {
	char *s;    /* always NUL-terminated once initialised */
	size_t len; /* bytes before the NUL */
	size_t cap; /* bytes allocated */
} strbuf;

#define STRBUF_INIT {NULL, 0, 0}

void strbuf_init(strbuf *b);
void strbuf_free(strbuf *b);
void strbuf_reset(strbuf *b);            /* len = 0, keeps the memory */
void strbuf_append(strbuf *b, const void *p, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strbuf_vprintf(strbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Item i of a list of n, for messages: "a", ", b", ..., " or z". */
void strbuf_put_item(strbuf *b, size_t i, size_t n, const char *item);
char *strbuf_detach(strbuf *b);          /* caller frees; b is reset to empty */
const char *strbuf_str(const strbuf *b); /* "" for a never-used buffer */

/*
 * An impossible state: "panic: FUNC: message" to syslog (LOG_CRIT, facility
 * mail) and to stderr, then abort(). ms_panic("bad stage %d", s) names the
 * calling function itself. Invariants are loud; untrusted input never gets
 * here (it is refused). Defined in log.c: it logs like every other line.
 */
#define ms_panic(...) ms_panic_at(__func__, __VA_ARGS__)
void ms_panic_at(const char *func, const char *fmt, ...)
        __attribute__((noreturn, format(printf, 2, 3)));

/* Checked allocation helpers used across the project: abort on failure. */
void *ms_xmalloc(size_t n);
void *ms_xcalloc(size_t n, size_t size);
void *ms_xrealloc(void *p, size_t n);
char *ms_xstrdup(const char *s);
char *ms_xstrndup(const char *s, size_t n);

#endif
