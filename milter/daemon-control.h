/*
 * daemon-control - the control socket: one thread serving control.h's
 * commands to milter-stress-ctl(1)
 *
 * SYNOPSIS
 *	daemon_control_open(spec, user);	as root, before dropping privileges
 *	daemon_control_start();			after detaching and blocking signals
 *	...
 *	daemon_control_stop();			before daemon_conf_release()
 *
 * DESCRIPTION
 *	control_socket (a unix socket) is created mode 0600 and handed to the
 *	-u user, like the milter socket; a stale socket nobody listens on is
 *	removed first, one in use is an error. One thread (ARCHITECTURE.md
 *	F13, F14: created after the fork, with the signals blocked) accepts
 *	one connection at a time: the peer's uid (SO_PEERCRED) must be root
 *	or the daemon's own, else it gets one error line. It reads one line
 *	of at most CONTROL_LINE_MAX bytes within CONTROL_TIMEOUT_S seconds
 *	(a longer line or a silent client gets an error line), answers
 *	through control_handle() and closes. "stress" and "reload" are
 *	logged with the uid that asked.
 *
 *	The stress switch lives in the runtime (runtime_set_stress()), so a
 *	reload keeps it. Under -o stress=... it is refused: that pins the
 *	snapshot to one personality (stress.h). A reload here and one by
 *	SIGUSR1 never overlap (daemon_reload() takes a lock).
 *
 * CONCURRENCY
 *	open, start and stop run on the main thread; the commands run on the
 *	control thread, one at a time, concurrently with the sessions, the
 *	reload thread and the resolver: they read counters (atomic), take
 *	their own snapshot reference, and set the switch (atomic).
 */
#ifndef MS_DAEMON_CONTROL_H
#define MS_DAEMON_CONTROL_H

#include <stdbool.h>

#include "daemon.h"

#define CONTROL_TIMEOUT_S 5 /* to send the command, and to take the answer */

/* spec: control_socket ("" : nothing to do); user: -u's, or NULL. */
bool daemon_control_open(const char *spec, const daemon_user *user);
bool daemon_control_start(void);
void daemon_control_stop(void); /* lets a command in progress finish */

#endif
