/* daemon-control - the control socket's thread; see daemon-control.h. */
#include "config.h"

#include "daemon-control.h"
#include "control.h"
#include "budget.h"
#include "load.h"
#include "log.h"
#include "metrics.h"
#include "sockspec.h"
#include "strbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int ctl_fd = -1;
static char ctl_path[SOCKSPEC_PATH_MAX];
static pthread_t ctl_thread;
static bool ctl_running;

/* The peer of one command, for the log lines of what it changed. */
typedef struct peer {
	unsigned uid;
	long pid;
} peer;

/* ---- the commands, on the daemon's state ---- */

static void
op_status(void *ctx, control_status *st)
{
	admission_counts a = {0, 0, 0};
	dnsbl_stats d;
	conf *c;
	runtime *rt;

	(void)ctx;
	daemon_acquire(&c, &rt);
	st->version = PACKAGE_VERSION;
	st->pid = (long)getpid();
	st->uptime_ms = daemon_uptime_ms();
	strbuf_puts(&st->config, daemon_config_path() ? daemon_config_path() : "");
	st->generation = daemon_generation_now();
	admission_get_counts(daemon_admission(), &a);
	st->sessions_now = a.active;
	st->sessions_peak = a.peak;
	st->overloaded = a.overloaded;
	st->max_sessions = admission_params(c)->max_sessions;
	st->force = runtime_stress(rt);
	st->pinned = conf_stress_forced(c, &st->pinned_stressed);
	strbuf_puts(&st->stress_macro, conf_personality(c, false)->stress_macro);
	runtime_dns_stats(rt, &d);
	st->suspended_zones = d.suspended;
	metrics_suspended_zones(&st->zones);
	metrics_busiest_rules(5, &st->busiest);
	daemon_format_counts(&st->stats);
	load_status(runtime_load(rt), budget_now_ms(), &st->load);
	strbuf_puts(&st->sources, conf_param_text(c, false, "stress_sources"));
	runtime_unref(rt);
	conf_unref(c);
}

static bool
op_stress(void *ctx, enum stress_force force, strbuf *err)
{
	const peer *p = ctx;
	conf *c;
	runtime *rt;
	bool pinned, value, ok;

	daemon_acquire(&c, &rt);
	pinned = conf_stress_forced(c, &value);
	ok = !pinned || force == STRESS_FORCE_NONE;
	if (ok) {
		runtime_set_stress(rt, force);
		log_msg(LOG_INFO,
		        "control: uid %u (pid %ld) set stress %s for new sessions",
		        p->uid, p->pid, stress_force_name(force));
	} else {
		strbuf_printf(err,
		              "-o stress=%s pins the personality of every session; "
		              "restart without it to use the switch",
		              value ? "yes" : "");
	}
	runtime_unref(rt);
	conf_unref(c);
	return ok;
}

static bool
op_reload(void *ctx, unsigned long *generation, strbuf *err)
{
	const peer *p = ctx;

	log_msg(LOG_INFO, "control: uid %u (pid %ld) asked for a reload", p->uid, p->pid);
	return daemon_reload(err, generation);
}

static void
op_stats(void *ctx, strbuf *line)
{
	(void)ctx;
	daemon_format_counts(line);
}

static const control_ops ops = {op_status, op_stress, op_reload, op_stats};

/* ---- one connection ---- */

static void
say(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, text, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* gone, or it does not read: SO_SNDTIMEO */
		text += n;
		len -= (size_t)n;
	}
}

/*
 * One line into buf (size CONTROL_LINE_MAX + 2: a line one byte too long
 * fills it). Returns its length, or -1 when the client sent nothing within
 * the timeout, or -2 on a partial line then silence.
 */
static ssize_t
read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return len == 0 ? -1 : -2;
		if (n == 0)
			break; /* the client shut its side: what came is the command */
		if (memchr(buf + len, '\n', (size_t)n) != NULL) {
			len += (size_t)n;
			break;
		}
		len += (size_t)n;
	}
	return (ssize_t)len;
}

