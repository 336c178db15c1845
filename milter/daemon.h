/*
 * daemon - the process around the milter: current config, reload, detaching,
 * pid file, privileges
 *
 * The current configuration is an immutable, reference-counted snapshot.
 * daemon_acquire() hands a session its own reference; a reload (SIGUSR1,
 * handled by a thread of ours that sigwaits it) loads the file again and, only
 * if it is valid, swaps the pointer. Sessions in progress keep the snapshot
 * they started with; a broken file is logged and changes nothing.
 *
 * The runtime state (runtime.h: the DNSBL resolver with its cache and
 * breakers) is the daemon's, not a snapshot's: created by daemon_conf_init(),
 * reconfigured in place with each snapshot a reload loads (before the swap:
 * one it cannot take fails the reload), let go by daemon_conf_release(). A
 * reload keeps its cache and its suspended zones.
 *
 * Order matters (ARCHITECTURE.md F14): daemon_detach() forks, so it runs before any
 * thread exists; daemon_block_signals() runs before any thread is created so
 * every thread inherits the mask and only the reload thread sees SIGUSR1.
 *
 * Concurrency: daemon_acquire() is called from libmilter's worker threads; a
 * mutex guards only the pointer swap and the references taken.
 */
#ifndef MS_DAEMON_H
#define MS_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "admission.h"
#include "conf.h"
#include "metrics.h"
#include "runtime.h"
#include "sockspec.h"
#include "strbuf.h"

/* Install the first snapshot and remember how to load the next ones. */
void daemon_conf_init(conf *c, const char *path, char *const *overrides,
		      size_t n_overrides);
/*
 * What a new connection runs on: a reference to the current snapshot and one
 * to the runtime state (runtime.h; NULL after daemon_conf_release()). The
 * caller must conf_unref() and runtime_unref() them.
 */
void daemon_acquire(conf **c, runtime **rt);
void daemon_conf_release(void); /* at exit: drop the snapshot and the runtime */

/* The session count behind max_sessions (created by daemon_conf_init). */
admission *daemon_admission(void);

/* One line of counters since start (messages, verdicts, skips, sessions,
   the resolver's lookups, cache hits, timeouts and suspended zones). */
void daemon_log_counts(void);
void daemon_format_counts(strbuf *out); /* the same line, appended to out */

/* For the status screen: snapshots published (1 at start, one more per
   reload), milliseconds since daemon_conf_init(), the config file (NULL:
   the defaults). */
unsigned long daemon_generation_now(void);
long long daemon_uptime_ms(void);
const char *daemon_config_path(void);

/* The client history's thread and store, once detached and with the final user. */
void daemon_start_history(void);
/* What other modules count, for one scrape of /metrics (any thread). */
void daemon_metrics_sources(metrics_sources *src);

/*
 * Raise the soft limit on open files (RLIMIT_NOFILE) toward the hard one so
 * that max_sessions connections fit with a margin; warn when the hard limit
 * is too low. At start and after each reload.
 */
void daemon_fit_fd_limit(long long max_sessions);

/* Log each line of a multi-line message (config errors) with a prefix. */
void daemon_log_lines(int prio, const char *prefix, const char *text);

/*
 * Load again; on success swap. Returns false (and logs why) on failure, and
 * appends the reasons to why (if not NULL), one line each. *generation (if
 * not NULL) is the generation in use afterwards. One reload at a time: a
 * second caller waits for the first to finish.
 */
bool daemon_reload(strbuf *why, unsigned long *generation);

void daemon_block_signals(void);
bool daemon_start_reload_thread(void);

/*
 * Fork into the background. The parent waits until the child calls
 * daemon_ready() and exits with the status the child reports, so a failure to
 * open the socket shows in the exit code of the command that started it.
 */
bool daemon_detach(void);
void daemon_ready(int status);

/*
 * systemd (Type=notify): daemon_ready(0) also sends READY=1, once the socket
 * listens and privileges are dropped; daemon_stopping() sends STOPPING=1.
 * Both do nothing when systemd did not start the daemon. Under systemd with
 * -f, stderr is the journal, which gets syslog's lines already:
 * daemon_stderr_is_journal() says so (JOURNAL_STREAM names stderr).
 */
void daemon_stopping(void);
bool daemon_stderr_is_journal(void);

bool daemon_write_pidfile(const char *path);
void daemon_remove_pidfile(void);

/*
 * For an inet: or inet6: socket (ss, parsed from spec), open the listening
 * socket ourselves with TCP_NODELAY (accepted sockets inherit it) and return
 * its descriptor, to be handed to libmilter as "fd:N". Without it every
 * message whose header we change waits ~40 ms for a delayed ACK (Nagle;
 * ARCHITECTURE.md F16). Returns -1 and logs on failure.
 */
int daemon_listen_inet(const char *spec, const sockspec *ss, int backlog);
/* Before a session first waits on a lookup, connect to our own socket ss
   (unix or inet; not fd:N) and hang up, so that libmilter starts or wakes a
   worker for the commands queued meanwhile (ARCHITECTURE.md F19). After
   daemon_conf_init(). */
void daemon_lend_workers(const sockspec *ss);

/*
 * Privileges. The daemon evaluates what the network sends: it never does
 * so as root. daemon_user_lookup() resolves -u "user" or "user:group"
 * before anything starts and refuses uid 0 and gid 0; the socket is opened
 * as root, its mode set (socket_mode, unix sockets only), and then
 * daemon_drop_privileges() hands the socket and the pid file to the user
 * and becomes it for good. Both return false after logging why.
 */
typedef struct daemon_user {
	char *spec; /* as given to -u */
	char *name;
	uid_t uid;
	gid_t gid;
} daemon_user;

bool daemon_user_lookup(const char *spec, daemon_user *u);
void daemon_user_free(daemon_user *u);
bool daemon_drop_privileges(const daemon_user *u, const char *unix_socket_path);

/* chmod a unix socket to mode, octal text ("0660"); false after logging. */
bool daemon_socket_mode(const char *path, const char *mode);

#endif
