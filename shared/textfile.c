/* textfile - whole files into memory, relative paths; see textfile.h. */
#include "config.h"

#include "textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
fail_errno(strbuf *why, const char *what, int err)
{
	char ebuf[256];

	strbuf_printf(why, "%s: %s", what, strerror_r(err, ebuf, sizeof ebuf));
	return false;
}

bool
textfile_read(const char *path, bool regular_only, strbuf *out, strbuf *why)
{
	/* No O_NONBLOCK without regular_only: the main file may be a pipe. */
	int flags = O_RDONLY | O_CLOEXEC | (regular_only ? O_NONBLOCK : 0);
	size_t start = out->len;
	char chunk[16384];
	struct stat st;
	ssize_t n;
	int fd, err;

	if ((fd = open(path, flags)) < 0)
		return fail_errno(why, "cannot open", errno);
	if (regular_only && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		strbuf_puts(why, "not a regular file");
		return false;
	}
	while ((n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			close(fd);
			return fail_errno(why, "read error", err);
		}
		if (out->len - start + (size_t)n > (size_t)TEXTFILE_MAX) {
			close(fd);
			strbuf_puts(why, "larger than 64 MiB");
			return false;
		}
		strbuf_append(out, chunk, (size_t)n);
	}
	close(fd);
	return true;
}

char *
textfile_path(const char *base, const char *path)
{
	const char *slash = strrchr(base, '/');
	strbuf b = STRBUF_INIT;

	if (path[0] == '/' || slash == NULL)
		return ms_xstrdup(path);
	strbuf_append(&b, base, (size_t)(slash - base) + 1);
	strbuf_puts(&b, path);
	return strbuf_detach(&b);
}
