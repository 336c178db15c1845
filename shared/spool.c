/* spool - a message in memory, then in a private temporary file; see spool.h. */
#include "config.h"

#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct spool {
	size_t mem_max;
	long long size_max;
	char *dir;
	strbuf mem;
	int fd;         /* -1 until the message outgrows mem_max */
	long long size; /* written, kept or not */
	bool over;
	char *error;
};

spool *
spool_create(size_t mem_max, long long size_max, const char *dir)
{
	spool *sp = ms_xcalloc(1, sizeof *sp);

	sp->mem_max = mem_max;
	sp->size_max = size_max;
	sp->dir = ms_xstrdup(dir != NULL && *dir != '\0' ? dir : "/tmp");
	strbuf_init(&sp->mem);
	sp->fd = -1;
	return sp;
}

static void
drop(spool *sp)
{
	strbuf_free(&sp->mem);
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
}

void
spool_free(spool *sp)
{
	if (sp == NULL)
		return;
	drop(sp);
	free(sp->dir);
	free(sp->error);
	free(sp);
}

static void
fail(spool *sp, const char *what, int err)
{
	strbuf b = STRBUF_INIT;

	strbuf_printf(&b, "spool in %s: %s: %s", sp->dir, what, strerror(err));
	sp->error = strbuf_detach(&b);
	drop(sp);
}

/* A file nobody else can open: O_TMPFILE, else a name unlinked at once. */
static int
open_private(spool *sp)
{
	strbuf name = STRBUF_INIT;
	int fd;

#ifdef O_TMPFILE
	fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
#endif
	strbuf_printf(&name, "%s/milter-stress.XXXXXX", sp->dir);
	fd = mkostemp(name.s, O_CLOEXEC);
	if (fd >= 0)
		unlink(name.s);
	strbuf_free(&name);
	return fd;
}

static bool
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* From memory to the file: the memory goes. */
static bool
to_file(spool *sp)
{
	if ((sp->fd = open_private(sp)) < 0) {
		fail(sp, "cannot create a temporary file", errno);
		return false;
	}
	if (!write_all(sp->fd, sp->mem.s != NULL ? sp->mem.s : "", sp->mem.len)) {
		fail(sp, "write", errno);
		return false;
	}
	strbuf_free(&sp->mem);
	return true;
}

void
spool_write(spool *sp, const void *p, size_t n)
{
	sp->size += (long long)n;
	if (sp->over || sp->error != NULL)
		return;
	if (sp->size > sp->size_max) {
		sp->over = true;
		drop(sp);
		return;
	}
	if (sp->fd < 0 && sp->mem.len + n <= sp->mem_max) {
		strbuf_append(&sp->mem, p, n);
		return;
	}
	if (sp->fd < 0 && !to_file(sp))
		return;
	if (!write_all(sp->fd, p, n))
		fail(sp, "write", errno);
}

long long
spool_size(const spool *sp)
{
	return sp->size;
}

bool
spool_over(const spool *sp)
{
	return sp->over;
}

const char *
spool_error(const spool *sp)
{
	return sp->error;
}

const char *
spool_mem(const spool *sp, size_t *len)
{
	if (sp->fd >= 0 || sp->over || sp->error != NULL)
		return NULL;
	*len = sp->mem.len;
	return sp->mem.s != NULL ? sp->mem.s : "";
}

int
spool_fd(const spool *sp)
{
	return sp->fd;
}

ssize_t
spool_read(const spool *sp, long long off, void *buf, size_t n, strbuf *why)
{
	ssize_t r;

	if (sp->over || sp->error != NULL) {
		strbuf_puts(why, sp->error != NULL ? sp->error : "message not kept");
		return -1;
	}
	if (off >= sp->size)
		return 0;
	if (n > (unsigned long long)(sp->size - off))
		n = (size_t)(sp->size - off);
	if (sp->fd < 0) {
		memcpy(buf, sp->mem.s + off, n);
		return (ssize_t)n;
	}
	do
		r = pread(sp->fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		strbuf_printf(why, "spool: read: %s", strerror(errno));
	return r;
}
