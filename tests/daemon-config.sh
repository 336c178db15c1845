#!/bin/bash
# Configuration checking (-n), errors with file:line, refusal to start on a bad
# file, -V/-h, and detaching with a pid file.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

conf="$top_srcdir/conf/milter-stress.conf"

# The shipped file is valid and -n prints its effective parameters.
"$MILTER_STRESS" -n -c "$conf" >"$T_DIR/n.out" 2>&1 || { cat "$T_DIR/n.out"; fail "-n on the shipped config"; }
expect_line "$T_DIR/n.out" '^socket = inet:8890@127\.0\.0\.1$' "-n prints socket"
expect_line "$T_DIR/n.out" '^stress_header = X-Stress$' "-n prints stress_header"

# Each personality shows its own values.
printf 'milter_timeout = ${stress?{10s}:{300s}}\n' >"$T_DIR/p.conf"
"$MILTER_STRESS" -n -c "$T_DIR/p.conf" >"$T_DIR/normal.out" 2>&1 || fail "-n normal"
"$MILTER_STRESS" -n -c "$T_DIR/p.conf" -o stress=yes >"$T_DIR/stress.out" 2>&1 || fail "-n stress"
expect_line "$T_DIR/normal.out" '^milter_timeout = 300s$' "-n: normal personality"
expect_line "$T_DIR/stress.out" '^milter_timeout = 10s$' "-n -o stress=yes: stress personality"

# bad CONTENT REGEX WHAT: -n exits 1 with a file:line message; the daemon refuses to start.
bad() {
	printf "$1" >"$T_DIR/bad.conf"
	if "$MILTER_STRESS" -n -c "$T_DIR/bad.conf" >"$T_DIR/bad.out" 2>&1; then
		cat "$T_DIR/bad.out"
		fail "$3: -n accepted a bad config"
	fi
	expect_line "$T_DIR/bad.out" "$2" "$3: -n says why"
	"$MILTER_STRESS" -f -c "$T_DIR/bad.conf" -p "unix:$T_DIR/bad.sock" >"$T_DIR/bad2.out" 2>&1 &
	pid=$!
	track_pid $pid
	wait $pid && fail "$3: the daemon started on a bad config"
	expect_line "$T_DIR/bad2.out" "$2" "$3: the daemon refuses to start"
}
bad '# comment\nstress_header = X-Stress\nthis is not a parameter\n' \
	"bad\.conf:3: .*expected 'name = value'" "syntax error"
bad 'stress_header = X-Stress\n\nstres_macro = {stress}\n' \
	"bad\.conf:3: .*unknown parameter 'stres_macro'.*did you mean 'stress_macro'" "unknown parameter"
bad 'milter_timeout =\n  10x\n' \
	"bad\.conf:1: .*milter_timeout.*10x" "bad time value on a continued line"
bad 'milter_timeout = ${stress?{10s}:{300s}\n' \
	"bad\.conf:1: " "unbalanced brace"

"$MILTER_STRESS" -n -c "$T_DIR/missing.conf" >"$T_DIR/missing.out" 2>&1 && fail "a missing -c file was accepted"
expect_line "$T_DIR/missing.out" "missing\.conf" "a missing config file is named"

"$MILTER_STRESS" -n -o listen_backlog=0 -c "$conf" >"$T_DIR/o.out" 2>&1 && fail "-o out of range accepted"
expect_line "$T_DIR/o.out" "-o listen_backlog=0: .*range" "-o errors name the override"

"$MILTER_STRESS" -V >"$T_DIR/v.out" 2>&1 || fail "-V"
expect_line "$T_DIR/v.out" '^milter-stress [0-9]' "-V prints the version"
"$MILTER_STRESS" -h >"$T_DIR/h.out" 2>&1 || fail "-h"
expect_line "$T_DIR/h.out" 'usage: milter-stress' "-h prints usage"
"$MILTER_STRESS" -x >"$T_DIR/x.out" 2>&1 && fail "an unknown option was accepted"

# Without -f it detaches once the socket is open, and writes the pid file.
"$MILTER_STRESS" -c "$conf" -p "unix:$T_DIR/bg.sock" -P "$T_DIR/ms.pid" ||
	fail "detaching start failed"
[ -S "$T_DIR/bg.sock" ] || fail "socket missing after the detaching start returned"
pid=$(cat "$T_DIR/ms.pid")
track_pid "$pid"
kill -0 "$pid" || fail "detached milter is not running"
pass "detaches and writes the pid file"

