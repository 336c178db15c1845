/*
 * Unit tests for conf: schema defaults, the main.cf line syntax, typed
 * values and their errors, file:line and -o prefixes, personalities,
 * forcing with -o stress=..., stage budgets inside Postfix's timeouts,
 * reference counting, the dump and the manual.
 */
#include "config.h"

#include "unit.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "stage.h"
#include "strbuf.h"

#define CONF_NAME "test.conf"


static void
conf_file(strbuf *path)
{
	strbuf_reset(path);
	strbuf_printf(path, "%s/%s", unit_tmpdir(), CONF_NAME);
}

/* Load text as a file (NULL: no file) with up to two -o overrides. */
static conf *
load(const char *text, const char *o1, const char *o2, strbuf *err)
{
	strbuf path = STRBUF_INIT;
	char *ov[2];
	size_t n = 0;
	conf *c;
	FILE *fp;

	if (o1 != NULL)
		ov[n++] = (char *)o1;
	if (o2 != NULL)
		ov[n++] = (char *)o2;
	if (text == NULL)
		return conf_load(NULL, ov, n, err);
	conf_file(&path);
	fp = fopen(path.s, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	c = conf_load(path.s, ov, n, err);
	unlink(path.s);
	strbuf_free(&path);
	return c;
}

static conf *
load_ok(const char *text, const char *o1, const char *o2)
{
	strbuf err = STRBUF_INIT;
	conf *c = load(text, o1, o2, &err);

	ck_assert_msg(c != NULL, "'%s': %s", text ? text : "(none)", strbuf_str(&err));
	ck_assert_str_eq(strbuf_str(&err), "");
	strbuf_free(&err);
	return c;
}

static char *
dump(const conf *c, bool stressed)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(fp);
	conf_dump(c, stressed, fp);
	fclose(fp);
	return buf;
}

/* True when text has line as one whole line. */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

/* Defaults: conf_load(NULL, ...) gives what params.h documents. */

/* clang-format off */
static const char *const default_lines[] = {
	"socket = inet:8890@127.0.0.1",
	"socket_mode = 0660",
	"control_socket =",
	"stress_macro = {stress}",
	"stress_values = yes",
	"stress_sources = macro",
	"service_limits = auto",
	"stress_enter = 80",
	"stress_leave = 60",
	"stress_hold = 10s",
	"stress_latency = 1s",
	"stress_socket =",
	"stress_header = X-Stress",
	"stress_header_forged = remove",
	"stress_header_always = yes",
	"milter_timeout = 600s",
	"listen_backlog = 256",
	"thread_stack_size = 256k",
	"max_sessions = 4000",
	"overload_action = tempfail",
	"overload_reply = 421 4.7.0 Too many sessions, try again later",
	"milter_command_timeout = 30s",
	"milter_content_timeout = 300s",
	"session_stage_wait = 100ms",
	"budget_action = continue",
	"dns_servers =",
	"dns_error_action = continue",
	"dns_cache_size = 10000",
	"dnsbl_breaker_threshold = 5",
	"dnsbl_breaker_time = 60s",
	"clamd_socket =",
	"spamd_socket =",
	"rspamd_socket =",
	"clamd_max_connections = 10",
	"spamd_max_connections = 5",
	"rspamd_max_connections = 32",
	"scanner_breaker_threshold = 5",
	"scanner_breaker_time = 30s",
	"scan_error_action = continue",
	"scan_spool_memory = 256k",
	"scan_spool_directory = /var/tmp",
	"rspamd_settings_id =",
	"metrics_listen =",
	"syslog_name = milter-stress",
	"history_store =",
	"history_size = 256m",
	"history_known_messages = 3",
	"history_known_refusals = 10",
	"history_known_time = 30d",
	"history_read_budget = 50ms",
	"history_store_timeout = 1s",
	"history_cache_size = 100000",
	"history_cache_time = 60s",
	"history_ipv6_prefix = 64",
	"history_queue_max = 100000",
};
/* clang-format on */

/* Defaults that differ by personality, as Postfix's stress defaults do. */
static const struct {
	const char *normal, *stress;
} default_split_lines[] = {
	{"error_limit = 20", "error_limit = 1"},
	{"rcpt_limit = 1000", "rcpt_limit = 100"},
	{"connect_budget = 10s", "connect_budget = 1s"},
	{"helo_budget = 10s", "helo_budget = 1s"},
	{"mail_budget = 10s", "mail_budget = 1s"},
	{"rcpt_budget = 10s", "rcpt_budget = 1s"},
	{"data_budget = 10s", "data_budget = 1s"},
	{"eoh_budget = 10s", "eoh_budget = 1s"},
	{"body_budget = 30s", "body_budget = 1s"},
	{"eom_budget = 20s", "eom_budget = 2s"},
	{"body_scan_limit = 1m", "body_scan_limit = 64k"},
	{"clamd_budget = 10s", "clamd_budget = 1s"},
	{"spamd_budget = 15s", "spamd_budget = 1s"},
	{"rspamd_budget = 15s", "rspamd_budget = 1s"},
	{"scan_size_limit = 10m", "scan_size_limit = 256k"},
};

