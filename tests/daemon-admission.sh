#!/bin/bash
# max_sessions: with 8 sessions held open (milter-probe --hold), the 9th is
# answered at connect at once, without rules: 421 by default, accept with
# overload_action = accept. The warning and the statistics line count it;
# the daemon answers SIGUSR1 while at the cap; once the held sessions end,
# or their clients vanish, new sessions are evaluated again. The open files
# limit is raised for max_sessions, with a warning when it cannot be.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 90
sock="$T_DIR/ms.sock"
cat >"$T_DIR/ms.conf" <<'EOF'
max_sessions = 8
connect client 192.0.2.9 reject 554 5.7.1 "listed"
EOF
start_daemon "$T_DIR/ms.log" "unix:$sock" -vv -c "$T_DIR/ms.conf"

# hold N SECONDS: N sessions that pass connect, then idle for SECONDS; their
# pids in $held once every one has its answer to connect.
hold() {
	held=""
	for i in $(seq "$1"); do
		"$MILTER_PROBE" -p "unix:$sock" --hold "$2" >"$T_DIR/held$i.out" 2>&1 &
		track_pid $!
		held="$held $!"
	done
	i=0
	for p in $held; do
		i=$((i + 1))
		wait_for_line "$T_DIR/held$i.out" '^connect .*: continue$' 100 "$p"
	done
}

# probe NAME ARGS...: one transaction from the listed client, output in
# $T_DIR/NAME.out, its wall time (milter-probe's start included) in $ms.
probe() {
	name=$1
	shift
	t0=$EPOCHREALTIME
	"$MILTER_PROBE" -p "unix:$sock" --client-addr 192.0.2.9 "$@" >"$T_DIR/$name.out" 2>&1 ||
		{ cat "$T_DIR/$name.out"; fail "$name: milter-probe exited $?"; }
	ms=$(echo "$t0 $EPOCHREALTIME" | awk '{ printf "%.1f", ($2 - $1) * 1000 }')
}

# reload: SIGUSR1 (it logs the statistics line, then reloads); returns
# once the reload is done. The daemon answers it while at the cap.
reload() {
	n=$(grep -c 'reloaded configuration' "$T_DIR/ms.log")
	kill -USR1 $ms_pid
	i=0
	while [ "$(grep -c 'reloaded configuration' "$T_DIR/ms.log")" -le "$n" ]; do
		[ $i -ge 100 ] && { cat "$T_DIR/ms.log"; fail "no reload after SIGUSR1"; }
		sleep 0.1
		i=$((i + 1))
	done
}

# stats REGEX: reload until the last statistics line matches (a closed
# session is uncounted a moment after its client is gone).
stats() {
	for _ in $(seq 50); do
		reload
		grep 'statistics:' "$T_DIR/ms.log" | tail -n 1 | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	grep 'statistics:' "$T_DIR/ms.log" | tail -n 3
	fail "no statistics line matching '$1'"
}

probe below
echo "below the cap: answered in $ms ms"
expect_line "$T_DIR/below.out" '^connect localhost \[192\.0\.2\.9\]: reject 554 5\.7\.1 listed$' \
	"below the cap the rules run"

# At the cap: 421 at connect, nothing else negotiated, no rule tried.
hold 8 5
pass "8 sessions held open"
traces=$(grep -c 'trace:' "$T_DIR/ms.log")
seen=$(grep -c 'localhost\[192\.0\.2\.9\]' "$T_DIR/ms.log")
probe over
echo "session 9 at the cap: answered in $ms ms"
expect_line "$T_DIR/over.out" \
	'^connect localhost \[192\.0\.2\.9\]: tempfail 421 4\.7\.0 Too many sessions, try again later$' \
	"session 9 gets 421 4.7.0 at connect"
expect_line "$T_DIR/over.out" '^result: tempfail at connect$' "and ends there"
expect_line "$T_DIR/over.out" \
	'^negotiate: version 6 actions 0x00000000 protocol [^ ]* NOHELO NOMAIL NORCPT NOBODY NOHDRS NOEOH .*NODATA' \
	"session 9 negotiates connect only, no actions"
