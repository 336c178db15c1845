/* daemon-endpoint - the stress endpoint's process; see daemon-endpoint.h. */
#include "config.h"

#include "daemon-endpoint.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int endpoint_pid; /* main process: the endpoint; 0: none */
static bool endpoint_child; /* this is the endpoint */
static int endpoint_pipe = -1; /* main: read end; endpoint: write end */
static pthread_t endpoint_watcher;
static atomic_bool endpoint_stopping, endpoint_died;
static pid_t endpoint_parent; /* in the endpoint: the main process */

/* Die with the main process, also when it died already. */
static void
die_with_parent(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != endpoint_parent)
		_exit(1);
}

int
endpoint_start(void)
{
	int fds[2];
	pid_t parent = getpid(), pid;

	if (pipe(fds) != 0) {
		log_msg(LOG_ERR, "stress endpoint: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "stress endpoint: fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid > 0) {
		close(fds[1]);
		endpoint_pipe = fds[0];
		atomic_store(&endpoint_pid, (int)pid);
		return 1;
	}
	close(fds[0]);
	endpoint_pipe = fds[1];
	endpoint_child = true;
	endpoint_parent = parent;
	die_with_parent();
	/* systemd hears the main process only (MAINPID). */
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

bool
endpoint_in_child(void)
{
	return endpoint_child;
}

void
endpoint_ready(void)
{
	/* Again: a change of user (-u) cleared it (prctl(2)). */
	die_with_parent();
	if (endpoint_pipe < 0)
		return;
	if (write(endpoint_pipe, "R", 1) != 1)
		log_msg(LOG_WARNING, "stress endpoint: cannot tell the main process: %s",
		        strerror(errno));
	close(endpoint_pipe);
	endpoint_pipe = -1;
}

/* The endpoint has exited: its status, logged. */
static void
reap(void)
{
	pid_t pid = (pid_t)atomic_load(&endpoint_pid);
	int st;

	if (pid <= 0 || waitpid(pid, &st, 0) != pid)
		return;
	if (WIFEXITED(st))
		log_msg(atomic_load(&endpoint_stopping) ? LOG_INFO : LOG_ERR,
		        "stress endpoint (pid %ld) exited with status %d", (long)pid,
		        WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		log_msg(atomic_load(&endpoint_stopping) ? LOG_INFO : LOG_ERR,
		        "stress endpoint (pid %ld) killed by signal %d", (long)pid,
		        WTERMSIG(st));
	atomic_store(&endpoint_pid, 0);
}

bool
endpoint_wait_ready(void)
{
	char c;
	ssize_t n;

	if (endpoint_pipe < 0)
		return true;
	do
		n = read(endpoint_pipe, &c, 1);
	while (n < 0 && errno == EINTR);
	close(endpoint_pipe);
	endpoint_pipe = -1;
	if (n == 1)
		return true;
	log_msg(LOG_ERR, "stress endpoint did not start");
	reap();
	return false;
}

static void *
watch(void *arg)
{
	(void)arg;
	reap();
	if (!atomic_load(&endpoint_stopping)) {
		atomic_store(&endpoint_died, true);
		log_msg(LOG_ERR, "the stress endpoint is gone: stopping");
		/*
		 * Not smfi_stop(): libmilter may not have set up its stop yet.
		 * SIGTERM is blocked in every thread of ours and waits for
		 * libmilter's signal thread, which stops the milter.
		 */
		kill(getpid(), SIGTERM);
	}
	return NULL;
}

bool
endpoint_watch(void)
{
	int rc;

	if (atomic_load(&endpoint_pid) <= 0)
		return true;
	rc = pthread_create(&endpoint_watcher, NULL, watch, NULL);
	if (rc != 0) {
		log_msg(LOG_ERR, "cannot start the stress endpoint's watcher: %s",
		        strerror(rc));
		return false;
	}
	pthread_detach(endpoint_watcher);
	return true;
}

void
endpoint_reload(void)
{
	pid_t pid = (pid_t)atomic_load(&endpoint_pid);

	if (pid > 0 && !endpoint_child)
		kill(pid, SIGUSR1);
}

/*
 * SIGTERM, without waiting: the endpoint's libmilter takes seconds to stop,
 * and a main process that lingered after smfi_main() meanwhile would see
 * its own libmilter tear its worker pool down under it. The watcher thread
 * is detached; the endpoint is reaped by whoever inherits it (systemd waits
 * for the whole control group).
 */
void
endpoint_stop(void)
{
	pid_t pid = (pid_t)atomic_load(&endpoint_pid);

	atomic_store(&endpoint_stopping, true);
	if (pid > 0)
		kill(pid, SIGTERM);
}

bool
endpoint_failed(void)
{
	return atomic_load(&endpoint_died);
}