START_TEST(test_default_split)
{
	conf *c = load_ok(NULL, NULL, NULL);
	char *normal = dump(c, false), *stress = dump(c, true);

	ck_assert_msg(has_line(normal, default_split_lines[_i].normal), "in:\n%s", normal);
	ck_assert_msg(has_line(stress, default_split_lines[_i].stress), "in:\n%s", stress);
	free(normal);
	free(stress);
	conf_unref(c);
}
END_TEST

START_TEST(test_default_dump)
{
	conf *c = load_ok(NULL, NULL, NULL);
	char *normal = dump(c, false), *stress = dump(c, true);
	const char *line = default_lines[_i];

	ck_assert_msg(has_line(normal, line), "no '%s' in:\n%s", line, normal);
	ck_assert_msg(has_line(stress, line), "no '%s' in:\n%s", line, stress);
	free(normal);
	free(stress);
	conf_unref(c);
}
END_TEST

START_TEST(test_default_values)
{
	conf *c = load_ok(NULL, NULL, NULL);
	const struct conf_values *v = conf_personality(c, false);
	bool stressed = true;

	ck_assert_str_eq(v->socket, "inet:8890@127.0.0.1");
	ck_assert_str_eq(v->stress_macro, "{stress}");
	ck_assert_uint_eq(v->stress_values.n, 1);
	ck_assert_str_eq(v->stress_values.v[0], "yes");
	ck_assert_ptr_null(v->stress_values.v[1]);
	ck_assert_str_eq(v->stress_header, "X-Stress");
	ck_assert(v->stress_header_always);
	ck_assert_int_eq(v->milter_timeout, 600000);
	ck_assert_int_eq(v->listen_backlog, 256);
	ck_assert_int_eq(v->thread_stack_size, 256 * 1024);
	ck_assert_str_eq(v->syslog_name, "milter-stress");
	ck_assert(!conf_stress_forced(c, &stressed));
	ck_assert(!stressed);
	ck_assert_ptr_null(conf_path(c));
	conf_unref(c);
}
END_TEST

/* Numbers, units, booleans. */

enum field { F_TIMEOUT, F_BACKLOG, F_STACK, F_ALWAYS };

static long long
field(const struct conf_values *v, enum field f)
{
	switch (f) {
	case F_TIMEOUT:
		return v->milter_timeout;
	case F_BACKLOG:
		return v->listen_backlog;
	case F_STACK:
		return v->thread_stack_size;
	case F_ALWAYS:
		return v->stress_header_always;
	}
	return -1;
}

static const struct typed_case {
	const char *text;
	enum field f;
	long long want;
} typed_cases[] = {
        {"milter_timeout = 1500ms", F_TIMEOUT, 1500},
        {"milter_timeout = 90", F_TIMEOUT, 90000},
        {"milter_timeout = 90s", F_TIMEOUT, 90000},
        {"milter_timeout = 2m", F_TIMEOUT, 120000},
        {"milter_timeout = 3h", F_TIMEOUT, 3 * 3600 * 1000LL},
        {"milter_timeout = 1d", F_TIMEOUT, 86400 * 1000LL},
        {"milter_timeout = 1000ms", F_TIMEOUT, 1000},
        {"listen_backlog = 1", F_BACKLOG, 1},
        {"listen_backlog = 65535", F_BACKLOG, 65535},
        {"listen_backlog = +42", F_BACKLOG, 42},
        {"thread_stack_size = 131072", F_STACK, 131072},
        {"thread_stack_size = 128k", F_STACK, 131072},
        {"thread_stack_size = 128K", F_STACK, 131072},
        {"thread_stack_size = 1m", F_STACK, 1048576},
        {"thread_stack_size = 64M", F_STACK, 64 * 1048576LL},
        {"stress_header_always = no", F_ALWAYS, 0},
        {"stress_header_always = No", F_ALWAYS, 0},
        {"stress_header_always = YES", F_ALWAYS, 1},
        {"stress_header_always = yes", F_ALWAYS, 1},
};

START_TEST(test_typed)
{
	const struct typed_case *t = &typed_cases[_i];
	conf *c = load_ok(t->text, NULL, NULL);

	ck_assert_int_eq(field(conf_personality(c, false), t->f), t->want);
	ck_assert_int_eq(field(conf_personality(c, true), t->f), t->want);
	conf_unref(c);
}
END_TEST

/* Lists: commas and/or whitespace, empty items dropped. */

static const struct list_case {
	const char *text;
	size_t n;
	const char *joined; /* items joined with '|' */
} list_cases[] = {
        {"stress_values = yes", 1, "yes"},
        {"stress_values = yes,1", 2, "yes|1"},
        {"stress_values = yes, on  1,\ttrue", 4, "yes|on|1|true"},
        {"stress_values = , a,, b ,", 2, "a|b"},
        {"stress_values =", 0, ""},
        {"stress_values = a\n  b,\n  c", 3, "a|b|c"},
};

