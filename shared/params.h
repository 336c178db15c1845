/*
 * params - the parameter schema, declared once
 *
 * CONF_PARAMS(X) calls X(name, type, default, min, max, validator, doc) once
 * per parameter, in the order conf_dump() and the manual list them. The
 * struct conf_values fields, loading, type checks, bounds, validation, the
 * dump and the manual list are all generated from it: adding a parameter is
 * one line here (plus its validator, if it needs a new one).
 *
 *	name		an identifier; also the field of struct conf_values
 *	type		CONF_STRING, CONF_LIST, CONF_BOOL, CONF_INT, CONF_SIZE or
 *			CONF_TIME (see conf.h for the syntax of each)
 *	default		a string in main.cf syntax, expanded like a value from
 *			the file; it may use $other and ${stress?{a}:{b}}
 *	min, max	bounds for INT, SIZE (bytes) and TIME (milliseconds);
 *			0, 0 means unbounded; ignored for other types
 *	validator	NULL, or a function
 *			bool fn(const char *value, strbuf *why)
 *			called with the expanded value once the type check
 *			passed; on false it says in why what is wrong and what
 *			was expected (the caller prefixes the parameter name)
 *	doc		one line for the manual
 */
#ifndef MS_PARAMS_H
#define MS_PARAMS_H

typedef enum conf_type {
	CONF_STRING,
	CONF_LIST,
	CONF_BOOL,
	CONF_INT,
	CONF_SIZE,
	CONF_TIME,
} conf_type;

/* Units for the bounds column. */
#define CONF_KIB 1024LL
#define CONF_MIB (1024LL * 1024)
#define CONF_SEC 1000LL
#define CONF_DAY (86400LL * 1000)

