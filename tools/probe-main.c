/*
 * probe-main - milter-probe's command line and main()
 *
 * DESCRIPTION
 *	milter-probe plays one SMTP transaction against a milter, as Postfix
 *	would (see milter-probe(1)). This file: the command line
 *	(probe_opts from argv), the usage text, and the choice between one
 *	transaction, whose stage lines and "result:" line go to stdout, and
 *	--bench. The other files are listed in probe.h.
 *
 *	Exit: 0 the transaction completed (whatever the verdicts), 1
 *	protocol or I/O error, 2 usage error.
 */
#include "config.h"

#include "mproto.h"
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

void
probe_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", PROBE_NAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s -h' for help.\n", PROBE_NAME);
	exit(PROBE_EXIT_USAGE);
}

/* "<a@b> SIZE=10" -> {"<a@b>", "SIZE=10", NULL}; brackets added if missing. */
static char **
envelope_argv(const char *arg, const char *opt)
{
	char **argv = NULL;
	size_t n = 0;
	const char *p = arg;

	p += strspn(p, " \t");
	if (*p == '\0') {
		*PROBE_PUSH(argv, n) = ms_xstrdup("<>");
	} else {
		while (*p != '\0') {
			size_t len = strcspn(p, " \t");

			if (n == 0 && p[0] != '<') {
				strbuf b = STRBUF_INIT;

				strbuf_printf(&b, "<%.*s>", (int)len, p);
				*PROBE_PUSH(argv, n) = strbuf_detach(&b);
			} else {
				*PROBE_PUSH(argv, n) = ms_xstrndup(p, len);
			}
			p += len;
			p += strspn(p, " \t");
		}
	}
	if (argv[0][strlen(argv[0]) - 1] != '>')
		probe_usage_error("%s: bad address '%s'", opt, argv[0]);
	*PROBE_PUSH(argv, n) = NULL;
	return argv;
}

static void
free_argv(char **argv)
{
	for (char **p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

static void
set_client_addr(probe_opts *opts, const char *a)
{
	unsigned char bin[16];
	char tmp[64];
	size_t n = strlen(a);

	if (strcmp(a, "none") == 0) {
		opts->family = MPROTO_FAM_UNKNOWN;
		opts->client_addr[0] = '\0';
		return;
	}
	if (strcmp(a, "unix") == 0 || strncmp(a, "unix:", 5) == 0) {
		opts->family = MPROTO_FAM_UNIX;
		if (strlen(a + (a[4] ? 5 : 4)) >= sizeof opts->client_addr)
			probe_usage_error("--client-addr: unix path too long");
		strcpy(opts->client_addr, a + (a[4] ? 5 : 4));
		return;
	}
	if (n >= 2 && a[0] == '[' && a[n - 1] == ']') {
		a++;
		n -= 2;
	}
	if (n > 5 && strncasecmp(a, "ipv6:", 5) == 0) {
		a += 5;
		n -= 5;
	}
	if (n >= sizeof tmp)
		probe_usage_error("--client-addr: bad address");
	memcpy(tmp, a, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, bin) == 1)
		opts->family = MPROTO_FAM_INET;
	else if (inet_pton(AF_INET6, tmp, bin) == 1)
		opts->family = MPROTO_FAM_INET6;
	else
		probe_usage_error("--client-addr: '%s' is not an IPv4 or IPv6 address, "
		                  "'unix' or 'none'",
		                  tmp);
	strcpy(opts->client_addr, tmp);
}

static void
add_macro(probe_opts *opts, const char *arg)
{
	const char *eq = strchr(arg, '=');
	const char *colon = strchr(arg, ':');
	int stage_idx = PROTO_M_CONNECT;
	probe_macro *m;

	if (eq == NULL || eq == arg)
		probe_usage_error("-m: expected [STAGE:]NAME=VALUE, got '%s'", arg);
	if (colon != NULL && colon < eq) {
		size_t n = (size_t)(colon - arg);

		stage_idx = -1;
		for (int i = 0; i < PROTO_M_COUNT; i++)
			if (strlen(mproto_stage_name(i)) == n &&
			    strncmp(arg, mproto_stage_name(i), n) == 0)
				stage_idx = i;
		if (stage_idx < 0)
			probe_usage_error(
			        "-m: unknown stage '%.*s' (connect helo mail rcpt "
			        "data eoh eom)",
			        (int)n, arg);
		arg = colon + 1;
	}
	if (eq == arg)
		probe_usage_error("-m: empty macro name");
	m = PROBE_PUSH(opts->macros, opts->nmacro);
	m->stage = stage_idx;
	m->name = ms_xstrndup(arg, (size_t)(eq - arg));
	m->value = ms_xstrdup(eq + 1);
}

static unsigned long
parse_number(const char *arg, const char *opt, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v > max || arg[0] == '-')
		probe_usage_error("%s: expected a number from 0 to %lu, got '%s'", opt,
		                  max, arg);
	return v;
}