START_TEST(test_list)
{
	const struct list_case *t = &list_cases[_i];
	conf *c = load_ok(t->text, NULL, NULL);
	const conf_list *l = &conf_personality(c, false)->stress_values;
	strbuf joined = STRBUF_INIT;
	size_t i;

	ck_assert_uint_eq(l->n, t->n);
	for (i = 0; i < l->n; i++)
		strbuf_printf(&joined, "%s%s", i ? "|" : "", l->v[i]);
	ck_assert_ptr_null(l->v[l->n]);
	ck_assert_str_eq(strbuf_str(&joined), t->joined);
	strbuf_free(&joined);
	conf_unref(c);
}
END_TEST

/* Loads that work: the dump of one personality has the line. */

static const struct ok_case {
	const char *text; /* NULL: no file */
	const char *o1, *o2;
	bool stressed;
	const char *line;
} ok_cases[] = {
        /* the line syntax */
        {"syslog_name=a", NULL, NULL, false, "syslog_name = a"},
        {"syslog_name   =a   \t", NULL, NULL, false, "syslog_name = a"},
        {"  \n# x\n\nsyslog_name = a b\n", NULL, NULL, false, "syslog_name = a b"},
        {"syslog_name = a\r\n", NULL, NULL, false, "syslog_name = a"},
        {"syslog_name = a\n  b\n", NULL, NULL, false, "syslog_name = a b"},
        {"syslog_name = a  \n\t b  \n c", NULL, NULL, false, "syslog_name = a b c"},
        {"syslog_name = a\n# comment\n  b\n", NULL, NULL, false, "syslog_name = a b"},
        {"syslog_name = a\n   # indented comment\n  b\n", NULL, NULL, false,
         "syslog_name = a b"},
        {"syslog_name = a\n\n  \n  b\n", NULL, NULL, false, "syslog_name = a b"},
        {"syslog_name = a\nsyslog_name = b", NULL, NULL, false, "syslog_name = b"},
        {"syslog_name = a # not a comment", NULL, NULL, false,
         "syslog_name = a # not a comment"},
        {"stress_header =", NULL, NULL, false, "stress_header ="},
        /* expansion */
        {"syslog_name = $stress_macro-x", NULL, NULL, false, "syslog_name = {stress}-x"},
        {"syslog_name = $$x", NULL, NULL, false, "syslog_name = $x"},
        {"syslog_name = ${stress?{hot}:{cold}}", NULL, NULL, false, "syslog_name = cold"},
        {"syslog_name = ${stress?{hot}:{cold}}", NULL, NULL, true, "syslog_name = hot"},
        {"syslog_name = ${stress?hot}${stress:cold}", NULL, NULL, true,
         "syslog_name = hot"},
        {"syslog_name = ms-$stress_header\nstress_header = ${stress:{calm}}", NULL, NULL,
         false, "syslog_name = ms-calm"},
        {"syslog_name = ${stress_header?{ms-$stress_header}:{ms-none}}\n"
         "stress_header = ${stress?{hot}}",
         NULL, NULL, true, "syslog_name = ms-hot"},
        {"syslog_name = ${stress_header?{ms-$stress_header}:{ms-none}}\n"
         "stress_header = ${stress?{hot}}",
         NULL, NULL, false, "syslog_name = ms-none"},
        {"syslog_name = ${ stress ? {hot} : {cold} }", NULL, NULL, false,
         "syslog_name = cold"},
        /* -o overrides: after the file, last wins */
        {"listen_backlog = 5", "listen_backlog=7", NULL, false, "listen_backlog = 7"},
        {"listen_backlog = 5", "listen_backlog=7", "listen_backlog = 9", false,
         "listen_backlog = 9"},
        {NULL, "syslog_name=$socket", NULL, false, "syslog_name = inet:8890@127.0.0.1"},
        {"syslog_name = foo", "stress_macro=$syslog_name", NULL, false,
         "stress_macro = foo"},
        {NULL, "stress_header=", NULL, false, "stress_header ="},
        /* sockets the validator accepts */
        {"socket = unix:/run/milter-stress/sock", NULL, NULL, false,
         "socket = unix:/run/milter-stress/sock"},
        {"socket = local:/run/m.sock", NULL, NULL, false, "socket = local:/run/m.sock"},
        {"socket = inet:8890", NULL, NULL, false, "socket = inet:8890"},
        {"socket = inet6:8890@[::1]", NULL, NULL, false, "socket = inet6:8890@[::1]"},
        {"socket = inet6:1", NULL, NULL, false, "socket = inet6:1"},
        {"socket = fd:3", NULL, NULL, false, "socket = fd:3"},
        {"socket = /run/m.sock", NULL, NULL, false, "socket = /run/m.sock"},
        {"socket_mode = 666", NULL, NULL, false, "socket_mode = 666"},
        {"socket_mode = 0600", NULL, NULL, false, "socket_mode = 0600"},
        {"control_socket = /run/ms.ctl", NULL, NULL, false, "control_socket = /run/ms.ctl"},
        {"control_socket = unix:/run/ms.ctl", NULL, NULL, false,
         "control_socket = unix:/run/ms.ctl"},
        /* admission */
        {"overload_action = accept", NULL, NULL, false, "overload_action = accept"},
        {"overload_reply = 451 Busy", NULL, NULL, false, "overload_reply = 451 Busy"},
        {"overload_reply = 421", NULL, NULL, false, "overload_reply = 421"},
        {"max_sessions = ${stress?{50}:{100}}", NULL, NULL, true, "max_sessions = 50"},
        /* the dump prints times and sizes in an exact unit */
        {"milter_timeout = 1500ms", NULL, NULL, false, "milter_timeout = 1500ms"},
        {"milter_timeout = 10m", NULL, NULL, false, "milter_timeout = 600s"},
        {"milter_timeout = 86400", NULL, NULL, false, "milter_timeout = 1d"},
        {"milter_timeout = 2h", NULL, NULL, false, "milter_timeout = 2h"},
        {"thread_stack_size = 1048576", NULL, NULL, false, "thread_stack_size = 1m"},
        {"thread_stack_size = 131073", NULL, NULL, false, "thread_stack_size = 131073"},
        {"stress_values = a b,c", NULL, NULL, false, "stress_values = a, b, c"},
        {"stress_header_always = NO", NULL, NULL, false, "stress_header_always = no"},
        /* stage budgets inside Postfix's timeouts, with a sixth to spare */
        {"connect_budget = 25s", NULL, NULL, false, "connect_budget = 25s"},
        {"eom_budget = 250s", NULL, NULL, true, "eom_budget = 250s"},
        {"rcpt_budget = ${stress?{2s}:{25s}}", NULL, NULL, true, "rcpt_budget = 2s"},
        {"milter_command_timeout = 120s\nconnect_budget = 100s", NULL, NULL, false,
         "connect_budget = 100s"},
        {"milter_content_timeout = 600s\nbody_budget = 500s", NULL, NULL, true,
         "body_budget = 500s"},
        {NULL, "milter_command_timeout=60s", "data_budget=50s", false,
         "data_budget = 50s"},
};

