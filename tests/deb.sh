#!/bin/bash
# The Debian package, end to end, as root on a Debian 12 machine (CI's step
# "Debian package"): build it from a clean copy of the tree, run lintian,
# apt-get install it, check the user, the files and their modes, run the
# daemon exactly as its systemd unit would (no systemd needed), one
# transaction through the packaged socket (also as a chrooted smtpd would
# reach it), reload through the unit's ExecReload (a broken config must fail
# it and change nothing), stop, systemd-analyze verify, the trigger that
# follows Postfix's arrival; then upgrade to a rebuilt newer version over an
# edited config, remove, purge, and check that nothing is left.
#
# Not part of make check: it installs onto the system. It leaves the system
# as it found it (the package purged, its user gone, also when it fails) and
# never touches the system's Postfix. It refuses to start where milter-stress
# is installed already: the purge would take that machine's configuration.
# KEEP_TEST_DIR=1 keeps the packages and logs.
#	tests/deb.sh		from a git checkout of the source
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "run as root: the test installs the package"
for t in git dpkg-buildpackage dch lintian apt-get systemd-analyze setpriv python3; do need "$t"; done
watchdog 600

PKG=milter-stress
CONF=/etc/milter-stress/milter-stress.conf
UNIT=/lib/systemd/system/milter-stress.service
SOCKDIR=/var/spool/postfix/milter-stress
SOCK=$SOCKDIR/milter-stress.sock
export DEBIAN_FRONTEND=noninteractive

# ms_now: seconds since the epoch, with tenths.
ms_now() { date +%s.%1N; }
# took START WHAT: print how long WHAT took since START.
took() { echo "time: $2: $(awk -v a="$1" -v b="$(ms_now)" 'BEGIN { printf "%.1f", b - a }') s"; }
START=$(ms_now)

ms_pid=""
# stop_daemon: stop the daemon as systemd does (SIGTERM); its exit status in
# ms_status. Also at exit, before the package is purged.
stop_daemon() {
	[ -n "${ms_pid:-}" ] || return 0
	kill -TERM "$ms_pid" 2>/dev/null
	wait_until "the daemon does not stop on SIGTERM" 100 "" gone "$ms_pid"
	wait "$ms_pid" 2>/dev/null
	ms_status=$?
	ms_pid=""
}
apt_q() { apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null; }
purge_pkg() {
	stop_daemon
	dpkg -s "$PKG" >/dev/null 2>&1 || return 0
	apt_q purge "$PKG" >/dev/null 2>&1 || dpkg --purge "$PKG"
}
if dpkg -s "$PKG" >/dev/null 2>&1; then
	fail "$PKG is installed here; the test would purge it with its configuration (apt purge $PKG first)"
fi
at_exit purge_pkg

# --- build, twice: this version, and a newer one for the upgrade
src=$T_DIR/src
mkdir "$src"
git -C "$top_srcdir" ls-files -z --cached --others --exclude-standard |
	(cd "$top_srcdir" && tar --null --ignore-failed-read -T - -cf -) | tar -x -C "$src"
[ -f "$src/debian/control" ] || fail "no debian/ in the copy of the tree"

# build NAME [dpkg-buildpackage options]: the .debs land in $T_DIR.
build() {
	b_start=$(ms_now)
	(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b "${@:2}") \
		>"$T_DIR/build-$1.log" 2>&1 || { tail -n 40 "$T_DIR/build-$1.log"; fail "dpkg-buildpackage ($1)"; }
	took "$b_start" "dpkg-buildpackage ($1)"
}
build first
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
deb1=$(ls "$T_DIR/${PKG}_${version}_"*.deb)
changes=$(ls "$T_DIR/${PKG}_${version}_"*.changes)
pass "built $deb1"

# --- lintian: no error, warning or info tag that is not overridden (each
# override in debian/ says why)
lintian --pedantic -I -E --show-overrides "$changes" >"$T_DIR/lintian.out" 2>&1 ||
	{ cat "$T_DIR/lintian.out"; fail "lintian failed"; }
grep -E '^[EWIPXO]: ' "$T_DIR/lintian.out" | sed 's/^/lintian: /'
if grep -E '^[EWIP]: ' "$T_DIR/lintian.out"; then fail "lintian tags above are not overridden"; fi
pass "lintian: clean (pedantic; $(grep -c '^O: ' "$T_DIR/lintian.out") overridden, each with its reason)"

