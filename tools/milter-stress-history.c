/*
 * milter-stress-history - show, add, delete and dump client histories in the
 * store a milter-stress configuration names. See milter-stress-history(1).
 *
 * Exit: 0 done (show: every client has a record), 1 a client has none
 * (show, delete), 2 a usage, configuration or store error.
 */
#include "config.h"

#include "conf.h"
#include "history-store.h"
#include "paths.h"
#include "strbuf.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: milter-stress-history [-c CONFIG] [-s STORE] COMMAND [ARG...]\n"
	        "  -c CONFIG   read history_store and the thresholds from CONFIG (default "
	        "%s)\n"
	        "  -s STORE    the store instead: lmdb:/PATH, redis:HOST:PORT, "
	        "redis:unix:/PATH\n"
	        "Commands:\n"
	        "  show ADDRESS...           each client's record and verdict\n"
	        "  add ADDRESS [MESSAGES]    make a client known (an allowlist by hand)\n"
	        "  delete ADDRESS...         forget clients\n"
	        "  dump                      every client, one line each\n"
	        "Exit: 0 done, 1 a client has no record, 2 usage or store error.\n",
	        MS_DEFAULT_CONFIG);
}

typedef struct tool {
	history_store *st;
	history_store_opts o;
	unsigned v6_prefix;
	history_thresholds t[2]; /* normal, stress */
	uint64_t now;
} tool;

static void
verdicts(const tool *tl, const history_record *r, FILE *fp)
{
	fprintf(fp, " normal=%s stress=%s",
	        history_known(r, tl->now, &tl->t[0]) ? "known" : "unknown",
	        history_known(r, tl->now, &tl->t[1]) ? "known" : "unknown");
}

static bool
print_one(void *ctx, const char *key, const history_record *r)
{
	strbuf line = STRBUF_INIT;

	history_record_format(r, &line);
	printf("%s %s", key, line.s);
	verdicts(ctx, r, stdout);
	putchar('\n');
	strbuf_free(&line);
	return true;
}

/* The client's key; false after saying why. */
static bool
key_of(const tool *tl, const char *addr, char key[HISTORY_KEY_MAX])
{
	if (history_key(addr, tl->v6_prefix, key))
		return true;
	fprintf(stderr, "milter-stress-history: '%s' is not an IPv4 or IPv6 address\n", addr);
	return false;
}

static int
cmd_show(tool *tl, char **argv, int argc)
{
	int rc = 0;

	for (int i = 0; i < argc; i++) {
		char key[HISTORY_KEY_MAX];
		history_record r;
		strbuf why = STRBUF_INIT;
		int got;

		if (!key_of(tl, argv[i], key))
			return 2;
		got = tl->st->ops->get(tl->st, key, &r, &why);
		if (got < 0) {
			fprintf(stderr, "milter-stress-history: %s\n", strbuf_str(&why));
			strbuf_free(&why);
			return 2;
		}
		if (got == 0) {
			printf("%s none normal=unknown stress=unknown\n", key);
			rc = 1;
		} else {
			print_one(tl, key, &r);
		}
		strbuf_free(&why);
	}
	return rc;
}

static int
cmd_add(tool *tl, char **argv, int argc)
{
	char key[HISTORY_KEY_MAX], *end;
	history_record r = {0};
	strbuf why = STRBUF_INIT;
	long long n = tl->t[0].min_accepted > tl->t[1].min_accepted ? tl->t[0].min_accepted
	                                                            : tl->t[1].min_accepted;

	if (argc < 1 || argc > 2) {
		usage(stderr);
		return 2;
	}
	if (!key_of(tl, argv[0], key))
		return 2;
	if (argc == 2 && ((n = strtoll(argv[1], &end, 10)) < 1 || *end != '\0')) {
		fprintf(stderr, "milter-stress-history: MESSAGES: a whole number from 1\n");
		return 2;
	}
	r.accepted = (uint64_t)n;
	r.first_seen = r.last_seen = r.window_start = tl->now;
	if (!tl->st->ops->put(tl->st, key, &r, &tl->o, &why)) {
		fprintf(stderr, "milter-stress-history: %s\n", strbuf_str(&why));
		strbuf_free(&why);
		return 2;
	}
	print_one(tl, key, &r);
	strbuf_free(&why);
	return 0;
}

static int
cmd_delete(tool *tl, char **argv, int argc)
{
	int rc = 0;

	for (int i = 0; i < argc; i++) {
		char key[HISTORY_KEY_MAX];
		strbuf why = STRBUF_INIT;
		int got;

		if (!key_of(tl, argv[i], key))
			return 2;
		if ((got = tl->st->ops->del(tl->st, key, &why)) < 0) {
			fprintf(stderr, "milter-stress-history: %s\n", strbuf_str(&why));
			strbuf_free(&why);
			return 2;
		}
		printf("%s %s\n", key, got ? "deleted" : "none");
		rc |= got == 0;
		strbuf_free(&why);
	}
	return rc;
}

