/*
 * null-milter - a libmilter milter that does nothing, as a benchmark floor
 *
 * Every callback is registered and returns continue; end of message returns
 * accept, after adding one header when -H was given (so it can stand in for
 * a header-adding milter). No per-session state. Runs in the foreground
 * until libmilter's signal handling stops it (SIGTERM, SIGINT, SIGHUP).
 *
 *   null-milter -p SOCKET [-H 'Name: value'] [-T seconds] [-S ms]
 *
 * -S makes the connect callback sleep, as a check that waits its whole
 * budget would: what a burst of sessions then waits at the MTA is
 * libmilter's own, whatever the milter does.
 *
 * Negotiation asks for every action the MTA offers and disables nothing,
 * so the MTA sends every stage and waits for every reply.
 */
#include "config.h"

#include <libmilter/mfapi.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* libmilter exports sendmail globals: everything of ours is static. */
static char *add_name; /* -H: header to add at eom, or NULL */
static char *add_value;
static long connect_sleep_ms; /* -S */

static sfsistat
nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
	struct timespec t = {connect_sleep_ms / 1000, connect_sleep_ms % 1000 * 1000000};

	(void)ctx;
	(void)host;
	(void)addr;
	while (connect_sleep_ms > 0 && nanosleep(&t, &t) < 0 && errno == EINTR)
		;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_envfrom(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_data(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)name;
	(void)value;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	(void)len;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_eom(SMFICTX *ctx)
{
	if (add_name != NULL && smfi_addheader(ctx, add_name, add_value) != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	return SMFIS_ACCEPT;
}

static sfsistat
nm_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_close(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_unknown(SMFICTX *ctx, const char *cmd)
{
	(void)ctx;
	(void)cmd;
	return SMFIS_CONTINUE;
}

/* Take every action offered, disable no stage, ask for no "no reply". */
static sfsistat
nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
             unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
             unsigned long *pf3)
{
	(void)ctx;
	(void)f1;
	(void)f2;
	(void)f3;
	*pf0 = f0;
	*pf1 = 0;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
        .xxfi_name = "null-milter",
        .xxfi_version = SMFI_VERSION,
        .xxfi_flags = 0,
        .xxfi_connect = nm_connect,
        .xxfi_helo = nm_helo,
        .xxfi_envfrom = nm_envfrom,
        .xxfi_envrcpt = nm_envrcpt,
        .xxfi_header = nm_header,
        .xxfi_eoh = nm_eoh,
        .xxfi_body = nm_body,
        .xxfi_eom = nm_eom,
        .xxfi_abort = nm_abort,
        .xxfi_close = nm_close,
        .xxfi_unknown = nm_unknown,
        .xxfi_data = nm_data,
        .xxfi_negotiate = nm_negotiate,
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "Usage: null-milter -p SOCKET [-H 'Name: value'] [-T seconds] [-S ms]\n"
	        "  -p SOCKET  unix:/path, local:/path, inet:port@host, inet6:port@host\n"
	        "  -H HEADER  add this header at end of message\n"
	        "  -T SECS    libmilter I/O timeout\n"
	        "  -S MS      sleep this long in the connect callback\n");
}

static int
set_header(const char *arg)
{
	const char *colon = strchr(arg, ':');
	size_t n;

	if (colon == NULL || colon == arg)
		return -1;
	n = (size_t)(colon - arg);
	if ((add_name = strndup(arg, n)) == NULL)
		return -1;
	colon++;
	colon += strspn(colon, " \t");
	if ((add_value = strdup(colon)) == NULL)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	char *sock = NULL;
	long timeout = -1;
	char *end;
	int c, rc;

	while ((c = getopt(argc, argv, "p:H:T:S:h")) != -1) {
		switch (c) {
		case 'p':
			sock = optarg;
			break;
		case 'H':
			if (set_header(optarg) < 0) {
				fprintf(stderr,
				        "null-milter: -H: expected 'Name: value'\n");
				return 2;
			}
			break;
		case 'T':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || timeout < 1) {
				fprintf(stderr, "null-milter: -T: expected seconds\n");
				return 2;
			}
			break;
		case 'S':
			errno = 0;
			connect_sleep_ms = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    connect_sleep_ms < 0 || connect_sleep_ms > 600000) {
				fprintf(stderr, "null-milter: -S: expected milliseconds\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sock == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (add_name != NULL)
		desc.xxfi_flags |= SMFIF_ADDHDRS;
	if (smfi_setconn(sock) != MI_SUCCESS) {
		fprintf(stderr, "null-milter: bad socket '%s'\n", sock);
		return 1;
	}
	if (timeout > 0 && smfi_settimeout((int)timeout) != MI_SUCCESS) {
		fprintf(stderr, "null-milter: cannot set timeout\n");
		return 1;
	}
	if (smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "null-milter: smfi_register failed\n");
		return 1;
	}
	/* Remove a stale unix socket left by an earlier run. */
	if (smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "null-milter: cannot open socket '%s'\n", sock);
		return 1;
	}
	rc = smfi_main();
	free(add_name);
	free(add_value);
	return rc == MI_SUCCESS ? 0 : 1;
}