# --- install, with the dependencies apt finds
apt_q install "$deb1" >"$T_DIR/install1.log" 2>&1 || { cat "$T_DIR/install1.log"; fail "apt-get install $deb1"; }
[ "$(dpkg-query -W -f='${Status} ${Version}' "$PKG")" = "install ok installed $version" ] ||
	fail "not installed: $(dpkg-query -W -f='${Status} ${Version}' "$PKG")"
dpkg -L "$PKG" >"$T_DIR/files"
pass "apt-get install ./${deb1##*/}"

IFS=: read -r _ _ uid gid _ home shell < <(getent passwd milter-stress) || fail "no user milter-stress"
[ "$uid" -lt 1000 ] && [ "$shell" = /usr/sbin/nologin ] && [ "$home" = /nonexistent ] ||
	fail "milter-stress is not a system user: uid $uid, home $home, shell $shell"
[ "$(getent group milter-stress | cut -d: -f3)" = "$gid" ] || fail "no group milter-stress as the user's primary group"
pass "system user and group milter-stress (uid $uid), no login, no home"

# expect_stat PATH OWNER:GROUP MODE
expect_stat() {
	[ "$(stat -c '%U:%G %a' "$1" 2>&1)" = "$2 $3" ] || fail "$1: $(stat -c '%U:%G %a' "$1" 2>&1), expected $2 $3"
}
expect_stat /usr/sbin/milter-stress root:root 755
expect_stat /usr/bin/milter-probe root:root 755
expect_stat /usr/bin/milter-stress-ctl root:root 755
expect_stat "$CONF" root:root 644
expect_stat /etc/default/milter-stress root:root 644
expect_stat "$UNIT" root:root 644
expect_stat "$SOCKDIR" milter-stress:postfix 2750
for f in /usr/share/man/man8/milter-stress.8.gz /usr/share/man/man5/milter-stress.conf.5.gz \
	/usr/share/man/man1/milter-probe.1.gz /usr/share/man/man1/milter-stress-ctl.1.gz; do
	[ -f "$f" ] || fail "no $f"
done
dpkg-query -W -f='${Conffiles}\n' "$PKG" >"$T_DIR/conffiles"
expect_line "$T_DIR/conffiles" "^ $CONF [0-9a-f]{32}$" "the config is a conffile"
expect_line "$T_DIR/conffiles" '^ /etc/default/milter-stress [0-9a-f]{32}$' "/etc/default/milter-stress is a conffile"
/usr/sbin/milter-stress -n -c "$CONF" >"$T_DIR/dump" || fail "the installed config does not load"
expect_line "$T_DIR/dump" "^socket = unix:$SOCK\$" "the installed config listens on $SOCK"
pass "files, owners and modes"

# Postfix arriving after the package: the trigger on /var/spool/postfix
# gives the directory the group postfix (here as if it had been installed
# without Postfix, group milter-stress).
chgrp milter-stress "$SOCKDIR"
dpkg-trigger --no-await /var/spool/postfix && dpkg --triggers-only --pending >/dev/null ||
	fail "the trigger on /var/spool/postfix"
expect_stat "$SOCKDIR" milter-stress:postfix 2750
pass "the trigger on /var/spool/postfix sets the group postfix"

# --- the daemon, as the unit runs it: its user and group, its environment
# (Environment=, EnvironmentFile=), its RuntimeDirectory and UMask, in /,
# with a NOTIFY_SOCKET that receives what systemd would.
unit_get() { sed -n "s/^$1=//p" "$UNIT"; }
# The administrator's extra options reach the daemon: -v logs each connection.
cp -p /etc/default/milter-stress "$T_DIR/default.orig"
sed -i 's/^OPTIONS=""$/OPTIONS="-v"/' /etc/default/milter-stress
grep -q '^OPTIONS="-v"$' /etc/default/milter-stress || fail "/etc/default/milter-stress has no OPTIONS=\"\""
u_user=$(unit_get User)
u_group=$(unit_get Group)
[ "$u_user" = milter-stress ] && [ "$u_group" = milter-stress ] || fail "unit: User=$u_user Group=$u_group"
[ "$(unit_get Type)" = notify ] || fail "unit: Type=$(unit_get Type), expected notify"
u_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
	USER="$u_user" LOGNAME="$u_user" HOME="$home" SHELL="$shell")
