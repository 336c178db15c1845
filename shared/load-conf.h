/*
 * load-conf - a configuration snapshot's load parameters, applied
 *
 * SYNOPSIS
 *	load_conf_apply(l, c, postconf, now);	at start and at each reload
 *	load_conf_tick(l, now);			once a second
 *
 * DESCRIPTION
 *	load_conf_apply() hands load_configure() the normal personality's
 *	stress_sources, stress_enter, stress_leave, stress_hold and
 *	stress_latency, and the limits of service_limits. With "auto" (and
 *	sessions among the sources) it runs postconf (mastercf.h; postconf
 *	NULL: the one on PATH) and logs what it found, one line per smtpd
 *	service; when postconf cannot be run or fails, it logs so and falls
 *	back to LOAD_FALLBACK_LIMIT for smtpd, Postfix's own default
 *	default_process_limit. With a list, and postconf at hand, a name no
 *	smtpd service of master.cf sends as {daemon_name} is a warning at the
 *	line that set service_limits.
 *
 *	load_conf_tick() gives the load the early stages' histogram (connect,
 *	HELO and MAIL FROM, metrics.h) for the latency source, and lets every
 *	level move on with the clock.
 *
 * CONCURRENCY
 *	load_conf_apply() forks postconf: from the start-up or reload thread.
 *	load_conf_tick(): any one thread.
 */
#ifndef MS_LOAD_CONF_H
#define MS_LOAD_CONF_H

#include "conf.h"
#include "load.h"

#define LOAD_FALLBACK_LIMIT 100

void load_conf_apply(load_levels *l, const conf *c, const char *postconf, long long now);
void load_conf_tick(load_levels *l, long long now);

#endif
