/*
 * daemon-endpoint - the stress endpoint: a second process on stress_socket
 *
 * SYNOPSIS
 *	r = endpoint_start();	before any thread: -1 failed, 0 in the
 *				endpoint's process, 1 in the main one
 *	endpoint_ready();	the endpoint listens (in the endpoint)
 *	endpoint_wait_ready();	the main process waits for it
 *	endpoint_watch();	the main process notices the endpoint dying
 *	endpoint_reload();	the main process reloaded: so does the endpoint
 *	endpoint_stop();	the main process stops: so does the endpoint
 *
 * DESCRIPTION
 *	libmilter listens on one socket per process (smfi_setconn() once,
 *	smfi_main()). A session that Postfix sends to stress_socket is
 *	stressed from negotiation on (source=endpoint), so it negotiates only
 *	what the stress personality needs; that needs its own libmilter, so
 *	its own process. endpoint_start() forks it after the configuration
 *	and the runtime exist and before any thread (ARCHITECTURE.md F14):
 *	the two share the load levels (load.h: a MAP_SHARED mapping made
 *	before the fork), so the sessions of both count against the same
 *	service limits, and each has its own libmilter, worker threads,
 *	max_sessions and snapshots.
 *
 *	The endpoint dies with the main process (PR_SET_PDEATHSIG, and a
 *	check that the parent is still the one that forked it); the main
 *	process forwards every successful reload to it (SIGUSR1) and stops it
 *	at its own stop (SIGTERM, without waiting: the endpoint's libmilter
 *	takes seconds to stop, and the service manager waits for the whole
 *	group). When the endpoint dies on its
 *	own, the main process logs it and stops too, with exit status 1: the
 *	service manager restarts both (a process with threads does not fork
 *	a new endpoint). systemd's MAINPID is the main process; the endpoint
 *	drops NOTIFY_SOCKET. It serves no control socket, metrics or pid file,
 *	does not configure or tick the load levels (the main process does),
 *	and logs under the same name.
 *
 * CONCURRENCY
 *	endpoint_start() before any thread; the others from the main thread,
 *	except endpoint_reload() (the reload thread or the control thread).
 *	endpoint_watch() starts a thread that waits for the endpoint.
 */
#ifndef MS_DAEMON_ENDPOINT_H
#define MS_DAEMON_ENDPOINT_H

#include <stdbool.h>

int endpoint_start(void);
bool endpoint_in_child(void); /* this is the endpoint's process */
void endpoint_ready(void);
bool endpoint_wait_ready(void);
bool endpoint_watch(void);
void endpoint_reload(void);
void endpoint_stop(void);
bool endpoint_failed(void); /* it died before endpoint_stop() */

#endif
