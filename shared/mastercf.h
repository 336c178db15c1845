/*
 * mastercf - Postfix's smtpd services and their process limits
 *
 * SYNOPSIS
 *	mastercf_parse(text, len, default_limit, &services);  postconf -M output
 *	mastercf_limits(&services, &limits, &log);  one limit per {daemon_name}
 *	mastercf_parse_limits("smtpd=100, submission=20", &limits, &why);
 *	mastercf_read_local(postconf, &text, &default_limit, &why);
 *
 * DESCRIPTION
 *	The sessions source (load.h) counts SMTP sessions per Postfix service
 *	against the service's process limit. Postfix names a service to a
 *	milter only through {daemon_name}, which is milter_macro_daemon_name
 *	($myhostname unless master.cf sets it with -o; ARCHITECTURE.md F3).
 *
 *	mastercf_parse() reads what "postconf -M" prints (one service a line;
 *	with -f, -o options on continuation lines that start with
 *	whitespace): name, type, private, unpriv, chroot, wakeup, maxproc,
 *	command and its arguments. It keeps the services whose command is
 *	smtpd (postscreen's "smtpd pass" service among them), each with its
 *	process limit ("-": default_limit; "0": none) and the value of its
 *	"-o milter_macro_daemon_name=..." or "-o { name = value }" (the last
 *	one wins, as for Postfix), $service_name and ${service_name}
 *	expanded. Lines it cannot read are skipped: the text is input.
 *
 *	mastercf_limits() turns them into limits: a service with a
 *	daemon name counts under that name; every service without one sends
 *	$myhostname and counts under MASTERCF_DEFAULT_SERVICE ("smtpd"). Services
 *	that share a name share a count, against the sum of their limits; a
 *	name one of whose services has no limit gets none. Each decision is
 *	one line in *log.
 *
 *	mastercf_parse_limits() reads service_limits: "auto", or a list of
 *	NAME=N (commas and/or whitespace), N from 1 to 1000000. "auto" gives
 *	*auto_limits true and no limits.
 *
 *	mastercf_read_local() runs "postconf -M" and "postconf -h
 *	default_process_limit" (postconf: the command; NULL: "postconf" on
 *	PATH) with stdin and stderr on /dev/null, each for at most
 *	MASTERCF_TIMEOUT_MS: one that hangs is killed and counts as failed.
 *
 * CONCURRENCY
 *	No state. mastercf_read_local() forks and execs postconf (the pipe
 *	close-on-exec): call it at start or from the reload thread, not from a
 *	session.
 */
#ifndef MS_MASTERCF_H
#define MS_MASTERCF_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define MASTERCF_MAX_LIMIT 1000000LL
#define MASTERCF_TIMEOUT_MS 10000 /* for each postconf run */

typedef struct mastercf_service {
	char *name;        /* master.cf's service name: "submission", "smtpd" */
	char *type;        /* inet, unix, pass, ... */
	long long limit;   /* 0: no limit */
	char *daemon_name; /* NULL: $myhostname */
} mastercf_service;

typedef struct mastercf_services {
	mastercf_service *v;
	size_t n;
} mastercf_services;

/* The service everything unnamed counts in (load.h LOAD_DEFAULT_SERVICE). */
#define MASTERCF_DEFAULT_SERVICE "smtpd"

typedef struct mastercf_limit {
	char *service; /* a {daemon_name}, or MASTERCF_DEFAULT_SERVICE */
	long long limit;
} mastercf_limit;

typedef struct mastercf_limits_list {
	mastercf_limit *v;
	size_t n;
} mastercf_limits_list;

void mastercf_parse(const char *text, size_t len, long long default_limit,
                    mastercf_services *out);
void mastercf_services_free(mastercf_services *s);

void mastercf_limits(const mastercf_services *s, mastercf_limits_list *out, strbuf *log);
bool mastercf_parse_limits(const char *text, bool *auto_limits,
                           mastercf_limits_list *out, strbuf *why);
void mastercf_limits_free(mastercf_limits_list *l);

bool mastercf_read_local(const char *postconf, strbuf *text, long long *default_limit,
                         strbuf *why);

#endif
