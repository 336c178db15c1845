/*
 * genman - copy a man page template to stdout, replacing the line
 * "@PARAMETERS@" with the parameter list generated from the schema.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"

int
main(void)
{
	char line[4096];

	while (fgets(line, sizeof line, stdin) != NULL) {
		if (strcmp(line, "@PARAMETERS@\n") == 0)
			conf_schema_write_man(stdout);
		else
			fputs(line, stdout);
	}
	return ferror(stdin) || fflush(stdout) != 0 ? 1 : 0;
}
