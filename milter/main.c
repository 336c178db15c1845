/*
 * milter-stress - a Postfix milter that learns the MTA's stress state and
 * changes personality with it. This file: options, start-up order, shutdown.
 * See milter-stress(8).
 */
#include "config.h"

#include "admission.h"
#include "callbacks.h"
#include "conf.h"
#include "daemon.h"
#include "daemon-control.h"
#include "daemon-endpoint.h"
#include "log.h"
#include "metrics-http.h"
#include "paths.h"
#include "rspamd.h"
#include "sockspec.h"
#include "strbuf.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The largest packet we accept from the MTA: see setup_milter(). */
#define MILTER_MAX_PACKET (1024 * 1024 - 1)

struct options {
	const char *config;
	bool config_given;
	const char *socket;
	bool foreground;
	int verbose;
	char **overrides;
	size_t n_overrides;
	bool check_only;
	const char *pidfile;
	const char *user;
	char *absolute[2]; /* config and pidfile, made absolute to detach */
};

static void
usage(FILE *fp)
{
	fprintf(fp,
		"usage: milter-stress [-fnvVh] [-c config] [-p socket] [-o name=value]...\n"
		"                     [-P pidfile] [-u user[:group]]\n"
		"  -c FILE        configuration file (default %s)\n"
		"  -p SOCKET      listen on SOCKET: unix:/path, local:/path, /path,\n"
		"                 inet:port[@host], inet6:port[@host] or fd:N\n"
		"                 (overrides the socket parameter)\n"
		"  -f             stay in the foreground and log to stderr too\n"
		"  -v             more verbose logging (repeat for more)\n"
		"  -o NAME=VALUE  override a parameter; -o stress=yes forces the stress\n"
		"                 personality, -o stress= forces it off\n"
		"  -n             check the configuration, print the effective parameters\n"
		"                 of the chosen personality, and exit (0: valid, 1: not)\n"
		"  -P FILE        write the process id to FILE\n"
		"  -u USER[:GROUP] run as USER (and GROUP) once the socket is open;\n"
		"                 required when started as root\n"
		"  -V             print the version and exit\n"
		"  -h             print this help and exit\n"
		"Signals: SIGUSR1 reloads the configuration; SIGTERM, SIGINT (and, in\n"
		"libmilter, SIGHUP) stop the milter. milter-stress-ctl(1) talks to the\n"
		"control_socket: status, stress on|off|auto, reload, stats.\n",
		MS_DEFAULT_CONFIG);
}

static void
print_version(void)
{
	unsigned int major, minor, patch;

	smfi_version(&major, &minor, &patch);
	printf("milter-stress %s (libmilter %u.%u.%u)\n", PACKAGE_VERSION, major, minor,
	       patch);
}