START_TEST(test_ok)
{
	const struct ok_case *t = &ok_cases[_i];
	conf *c = load_ok(t->text, t->o1, t->o2);
	char *out = dump(c, t->stressed);

	ck_assert_msg(has_line(out, t->line), "no '%s' in:\n%s", t->line, out);
	free(out);
	conf_unref(c);
}
END_TEST

/* Loads that fail: err has every substring; "absent" is not in it. */

static const struct err_case {
	const char *text; /* NULL: no file */
	const char *o1, *o2;
	const char *want[3];
	const char *absent;
} err_cases[] = {
        /* time */
        {"milter_timeout = 10x",
         NULL,
         NULL,
         {CONF_NAME ":1: milter_timeout: bad time value '10x': expected a "
                    "number with an optional unit ms, s, m, h, d or w\n"},
         NULL},
        {"milter_timeout = 10 s", NULL, NULL, {"bad time value '10 s'"}, NULL},
        {"milter_timeout = 10S", NULL, NULL, {"bad time value '10S'"}, NULL},
        {"milter_timeout = s", NULL, NULL, {"bad time value 's'"}, NULL},
        {"milter_timeout = -5s", NULL, NULL, {"bad time value '-5s'"}, NULL},
        {"milter_timeout =", NULL, NULL, {"bad time value ''"}, NULL},
        {"milter_timeout = 0",
         NULL,
         NULL,
         {":1: milter_timeout: 0s is out of range 1s..1d\n"},
         NULL},
        {"milter_timeout = 999ms",
         NULL,
         NULL,
         {"milter_timeout: 999ms is out of range 1s..1d"},
         NULL},
        {"milter_timeout = 2d",
         NULL,
         NULL,
         {"milter_timeout: 2d is out of range 1s..1d"},
         NULL},
        {"milter_timeout = 1w",
         NULL,
         NULL,
         {"milter_timeout: 1w is out of range 1s..1d"},
         NULL},
        {"milter_timeout = 99999999999999999999",
         NULL,
         NULL,
         {"milter_timeout: time value '99999999999999999999' is too large"},
         NULL},
        {"milter_timeout = 9999999999999999w", NULL, NULL, {"is too large"}, NULL},
        /* integers */
        {"listen_backlog = 0",
         NULL,
         NULL,
         {":1: listen_backlog: 0 is out of range 1..65535\n"},
         NULL},
        {"listen_backlog = 65536",
         NULL,
         NULL,
         {"listen_backlog: 65536 is out of range 1..65535"},
         NULL},
        {"listen_backlog = -1",
         NULL,
         NULL,
         {"listen_backlog: -1 is out of range 1..65535"},
         NULL},
        {"listen_backlog = 12ab",
         NULL,
         NULL,
         {"listen_backlog: bad integer value '12ab': expected a whole number"},
         NULL},
        {"listen_backlog = 1k", NULL, NULL, {"bad integer value '1k'"}, NULL},
        {"listen_backlog = 99999999999999999999",
         NULL,
         NULL,
         {"integer value '99999999999999999999' is too large"},
         NULL},
        /* sizes */
        {"thread_stack_size = 1q",
         NULL,
         NULL,
         {"thread_stack_size: bad size value '1q': expected a number with an "
          "optional suffix k, m or g"},
         NULL},
        {"thread_stack_size = 1kb", NULL, NULL, {"bad size value '1kb'"}, NULL},
        {"thread_stack_size = 1k",
         NULL,
         NULL,
         {"thread_stack_size: 1k is out of range 128k..64m"},
         NULL},
        {"thread_stack_size = 1G",
         NULL,
         NULL,
         {"thread_stack_size: 1g is out of range 128k..64m"},
         NULL},
        /* booleans */
        {"stress_header_always = maybe",
         NULL,
         NULL,
         {"stress_header_always: bad boolean value 'maybe': expected yes or no"},
         NULL},
        {"stress_header_always = 1", NULL, NULL, {"bad boolean value '1'"}, NULL},
        /* validators */
        {"socket = tcp:25",
         NULL,
         NULL,
         {"socket: bad socket 'tcp:25': expected unix:/path"},
         NULL},
        {"socket = inet:localhost:25",
         NULL,
         NULL,
         {"bad socket 'inet:localhost:25': Postfix's inet:host:port is not accepted "
          "here: write inet:25@localhost"},
         NULL},
        {"socket = inet:0@localhost",
         NULL,
         NULL,
         {"port must be a number 1..65535"},
         NULL},
        {"socket = inet:65536", NULL, NULL, {"port must be"}, NULL},
        {"control_socket = inet:8891",
         NULL,
         NULL,
         {"control_socket: 'inet:8891' is not a unix socket"},
         NULL},
        {"control_socket = run/ms.ctl", NULL, NULL, {"control_socket: bad socket"}, NULL},
        {"socket = inet:smtp", NULL, NULL, {"port must be"}, NULL},
        {"socket = inet:", NULL, NULL, {"port must be"}, NULL},
        {"socket = inet6:25@", NULL, NULL, {"the host after '@' is empty"}, NULL},
        {"socket = unix:run/sock", NULL, NULL, {"path must be absolute"}, NULL},
        {"socket = unix:/", NULL, NULL, {"path names a directory"}, NULL},
        {"socket = unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         NULL,
         NULL,
         {"path is longer than"},
         NULL},
        {"socket = fd:", NULL, NULL, {"expected fd:N"}, NULL},
        {"socket = fd:3x", NULL, NULL, {"expected fd:N"}, NULL},
        {"stress_header = X Stress",
         NULL,
         NULL,
         {"stress_header: bad header name 'X Stress'"},
         NULL},
        {"stress_header = X:Y", NULL, NULL, {"bad header name 'X:Y'"}, NULL},
        {"syslog_name =", NULL, NULL, {"syslog_name: must not be empty"}, NULL},
        /* admission and the socket's mode */
        {"max_sessions = 0", NULL, NULL, {"max_sessions: 0 is out of range"}, NULL},
        {"overload_action = reject",
         NULL,
         NULL,
         {"overload_action: bad action 'reject': expected tempfail or accept"},
         NULL},
        {"overload_reply = 521 5.7.1 busy",
         NULL,
         NULL,
         {"overload_reply: tempfail needs a 4xx reply code, not 521"},
         NULL},
        {"overload_reply = 421 5.7.0 busy",
         NULL,
         NULL,
         {"overload_reply: enhanced status code 5.7.0 does not match reply code "
          "421"},
         NULL},
        {"overload_reply = 4.7.0 busy",
         NULL,
         NULL,
         {"'4.7.0' is an enhanced status code: give the reply code first"},
         NULL},
        {"overload_reply = 421 4.7 busy",
         NULL,
         NULL,
         {"bad enhanced status code '4.7'"},
         NULL},
        {"overload_reply =", NULL, NULL, {"overload_reply: bad reply code ''"}, NULL},
        {"socket_mode = 0999", NULL, NULL, {"socket_mode: bad mode '0999'"}, NULL},
        {"socket_mode = 1777", NULL, NULL, {"bad mode '1777'"}, NULL},
        {"socket_mode = rw", NULL, NULL, {"bad mode 'rw'"}, NULL},
        {"socket_mode =", NULL, NULL, {"bad mode ''"}, NULL},
        {"stress_macro = ${stress?{x}}",
         NULL,
         NULL,
         {"stress_macro: must not be empty (in the normal personality)"},
         "stress personality"},
        /* names */
        {"stres_macro = x",
         NULL,
         NULL,
         {CONF_NAME ":1: unknown parameter 'stres_macro'; did you mean "
                    "'stress_macro'?\n"},
         NULL},
        {"sockett = x", NULL, NULL, {"did you mean 'socket'?"}, NULL},
        {"zzz = 1", NULL, NULL, {"unknown parameter 'zzz'\n"}, "did you mean"},
        {"just some text", NULL, NULL, {CONF_NAME ":1: expected 'name = value'\n"}, NULL},
        {"= value", NULL, NULL, {":1: expected 'name = value'"}, NULL},
        {"stress = yes",
         NULL,
         NULL,
         {CONF_NAME ":1: 'stress' is a pseudo-parameter; use -o stress=yes to "
                    "force the stress personality\n"},
         NULL},
        {"  listen_backlog = 5",
         NULL,
         NULL,
         {":1: logical line must not start with whitespace"},
         NULL},
        /* expansion */
        {"syslog_name = x$nope",
         NULL,
         NULL,
         {":1: syslog_name: column 2: unknown parameter $nope\n"},
         "did you"},
        {"syslog_name = $stres",
         NULL,
         NULL,
         {"unknown parameter $stres; did you mean $stress?"},
         NULL},
        {"syslog_name = ${syslog_name?{$nope}}",
         NULL,
         NULL,
         {"syslog_name: column 16: unknown parameter $nope\n"},
         "personality"},
        {"syslog_name = ${stress",
         NULL,
         NULL,
         {"syslog_name: column 1: missing '}' to close '${'"},
         NULL},
        {"syslog_name = $stress_macro\nstress_macro = $syslog_name",
         NULL,
         NULL,
         {":1: syslog_name: column 1: expansion loop: $stress_macro -> "
          "$syslog_name -> $stress_macro\n",
          ":2: stress_macro: column 1: expansion loop: $syslog_name -> "
          "$stress_macro -> $syslog_name\n"},
         NULL},
        {"syslog_name = x$syslog_name",
         NULL,
         NULL,
         {"syslog_name: column 2: expansion loop: $syslog_name -> "
          "$syslog_name"},
         NULL},
        /* a problem inside a referenced value is reported once, at its line */
        {"stress_header = $syslog_name\nsyslog_name = ${x",
         NULL,
         NULL,
         {":2: syslog_name: column 1: missing '}'"},
         ":1:"},
        /* file:line of logical lines */
        {"# c\n\nlisten_backlog =\n  0\n",
         NULL,
         NULL,
         {CONF_NAME ":3: listen_backlog: 0 is out of range"},
         NULL},
        {"syslog_name = a\n b\n# c\n c\nlisten_backlog = x",
         NULL,
         NULL,
         {CONF_NAME ":5: listen_backlog: bad integer value 'x'"},
         NULL},
        /* all errors of a file, in order */
        {"foo = 1\nlisten_backlog = 0\n\nmilter_timeout = 1x\nbar",
         NULL,
         NULL,
         {":1: unknown parameter 'foo'\n", ":2: listen_backlog: 0 is out of range",
          ":4: milter_timeout: bad time value '1x'"},
         NULL},
        /* personalities */
        {"milter_timeout = ${stress?{0}:{10s}}",
         NULL,
         NULL,
         {"milter_timeout: 0s is out of range 1s..1d (in the stress "
          "personality)\n"},
         "normal personality"},
        {"milter_timeout = ${stress?{10s}:{1x}}",
         NULL,
         NULL,
         {"milter_timeout: bad time value '1x': expected a number with an "
          "optional unit ms, s, m, h, d or w (in the normal personality)\n"},
         "stress personality"},
        {"milter_timeout = ${stress?{1y}:{1x}}",
         NULL,
         NULL,
         {"'1y'", "(in the stress personality)",
          "'1x': expected a number with an optional unit ms, s, m, h, d or w "
          "(in the normal personality)"},
         NULL},
        {"milter_timeout = ${stress?{0}:{10s}}",
         "stress=yes",
         NULL,
         {"milter_timeout: 0s is out of range 1s..1d\n"},
         "personality"},
        /* stage budgets that Postfix's timeouts do not hold */
        {"helo_budget = ${stress?{26s}:{5s}}",
         NULL,
         NULL,
         {CONF_NAME ":1: helo_budget = 26s does not fit in milter_command_timeout = "
                    "30s: at most 25s, to answer 5s before Postfix gives up on the "
                    "milter (in the stress personality)\n"},
         "normal personality"},
        {"eom_budget = 251s",
         NULL,
         NULL,
         {CONF_NAME ":1: eom_budget = 251s does not fit in milter_content_timeout = "
                    "300s: at most 250s, to answer 50s before Postfix gives up on "
                    "the milter\n"},
         "personality"},
        {"milter_command_timeout = 120s\nconnect_budget = 101s",
         NULL,
         NULL,
         {CONF_NAME ":2: connect_budget = 101s does not fit in "
                    "milter_command_timeout = 120s: at most 100s"},
         NULL},
        /* a lowered timeout: the defaults no longer fit, at its line */
        {"# main.cf says 10s\nmilter_command_timeout = 10s\n",
         NULL,
         NULL,
         {CONF_NAME ":2: connect_budget = 10s does not fit in milter_command_timeout "
                    "= 10s: at most 8334ms, to answer 1666ms before Postfix gives up "
                    "on the milter (in the normal personality)\n",
          CONF_NAME ":2: data_budget = 10s"},
         "eom_budget"},
        {"milter_command_timeout = ${stress?{5s}:{30s}}\n"
         "mail_budget = ${stress?{5s}:{1s}}",
         NULL,
         NULL,
         {CONF_NAME ":2: mail_budget = 5s does not fit in milter_command_timeout = 5s: "
                    "at most 4167ms, to answer 833ms before Postfix gives up on the "
                    "milter (in the stress personality)\n"},
         "normal personality"},
        {NULL,
         "connect_budget=26s",
         NULL,
         {"-o connect_budget=26s: connect_budget = 26s does not fit in "
          "milter_command_timeout = 30s"},
         NULL},
        {"milter_content_timeout = 0", NULL, NULL, {"0s is out of range 1s..1d"}, NULL},
        {"eoh_budget = 2d", NULL, NULL, {"eoh_budget: 2d is out of range 0s..1d"}, NULL},
        /* -o */
        {NULL,
         "listen_backlog=0",
         NULL,
         {"-o listen_backlog=0: listen_backlog: 0 is out of range 1..65535\n"},
         NULL},
        {NULL, "bogus", NULL, {"-o bogus: expected 'name=value'\n"}, NULL},
        {NULL,
         "stres_macro=x",
         NULL,
         {"-o stres_macro=x: unknown parameter 'stres_macro'; did you mean "
          "'stress_macro'?\n"},
         NULL},
        {NULL, "stress=no", NULL, {"-o stress=no: stress must be 'yes' or empty"}, NULL},
        {"listen_backlog = 0",
         "listen_backlog=x",
         NULL,
         {"-o listen_backlog=x: listen_backlog: bad integer value 'x'"},
         CONF_NAME},
        {"listen_backlog = x",
         "milter_timeout=0",
         NULL,
         {CONF_NAME ":1: listen_backlog: bad integer value 'x'",
          "-o milter_timeout=0: milter_timeout: 0s is out of range"},
         NULL},
};