static void
serve(int fd)
{
	struct ucred cred;
	socklen_t cl = sizeof cred;
	struct timeval tv = {CONTROL_TIMEOUT_S, 0};
	char buf[CONTROL_LINE_MAX + 2];
	strbuf answer = STRBUF_INIT;
	peer p;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		log_msg(LOG_WARNING, "control: SO_PEERCRED: %s", strerror(errno));
		return;
	}
	p.uid = (unsigned)cred.uid;
	p.pid = (long)cred.pid;
	if (cred.uid != 0 && cred.uid != geteuid()) {
		static const char no[] = "error: permission denied: only root and the "
		                         "daemon's user may use the control socket\n";

		log_msg(LOG_WARNING,
		        "control: refused uid %u (pid %ld): neither root nor uid %u",
		        p.uid, p.pid, (unsigned)geteuid());
		say(fd, no, sizeof no - 1);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	n = read_line(fd, buf, sizeof buf);
	if (n < 0) {
		log_msg(LOG_WARNING,
		        "control: uid %u (pid %ld) sent %s within %d s: dropped", p.uid,
		        p.pid, n == -1 ? "no command" : "no end of line",
		        CONTROL_TIMEOUT_S);
		strbuf_printf(&answer, "error: %s within %d s\n",
		              n == -1 ? "no command" : "no end of line",
		              CONTROL_TIMEOUT_S);
	} else {
		control_handle(buf, (size_t)n, &ops, &p, &answer);
	}
	say(fd, answer.s, answer.len);
	strbuf_free(&answer);
}

/*
 * Closing a unix socket with unread data resets the peer's side, and the
 * client may then lose the answer: read what is left (a refused client's
 * command, a second line) for a moment before closing.
 */
static void
finish(int fd)
{
	struct timeval tv = {0, 200 * 1000};
	char buf[512];

	shutdown(fd, SHUT_WR);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	for (int i = 0; i < 16 && read(fd, buf, sizeof buf) > 0; i++)
		continue;
}

static void *
control_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept4(ctl_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EINVAL) /* daemon_control_stop() shut it down */
				break;
			log_msg(LOG_WARNING, "control: accept: %s", strerror(errno));
			sleep(1); /* out of descriptors: do not spin */
			continue;
		}
		serve(fd);
		finish(fd);
		close(fd);
	}
	return NULL;
}

/* ---- set-up ---- */

/* A socket at path that nobody listens on is stale; one in use is not ours. */
static bool
remove_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT;
	if (!S_ISSOCK(st.st_mode)) {
		log_msg(LOG_ERR, "control_socket %s exists and is not a socket",
		        sa->sun_path);
		return false;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0) {
		close(fd);
		log_msg(LOG_ERR, "control_socket %s is in use by another process",
		        sa->sun_path);
		return false;
	}
	if (fd >= 0)
		close(fd);
	return unlink(sa->sun_path) == 0 || errno == ENOENT;
}

bool
daemon_control_open(const char *spec, const daemon_user *user)
{
	struct sockaddr_un sa;
	strbuf why = STRBUF_INIT;
	sockspec ss;
	mode_t old;
	int rc;

	if (spec[0] == '\0')
		return true;
	if (!sockspec_parse(spec, 0, &ss, &why) || ss.family != AF_UNIX)
		ms_panic("control_socket %s passed the config check: %s", spec,
		         strbuf_str(&why));
	strbuf_free(&why);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, ss.path, sizeof ss.path); /* both SOCKSPEC_PATH_MAX */
	if (!remove_stale(&sa))
		return false;
	ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl_fd < 0) {
		log_msg(LOG_ERR, "control_socket %s: socket: %s", ss.path,
		        strerror(errno));
		return false;
	}
	/* No thread runs yet: the umask is ours to change for a moment. */
	old = umask(0177);
	rc = bind(ctl_fd, (const struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc < 0 || listen(ctl_fd, 16) < 0 || chmod(ss.path, 0600) < 0 ||
	    (user != NULL && chown(ss.path, user->uid, user->gid) < 0)) {
		log_msg(LOG_ERR, "control_socket %s: %s", ss.path, strerror(errno));
		close(ctl_fd);
		ctl_fd = -1;
		return false;
	}
	memcpy(ctl_path, ss.path, sizeof ctl_path);
	return true;
}

bool
daemon_control_start(void)
{
	int rc;

	if (ctl_fd < 0)
		return true;
	rc = pthread_create(&ctl_thread, NULL, control_thread, NULL);
	if (rc != 0) {
		log_msg(LOG_ERR, "cannot start the control thread: %s", strerror(rc));
		return false;
	}
	ctl_running = true;
	log_msg(LOG_INFO, "control socket %s", ctl_path);
	return true;
}

void
daemon_control_stop(void)
{
	if (ctl_fd < 0)
		return;
	/* Wakes accept() with EINVAL; a command in progress ends first. */
	shutdown(ctl_fd, SHUT_RDWR);
	if (ctl_running)
		pthread_join(ctl_thread, NULL);
	ctl_running = false;
	close(ctl_fd);
	ctl_fd = -1;
	/* As the -u user this may be refused; the next start removes it then. */
	if (unlink(ctl_path) < 0 && errno != ENOENT && errno != EACCES && errno != EPERM)
		log_msg(LOG_WARNING, "cannot remove control_socket %s: %s", ctl_path,
		        strerror(errno));
}