while read -r kv; do u_env+=("$kv"); done < <(unit_get Environment | tr ' ' '\n' | sed '/^$/d')
while read -r ef; do
	f=${ef#-}
	[ -f "$f" ] || { [ "$ef" != "$f" ] || fail "unit: EnvironmentFile $f is missing"; continue; }
	while IFS= read -r line; do
		case $line in '' | '#'* | ';'*) continue ;; esac
		k=${line%%=*} v=${line#*=}
		v=${v#\"} v=${v%\"}
		u_env+=("$k=$v")
	done <"$f"
done < <(unit_get EnvironmentFile)
# env_value NAME: the value the unit's environment gives NAME.
env_value() {
	local kv v=""
	for kv in "${u_env[@]}"; do [ "${kv%%=*}" = "$1" ] && v=${kv#*=}; done
	printf '%s' "$v"
}
# unit_cmd KEY: the unit's command line KEY (ExecStart, ExecReload) in the
# array cmd, with systemd's expansion: $NAME splits into words, ${NAME} is
# one word; the prefixes - @ + ! : are not used by this unit.
unit_cmd() {
	local w line
	line=$(unit_get "$1")
	[ -n "$line" ] || fail "unit: no $1"
	case $line in [-@+!:]*) fail "unit: $1 has a prefix this test does not emulate: $line" ;; esac
	cmd=()
	for w in $line; do
		case $w in
		'${'*'}') cmd+=("$(env_value "${w:2:${#w}-3}")") ;;
		'$'*) for v in $(env_value "${w:1}"); do cmd+=("$v"); done ;;
		*) cmd+=("$w") ;;
		esac
	done
}
# exec_as_unit CMD...: become CMD as the unit runs its commands (in a
# background job, whose pid is then CMD's); as_unit CMD...: run it.
exec_as_unit() {
	cd / && umask "$(unit_get UMask)" &&
		exec setpriv --reuid="$u_user" --regid="$u_group" --init-groups \
			env -i "${u_env[@]}" ${NOTIFY_SOCKET:+NOTIFY_SOCKET=$NOTIFY_SOCKET} "$@"
}
as_unit() { (exec_as_unit "$@"); }

rundir=/run/$(unit_get RuntimeDirectory)
[ "$rundir" = /run/milter-stress ] || fail "unit: RuntimeDirectory=${rundir#/run/}"
install -d -o "$u_user" -g "$u_group" -m "$(unit_get RuntimeDirectoryMode)" "$rundir"

# What systemd would hear on its notification socket, one line a datagram,
# and whether the milter's socket existed when it came.
export NOTIFY_SOCKET=$T_DIR/notify
python3 -u -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
while True:
    msg = s.recv(4096).decode()
    print(msg, "socket=" + ("yes" if os.path.exists(sys.argv[2]) else "no"), flush=True)
' "$NOTIFY_SOCKET" "$SOCK" >"$T_DIR/notify.out" 2>&1 &
track_pid $!
wait_until "no notification socket" 50 "" test -S "$NOTIFY_SOCKET"

unit_cmd ExecStart
echo "ExecStart: ${cmd[*]}"
exec_as_unit "${cmd[@]}" 2>"$T_DIR/ms.log" &
ms_pid=$!
wait_for_unix_socket "$SOCK" 100 "$ms_pid"
wait_for_line "$T_DIR/notify.out" '^READY=1 ' 100 "$ms_pid"
expect_line "$T_DIR/notify.out" '^READY=1 socket=yes$' "READY=1 came once the socket existed"
pass "started as the unit's ExecStart; READY=1 sent once the socket listened"
read -r _ ruid euid suid fsuid < <(grep '^Uid:' "/proc/$ms_pid/status")
[ "$ruid $euid $suid $fsuid" = "$uid $uid $uid $uid" ] || fail "the daemon runs as uid $ruid $euid $suid $fsuid"
expect_stat "$SOCK" milter-stress:postfix 660
expect_stat "$rundir/control" milter-stress:milter-stress 600
pass "runs as milter-stress; socket milter-stress:postfix 0660 (group from the setgid directory)"

# probe NAME [USER] ARGS...: one transaction through the packaged socket.
probe() {
	local name=$1
	shift
	/usr/bin/milter-probe -p "unix:$SOCK" --client-addr 192.0.2.1 "$@" >"$T_DIR/$name.out" 2>&1 ||
		{ cat "$T_DIR/$name.out"; fail "$name: milter-probe exited $?"; }
}
probe root -m '{stress}=yes' --queue-id Q1ROOT
expect_line "$T_DIR/root.out" '^eom: add header X-Stress: yes \(source=macro\)$' "a transaction through $SOCK"
expect_line "$T_DIR/root.out" '^eom: accept$' "accepted"
# Postfix's smtpd runs as postfix with no supplementary group (set_ugid).
setpriv --reuid=postfix --regid=postfix --clear-groups \
	/usr/bin/milter-probe -p "unix:$SOCK" --client-addr 192.0.2.1 >"$T_DIR/postfix.out" 2>&1 ||
	{ cat "$T_DIR/postfix.out"; fail "user postfix (no supplementary groups) cannot use $SOCK"; }
expect_line "$T_DIR/postfix.out" '^eom: accept$' "user postfix, no supplementary groups, uses the socket"
# What a chrooted smtpd does with conf/postfix-main.cf's smtpd_milters =
# unix:milter-stress/milter-stress.sock: chdir to the queue directory,
# chroot there, become postfix with its group only (set_ugid), connect to
# the relative name, and negotiate (SMFIC_OPTNEG, protocol 6).
endpoint=$(sed -n 's/^smtpd_milters = unix://p' /usr/share/doc/milter-stress/examples/postfix-main.cf)
[ "$endpoint" = milter-stress/milter-stress.sock ] || fail "the shipped main.cf names unix:$endpoint"
python3 -c '
import os, pwd, socket, struct, sys
pw = pwd.getpwnam("postfix")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
os.chdir("/var/spool/postfix"); os.chroot(".")
os.setgid(pw.pw_gid); os.setgroups([pw.pw_gid]); os.setuid(pw.pw_uid)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(struct.pack(">IcIII", 13, b"O", 6, 0x1ff, 0x1fffff))
n, cmd = struct.unpack(">Ic", s.recv(5))
print("reply", cmd.decode())
' "$endpoint" >"$T_DIR/chroot.out" 2>&1 || { cat "$T_DIR/chroot.out"; fail "a chrooted postfix process cannot use unix:$endpoint"; }
expect_line "$T_DIR/chroot.out" '^reply O$' "chrooted in /var/spool/postfix as postfix, unix:$endpoint negotiates"
expect_line "$T_DIR/ms.log" 'connect from [^ ]*\[192\.0\.2\.1\] stress=yes' "OPTIONS from /etc/default/milter-stress apply (-v)"
expect_line "$T_DIR/ms.log" 'Q1ROOT: stress=yes\(macro\) stage=eom .*action=accept client=\[?[^ ]*192\.0\.2\.1\]' "the verdict is logged"

# --- reload through the unit's ExecReload: applies a change; a broken file
# fails it and changes nothing.
cp -p "$CONF" "$T_DIR/conf.orig"
unit_cmd ExecReload
echo "ExecReload: ${cmd[*]}"
sed -i 's/^stress_header = X-Stress$/stress_header = X-Load/' "$CONF"
as_unit "${cmd[@]}" >"$T_DIR/reload1.out" 2>&1 || { cat "$T_DIR/reload1.out"; fail "ExecReload failed on a good config"; }
expect_line "$T_DIR/reload1.out" '^ok: reloaded, generation 2$' "ExecReload: reloaded"
probe reloaded -m '{stress}=yes'
expect_line "$T_DIR/reloaded.out" '^eom: add header X-Load: yes \(source=macro\)$' "the reload applies"
echo "this is not a parameter" >>"$CONF"
if as_unit "${cmd[@]}" >"$T_DIR/reload2.out" 2>&1; then
	cat "$T_DIR/reload2.out"
	fail "ExecReload succeeded on a broken config"
fi
expect_line "$T_DIR/reload2.out" "$CONF:[0-9]+" "ExecReload fails on a broken config, naming file:line"
kill -0 "$ms_pid" || fail "the daemon died on a broken reload"
probe kept -m '{stress}=yes'
expect_line "$T_DIR/kept.out" '^eom: add header X-Load: yes \(source=macro\)$' "the daemon keeps the config it had"
cp -p "$T_DIR/conf.orig" "$CONF"

# --- stop as systemd does (SIGTERM)
stop_daemon
[ "$ms_status" = 0 ] || fail "SIGTERM: exit status $ms_status"
wait_for_line "$T_DIR/notify.out" '^STOPPING=1 ' 20
pass "SIGTERM stops it (exit 0, STOPPING=1)"
cp -p "$T_DIR/default.orig" /etc/default/milter-stress
rm -rf "$rundir" # systemd removes the RuntimeDirectory at stop

systemd-analyze verify "$UNIT" >"$T_DIR/verify.out" 2>&1 || { cat "$T_DIR/verify.out"; fail "systemd-analyze verify"; }
if grep -F milter-stress "$T_DIR/verify.out"; then fail "systemd-analyze verify complains"; fi
pass "systemd-analyze verify $UNIT"
# The sandbox stays: systemd rates the unit's exposure 1.6 of 10 ("OK");
# a hardening option dropped by mistake raises it past 2.0.
systemd-analyze security --offline=yes --threshold=20 "$UNIT" >"$T_DIR/security.out" 2>&1 ||
	{ cat "$T_DIR/security.out"; fail "systemd-analyze security: exposure above 2.0"; }
pass "systemd-analyze security: $(sed -n 's/^→ Overall exposure level for [^:]*: //p' "$T_DIR/security.out")"

# --- upgrade over an edited config: a rebuilt package of a newer version,
# whose own default config changed too, keeps the administrator's file.
(cd "$src" && DEBFULLNAME="milter-stress maintainers" DEBEMAIL=maintainers@example.org dch -v "${version%-*}-$((${version##*-} + 1))" -D unstable "Rebuilt for the upgrade test.") ||
	fail "dch"
echo "# changed in the new version" >>"$src/conf/milter-stress.conf"
build second -nc
version2=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
deb2=$(ls "$T_DIR/${PKG}_${version2}_"*.deb)
printf '# the administrator'"'"'s edit\nmax_sessions = 1234\n' >>"$CONF"
apt_q install "$deb2" >"$T_DIR/install2.log" 2>&1 || { cat "$T_DIR/install2.log"; fail "apt-get install $deb2"; }
[ "$(dpkg-query -W -f='${Status} ${Version}' "$PKG")" = "install ok installed $version2" ] ||
	fail "not upgraded: $(dpkg-query -W -f='${Status} ${Version}' "$PKG")"
expect_line "$CONF" '^max_sessions = 1234$' "upgrade to $version2: the edited config is kept"
expect_line "$CONF.dpkg-dist" '^# changed in the new version$' "the new default is beside it (.dpkg-dist)"
rm -f "$CONF.dpkg-dist"

# postinst checks the config: a broken one fails the configuration (and so
# no restart on it), a fixed one configures.
echo "this is not a parameter" >>"$CONF"
if dpkg-reconfigure "$PKG" >"$T_DIR/reconfigure.out" 2>&1 </dev/null; then
	fail "postinst accepted a broken config"
fi
expect_line "$T_DIR/reconfigure.out" "$CONF:[0-9]+" "postinst refuses a broken config, naming file:line"
sed -i '$d' "$CONF"
dpkg-reconfigure "$PKG" </dev/null || fail "postinst on the repaired config"
pass "postinst accepts the repaired config"

# --- remove keeps the config and the user; purge leaves nothing
apt_q remove "$PKG" >"$T_DIR/remove.log" 2>&1 || { cat "$T_DIR/remove.log"; fail "apt-get remove"; }
[ "$(dpkg-query -W -f='${Status}' "$PKG")" = "deinstall ok config-files" ] || fail "remove: $(dpkg-query -W -f='${Status}' "$PKG")"
[ ! -e /usr/sbin/milter-stress ] || fail "remove left the daemon"
expect_line "$CONF" '^max_sessions = 1234' "remove keeps the config"
getent passwd milter-stress >/dev/null || fail "remove deleted the user"
pass "remove keeps the config and the user"

apt_q purge "$PKG" >"$T_DIR/purge.log" 2>&1 || { cat "$T_DIR/purge.log"; fail "apt-get purge"; }
! dpkg -s "$PKG" >/dev/null 2>&1 || fail "purge: still known to dpkg"
for p in /etc/milter-stress /etc/default/milter-stress "$SOCKDIR" "$rundir" \
	/etc/systemd/system/multi-user.target.wants/milter-stress.service \
	/var/lib/systemd/deb-systemd-helper-enabled/milter-stress.service.dsh-also; do
	[ ! -e "$p" ] || fail "purge left $p"
done
while read -r p; do
	[ -d "$p" ] || [ ! -e "$p" ] || fail "purge left $p"
done <"$T_DIR/files"
! getent passwd milter-stress >/dev/null || fail "purge left the user"
! getent group milter-stress >/dev/null || fail "purge left the group"
left=$(find /etc /var /run /usr /lib /srv /opt /tmp -xdev \( -uid "$uid" -o -gid "$gid" \) -print 2>/dev/null | head)
[ -z "$left" ] || fail "purge left files of uid $uid or gid $gid: $left"
pass "purge: no config, user, group, directory or file of the package left"
took "$START" "the whole test"