/* clang-format off */
#define CONF_PARAMS(X) \
	X(socket, CONF_STRING, "inet:8890@127.0.0.1", 0, 0, valid_socket, \
	  "where the milter listens, in libmilter syntax: unix:/path, local:/path, /path, inet:port[@host], inet6:port[@host] or fd:N (see The socket)") \
	X(socket_mode, CONF_STRING, "0660", 0, 0, valid_mode, \
	  "permissions of a unix socket, in octal; Postfix's smtpd (user postfix) needs write access (ignored for inet)") \
	X(control_socket, CONF_STRING, "", 0, 0, valid_control_socket, \
	  "unix socket for milter-stress-ctl(1): status, stress on|off|auto, reload, stats; created mode 0600, owned by the daemon's user, served to root and that user only; empty: none") \
	X(stress_macro, CONF_STRING, "{stress}", 0, 0, valid_nonempty, \
	  "the macro whose value tells the session's stress state (Postfix: milter_macro_defaults)") \
	X(stress_values, CONF_LIST, "yes", 0, 0, NULL, \
	  "values of stress_macro that mean stress") \
	X(stress_sources, CONF_LIST, "macro", 0, 0, valid_stress_sources, \
	  "what makes a session stressed, any of: macro (stress_macro), sessions (the sessions of its Postfix service against service_limits), latency (the early stages' p90 against stress_latency); -o stress= and the control socket still force (see The own stress signal)") \
	X(service_limits, CONF_STRING, "auto", 0, 0, valid_service_limits, \
	  "process limits of the Postfix services for the sessions source: SERVICE=N, ... where SERVICE is a {daemon_name} (master.cf's -o milter_macro_daemon_name) and smtpd counts every session no other name does; auto: read from postconf -M at start and at reload") \
	X(stress_enter, CONF_INT, "80", 1, 1000, NULL, \
	  "a load source's level, in percent of its limit, from which it stresses new sessions") \
	X(stress_leave, CONF_INT, "60", 0, 1000, NULL, \
	  "a stressed source is calm again once its level stayed below this percent for stress_hold; at most stress_enter") \
	X(stress_hold, CONF_TIME, "10s", 0, 1 * CONF_DAY, NULL, \
	  "how long a level stays below stress_leave before stress ends, and the least time between two transitions of one source") \
	X(stress_latency, CONF_TIME, "1s", 1, 1 * CONF_DAY, NULL, \
	  "the latency source's limit: the 90th percentile of the connect, HELO and MAIL FROM stages inside the milter over the last 10 s") \
	X(stress_socket, CONF_STRING, "", 0, 0, valid_stress_socket, \
	  "the stress endpoint: a second socket whose sessions are stressed from negotiation on (source=endpoint), for Postfix's smtpd_milters = ${stress?{...}:{...}}; served by a second process; empty: none; read at start only (see The stress endpoint)") \
	X(stress_header, CONF_STRING, "X-Stress", 0, 0, valid_header_name, \
	  "header added at end of message with the stress state; empty: none") \
	X(stress_header_forged, CONF_STRING, "remove", 0, 0, valid_forged, \
	  "copies of stress_header the client sent: remove (the milter asks the MTA for every header to find them) or postfix (Postfix's header_checks remove them, e.g. /^X-Stress:/ IGNORE, and the milter asks for no header for this)") \
	X(stress_header_always, CONF_BOOL, "yes", 0, 0, NULL, \
	  "add stress_header also to messages received without stress (value: no)") \
	X(milter_timeout, CONF_TIME, "600s", 1 * CONF_SEC, 1 * CONF_DAY, NULL, \
	  "how long the milter waits for the MTA's next command (smfi_settimeout)") \
	X(listen_backlog, CONF_INT, "256", 1, 65535, NULL, \
	  "listen queue of the milter socket (smfi_setbacklog)") \
	X(thread_stack_size, CONF_SIZE, "256k", 128 * CONF_KIB, 64 * CONF_MIB, NULL, \
	  "stack size of each libmilter worker thread") \
	X(max_sessions, CONF_INT, "4000", 1, 1000000, NULL, \
	  "sessions at once; past it new ones get overload_action at connect, without rules") \
	X(overload_action, CONF_STRING, "tempfail", 0, 0, valid_overload_action, \
	  "what a session past max_sessions gets at connect: tempfail (overload_reply) or accept (no filtering)") \
	X(overload_reply, CONF_STRING, "421 4.7.0 Too many sessions, try again later", 0, 0, valid_overload_reply, \
	  "reply code, enhanced code and text of overload_action = tempfail (421: Postfix hangs up)") \
	X(error_limit, CONF_INT, "${stress?{1}:{20}}", 1, 1000000, NULL, \
	  "after this many rejections in one session (452 not counted), answer 421 and hang up (Postfix: smtpd_hard_error_limit)") \
	X(rcpt_limit, CONF_INT, "${stress?{100}:{1000}}", 0, 1000000, NULL, \
	  "recipients per message; past it each gets 452 4.5.3, not counted as an error, logged once with a count (Postfix: smtpd_recipient_limit); 0: no limit of ours") \
	X(milter_command_timeout, CONF_TIME, "30s", 1 * CONF_SEC, 1 * CONF_DAY, NULL, \
	  "Postfix's milter_command_timeout: how long Postfix waits for the milter's reply at connect, helo, mail, rcpt and data; set it to what your main.cf says, if you changed Postfix's") \
	X(milter_content_timeout, CONF_TIME, "300s", 1 * CONF_SEC, 1 * CONF_DAY, NULL, \
	  "Postfix's milter_content_timeout: how long Postfix waits for the milter's reply at header, end of header, body and end of message; set it to what your main.cf says, if you changed Postfix's") \
	X(connect_budget, CONF_TIME, "${stress?{1s}:{10s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for the connect stage's checks, within milter_command_timeout (see Time budgets)") \
	X(helo_budget, CONF_TIME, "${stress?{1s}:{10s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for the helo stage's checks, within milter_command_timeout (see Time budgets)") \
	X(mail_budget, CONF_TIME, "${stress?{1s}:{10s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for the mail stage's checks, within milter_command_timeout (see Time budgets)") \
	X(rcpt_budget, CONF_TIME, "${stress?{1s}:{10s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for each rcpt stage's checks, within milter_command_timeout (see Time budgets)") \
	X(data_budget, CONF_TIME, "${stress?{1s}:{10s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for the data stage's checks, within milter_command_timeout (see Time budgets)") \
	X(eoh_budget, CONF_TIME, "${stress?{1s}:{10s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for the header and end-of-header stages' checks, within milter_content_timeout (see Time budgets)") \
	X(body_budget, CONF_TIME, "${stress?{1s}:{30s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for scanning the whole body, within milter_content_timeout (see Time budgets); past it the scan stops") \
	X(eom_budget, CONF_TIME, "${stress?{2s}:{20s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for the end-of-message stage's checks, within milter_content_timeout (see Time budgets)") \
	X(session_stage_wait, CONF_TIME, "100ms", 0, 1 * CONF_DAY, NULL, \
	  "how long the connect or HELO stage waits for its DNS answers before it hands its rules on to MAIL FROM, where Postfix applies their rejections anyway (see Delayed stages); at least the stage's budget: the stage always waits for its own answers") \
	X(budget_action, CONF_STRING, "continue", 0, 0, valid_action, \
	  "what a stage does when its budget runs out: continue or tempfail") \
	X(dns_servers, CONF_STRING, "", 0, 0, NULL, \
	  "DNS servers for DNSBL lookups (host:port, comma separated); empty: resolv.conf") \
	X(dns_error_action, CONF_STRING, "continue", 0, 0, valid_action, \
	  "what a DNS error (SERVFAIL, refused) does: continue or tempfail") \
	X(dns_cache_size, CONF_INT, "10000", 16, 10000000, NULL, \
	  "DNSBL answers kept, positive and negative, each within its TTL") \
	X(dnsbl_breaker_threshold, CONF_INT, "5", 1, 1000, NULL, \
	  "lookups in a row that timed out or reached no DNS server (one that is down) after which a DNSBL zone is suspended") \
	X(dnsbl_breaker_time, CONF_TIME, "60s", 1 * CONF_SEC, 1 * CONF_DAY, NULL, \
	  "how long a suspended DNSBL zone costs nothing before it is tried again") \
	X(body_scan_limit, CONF_SIZE, "${stress?{64k}:{1m}}", 1 * CONF_KIB, 1024 * CONF_MIB, NULL, \
	  "body bytes scanned by body rules; past it the milter asks Postfix to skip the rest") \
	X(clamd_socket, CONF_STRING, "", 0, 0, valid_scanner_socket, \
	  "where clamd listens (its LocalSocket or TCPSocket): unix:/path or inet:port@host (inet:host:port too); empty: no clamd, its checks are skipped (see Content scanners)") \
	X(spamd_socket, CONF_STRING, "", 0, 0, valid_scanner_socket, \
	  "where SpamAssassin's spamd listens: unix:/path or inet:port@host; empty: no spamd (see Content scanners)") \
	X(rspamd_socket, CONF_STRING, "", 0, 0, valid_scanner_socket, \
	  "where rspamd's normal worker listens (port 11333 by default): inet:port@host, inet:host:port, unix:/path or http://host:port; empty: no rspamd (see Content scanners)") \
	X(clamd_budget, CONF_TIME, "${stress?{1s}:{10s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for one clamd scan, waiting for a free connection included; never past the end of eom_budget") \
	X(spamd_budget, CONF_TIME, "${stress?{1s}:{15s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for one spamd scan, as clamd_budget") \
	X(rspamd_budget, CONF_TIME, "${stress?{1s}:{15s}}", 0, 1 * CONF_DAY, NULL, \
	  "time for one rspamd scan, as clamd_budget") \
	X(clamd_max_connections, CONF_INT, "10", 1, 10000, NULL, \
	  "clamd scans at once; more wait for a free one within their budget; no more than clamd's MaxThreads (10 by default); read from the normal personality") \
	X(spamd_max_connections, CONF_INT, "5", 1, 10000, NULL, \
	  "spamd scans at once; no more than spamd's --max-children (5 by default); read from the normal personality") \
	X(rspamd_max_connections, CONF_INT, "32", 1, 10000, NULL, \
	  "rspamd scans at once; read from the normal personality") \
	X(scanner_breaker_threshold, CONF_INT, "5", 1, 1000, NULL, \
	  "scans in a row that timed out or could not connect after which a scanner is suspended; read from the normal personality") \
	X(scanner_breaker_time, CONF_TIME, "30s", 1 * CONF_SEC, 1 * CONF_DAY, NULL, \
	  "how long a suspended scanner costs nothing (its checks fail at once) before one scan tries it again; read from the normal personality") \
	X(scan_error_action, CONF_STRING, "continue", 0, 0, valid_action, \
	  "what a message gets when a scanner its rules asked timed out, failed or is suspended and no rule decided: continue (the scanner is listed in skipped=) or tempfail (451 4.3.0)") \
	X(scan_size_limit, CONF_SIZE, "${stress?{256k}:{10m}}", 1 * CONF_KIB, 1024 * CONF_MIB, NULL, \
	  "the largest message sent to the scanners; a larger one is not sent, its scanner checks are skipped and listed in skipped=") \
	X(scan_spool_memory, CONF_SIZE, "256k", 0, 64 * CONF_MIB, NULL, \
	  "bytes of a message kept in memory for the scanners; past it the message goes to a private temporary file in scan_spool_directory") \
	X(scan_spool_directory, CONF_STRING, "/var/tmp", 0, 0, valid_abs_dir, \
	  "where messages larger than scan_spool_memory are spooled (unlinked files, O_TMPFILE)") \
	X(rspamd_settings_id, CONF_STRING, "", 0, 0, NULL, \
	  "rspamd's Settings-Id for this personality, e.g. ${stress?{light}:{}}: a lighter rspamd profile under stress; empty: none sent") \
	X(metrics_listen, CONF_STRING, "", 0, 0, valid_hostport, \
	  "where to serve Prometheus metrics over HTTP (GET /metrics): HOST:PORT or [IPV6]:PORT, e.g. 127.0.0.1:9890; empty: off, because an open port is the administrator's decision; read at start only (see Metrics)") \
	X(syslog_name, CONF_STRING, "milter-stress", 0, 0, valid_nonempty, \
	  "syslog ident") \
	X(history_store, CONF_STRING, "", 0, 0, history_store_spec_ok, \
	  "where the client history is kept (see Client history): lmdb:/PATH (one host), redis:HOST:PORT or redis:unix:/PATH (several MX hosts share it), memory: (lost at stop); empty: no history, every client unknown") \
	X(history_size, CONF_SIZE, "256m", 1 * CONF_MIB, 64 * 1024 * CONF_MIB, NULL, \
	  "lmdb: the most the file may grow to (its map size); when full, the clients not seen for longest go first") \
	X(history_known_messages, CONF_INT, "3", 1, 1000000, NULL, \
	  "a client is known with at least this many messages accepted within history_known_time") \
	X(history_known_refusals, CONF_INT, "10", 0, 100, NULL, \
	  "and at most this percentage of its messages refused (rejected or tempfailed) in that time") \
	X(history_known_time, CONF_TIME, "30d", 1 * CONF_DAY, 3650 * CONF_DAY, NULL, \
	  "the window the counts cover (older counts fade by half each window); a client not seen for this long is forgotten (LMDB sweep, Redis TTL)") \
	X(history_read_budget, CONF_TIME, "50ms", 1, 10 * CONF_SEC, NULL, \
	  "how long connect waits for a client's history that is not cached; past it the client is unknown") \
	X(history_store_timeout, CONF_TIME, "1s", 10, 60 * CONF_SEC, NULL, \
	  "redis: connect and command timeout of the history thread (reads still wait at most history_read_budget)") \
	X(history_cache_size, CONF_INT, "100000", 0, 10000000, NULL, \
	  "client histories kept in memory, least recently used out first") \
	X(history_cache_time, CONF_TIME, "60s", 0, 1 * CONF_DAY, NULL, \
	  "how long a cached history is trusted before the store is read again (with several MX hosts: how soon one sees another's updates)") \
	X(history_ipv6_prefix, CONF_INT, "64", 16, 128, NULL, \
	  "IPv6 clients are counted per network of this many bits") \
	X(history_queue_max, CONF_INT, "100000", 1, 10000000, NULL, \
	  "updates waiting to be written (write-behind); past it new ones are dropped and counted")
/* clang-format on */

#endif