/* A byte count with an optional k or m suffix (binary). */
static unsigned long
parse_size(const char *arg, const char *opt, unsigned long max)
{
	char num[32];
	size_t n = strlen(arg);
	unsigned long mult = 1;

	if (n > 0 && strchr("kKmM", arg[n - 1]) != NULL) {
		mult = (arg[n - 1] == 'k' || arg[n - 1] == 'K') ? 1024 : 1024 * 1024;
		n--;
	}
	if (n == 0 || n >= sizeof num)
		probe_usage_error("%s: expected a size such as 4096, 4k or 1m, got '%s'",
		                  opt, arg);
	memcpy(num, arg, n);
	num[n] = '\0';
	if (parse_number(num, opt, max / mult) > max / mult)
		probe_usage_error("%s: at most %lu bytes", opt, max);
	return parse_number(num, opt, max / mult) * mult;
}

/* --bench C,N or C,Ds: C at once, N transactions in all or D seconds' worth. */
static void
parse_bench(probe_opts *opts, char *arg)
{
	char *comma = strchr(arg, ',');
	size_t n;

	if (comma == NULL)
		probe_usage_error("--bench: expected CONCURRENCY,COUNT or "
		                  "CONCURRENCY,SECONDSs");
	*comma = '\0';
	opts->bench_conc = (unsigned)parse_number(arg, "--bench", 100000);
	n = strlen(comma + 1);
	if (n > 1 && comma[n] == 's') {
		comma[n] = '\0';
		opts->bench_secs = (double)parse_number(comma + 1, "--bench", 86400);
		opts->bench_n = opts->bench_secs > 0 ? 1000000000 : 0;
	} else {
		opts->bench_n = parse_number(comma + 1, "--bench", 1000000000);
	}
	if (opts->bench_conc == 0 || opts->bench_n == 0)
		probe_usage_error("--bench: CONCURRENCY and COUNT (or SECONDS) must be "
		                  "positive");
	opts->quiet = true;
}

