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
	  "where the milter listens, in libmilter syntax (unix:/path, inet:port@host, inet6:port@[addr])") \
	X(stress_macro, CONF_STRING, "{stress}", 0, 0, valid_nonempty, \
	  "the macro whose value tells the session's stress state (Postfix: milter_macro_defaults)") \
	X(stress_values, CONF_LIST, "yes", 0, 0, NULL, \
	  "values of stress_macro that mean stress") \
	X(stress_header, CONF_STRING, "X-Stress", 0, 0, valid_header_name, \
	  "header added at end of message with the stress state; empty: none") \
	X(stress_header_always, CONF_BOOL, "yes", 0, 0, NULL, \
	  "add stress_header also to messages received without stress (value: no)") \
	X(milter_timeout, CONF_TIME, "600s", 1 * CONF_SEC, 1 * CONF_DAY, NULL, \
	  "how long the milter waits for the MTA's next command (smfi_settimeout)") \
	X(listen_backlog, CONF_INT, "256", 1, 65535, NULL, \
	  "listen queue of the milter socket (smfi_setbacklog)") \
	X(thread_stack_size, CONF_SIZE, "256k", 128 * CONF_KIB, 64 * CONF_MIB, NULL, \
	  "stack size of each libmilter worker thread") \
	X(error_limit, CONF_INT, "${stress?{1}:{20}}", 1, 1000000, NULL, \
	  "after this many rejections in one session (452 not counted), answer 421 and hang up (Postfix: smtpd_hard_error_limit)") \
	X(rcpt_limit, CONF_INT, "${stress?{100}:{1000}}", 1, 1000000, NULL, \
	  "recipients per message; past it each gets 452 4.5.3, not counted as an error (Postfix: smtpd_recipient_limit)") \
	X(syslog_name, CONF_STRING, "milter-stress", 0, 0, valid_nonempty, \
	  "syslog ident")
/* clang-format on */

#endif