START_TEST(test_errors)
{
	const struct err_case *t = &err_cases[_i];
	strbuf err = STRBUF_INIT;
	conf *c = load(t->text, t->o1, t->o2, &err);
	size_t i;

	ck_assert_msg(c == NULL, "'%s' loaded", t->text ? t->text : t->o1);
	for (i = 0; i < 3 && t->want[i] != NULL; i++)
		ck_assert_msg(strstr(strbuf_str(&err), t->want[i]) != NULL,
		              "error\n%s lacks '%s'", strbuf_str(&err), t->want[i]);
	if (t->absent != NULL)
		ck_assert_msg(strstr(strbuf_str(&err), t->absent) == NULL,
		              "error\n%s has '%s'", strbuf_str(&err), t->absent);
	strbuf_free(&err);
}
END_TEST

START_TEST(test_cannot_open)
{
	strbuf path = STRBUF_INIT, err = STRBUF_INIT, want = STRBUF_INIT;

	strbuf_printf(&path, "%s/no-such.conf", unit_tmpdir());
	strbuf_printf(&want, "%s: cannot open: No such file or directory\n", path.s);
	ck_assert_ptr_null(conf_load(path.s, NULL, 0, &err));
	ck_assert_str_eq(strbuf_str(&err), want.s);
	ck_assert_ptr_null(conf_load(path.s, NULL, 0, NULL));
	strbuf_free(&path);
	strbuf_free(&err);
	strbuf_free(&want);
}
END_TEST