static void
usage(void)
{
	printf("Usage: %s -p SOCKET [options]\n"
	       "Play one SMTP transaction against a milter, as Postfix would, and\n"
	       "print one line per stage.\n"
	       "\n"
	       "  -p, --socket SOCKET     milter socket: unix:/path, local:/path, "
	       "/path,\n"
	       "                          inet:port[@host], inet6:port[@host],\n"
	       "                          or Postfix's inet:host:port\n"
	       "      --client-addr ADDR  client IPv4/IPv6 address (127.0.0.1), or "
	       "'none'\n"
	       "                          (family U, as Postfix for a local client) or\n"
	       "                          'unix[:PATH]' (family L)\n"
	       "      --client-name NAME  client host name (localhost)\n"
	       "      --client-port PORT  client port (12345)\n"
	       "      --helo NAME         HELO name (probe.example)\n"
	       "      --from ADDR         envelope sender, ESMTP args may follow\n"
	       "                          (<sender@example.com>; <> allowed)\n"
	       "      --rcpt ADDR         recipient, repeatable (<rcpt@example.com>)\n"
	       "      --header 'N: V'     message header, repeatable (replaces the\n"
	       "                          default headers)\n"
	       "      --body FILE         message body (- for stdin)\n"
	       "      --message FILE      RFC 5322 message: headers, blank line, body\n"
	       "      --rcpts N           N more recipients <rcptK@example.com>\n"
	       "      --headers N         N headers: the default ones, then fillers\n"
	       "      --body-size SIZE    a generated body of SIZE bytes (k, m "
	       "suffixes)\n"
	       "  -m, --macro [STAGE:]NAME=VALUE\n"
	       "                          macro, repeatable; STAGE is connect "
	       "(default),\n"
	       "                          helo, mail, rcpt, data, eoh or eom\n"
	       "      --queue-id ID       value of the i macro (PROBE00001)\n"
	       "      --timeout SECONDS   per read/write and connect (30)\n"
	       "      --bench C,N         load mode: N transactions, C at a time, each\n"
	       "                          on its own connection; prints msg/s, latency\n"
	       "                          percentiles, verdicts, errors, a BENCH line\n"
	       "      --bench C,Ds        load mode for D seconds instead\n"
	       "      --stage-delay MS    wait MS before each SMTP command and the\n"
	       "                          message, as a client across a network would\n"
	       "      --bench-vary-client with an IPv6 --client-addr: transaction k\n"
	       "                          comes from that address with k as last 32 "
	       "bits\n"
	       "  -v, --verbose           print every packet on stderr, and the\n"
	       "                          number of bytes written at the end\n"
	       "  -V, --version           print the version\n"
	       "  -h, --help              this help\n"
	       "      --hold SECONDS      after connect, keep the session open and idle\n"
	       "                          for SECONDS before going on\n"
	       "      --idle N            hold N sessions open and idle at once (after\n"
	       "                          connect, for --hold SECONDS, default 3600),\n"
	       "                          then finish them; with -m '{daemon_name}=NAME'\n"
	       "                          they load that Postfix service\n"
	       "      --cut-after BYTES   hang up after writing BYTES bytes, mid-packet\n"
	       "                          too; with --bench, transaction k is cut\n"
	       "                          after k mod (BYTES+1) bytes\n"
	       "      --bench-transcript FILE  with --bench: one line per transaction\n"
	       "                          in FILE, its stage lines joined by ' | '\n"
	       "\n"
	       "Exit status: 0 transaction completed, 1 protocol or I/O error,\n"
	       "2 usage error. See milter-probe(1).\n",
	       PROBE_NAME);
}

enum {
	OPT_CLIENT_ADDR = 256,
	OPT_CLIENT_NAME,
	OPT_CLIENT_PORT,
	OPT_HELO,
	OPT_FROM,
	OPT_RCPT,
	OPT_HEADER,
	OPT_BODY,
	OPT_MESSAGE,
	OPT_QUEUE_ID,
	OPT_TIMEOUT,
	OPT_RCPTS,
	OPT_HEADERS,
	OPT_BODY_SIZE,
	OPT_STAGE_DELAY,
	OPT_BENCH,
	OPT_BENCH_VARY,
	OPT_HOLD,
	OPT_IDLE,
	OPT_CUT_AFTER,
	OPT_BENCH_TRANSCRIPT,
};

static const struct option long_opts[] = {
        {"socket", required_argument, NULL, 'p'},
        {"client-addr", required_argument, NULL, OPT_CLIENT_ADDR},
        {"client-name", required_argument, NULL, OPT_CLIENT_NAME},
        {"client-port", required_argument, NULL, OPT_CLIENT_PORT},
        {"helo", required_argument, NULL, OPT_HELO},
        {"from", required_argument, NULL, OPT_FROM},
        {"rcpt", required_argument, NULL, OPT_RCPT},
        {"header", required_argument, NULL, OPT_HEADER},
        {"body", required_argument, NULL, OPT_BODY},
        {"message", required_argument, NULL, OPT_MESSAGE},
        {"macro", required_argument, NULL, 'm'},
        {"queue-id", required_argument, NULL, OPT_QUEUE_ID},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"rcpts", required_argument, NULL, OPT_RCPTS},
        {"headers", required_argument, NULL, OPT_HEADERS},
        {"body-size", required_argument, NULL, OPT_BODY_SIZE},
        {"stage-delay", required_argument, NULL, OPT_STAGE_DELAY},
        {"bench", required_argument, NULL, OPT_BENCH},
        {"bench-vary-client", no_argument, NULL, OPT_BENCH_VARY},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"hold", required_argument, NULL, OPT_HOLD},
        {"idle", required_argument, NULL, OPT_IDLE},
        {"cut-after", required_argument, NULL, OPT_CUT_AFTER},
        {"bench-transcript", required_argument, NULL, OPT_BENCH_TRANSCRIPT},
        {NULL, 0, NULL, 0},
};

