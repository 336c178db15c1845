/*
 * spool - one message for the content scanners, in memory up to a
 *	threshold, then in a private temporary file
 *
 * SYNOPSIS
 *	sp = spool_create(256 * 1024, 10 * 1024 * 1024, "/var/tmp");
 *	spool_write(sp, "Subject: x\r\n", 12);	as the message arrives
 *	if (spool_over(sp)) ... larger than its limit: not kept, not scanned
 *	n = spool_read(sp, off, buf, sizeof buf, &why);	-1 on error
 *	spool_free(sp);
 *
 * DESCRIPTION
 *	The scanners want the whole message (headers, a blank line, the
 *	body) at the end of the message, and 200 messages of 10 MiB at once
 *	must not cost 2 GiB of memory. The first mem_max bytes stay in
 *	memory; past them everything goes to a file that no other process
 *	can open: O_TMPFILE in dir, or where the file system lacks it a
 *	mkstemp() name unlinked at once. The file goes when the spool is
 *	freed, or with the process.
 *
 *	size_max bounds what is kept: once more than that was written,
 *	spool_over() is true, what was kept is dropped at once (memory and
 *	file) and later writes only count. A file that cannot be created or
 *	written (disk full) makes the spool failed: spool_error() says why,
 *	and later writes only count.
 *
 *	spool_mem() is the message when it is all in memory (NULL when it
 *	went to the file); spool_fd() the file's descriptor otherwise, to be
 *	read with pread() from offset 0 (spool_read() does it for either).
 *
 * CONCURRENCY
 *	A spool belongs to one session. Once written, any number of threads
 *	may read it at once (spool_read() and pread() keep no offset).
 */
#ifndef MS_SPOOL_H
#define MS_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "strbuf.h"

typedef struct spool spool;

spool *spool_create(size_t mem_max, long long size_max, const char *dir);
void spool_free(spool *sp); /* NULL-safe */

void spool_write(spool *sp, const void *p, size_t n);

long long spool_size(const spool *sp);    /* bytes written, kept or not */
bool spool_over(const spool *sp);         /* more than size_max */
const char *spool_error(const spool *sp); /* NULL: none */

const char *spool_mem(const spool *sp, size_t *len); /* NULL: in a file */
int spool_fd(const spool *sp);                       /* -1: in memory */
/* Up to n bytes from offset off; 0 at the end, -1 with why on error. */
ssize_t spool_read(const spool *sp, long long off, void *buf, size_t n, strbuf *why);

#endif
