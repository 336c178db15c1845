/* daemon - process life cycle and the current config snapshot; see daemon.h. */
#include "config.h"

#include "daemon.h"
#include "daemon-endpoint.h"
#include "budget.h"
#include "load-conf.h"
#include "log.h"
#include "metrics.h"
#include "runtime.h"
#include "session.h"
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

/* Descriptors besides the sessions': listening socket, DNS, logs, files. */
#define DAEMON_FD_MARGIN 64

static pthread_mutex_t daemon_conf_lock = PTHREAD_MUTEX_INITIALIZER;
static conf *daemon_conf_current;
static const char *daemon_conf_path;
static char *const *daemon_overrides;
static size_t daemon_n_overrides;
static char *daemon_pidfile;
static int daemon_ready_fd = -1;
static admission *daemon_adm;
static runtime *daemon_rt;
/* One reload at a time: SIGUSR1's thread and the control thread both reload. */
static pthread_mutex_t daemon_reload_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong daemon_generation; /* snapshots published: 1 at start */
static long long daemon_start_ms;

void
daemon_conf_init(conf *c, const char *path, char *const *overrides,
		 size_t n_overrides)
{
	strbuf err = STRBUF_INIT;

	if (daemon_adm == NULL)
		daemon_adm = admission_create();
	if (daemon_rt == NULL)
		daemon_rt = runtime_create();
	if (!runtime_configure(daemon_rt, c, &err))
		log_msg(LOG_ERR, "DNSBL resolver: %s; DNS checks are skipped",
		        strbuf_str(&err));
	strbuf_free(&err);
	metrics_register_conf(c);
	metrics_config_loaded((long long)time(NULL));
	daemon_conf_current = c;
	atomic_store(&daemon_generation, 1);
	daemon_start_ms = budget_now_ms();
	daemon_conf_path = path;
	daemon_overrides = overrides;
	daemon_n_overrides = n_overrides;
}

void
daemon_acquire(conf **c, runtime **rt)
{
	pthread_mutex_lock(&daemon_conf_lock);
	*c = daemon_conf_current;
	conf_ref(*c);
	*rt = daemon_rt;
	runtime_ref(*rt);
	pthread_mutex_unlock(&daemon_conf_lock);
}

void
daemon_conf_release(void)
{
	pthread_mutex_lock(&daemon_conf_lock);
	conf_unref(daemon_conf_current);
	daemon_conf_current = NULL;
	/* Connections a stop cut short keep theirs: never freed under them. */
	runtime_unref(daemon_rt);
	daemon_rt = NULL;
	pthread_mutex_unlock(&daemon_conf_lock);
}

/* Parameters that libmilter reads once, before smfi_main(). */
static void
warn_restart_only(const conf *old, const conf *new)
{
	if (old == NULL) /* shutting down */
		return;
	const struct conf_values *a = conf_personality(old, false);
	const struct conf_values *b = conf_personality(new, false);

	if (strcmp(a->socket, b->socket) != 0)
		log_msg(LOG_WARNING, "socket changed to %s: takes effect after a restart",
			b->socket);
	if (strcmp(a->control_socket, b->control_socket) != 0)
		log_msg(LOG_WARNING,
		        "control_socket changed to %s: takes effect after a restart",
		        b->control_socket[0] ? b->control_socket : "(none)");
	if (strcmp(a->socket_mode, b->socket_mode) != 0)
		log_msg(LOG_WARNING,
		        "socket_mode changed to %s: takes effect after a restart",
		        b->socket_mode);
	if (strcmp(a->stress_socket, b->stress_socket) != 0 && !endpoint_in_child())
		log_msg(LOG_WARNING,
		        "stress_socket changed to '%s': takes effect after a restart",
		        b->stress_socket);
	if (strcmp(a->metrics_listen, b->metrics_listen) != 0)
		log_msg(LOG_WARNING,
		        "metrics_listen changed to '%s': takes effect after a restart",
		        b->metrics_listen);
	if (a->listen_backlog != b->listen_backlog ||
	    a->thread_stack_size != b->thread_stack_size ||
	    a->milter_timeout != b->milter_timeout)
		log_msg(LOG_WARNING, "listen_backlog, thread_stack_size and "
				     "milter_timeout take effect after a restart");
}

admission *
daemon_admission(void)
{
	return daemon_adm;
}

unsigned long
daemon_generation_now(void)
{
	return atomic_load(&daemon_generation);
}

long long
daemon_uptime_ms(void)
{
	return budget_now_ms() - daemon_start_ms;
}

const char *
daemon_config_path(void)
{
	return daemon_conf_path;
}

void
daemon_start_history(void)
{
	runtime_history_start(daemon_rt);
}