START_TEST(test_error_cap)
{
	strbuf text = STRBUF_INIT, err = STRBUF_INIT;
	size_t lines = 0;
	const char *p;
	int i;

	for (i = 0; i < CONF_MAX_ERRORS + 20; i++)
		strbuf_printf(&text, "no_such_%d = 0\n", i);
	ck_assert_ptr_null(load(text.s, NULL, NULL, &err));
	for (p = err.s; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	ck_assert_uint_eq(lines, CONF_MAX_ERRORS + 1);
	ck_assert_ptr_nonnull(strstr(err.s, "too many errors"));
	strbuf_free(&text);
	strbuf_free(&err);
}
END_TEST

/* header and eoh share eoh_budget: one error, not two. */
START_TEST(test_budget_reported_once)
{
	strbuf err = STRBUF_INIT;
	const char *first;

	ck_assert_ptr_null(load("eoh_budget = 251s", NULL, NULL, &err));
	first = strstr(strbuf_str(&err), "eoh_budget = 251s does not fit");
	ck_assert_msg(first != NULL, "error: %s", strbuf_str(&err));
	ck_assert_msg(strstr(first + 1, "eoh_budget") == NULL, "error: %s",
	              strbuf_str(&err));
	strbuf_free(&err);
}
END_TEST

/* The stage table names the Postfix timeout of each stage. */
static const long long stage_timeouts[STAGE_N] = {
        [STAGE_CONNECT] = 31000, [STAGE_HELO] = 31000,  [STAGE_MAIL] = 31000,
        [STAGE_RCPT] = 31000,    [STAGE_DATA] = 31000,  [STAGE_HEADER] = 301000,
        [STAGE_EOH] = 301000,    [STAGE_BODY] = 301000, [STAGE_EOM] = 301000,
};

START_TEST(test_stage_timeouts)
{
	conf *c = load_ok("milter_command_timeout = 31s\nmilter_content_timeout = 301s",
	                  NULL, NULL);
	const stage_desc *d = stage_get((enum stage)_i);
	const char *text = conf_param_text(c, false, d->timeout);

	ck_assert_int_eq(stage_timeout(conf_personality(c, false), (enum stage)_i),
	                 stage_timeouts[_i]);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, stage_timeouts[_i] == 31000 ? "31s" : "301s");
	conf_unref(c);
}
END_TEST

