/* unit - run one Check suite; see unit.h. */
#include "config.h"

#include "unit.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char unit_dir[4096];

int
unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *
unit_tmpdir(void)
{
	return unit_dir;
}

static int
remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) != 0)
		perror(path);
	return 0;
}

int
unit_run_in_tmpdir(Suite *s, const char *prefix)
{
	const char *base = getenv("TMPDIR");
	int rc;

	snprintf(unit_dir, sizeof unit_dir, "%s/%s.XXXXXX",
		 base != NULL && *base != '\0' ? base : "/tmp", prefix);
	if (mkdtemp(unit_dir) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	rc = unit_run(s);
	nftw(unit_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
