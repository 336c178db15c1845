/*
 * textfile - read a whole config-side file into memory, and resolve paths
 *
 * textfile_read(path, regular_only, out, why) appends the bytes of path to
 * out. With regular_only, anything but a regular file (a FIFO, a device,
 * a directory) is refused without blocking: an include or a file: list
 * must not hang the loader on /dev/stdin. Files larger than
 * TEXTFILE_MAX bytes are refused. On failure it returns false and
 * appends to why "cannot open: REASON", "read error: REASON", "not a
 * regular file" or "larger than 64 MiB".
 *
 * textfile_path(base, path) is path relative to the directory of the file
 * base: path itself when it is absolute or base has no '/'. Caller frees.
 *
 * Both are re-entrant.
 */
#ifndef MS_TEXTFILE_H
#define MS_TEXTFILE_H

#include <stdbool.h>

#include "strbuf.h"

#define TEXTFILE_MAX (64L * 1024 * 1024)

bool textfile_read(const char *path, bool regular_only, strbuf *out, strbuf *why);
char *textfile_path(const char *base, const char *path);

#endif