/* Personalities and forcing them with -o stress=... */

static const struct pers_case {
	const char *o;
	long long normal, stress; /* milter_timeout */
	bool forced, forced_stressed;
} pers_cases[] = {
        {NULL, 300000, 10000, false, false},
        {"stress=yes", 10000, 10000, true, true},
        {"stress=YES", 10000, 10000, true, true},
        {"stress=", 300000, 300000, true, false},
};

START_TEST(test_personality)
{
	const struct pers_case *t = &pers_cases[_i];
	conf *c = load_ok("milter_timeout = ${stress?{10s}:{300s}}", t->o, NULL);
	bool stressed = !t->forced_stressed;

	ck_assert_int_eq(conf_personality(c, false)->milter_timeout, t->normal);
	ck_assert_int_eq(conf_personality(c, true)->milter_timeout, t->stress);
	ck_assert_int_eq(conf_stress_forced(c, &stressed), t->forced);
	ck_assert_int_eq(stressed, t->forced_stressed);
	ck_assert_int_eq(conf_stress_forced(c, NULL), t->forced);
	conf_unref(c);
}
END_TEST

START_TEST(test_forced_avoids_bad_personality)
{
	/* Only the stress personality is bad; forcing normal hides it. */
	conf *c = load_ok("milter_timeout = ${stress?{0}:{10s}}", "stress=", NULL);

	ck_assert_int_eq(conf_personality(c, true)->milter_timeout, 10000);
	conf_unref(c);
}
END_TEST