awk -v ms="$ms" 'BEGIN { exit !(ms < 2000) }' || fail "session 9 took $ms ms"
pass "session 9 answered within 2 s"
[ "$(grep -c 'trace:' "$T_DIR/ms.log")" = "$traces" ] || fail "rules were tried for session 9"
[ "$(grep -c 'localhost\[192\.0\.2\.9\]' "$T_DIR/ms.log")" = "$seen" ] ||
	fail "session 9 was logged as a session"
pass "no rule was tried for session 9"
expect_line "$T_DIR/ms.log" \
	'warning: max_sessions=8 reached: new sessions are tempfailed \(overload_action=tempfail\)' \
	"the cap is logged"
stats 'sessions: now=8 peak=8 overloaded=1 dns: '
pass "statistics at the cap: now=8 peak=8 overloaded=1"

# When the held sessions end, the rules run again.
for p in $held; do wait "$p" || fail "a held session failed"; done
for i in $(seq 8); do
	expect_line "$T_DIR/held$i.out" '^result: accept$' "held session $i completed" >/dev/null
done
pass "the 8 held sessions completed"
probe after
expect_line "$T_DIR/after.out" '^connect localhost \[192\.0\.2\.9\]: reject 554 5\.7\.1 listed$' \
	"after they end, the rules run again"
stats 'sessions: now=0 peak=8 overloaded=1 dns: '

# overload_action = accept, after a reload; clients that vanish free their slots.
echo 'overload_action = accept' >>"$T_DIR/ms.conf"
reload
hold 8 60
probe accept
echo "session 9 at the cap, overload_action = accept: answered in $ms ms"
expect_line "$T_DIR/accept.out" '^connect localhost \[192\.0\.2\.9\]: accept$' \
	"overload_action = accept: accept at connect"
expect_line "$T_DIR/accept.out" '^result: accept at connect$' "and nothing more"
expect_line "$T_DIR/ms.log" 'max_sessions=8 reached' "still logged"
# shellcheck disable=SC2086 # the pids, one word each
{
	kill -9 $held
	wait $held
} 2>/dev/null # no "Killed" notices
i=0
while :; do
	probe vanished
	grep -q 'reject 554' "$T_DIR/vanished.out" && break
	[ $i -ge 50 ] && { cat "$T_DIR/vanished.out"; fail "slots stay taken after their clients vanished"; }
	sleep 0.1
	i=$((i + 1))
done
pass "clients that vanish free their slots"
stats 'sessions: now=0 peak=8 overloaded=([2-9]|[1-9][0-9]+) dns: '
pass "statistics count every overload"

kill -0 $ms_pid 2>/dev/null || fail "milter-stress died"
kill -TERM $ms_pid
wait $ms_pid
rc=$?
[ $rc -eq 0 ] || fail "exit status after SIGTERM was $rc"
expect_line "$T_DIR/ms.log" 'statistics: .* sessions: now=0 peak=8 overloaded=' "counters at stop"

# The open files limit: raised to max_sessions + 64 when the hard limit
# allows, to the hard limit with a warning when it does not.
# fd_limit NAME SOFT HARD ARGS...: the soft limit the daemon ends up with.
fd_limit() {
	name=$1
	soft=$2
	hard=$3
	shift 3
	(
		ulimit -Sn "$soft" && ulimit -Hn "$hard" || exit 1
		exec "$MILTER_STRESS" -f -c /dev/null -p "unix:$T_DIR/$name.sock" "$@"
	) 2>"$T_DIR/$name.log" &
	pid=$!
	track_pid $pid
	wait_for_line "$T_DIR/$name.log" 'starting: listening on' 100 $pid
	limit=$(awk '/^Max open files/ { print $4 }' /proc/$pid/limits)
	kill $pid
}
fd_limit fd-ok 256 4096 -o max_sessions=300
[ "$limit" = 364 ] || fail "open files limit $limit, expected 364 for max_sessions=300"
expect_line "$T_DIR/fd-ok.log" 'open files limit raised from 256 to 364 for max_sessions=300' \
	"the open files limit is raised for max_sessions"
fd_limit fd-low 256 1024 -o max_sessions=2000
[ "$limit" = 1024 ] || fail "open files limit $limit, expected the hard limit 1024"
expect_line "$T_DIR/fd-low.log" \
	'warning: open files limit 1024 \(hard 1024\) is below max_sessions=2000 \+ 64: past about 960 sessions' \
	"a hard limit below max_sessions is reported"
