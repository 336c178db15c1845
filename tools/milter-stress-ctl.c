/*
 * milter-stress-ctl - send one command to a running milter-stress over its
 * control socket and print the answer. See milter-stress-ctl(1).
 *
 * Exit: 0 on an answer, 1 on an "error:" answer, 2 on a usage error or when
 * the daemon cannot be reached or gives no answer in time.
 */
#include "config.h"

#include "conf.h"
#include "control.h"
#include "paths.h"
#include "sockspec.h"
#include "strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 30 /* a reload of a large rule set takes a while */

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: milter-stress-ctl [-s SOCKET | -c CONFIG] [-t SECONDS] COMMAND "
	        "[ARG]\n"
	        "  -s SOCKET   the control socket (unix:/path or /path)\n"
	        "  -c CONFIG   read control_socket from CONFIG (default %s)\n"
	        "  -t SECONDS  give up when no answer came within SECONDS (default %d)\n"
	        "Commands: status, stress on|off|auto, reload, stats, help.\n"
	        "Exit: 0 ok, 1 the daemon answered an error, 2 usage or connection "
	        "error.\n",
	        MS_DEFAULT_CONFIG, DEFAULT_TIMEOUT_S);
}

/* control_socket of the config file; NULL after saying why. */
static char *
socket_from_config(const char *path)
{
	strbuf err = STRBUF_INIT;
	conf *c = conf_load(path, NULL, 0, &err);
	char *spec = NULL;

	if (c == NULL) {
		fprintf(stderr,
		        "milter-stress-ctl: %smilter-stress-ctl: %s does not load: "
		        "give the control socket with -s\n",
		        strbuf_str(&err), path);
	} else if (conf_personality(c, false)->control_socket[0] == '\0') {
		fprintf(stderr, "milter-stress-ctl: %s sets no control_socket\n", path);
	} else {
		spec = ms_xstrdup(conf_personality(c, false)->control_socket);
	}
	conf_unref(c);
	strbuf_free(&err);
	return spec;
}

static int
connect_to(const char *spec, int timeout_s)
{
	struct sockaddr_un sa;
	struct timeval tv = {timeout_s, 0};
	strbuf why = STRBUF_INIT;
	sockspec ss;
	int fd;

	if (!sockspec_parse(spec, 0, &ss, &why) || ss.family != AF_UNIX) {
		fprintf(stderr, "milter-stress-ctl: %s\n",
		        why.len > 0 ? strbuf_str(&why)
		                    : "the control socket is a unix socket");
		strbuf_free(&why);
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, ss.path, sizeof ss.path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "milter-stress-ctl: cannot connect to %s: %s%s\n",
		        ss.path, strerror(errno),
		        errno == ENOENT || errno == ECONNREFUSED
		                ? " (is milter-stress running?)"
		                : "");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends the command, copies the answer to stdout; the exit status. */
static int
talk(int fd, const char *cmd)
{
	char buf[4096];
	size_t total = 0;
	bool error_answer = false;
	ssize_t n;

	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		fprintf(stderr, "milter-stress-ctl: cannot send the command: %s\n",
		        strerror(errno));
		return 2;
	}
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			break; /* the daemon died: said below when nothing came */
		if (n < 0) {
			fprintf(stderr, "milter-stress-ctl: %s\n",
			        errno == EAGAIN || errno == EWOULDBLOCK
			                ? "no answer in time: the daemon may be stuck "
			                  "(see -t)"
			                : strerror(errno));
			return 2;
		}
		if (total == 0 &&
		    strncmp(buf, "error:", (size_t)n < 6 ? (size_t)n : 6) == 0)
			error_answer = true;
		fwrite(buf, 1, (size_t)n, stdout);
		total += (size_t)n;
	}
	if (total == 0) {
		fprintf(stderr,
		        "milter-stress-ctl: the daemon closed the connection without "
		        "an answer (did it stop?)\n");
		return 2;
	}
	if (fflush(stdout) != 0)
		return 2;
	return error_answer ? 1 : 0;
}

int
main(int argc, char **argv)
{
	const char *spec = NULL, *config = NULL;
	char *end;
	char *from_config = NULL;
	int timeout_s = DEFAULT_TIMEOUT_S, ch, fd, rc;
	strbuf cmd = STRBUF_INIT;

	while ((ch = getopt(argc, argv, "s:c:t:h")) != -1) {
		switch (ch) {
		case 's':
			spec = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 't':
			timeout_s = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || timeout_s < 1 ||
			    timeout_s > 3600) {
				fprintf(stderr,
				        "milter-stress-ctl: -t %s: expected 1..3600 "
				        "seconds\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind == argc || argc - optind > 2 || (spec != NULL && config != NULL)) {
		usage(stderr);
		return 2;
	}
	if (spec == NULL) {
		from_config = socket_from_config(config ? config : MS_DEFAULT_CONFIG);
		if (from_config == NULL)
			return 2;
		spec = from_config;
	}
	strbuf_puts(&cmd, argv[optind]);
	if (optind + 1 < argc)
		strbuf_printf(&cmd, " %s", argv[optind + 1]);
	strbuf_putc(&cmd, '\n');
	if (cmd.len > CONTROL_LINE_MAX + 1) {
		fprintf(stderr,
		        "milter-stress-ctl: the command is longer than %d bytes\n",
		        CONTROL_LINE_MAX);
		rc = 2;
	} else if ((fd = connect_to(spec, timeout_s)) < 0) {
		rc = 2;
	} else {
		rc = talk(fd, cmd.s);
		close(fd);
	}
	strbuf_free(&cmd);
	free(from_config);
	return rc;
}