static void
add_override(struct options *o, const char *spec)
{
	o->overrides = ms_xrealloc(o->overrides, (o->n_overrides + 1) * sizeof *o->overrides);
	o->overrides[o->n_overrides++] = ms_xstrdup(spec);
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	int ch;

	memset(o, 0, sizeof *o);
	o->config = MS_DEFAULT_CONFIG;
	while ((ch = getopt(argc, argv, "c:p:fvo:nP:u:Vh")) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			o->config_given = true;
			break;
		case 'p':
			o->socket = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'o':
			if (strchr(optarg, '=') == NULL) {
				fprintf(stderr, "milter-stress: -o %s: expected name=value\n", optarg);
				return 2;
			}
			add_override(o, optarg);
			break;
		case 'n':
			o->check_only = true;
			break;
		case 'P':
			o->pidfile = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'V':
			print_version();
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "milter-stress: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* -p is the socket parameter given on the command line. */
	if (o->socket != NULL) {
		strbuf spec = STRBUF_INIT;

		strbuf_printf(&spec, "socket=%s", o->socket);
		add_override(o, spec.s);
		strbuf_free(&spec);
	}
	return 0;
}

/*
 * The daemon works in / once detached: a relative -c or -P named from the
 * starting directory would name another file at the next reload or at exit.
 * Returns path itself when it is absolute (or NULL), else a copy kept in slot.
 */
static const char *
make_absolute(const char *path, char **slot)
{
	char cwd[PATH_MAX];
	strbuf abs = STRBUF_INIT;

	if (path == NULL || path[0] == '/')
		return path;
	if (getcwd(cwd, sizeof cwd) == NULL) {
		log_msg(LOG_WARNING, "getcwd: %s: %s stays relative to /", strerror(errno),
		        path);
		return path;
	}
	strbuf_printf(&abs, "%s/%s", cwd, path);
	*slot = strbuf_detach(&abs);
	return *slot;
}

static void
free_options(struct options *o)
{
	free(o->absolute[0]);
	free(o->absolute[1]);
	for (size_t i = 0; i < o->n_overrides; i++)
		free(o->overrides[i]);
	free(o->overrides);
}

static conf *
load_config(struct options *o)
{
	strbuf err = STRBUF_INIT;
	conf *c;

	/* A missing default file means the defaults; a named file must exist. */
	if (!o->config_given && access(o->config, F_OK) != 0 && errno == ENOENT)
		o->config = NULL;
	c = conf_load(o->config, o->overrides, o->n_overrides, &err);
	if (c == NULL) {
		/* Under systemd stderr is the journal, which gets the syslog lines. */
		if (o->check_only || !daemon_stderr_is_journal())
			fprintf(stderr, "%s", strbuf_str(&err));
		/* A daemon that refuses to start says why in the mail log too. */
		if (!o->check_only) {
			log_init("milter-stress", false);
			daemon_log_lines(LOG_ERR, "", strbuf_str(&err));
			log_msg(LOG_ERR, "configuration errors: not starting");
		}
	}
	strbuf_free(&err);
	return c;
}

static int
check_only(conf *c)
{
	bool stressed = false;

	conf_stress_forced(c, &stressed);
	conf_dump(c, stressed, stdout);
	conf_unref(c);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* The socket parameter, which the configuration checked when it loaded. */
static void
parse_socket(const char *text, sockspec *ss)
{
	strbuf why = STRBUF_INIT;

	if (!sockspec_parse(text, 0, ss, &why))
		ms_panic("the socket parameter passed the config check: %s",
		         strbuf_str(&why));
	strbuf_free(&why);
}

static const char *
unix_socket_path(const sockspec *ss)
{
	return ss->family == AF_UNIX ? ss->path : NULL;
}

/*
 * What libmilter listens on: unix:PATH, or fd:N. An inet socket we open
 * ourselves (daemon_listen_inet) and hand over as fd:N too.
 */
static bool
milter_conn(const char *text, const sockspec *ss, int backlog, strbuf *conn)
{
	int fd = ss->fd;

	if (ss->family == AF_UNIX) {
		strbuf_printf(conn, "unix:%s", ss->path);
		return true;
	}
	if (ss->family == AF_INET || ss->family == AF_INET6)
		fd = daemon_listen_inet(text, ss, backlog);
	if (fd < 0)
		return false;
	strbuf_printf(conn, "fd:%d", fd);
	return true;
}

/*
 * Never evaluate what the network sends as root: started as root, the
 * daemon needs -u, and -u never names root.
 */
static bool
check_user(const struct options *o, daemon_user *u)
{
	if (o->user != NULL)
		return daemon_user_lookup(o->user, u);
	if (geteuid() != 0)
		return true;
	log_msg(LOG_ERR, "refusing to run as root: give -u USER, see milter-stress(8)");
	return false;
}

/* Reloads run as the -u user: say now if they cannot read the file. */
static void
check_config_readable(const struct options *o)
{
	if (o->user != NULL && o->config != NULL && access(o->config, R_OK) != 0)
		log_msg(LOG_WARNING, "user %s cannot read %s (%s): reloads will fail",
		        o->user, o->config, strerror(errno));
}

/* Everything libmilter needs before smfi_main(); false after logging why. */
static bool
setup_milter(const struct conf_values *p, const char *socket, const sockspec *ss)
{
	pthread_attr_t attr;

	/* libmilter starts its worker threads with default attributes. */
	if (pthread_attr_init(&attr) == 0) {
		pthread_attr_setstacksize(&attr, (size_t)p->thread_stack_size);
		pthread_setattr_default_np(&attr);
		pthread_attr_destroy(&attr);
	}
	if (smfi_register(*callbacks_desc("milter-stress")) != MI_SUCCESS) {
		log_msg(LOG_ERR, "smfi_register failed");
		return false;
	}
	/*
	 * libmilter drops the connection on a packet above 64 KiB, and Postfix
	 * sends a header of up to header_size_limit (100 KiB by default) in one
	 * packet: such a message would get milter_default_action on every
	 * retry. Accept packets of up to 1 MiB (body chunks stay at 64 KiB).
	 */
	smfi_setmaxdatasize(MILTER_MAX_PACKET);
	strbuf conn = STRBUF_INIT;

	if (!milter_conn(socket, ss, (int)p->listen_backlog, &conn)) {
		strbuf_free(&conn);
		return false;
	}
	if (smfi_setconn(conn.s) != MI_SUCCESS ||
	    smfi_settimeout((int)(p->milter_timeout / 1000)) != MI_SUCCESS ||
	    smfi_setbacklog((int)p->listen_backlog) != MI_SUCCESS) {
		log_msg(LOG_ERR, "cannot configure libmilter for socket %s", socket);
		strbuf_free(&conn);
		return false;
	}
	strbuf_free(&conn); /* libmilter keeps a copy */
	if (smfi_opensocket(true) != MI_SUCCESS) {
		log_msg(LOG_ERR, "cannot open socket %s (in use, or no permission?)",
			socket);
		return false;
	}
	/* Before privileges are dropped: the socket belongs to root until then. */
	const char *path = unix_socket_path(ss);

	return path == NULL || daemon_socket_mode(path, p->socket_mode);
}

/*
 * Fork the stress endpoint's process (daemon-endpoint.h): 0 in it, 1 in
 * the main process, -1 after logging why not.
 */
static int
start_endpoint(const struct conf_values *p)
{
	int r;

	if (strcmp(p->stress_socket, p->socket) == 0) {
		log_msg(LOG_ERR, "stress_socket and socket are both %s", p->socket);
		return -1;
	}
	r = endpoint_start();
	if (r == 0) {
		conf *c;
		runtime *rt;

		callbacks_set_endpoint();
		daemon_acquire(&c, &rt);
		runtime_load_follow(rt);
		runtime_unref(rt);
		conf_unref(c);
	}
	return r;
}

int
main(int argc, char **argv)
{
	struct options o;
	conf *c;
	int rc = parse_options(argc, argv, &o);

	if (rc != 0) {
		free_options(&o);
		return 1;
	}
	c = load_config(&o);
	if (c == NULL || o.check_only) {
		rc = c != NULL ? check_only(c) : 1;
		free_options(&o);
		return rc;
	}

	const struct conf_values *p = conf_personality(c, false);
	daemon_user user;
	sockspec ss;
	bool metrics_failed;

	memset(&user, 0, sizeof user);
	/* What goes wrong before detaching is also said on stderr (unless
	   stderr is the journal, which has the syslog lines already). */
	log_init(p->syslog_name, !daemon_stderr_is_journal());
	log_set_verbose(o.verbose);
	if (!check_user(&o, &user)) {
		conf_unref(c);
		free_options(&o);
		return 1;
	}
	if (!o.foreground) {
		o.config = make_absolute(o.config, &o.absolute[0]);
		o.pidfile = make_absolute(o.pidfile, &o.absolute[1]);
		if (!daemon_detach())
			return 1;
		log_init(p->syslog_name, false);
	}
	daemon_block_signals();
	/* Not thread-safe: before any thread, after the fork (rspamd.h). */
	{
		strbuf why = STRBUF_INIT;

		if (!rspamd_global_init(&why)) {
			log_msg(LOG_ERR, "%s", strbuf_str(&why));
			return 1;
		}
		strbuf_free(&why);
	}
	daemon_conf_init(c, o.config, o.overrides, o.n_overrides);
	daemon_fit_fd_limit(admission_params(c)->max_sessions);
	/* The stress endpoint's process forks here, before any thread. */
	int forked = p->stress_socket[0] != '\0' ? start_endpoint(p) : 1;
	bool endpoint = forked == 0;
	const char *listen_on = endpoint ? p->stress_socket : p->socket;

	if (forked < 0) {
		daemon_ready(1);
		daemon_user_free(&user);
		return 1;
	}
	parse_socket(listen_on, &ss);
	/* Bound as root (a port below 1024 works), served after -u. */
	int metrics_fd = -1;

	metrics_failed = false;
	if (!endpoint)
		metrics_fd = metrics_http_listen(p->metrics_listen, &metrics_failed);
	if (metrics_failed || !setup_milter(p, listen_on, &ss) ||
	    (!endpoint && o.pidfile != NULL && !daemon_write_pidfile(o.pidfile)) ||
	    (!endpoint &&
	     !daemon_control_open(p->control_socket, o.user != NULL ? &user : NULL)) ||
	    (o.user != NULL && !daemon_drop_privileges(&user, unix_socket_path(&ss))) ||
	    !daemon_start_reload_thread() || !metrics_http_start(metrics_fd) ||
	    (!endpoint && !daemon_control_start()) ||
	    (!endpoint && (!endpoint_wait_ready() || !endpoint_watch()))) {
		if (!endpoint)
			endpoint_stop();
		daemon_ready(1);
		daemon_user_free(&user);
		return 1;
	}
	daemon_user_free(&user);
	daemon_lend_workers(&ss);
	daemon_start_history();
	check_config_readable(&o);
	log_msg(LOG_INFO, "starting%s: listening on %s, config %s",
	        endpoint ? " the stress endpoint" : "", listen_on,
	        o.config ? o.config : "(defaults)");
	if (endpoint)
		endpoint_ready();
	if (metrics_fd >= 0)
		log_msg(LOG_INFO, "serving metrics on http://%s/metrics", p->metrics_listen);
	if (!endpoint)
		daemon_ready(0);
	rc = smfi_main();
	if (!endpoint)
		daemon_stopping();
	/*
	 * libmilter's signal thread stops the milter by setting a flag under
	 * its mutex, then closes the listener and only then unlocks;
	 * smfi_main() returns as soon as it sees the flag, and exit() runs the
	 * handler smfi_main() registered, which destroys that mutex, maybe
	 * while the signal thread still holds it. smfi_stop(), a no-op stop
	 * request now, takes the same mutex: once it returns, the signal
	 * thread has let go of it, and TSan sees that order (tests/tsan.supp).
	 */
	smfi_stop();
	if (!endpoint)
		endpoint_stop();
	metrics_http_stop(); /* its scrapes read the runtime released below */
	daemon_control_stop();
	daemon_log_counts();
	log_msg(LOG_INFO, "stopping");
	daemon_remove_pidfile();
	daemon_conf_release();
	free_options(&o);
	return rc == MI_SUCCESS && !endpoint_failed() ? 0 : 1;
}