/* Reference counting. */

START_TEST(test_refcount)
{
	strbuf path = STRBUF_INIT;
	conf *c = load_ok("syslog_name = ref", NULL, NULL);
	const struct conf_values *v = conf_personality(c, false);

	conf_file(&path);
	ck_assert_str_eq(conf_path(c), path.s);
	conf_ref(c);
	conf_ref(c);
	conf_unref(c);
	conf_unref(c);
	ck_assert_str_eq(v->syslog_name, "ref"); /* still ours */
	conf_unref(c);
	conf_unref(NULL);
	strbuf_free(&path);
}
END_TEST

static void *
ref_worker(void *arg)
{
	conf *c = arg;
	int i;

	for (i = 0; i < 100000; i++) {
		conf_ref(c);
		conf_unref(c);
	}
	return NULL;
}

START_TEST(test_refcount_threads)
{
	conf *c = load_ok(NULL, NULL, NULL);
	pthread_t th[4];
	size_t i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, ref_worker, c), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	ck_assert_str_eq(conf_personality(c, true)->syslog_name, "milter-stress");
	conf_unref(c);
}
END_TEST

/* The manual list. */

START_TEST(test_man)
{
	char *buf = NULL;
	size_t len = 0, n = 0;
	FILE *fp = open_memstream(&buf, &len);
	const char *p;

	ck_assert_ptr_nonnull(fp);
	conf_schema_write_man(fp);
	fclose(fp);
	ck_assert_ptr_nonnull(
	        strstr(buf, ".TP\n\\fBmilter_timeout\\fR (default: \\fI600s\\fR)\n"
	                    "how long the milter waits for the MTA's next command "
	                    "(smfi_settimeout)\n"));
	ck_assert_ptr_nonnull(
	        strstr(buf, "\\fBstress_values\\fR (default: \\fIyes\\fR)"));
	for (p = buf; (p = strstr(p, ".TP\n")) != NULL; p++)
		n++;
	ck_assert_uint_eq(n, sizeof default_lines / sizeof default_lines[0] +
				     sizeof default_split_lines / sizeof default_split_lines[0]);
	free(buf);
}
END_TEST

Suite *conf_suite(void);

Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
	tcase_add_loop_test(tc, test_default_dump, 0, N(default_lines));
	tcase_add_loop_test(tc, test_default_split, 0, N(default_split_lines));
	tcase_add_test(tc, test_default_values);
	tcase_add_loop_test(tc, test_typed, 0, N(typed_cases));
	tcase_add_loop_test(tc, test_list, 0, N(list_cases));
	tcase_add_loop_test(tc, test_ok, 0, N(ok_cases));
	tcase_add_loop_test(tc, test_errors, 0, N(err_cases));
	tcase_add_test(tc, test_cannot_open);
	tcase_add_test(tc, test_error_cap);
	tcase_add_test(tc, test_budget_reported_once);
	tcase_add_loop_test(tc, test_stage_timeouts, 0, STAGE_N);
	tcase_add_loop_test(tc, test_personality, 0, N(pers_cases));
	tcase_add_test(tc, test_forced_avoids_bad_personality);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_refcount_threads);
	tcase_add_test(tc, test_man);
#undef N
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_in_tmpdir(conf_suite(), "check_conf");
}