void
daemon_metrics_sources(metrics_sources *src)
{
	memset(src, 0, sizeof *src);
	session_get_counts(&src->sessions);
	if (daemon_adm != NULL)
		admission_get_counts(daemon_adm, &src->admission);
	runtime_dns_stats(daemon_rt, &src->dns);
	runtime_history_stats(daemon_rt, &src->history);
	for (int k = 0; k < SCAN_N; k++)
		runtime_scan_stats(daemon_rt, (enum scan_kind)k, &src->scan[k]);
	src->generation = daemon_generation_now();
	src->version = PACKAGE_VERSION;
}

void
daemon_log_counts(void)
{
	strbuf line = STRBUF_INIT;

	daemon_format_counts(&line);
	log_msg(LOG_INFO, "%s", line.s);
	strbuf_free(&line);
}

void
daemon_format_counts(strbuf *out)
{
	metrics_sources src;
	const session_counts *n = &src.sessions;
	const admission_counts *a = &src.admission;
	const dnsbl_stats *d = &src.dns;

	daemon_metrics_sources(&src);
	strbuf_printf(out,
	        "statistics: messages=%llu rejected=%llu tempfailed=%llu discarded=%llu "
	        "skipped: dnsbl=%llu body=%llu sessions: now=%llu peak=%llu "
	        "overloaded=%llu dns: lookups=%llu cache_hits=%llu sent=%llu "
	        "timeouts=%llu suspended_zones=%u",
	        n->messages, n->rejected, n->tempfailed, n->discarded, n->skipped_dnsbl,
	        n->skipped_body, a->active, a->peak, a->overloaded, d->lookups,
	        d->cache_hits, d->sent, d->timeouts, d->suspended);
	/* The scanners that were asked at all: ok/timeout/error, peak connections. */
	for (int k = 0; k < SCAN_N; k++) {
		const scanners_stats *st = &src.scan[k];

		if (st->scans > 0)
			strbuf_printf(out, " %s: ok=%llu timeout=%llu error=%llu peak=%u",
			              scan_kind_name((enum scan_kind)k), st->ok, st->timeouts,
			              st->errors, st->peak);
	}
}

void
daemon_fit_fd_limit(long long max_sessions)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_sessions + DAEMON_FD_MARGIN;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_msg(LOG_WARNING, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	was = rl.rlim_cur;
	if (was >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (rl.rlim_cur > was) {
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_msg(LOG_WARNING,
			        "cannot raise the open files limit to %llu: %s",
			        (unsigned long long)rl.rlim_cur, strerror(errno));
			rl.rlim_cur = was;
		} else {
			log_msg(LOG_INFO,
			        "open files limit raised from %llu to %llu for "
			        "max_sessions=%lld",
			        (unsigned long long)was, (unsigned long long)rl.rlim_cur,
			        max_sessions);
		}
	}
	if (rl.rlim_cur < want)
		log_msg(LOG_WARNING,
		        "open files limit %llu (hard %llu) is below max_sessions=%lld "
		        "+ %d: past about %llu sessions new connections cannot be "
		        "accepted (Postfix then applies milter_default_action); raise "
		        "the hard limit (ulimit -Hn, systemd LimitNOFILE=) or lower "
		        "max_sessions",
		        (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
		        max_sessions, DAEMON_FD_MARGIN,
		        (unsigned long long)(rl.rlim_cur > DAEMON_FD_MARGIN
		                                     ? rl.rlim_cur - DAEMON_FD_MARGIN
		                                     : 0));
}

void
daemon_log_lines(int prio, const char *prefix, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		log_msg(prio, "%s%.*s", prefix, n, p);
		p += n + (nl != NULL);
	}
}

bool
daemon_reload(strbuf *why, unsigned long *generation)
{
	strbuf err = STRBUF_INIT;
	conf *fresh, *old;

	pthread_mutex_lock(&daemon_reload_lock);
	fresh = conf_load(daemon_conf_path, daemon_overrides, daemon_n_overrides, &err);
	/* The runtime first: a snapshot it cannot take is not published. */
	if (fresh == NULL || !runtime_configure(daemon_rt, fresh, &err)) {
		daemon_log_lines(LOG_ERR, "reload: ", strbuf_str(&err));
		log_msg(LOG_ERR, "reload failed; keeping the configuration loaded before");
		metrics_config_failed();
		if (why != NULL)
			strbuf_puts(why, strbuf_str(&err));
		if (generation != NULL)
			*generation = atomic_load(&daemon_generation);
		pthread_mutex_unlock(&daemon_reload_lock);
		strbuf_free(&err);
		conf_unref(fresh);
		return false;
	}
	strbuf_free(&err);
	metrics_register_conf(fresh);
	metrics_config_loaded((long long)time(NULL));
	pthread_mutex_lock(&daemon_conf_lock);
	old = daemon_conf_current;
	daemon_conf_current = fresh;
	pthread_mutex_unlock(&daemon_conf_lock);
	if (generation != NULL)
		*generation = atomic_fetch_add(&daemon_generation, 1) + 1;
	else
		atomic_fetch_add(&daemon_generation, 1);
	pthread_mutex_unlock(&daemon_reload_lock);
	warn_restart_only(old, fresh);
	daemon_fit_fd_limit(admission_params(fresh)->max_sessions);
	/* Sessions still holding the old snapshot keep it alive until they close. */
	conf_unref(old);
	log_msg(LOG_INFO, "reloaded configuration from %s",
		daemon_conf_path ? daemon_conf_path : "(defaults)");
	endpoint_reload();
	return true;
}