# Relative -c and -P still name the same files once detached (it works in /):
# a reload reads the edited file, and the pid file goes at exit.
mkdir "$T_DIR/rel"
printf 'helo helo reload.example reject 550 5.7.1 "before reload"\n' >"$T_DIR/rel/r.conf"
(cd "$T_DIR/rel" && "$MILTER_STRESS" -c r.conf -p "unix:$T_DIR/rel.sock" -P r.pid) ||
	fail "detaching start with a relative -c and -P"
rpid=$(cat "$T_DIR/rel/r.pid") || fail "no pid file where -P r.pid named it"
track_pid "$rpid"
rel_probe() {
	"$MILTER_PROBE" -p "unix:$T_DIR/rel.sock" --helo reload.example >"$T_DIR/rel.out" 2>&1 ||
		{ cat "$T_DIR/rel.out"; fail "probe of the relative-path milter"; }
}
rel_probe
expect_line "$T_DIR/rel.out" '^helo reload\.example: reject 550 5\.7\.1 before reload$' \
	"relative -c: the file is loaded"
printf 'helo helo reload.example reject 550 5.7.1 "after reload"\n' >"$T_DIR/rel/r.conf"
kill -USR1 "$rpid"
i=0
until rel_probe && grep -q 'after reload$' "$T_DIR/rel.out"; do
	[ $i -lt 50 ] || { cat "$T_DIR/rel.out"; fail "relative -c: SIGUSR1 did not load the edited file"; }
	sleep 0.1
	i=$((i + 1))
done
pass "relative -c: SIGUSR1 reloads the same file after detaching"
chmod 777 "$T_DIR/rel" # the daemon removes its pid file as the -u user
kill "$rpid"
i=0
while [ -e "$T_DIR/rel/r.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ ! -e "$T_DIR/rel/r.pid" ] || fail "relative -P: the pid file is still there after SIGTERM"
pass "relative -P: the pid file is removed at exit"

# A stale unix socket is removed at start.
kill "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 1) or die "$!\n"' "$T_DIR/stale.sock" ||
	fail "could not make a stale socket"
"$MILTER_STRESS" -c "$conf" -p "unix:$T_DIR/stale.sock" -P "$T_DIR/ms2.pid" ||
	fail "start over a stale socket failed"
track_pid "$(cat "$T_DIR/ms2.pid")"
"$MILTER_PROBE" -p "unix:$T_DIR/stale.sock" >"$T_DIR/stale.out" 2>&1 || fail "probe after a stale socket"
pass "a stale unix socket is replaced"

# A TCP port in use is refused with a clear message and exit 1.
port=$(free_port)
"$MILTER_STRESS" -c "$conf" -p "inet:$port@127.0.0.1" -P "$T_DIR/ms3.pid" || fail "start on inet"
track_pid "$(cat "$T_DIR/ms3.pid")"
"$MILTER_STRESS" -f -c "$conf" -p "inet:$port@127.0.0.1" >"$T_DIR/inuse.out" 2>&1 &&
	fail "a second milter started on a port in use"
expect_line "$T_DIR/inuse.out" "cannot open socket inet:$port@127\.0\.0\.1" "a port in use is refused"

# Under systemd stderr is the journal (JOURNAL_STREAM names it), which also
# gets the syslog lines: nothing is written to it twice. Refusing a broken
# config says why on a plain stderr, and only in syslog on the journal's;
# -n always answers on stderr.
printf 'connect client 192.0.2.1 frobnicate\n' >"$T_DIR/broken.conf"
: >"$T_DIR/journal.err"
journal=$(stat -c '%d:%i' "$T_DIR/journal.err")
JOURNAL_STREAM=$journal "$MILTER_STRESS" -f -c "$T_DIR/broken.conf" -p "unix:$T_DIR/j.sock" \
	2>>"$T_DIR/journal.err" && fail "the daemon started on a broken config"
[ ! -s "$T_DIR/journal.err" ] || { cat "$T_DIR/journal.err"; fail "journal: the errors were written to stderr too"; }
pass "journal: a refused config is not written twice"
"$MILTER_STRESS" -f -c "$T_DIR/broken.conf" -p "unix:$T_DIR/j.sock" 2>"$T_DIR/plain.err" &&
	fail "the daemon started on a broken config"
expect_line "$T_DIR/plain.err" 'broken\.conf:1:' "plain stderr: the refused config's errors name file:line"
JOURNAL_STREAM=$journal "$MILTER_STRESS" -n -c "$T_DIR/broken.conf" 2>>"$T_DIR/journal.err" >/dev/null &&
	fail "-n accepted a broken config"
expect_line "$T_DIR/journal.err" 'broken\.conf:1:' "journal: -n still answers on stderr"
