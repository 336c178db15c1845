/*
 * paths - where an installed milter-stress looks for its files
 *
 * SYSCONFDIR is the build's sysconfdir (make passes it: /etc in the Debian
 * package, /usr/local/etc from source). The configuration has a directory of
 * its own there, beside the files it may include, as Debian's milters do.
 * The daemon, milter-stress-ctl and conf/Makefile.am's install rule must
 * agree: this is the one definition the programs use.
 */
#ifndef MS_PATHS_H
#define MS_PATHS_H

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define MS_DEFAULT_CONFIG SYSCONFDIR "/milter-stress/milter-stress.conf"

#endif