void
daemon_block_signals(void)
{
	sigset_t set;

	/*
	 * libmilter's signal thread sigwaits HUP, TERM and INT, but blocks them
	 * only in the threads it starts: ours must block them too, or a SIGTERM
	 * delivered to our reload thread kills the process uncleanly.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A client that hangs up while we write must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
}

/* The latency source's input and the levels' timers (load-conf.h). */
static void
load_tick(void)
{
	runtime *rt;

	/* not daemon_acquire(): this thread also ticks after the release */
	pthread_mutex_lock(&daemon_conf_lock);
	rt = daemon_rt;
	runtime_ref(rt);
	pthread_mutex_unlock(&daemon_conf_lock);
	if (rt != NULL)
		load_conf_tick(runtime_load(rt), budget_now_ms());
	runtime_unref(rt);
}

static void *
reload_thread(void *arg)
{
	sigset_t set;
	int sig;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		/* Between signals, once a second: the load levels' clock. */
		if ((sig = sigtimedwait(&set, NULL, &(struct timespec){1, 0})) < 0) {
			if (!endpoint_in_child())
				load_tick();
			continue;
		}
		log_msg(LOG_INFO, "SIGUSR1 received: reloading configuration");
		daemon_log_counts();
		daemon_reload(NULL, NULL);
	}
	return NULL;
}

bool
daemon_start_reload_thread(void)
{
	pthread_t tid;
	int rc = pthread_create(&tid, NULL, reload_thread, NULL);

	if (rc != 0) {
		log_msg(LOG_ERR, "cannot start the reload thread: %s", strerror(rc));
		return false;
	}
	pthread_detach(tid);
	return true;
}

bool
daemon_detach(void)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0) {
		log_msg(LOG_ERR, "pipe: %s", strerror(errno));
		return false;
	}
	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "fork: %s", strerror(errno));
		return false;
	}
	if (pid > 0) {
		unsigned char status = 1;

		close(fds[1]);
		if (read(fds[0], &status, 1) != 1)
			status = 1; /* the child died before it was ready */
		_exit(status);
	}
	close(fds[0]);
	daemon_ready_fd = fds[1];
	if (setsid() < 0)
		log_msg(LOG_WARNING, "setsid: %s", strerror(errno));
	if (chdir("/") < 0)
		log_msg(LOG_WARNING, "chdir /: %s", strerror(errno));
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return true;
}

void
daemon_ready(int status)
{
	unsigned char b = (unsigned char)status;

	/* A no-op unless systemd started us (NOTIFY_SOCKET, Type=notify). */
	if (status == 0)
		sd_notify(0, "READY=1");
	if (daemon_ready_fd < 0)
		return;
	if (write(daemon_ready_fd, &b, 1) < 0) {
		/* The parent is gone; nothing to tell. */
	}
	close(daemon_ready_fd);
	daemon_ready_fd = -1;
}

void
daemon_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

bool
daemon_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool
daemon_write_pidfile(const char *path)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		log_msg(LOG_ERR, "cannot write pid file %s: %s", path, strerror(errno));
		return false;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) != 0) {
		log_msg(LOG_ERR, "cannot write pid file %s: %s", path, strerror(errno));
		return false;
	}
	daemon_pidfile = ms_xstrdup(path);
	return true;
}

void
daemon_remove_pidfile(void)
{
	if (daemon_pidfile != NULL && unlink(daemon_pidfile) < 0 && errno != ENOENT)
		log_msg(LOG_WARNING, "cannot remove pid file %s: %s", daemon_pidfile,
			strerror(errno));
}