/* -p: a bad spec is a usage error now, not a failed connection later. */
static void
check_socket(const char *spec)
{
	sockspec ss;
	strbuf err = STRBUF_INIT;

	if (!mproto_conn_spec(spec, &ss, &err))
		probe_usage_error("-p: %s", strbuf_str(&err));
	strbuf_free(&err);
}

static void
parse_args(probe_opts *opts, int argc, char **argv)
{
	probe_message_args msg = {.gen_headers = -1, .gen_body = -1};
	unsigned long gen_rcpts = 0;
	bool idle = false;
	int c;

	memset(opts, 0, sizeof *opts);
	strbuf_init(&opts->body);
	set_client_addr(opts, "127.0.0.1");
	opts->client_name = "localhost";
	opts->client_port = 12345;
	opts->helo = "probe.example";
	opts->queue_id = "PROBE00001";
	opts->timeout_ms = 30000;

	while ((c = getopt_long(argc, argv, "p:m:vVh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			opts->socket = optarg;
			break;
		case OPT_CLIENT_ADDR:
			set_client_addr(opts, optarg);
			break;
		case OPT_CLIENT_NAME:
			if (optarg[0] == '\0')
				probe_usage_error("--client-name: empty name");
			opts->client_name = optarg;
			break;
		case OPT_CLIENT_PORT:
			opts->client_port =
			        (unsigned)parse_number(optarg, "--client-port", 65535);
			break;
		case OPT_HELO:
			opts->helo = optarg;
			break;
		case OPT_FROM:
			if (opts->from != NULL)
				free_argv(opts->from);
			opts->from = envelope_argv(optarg, "--from");
			break;
		case OPT_RCPT:
			*PROBE_PUSH(opts->rcpts, opts->nrcpt) =
			        envelope_argv(optarg, "--rcpt");
			break;
		case OPT_HEADER:
			*PROBE_PUSH(msg.headers, msg.nheaders) = optarg;
			break;
		case OPT_BODY:
			msg.body_file = optarg;
			break;
		case OPT_MESSAGE:
			msg.message_file = optarg;
			break;
		case 'm':
			add_macro(opts, optarg);
			break;
		case OPT_QUEUE_ID:
			opts->queue_id = optarg;
			break;
		case OPT_RCPTS:
			gen_rcpts = parse_number(optarg, "--rcpts", 1000000);
			break;
		case OPT_HEADERS:
			msg.gen_headers = (long)parse_number(optarg, "--headers", 100000);
			break;
		case OPT_STAGE_DELAY:
			opts->stage_delay_ms =
			        (int)parse_number(optarg, "--stage-delay", 600000);
			break;
		case OPT_BODY_SIZE:
			msg.gen_body = (long)parse_size(optarg, "--body-size", 1UL << 30);
			break;
		case OPT_BENCH:
			parse_bench(opts, optarg);
			break;
		case OPT_BENCH_VARY:
			opts->bench_vary = true;
			break;
		case OPT_BENCH_TRANSCRIPT:
			if (opts->bench_transcript != NULL)
				fclose(opts->bench_transcript);
			opts->bench_transcript = fopen(optarg, "w");
			if (opts->bench_transcript == NULL)
				probe_usage_error("--bench-transcript: %s: %s", optarg,
				                  strerror(errno));
			break;
		case OPT_TIMEOUT: {
			char *end;
			double t = strtod(optarg, &end);

			if (end == optarg || *end != '\0' || !(t > 0) || t > 86400)
				probe_usage_error(
				        "--timeout: expected seconds (0 < s <= 86400), "
				        "got '%s'",
				        optarg);
			opts->timeout_ms = (int)(t * 1000);
			if (opts->timeout_ms < 1)
				opts->timeout_ms = 1;
			break;
		}
		case 'v':
			opts->verbose = true;
			break;
		case 'V':
			printf("%s %s\n", PROBE_NAME, PACKAGE_VERSION);
			exit(PROBE_EXIT_DONE);
		case 'h':
			usage();
			exit(PROBE_EXIT_DONE);
		case OPT_HOLD:
			opts->hold_s = (unsigned)parse_number(optarg, "--hold", 86400);
			break;
		case OPT_IDLE:
			/* --bench N,N with every session held: load for a milter */
			opts->bench_conc = (unsigned)parse_number(optarg, "--idle", 100000);
			opts->bench_n = opts->bench_conc;
			opts->bench_secs = 0;
			opts->quiet = true;
			idle = true;
			if (opts->bench_conc == 0)
				probe_usage_error("--idle: the number of sessions must be positive");
			break;
		case OPT_CUT_AFTER:
			opts->cut = true;
			opts->cut_after = parse_number(optarg, "--cut-after", 1UL << 40);
			break;
		default:
			fprintf(stderr, "Try '%s -h' for help.\n", PROBE_NAME);
			exit(PROBE_EXIT_USAGE);
		}
	}
	if (optind < argc)
		probe_usage_error("unexpected argument '%s'", argv[optind]);
	if (idle && opts->hold_s == 0)
		opts->hold_s = PROBE_IDLE_HOLD_S;
	if (opts->socket == NULL)
		probe_usage_error("-p SOCKET is required");
	if (opts->bench_transcript != NULL && opts->bench_conc == 0)
		probe_usage_error("--bench-transcript needs --bench");
	check_socket(opts->socket);
	if (opts->from == NULL)
		opts->from = envelope_argv("<sender@example.com>", "--from");
	for (unsigned long i = 1; i <= gen_rcpts; i++) {
		char addr[64];

		snprintf(addr, sizeof addr, "<rcpt%lu@example.com>", i);
		*PROBE_PUSH(opts->rcpts, opts->nrcpt) = envelope_argv(addr, "--rcpts");
	}
	if (opts->nrcpt == 0)
		*PROBE_PUSH(opts->rcpts, opts->nrcpt) =
		        envelope_argv("<rcpt@example.com>", "--rcpt");
	probe_message_build(opts, &msg);
	free(msg.headers);
}

static void
free_opts(probe_opts *opts)
{
	free_argv(opts->from);
	for (size_t i = 0; i < opts->nrcpt; i++)
		free_argv(opts->rcpts[i]);
	free(opts->rcpts);
	for (size_t i = 0; i < opts->nhdr; i++) {
		free(opts->hdrs[i].name);
		free(opts->hdrs[i].value);
	}
	free(opts->hdrs);
	for (size_t i = 0; i < opts->nmacro; i++) {
		free(opts->macros[i].name);
		free(opts->macros[i].value);
	}
	free(opts->macros);
	strbuf_free(&opts->body);
}

static int
run(const probe_opts *opts)
{
	probe_verdict v = PROBE_ACCEPT;
	const char *stage = "eom";
	strbuf line = STRBUF_INIT;
	int status = probe_txn_run(opts, &v, &stage, NULL, NULL);

	if (status == PROBE_EXIT_DONE) {
		probe_put_result(&line, v, stage);
		printf("%s\n", strbuf_str(&line));
	}
	strbuf_free(&line);
	return status;
}

int
main(int argc, char **argv)
{
	probe_opts opts;
	int status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(&opts, argc, argv);
	status = opts.bench_conc > 0 ? probe_bench_run(&opts) : run(&opts);
	free_opts(&opts);
	return status;
}