static int
cmd_dump(tool *tl)
{
	strbuf why = STRBUF_INIT;

	if (!tl->st->ops->each(tl->st, print_one, tl, &why)) {
		fprintf(stderr, "milter-stress-history: %s\n", strbuf_str(&why));
		strbuf_free(&why);
		return 2;
	}
	return 0;
}

static void
thresholds(const struct conf_values *v, history_thresholds *t)
{
	t->min_accepted = v->history_known_messages;
	t->max_refused_pct = v->history_known_refusals;
	t->window_s = v->history_known_time / 1000;
}

/*
 * Run as root, the tool creates an LMDB file (and its lock file) owned by
 * root, which the daemon, running as its own user, cannot open: it would
 * take the file for a damaged one and move it aside. So a root-owned file
 * or lock file in a directory of another owner is given to that owner.
 */
static void
give_to_dir_owner(const char *spec)
{
	const char *path;
	struct stat d, f;
	char *copy;
	strbuf lock = STRBUF_INIT;

	if (geteuid() != 0 || strncmp(spec, "lmdb:", 5) != 0)
		return;
	path = spec + 5;
	copy = strdup(path);
	if (copy == NULL || stat(dirname(copy), &d) != 0 || d.st_uid == 0) {
		free(copy);
		return;
	}
	strbuf_printf(&lock, "%s-lock", path);
	for (int i = 0; i < 2; i++) {
		const char *p = i == 0 ? path : strbuf_str(&lock);

		if (stat(p, &f) == 0 && f.st_uid == 0 && chown(p, d.st_uid, d.st_gid) != 0)
			fprintf(stderr, "milter-stress-history: %s: cannot give it to the owner of "
			                "its directory (uid %lu): %s\n",
			        p, (unsigned long)d.st_uid, strerror(errno));
	}
	strbuf_free(&lock);
	free(copy);
}

int
main(int argc, char **argv)
{
	const char *config = MS_DEFAULT_CONFIG, *spec = NULL, *cmd;
	strbuf err = STRBUF_INIT;
	tool tl;
	conf *c;
	int opt, rc;

	while ((opt = getopt(argc, argv, "c:s:h")) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			spec = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	/* The thresholds and the store's parameters: the config's, or the defaults. */
	c = spec != NULL && access(config, R_OK) != 0 ? conf_load(NULL, NULL, 0, &err)
	                                              : conf_load(config, NULL, 0, &err);
	if (c == NULL) {
		fprintf(stderr, "milter-stress-history: %s", strbuf_str(&err));
		return 2;
	}
	memset(&tl, 0, sizeof tl);
	thresholds(conf_personality(c, false), &tl.t[0]);
	thresholds(conf_personality(c, true), &tl.t[1]);
	tl.v6_prefix = (unsigned)conf_personality(c, false)->history_ipv6_prefix;
	tl.o.map_size = (unsigned long long)conf_personality(c, false)->history_size;
	tl.o.max_age = (uint64_t)(conf_personality(c, false)->history_known_time / 1000);
	tl.o.window_s = tl.o.max_age;
	tl.o.timeout_ms = conf_personality(c, false)->history_store_timeout;
	tl.o.read_only = strcmp(cmd, "show") == 0 || strcmp(cmd, "dump") == 0;
	tl.now = (uint64_t)time(NULL);
	if (spec == NULL)
		spec = conf_personality(c, false)->history_store;
	if (spec[0] == '\0' || strcmp(spec, "memory:") == 0) {
		fprintf(stderr,
		        "milter-stress-history: %s: no history_store another process can "
		        "open (give one with -s)\n",
		        config);
		conf_unref(c);
		return 2;
	}
	strbuf_reset(&err);
	if ((tl.st = history_store_open(spec, &tl.o, &err, NULL)) == NULL) {
		fprintf(stderr, "milter-stress-history: %s\n", strbuf_str(&err));
		give_to_dir_owner(spec); /* LMDB may have made the lock file */
		conf_unref(c);
		strbuf_free(&err);
		return 2;
	}
	if (strcmp(cmd, "show") == 0 && optind < argc)
		rc = cmd_show(&tl, argv + optind, argc - optind);
	else if (strcmp(cmd, "add") == 0)
		rc = cmd_add(&tl, argv + optind, argc - optind);
	else if (strcmp(cmd, "delete") == 0 && optind < argc)
		rc = cmd_delete(&tl, argv + optind, argc - optind);
	else if (strcmp(cmd, "dump") == 0 && optind == argc)
		rc = cmd_dump(&tl);
	else {
		usage(stderr);
		rc = 2;
	}
	history_store_close(tl.st);
	give_to_dir_owner(spec);
	conf_unref(c);
	strbuf_free(&err);
	return rc;
}