bool
daemon_user_lookup(const char *spec, daemon_user *u)
{
	const char *colon = strchr(spec, ':');
	struct passwd *pw;

	memset(u, 0, sizeof *u);
	u->name = colon ? ms_xstrndup(spec, (size_t)(colon - spec)) : ms_xstrdup(spec);
	pw = getpwnam(u->name);
	if (pw == NULL) {
		log_msg(LOG_ERR, "-u %s: no such user '%s'", spec, u->name);
		goto fail;
	}
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	if (colon != NULL) {
		struct group *gr = getgrnam(colon + 1);

		if (gr == NULL) {
			log_msg(LOG_ERR, "-u %s: no such group '%s'", spec, colon + 1);
			goto fail;
		}
		u->gid = gr->gr_gid;
	}
	if (u->uid == 0) {
		log_msg(LOG_ERR,
		        "-u %s: refusing to run as root (uid 0): name an "
		        "unprivileged user, see milter-stress(8)",
		        spec);
		goto fail;
	}
	if (u->gid == 0) {
		log_msg(LOG_ERR,
		        "-u %s: refusing to run with group root (gid 0): name "
		        "an unprivileged group, see milter-stress(8)",
		        spec);
		goto fail;
	}
	u->spec = ms_xstrdup(spec);
	return true;
fail:
	daemon_user_free(u);
	return false;
}

void
daemon_user_free(daemon_user *u)
{
	free(u->spec);
	free(u->name);
	memset(u, 0, sizeof *u);
}

bool
daemon_drop_privileges(const daemon_user *u, const char *unix_socket_path)
{
	/* The socket was made as root; its owner must be able to remove it later. */
	if (unix_socket_path != NULL && chown(unix_socket_path, u->uid, u->gid) < 0)
		log_msg(LOG_WARNING, "chown %s: %s", unix_socket_path, strerror(errno));
	if (daemon_pidfile != NULL && chown(daemon_pidfile, u->uid, u->gid) < 0)
		log_msg(LOG_WARNING, "chown %s: %s", daemon_pidfile, strerror(errno));
	if (initgroups(u->name, u->gid) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0) {
		log_msg(LOG_ERR, "cannot become %s: %s", u->spec, strerror(errno));
		return false;
	}
	if (setuid(0) == 0 || getuid() == 0 || geteuid() == 0) {
		log_msg(LOG_ERR, "privileges were not dropped: setuid(0) succeeded");
		return false;
	}
	return true;
}

bool
daemon_socket_mode(const char *path, const char *mode)
{
	mode_t m = (mode_t)strtol(mode, NULL, 8); /* checked at load: octal <= 0777 */

	if (chmod(path, m) < 0) {
		log_msg(LOG_ERR, "cannot set socket_mode %s on %s: %s", mode, path,
		        strerror(errno));
		return false;
	}
	return true;
}

static int
listen_on(const struct addrinfo *ai, int backlog)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * Lending libmilter a worker (ARCHITECTURE.md F19). Its pool starts a new
 * worker only for an event that finds no worker idle, and counts a worker
 * idle until it has woken: in a burst, commands queue behind the few
 * workers there are, and a session that waits on DNS holds one of them.
 * So before a session first blocks, the daemon connects to its own socket
 * and hangs up: a new session for libmilter, which starts a worker for it
 * (or wakes an idle one), and that worker, its empty session done, goes on
 * with the commands queued. The connection never gets to a callback.
 * Non-blocking: when the listen queue is full nothing waits.
 */
static struct sockaddr_storage nudge_addr;
static socklen_t nudge_len; /* 0: no nudging (fd:N, or not set up) */

static void
nudge_pool(void *arg)
{
	int fd;

	(void)arg;
	if (nudge_len == 0)
		return;
	fd = socket(nudge_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)&nudge_addr, nudge_len) == 0 ||
	    errno == EINPROGRESS) {
		struct pollfd p = {fd, POLLOUT, 0};

		/* TCP: let the handshake finish (loopback: at once) */
		if (errno == EINPROGRESS)
			(void)poll(&p, 1, 10);
		metrics_worker_lent();
	}
	close(fd);
}

void
daemon_lend_workers(const sockspec *ss)
{
	struct addrinfo *res = NULL;

	if (ss->family == AF_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)&nudge_addr;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof un->sun_path, "%s", ss->path);
		nudge_len = (socklen_t)sizeof *un;
	} else if ((ss->family == AF_INET || ss->family == AF_INET6) &&
	           sockspec_addrinfo(ss, false, &res) == 0) {
		memcpy(&nudge_addr, res->ai_addr, res->ai_addrlen);
		nudge_len = res->ai_addrlen;
		freeaddrinfo(res);
	}
	if (nudge_len != 0 && daemon_rt != NULL)
		runtime_on_block(daemon_rt, nudge_pool, NULL);
}

int
daemon_listen_inet(const char *spec, const sockspec *ss, int backlog)
{
	struct addrinfo *res = NULL;
	int rc, fd = -1;

	rc = sockspec_addrinfo(ss, true, &res);
	if (rc != 0) {
		log_msg(LOG_ERR, "cannot open socket %s: %s", spec, gai_strerror(rc));
	} else {
		fd = listen_on(res, backlog);
		if (fd < 0)
			log_msg(LOG_ERR, "cannot open socket %s: %s", spec, strerror(errno));
		freeaddrinfo(res);
	}
	return fd;
}
