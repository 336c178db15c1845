/* strbuf - growing strings; see strbuf.h. */
#include "config.h"

#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
nomem(size_t n)
{
	ms_panic("out of memory allocating %zu bytes", n);
}

void *
ms_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		nomem(n);
	return p;
}

void *
ms_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		nomem(n * size);
	return p;
}

void *
ms_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		nomem(n);
	return q;
}

char *
ms_xstrndup(const char *s, size_t n)
{
	char *p = ms_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
ms_xstrdup(const char *s)
{
	return ms_xstrndup(s, strlen(s));
}

void
strbuf_init(strbuf *b)
{
	b->s = NULL;
	b->len = 0;
	b->cap = 0;
}

void
strbuf_free(strbuf *b)
{
	free(b->s);
	strbuf_init(b);
}

static void
reserve(strbuf *b, size_t extra)
{
	size_t need;

	if (extra > (size_t)-1 - b->len - 1)
		nomem((size_t)-1);
	need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
	b->s = ms_xrealloc(b->s, cap);
	b->cap = cap;
}

void
strbuf_reset(strbuf *b)
{
	b->len = 0;
	if (b->s != NULL)
		b->s[0] = '\0';
}

void
strbuf_append(strbuf *b, const void *p, size_t n)
{
	reserve(b, n);
	if (n > 0)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
strbuf_puts(strbuf *b, const char *s)
{
	strbuf_append(b, s, strlen(s));
}

void
strbuf_putc(strbuf *b, char c)
{
	strbuf_append(b, &c, 1);
}

void
strbuf_vprintf(strbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	reserve(b, (size_t)n);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
strbuf_printf(strbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *
strbuf_detach(strbuf *b)
{
	char *s = b->s;

	if (s == NULL)
		s = ms_xstrdup("");
	strbuf_init(b);
	return s;
}

const char *
strbuf_str(const strbuf *b)
{
	return b->s != NULL ? b->s : "";
}

void
strbuf_put_item(strbuf *b, size_t i, size_t n, const char *item)
{
	strbuf_puts(b, i == 0 ? "" : i + 1 == n ? " or " : ", ");
	strbuf_puts(b, item);
}
