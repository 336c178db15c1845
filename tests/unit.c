/* unit - run one Check suite; see unit.h. */
#include "config.h"

#include "unit.h"
#include "log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DNSMASQ "/usr/sbin/dnsmasq"

static char unit_dir[4096];

int
unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* From a file (text written to one) or the schema's defaults (text NULL). */
static conf *
conf_with(const char *text, const char *o1, const char *o2)
{
	strbuf path = STRBUF_INIT;
	char *ov[2];
	size_t n = 0;
	strbuf err = STRBUF_INIT;
	conf *c;

	if (text != NULL) {
		FILE *fp;

		strbuf_printf(&path, "%s/test.conf", unit_tmpdir());
		fp = fopen(strbuf_str(&path), "w");
		ck_assert_ptr_nonnull(fp);
		fputs(text, fp);
		fclose(fp);
	}
	if (o1 != NULL)
		ov[n++] = (char *)o1;
	if (o2 != NULL)
		ov[n++] = (char *)o2;
	c = conf_load(text != NULL ? strbuf_str(&path) : NULL, ov, n, &err);
	ck_assert_msg(c != NULL, "conf_load: %s", strbuf_str(&err));
	strbuf_free(&err);
	strbuf_free(&path);
	return c;
}

conf *
unit_conf(const char *o1, const char *o2)
{
	return conf_with(NULL, o1, o2);
}

conf *
unit_conf_text(const char *text, const char *o1, const char *o2)
{
	return conf_with(text, o1, o2);
}

const char *
unit_macro(void *ctx, const char *name)
{
	const unit_macros *m = ctx;

	if (strcmp(name, "{stress}") == 0)
		return m->stress;
	if (strcmp(name, "{auth_authen}") == 0)
		return m->auth;
	if (strcmp(name, "i") == 0)
		return m->qid;
	return NULL;
}

static void
capture(void *ctx, int prio, const char *line)
{
	(void)prio;
	strbuf_puts(ctx, line);
	strbuf_putc(ctx, '\n');
}

void
unit_log_capture(strbuf *into)
{
	log_set_hook(into != NULL ? capture : NULL, into);
}

const char *
unit_tmpdir(void)
{
	return unit_dir;
}

static int
remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) != 0)
		perror(path);
	return 0;
}

int
unit_run_in_tmpdir(Suite *s, const char *prefix)
{
	const char *base = getenv("TMPDIR");
	int rc;

	snprintf(unit_dir, sizeof unit_dir, "%s/%s.XXXXXX",
	         base != NULL && *base != '\0' ? base : "/tmp", prefix);
	if (mkdtemp(unit_dir) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	rc = unit_run(s);
	nftw(unit_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

static void
die(const char *what)
{
	perror(what);
	exit(EXIT_FAILURE);
}

static struct sockaddr_in
loopback(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((uint16_t)port)};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

int
unit_udp_socket(int *port)
{
	struct sockaddr_in sin = loopback(0);
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		die("bind 127.0.0.1");
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port free for both UDP and TCP on 127.0.0.1, for dnsmasq to bind. */
static int
free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		int port, u = unit_udp_socket(&port);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sin = loopback(port);
		bool ok = t >= 0 && bind(t, (struct sockaddr *)&sin, sizeof sin) == 0;

		if (t >= 0)
			close(t);
		close(u);
		if (ok)
			return port;
	}
	fprintf(stderr, "no free port on 127.0.0.1\n");
	exit(EXIT_FAILURE);
}

static bool
tcp_ready(int port)
{
	struct sockaddr_in sin = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		die("socket");
	ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
	close(fd);
	return ok;
}

static const char *const dnsmasq_common[] = {
        DNSMASQ,
        "--no-daemon",
        "--conf-file=/dev/null",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
};

#define N_COMMON (sizeof dnsmasq_common / sizeof dnsmasq_common[0])

static char **
dnsmasq_argv(const char *const *extra, const char *port)
{
	size_t n = 0, i, k = 0;
	char **argv;

	while (extra != NULL && extra[n] != NULL)
		n++;
	if ((argv = calloc(N_COMMON + n + 2, sizeof *argv)) == NULL)
		die("calloc");
	for (i = 0; i < N_COMMON; i++)
		argv[k++] = (char *)dnsmasq_common[i];
	argv[k++] = (char *)port;
	for (i = 0; i < n; i++)
		argv[k++] = (char *)extra[i];
	return argv;
}

pid_t
unit_dnsmasq_start(const char *const *extra_args, int *port)
{
	char opt[32];
	int port_n = free_port();
	char **argv;
	pid_t pid;

	if (access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "%s missing: install the Debian package dnsmasq-base\n",
		        DNSMASQ);
		exit(EXIT_FAILURE);
	}
	snprintf(opt, sizeof opt, "--port=%d", port_n);
	argv = dnsmasq_argv(extra_args, opt);
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0 && getenv("DNSBL_TEST_VERBOSE") == NULL)
			dup2(null, 2);
		execv(DNSMASQ, argv);
		_exit(127);
	}
	free(argv);
	for (int i = 0; i < 500; i++) {
		int st;

		if (tcp_ready(port_n)) {
			*port = port_n;
			return pid;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "dnsmasq exited at start (status %d)\n", st);
			exit(EXIT_FAILURE);
		}
		usleep(10000);
	}
	fprintf(stderr, "dnsmasq did not start on port %d\n", port_n);
	kill(pid, SIGTERM);
	exit(EXIT_FAILURE);
}

void
unit_dnsmasq_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}
