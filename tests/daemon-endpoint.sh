#!/bin/bash
# The stress endpoint (stress_socket) through the real daemon: its sessions
# are stressed from negotiation on (source=endpoint) and negotiate fewer
# stages than the main socket's; its idle sessions count in the same
# service level as the main socket's (one shared count); a reload reaches
# it; it stops with the main process, dies with it (SIGKILL), and when it
# dies on its own the main process stops with status 1.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 120
CTL="$top_builddir/tools/milter-stress-ctl"
main="$T_DIR/main.sock"
endp="$T_DIR/stress.sock"
ctl="$T_DIR/control"
conf="$T_DIR/ms.conf"
log="$T_DIR/ms.log"
cat >"$conf" <<EOF
stress_socket = unix:$endp
control_socket = $ctl
stress_sources = macro, sessions
service_limits = smtpd=10
stress_hold = 1s
header normal name=subject header subject /buy now/ reject 550 5.7.1 "no"
body normal name=body body /viagra/ reject 550 5.7.1 "no"
EOF
chmod 644 "$conf"

# endpoint_pid: the endpoint's process, a child of the main one.
endpoint_pid() { pgrep -P "$ms_pid" -f milter-stress | head -n 1; }
# start LOG: the daemon, once both processes listen; the endpoint's pid in ep.
start() {
	rm -f "$endp"
	start_daemon "$1" "unix:$main" -c "$conf"
	wait_for_line "$1" 'starting the stress endpoint: listening' 100 "$ms_pid"
	wait_for_line "$1" 'starting: listening' 100 "$ms_pid"
	ep=$(endpoint_pid)
	[ -n "$ep" ] || fail "no endpoint process"
}
# probe SOCKET NAME: one transaction of service smtpd.
probe() {
	"$MILTER_PROBE" -p "unix:$1" -m '{daemon_name}=smtpd' >"$T_DIR/$2.out" 2>&1 ||
		{ cat "$T_DIR/$2.out"; fail "$2: milter-probe exited $?"; }
}
stages_off() { sed -n 's/^negotiate: .*protocol 0x[0-9a-f]* //p' "$T_DIR/$1.out" | tr ' ' '\n' | grep -c '^NO'; }

start "$log"
wait_for_unix_socket "$ctl" 100 "$ms_pid"
pass "the endpoint listens, in process $ep"

probe "$main" calm
probe "$endp" endpoint
expect_line "$T_DIR/calm.out" '^eom: add header X-Stress: no \(source=none\)$' "the main socket: calm"
expect_line "$T_DIR/endpoint.out" '^eom: add header X-Stress: yes \(source=endpoint\)$' \
	"the endpoint: stressed, source=endpoint"
[ "$(stages_off endpoint)" -gt "$(stages_off calm)" ] ||
	fail "endpoint negotiated $(stages_off endpoint) stages off, main $(stages_off calm)"
pass "the endpoint negotiates fewer stages ($(stages_off endpoint) off against $(stages_off calm))"
expect_line "$log" "milter-stress\[$ep\]: PROBE00001: stress=yes\(endpoint\)" "the endpoint's log line"

# 4 idle sessions on each socket: one count of 8 against 10.
"$MILTER_PROBE" -p "unix:$main" --idle 4 --hold 60 -m '{daemon_name}=smtpd' >/dev/null 2>&1 &
idle1=$!
track_pid $idle1
"$MILTER_PROBE" -p "unix:$endp" --idle 4 --hold 60 -m '{daemon_name}=smtpd' >/dev/null 2>&1 &
idle2=$!
track_pid $idle2
wait_for_line "$log" 'stress on: source=sessions service=smtpd 8/10' 100 "$ms_pid"
pass "sessions of both sockets count in one level"
probe "$main" loaded
expect_line "$T_DIR/loaded.out" '^eom: add header X-Stress: yes \(source=sessions\)' \
	"the main socket's next session is stressed by the shared count"
kill $idle1 $idle2
wait_for_line "$log" 'stress off: source=sessions service=smtpd' 50 "$ms_pid"
pass "calm again once both loads stop"

# A reload reaches the endpoint.
"$CTL" -s "$ctl" reload >/dev/null || fail "reload failed"
wait_for_line "$log" "milter-stress\[$ep\]: reloaded configuration" 50 "$ms_pid"
pass "a reload of the main process reloads the endpoint"

# SIGTERM: both stop, status 0.
stop_daemon "$ms_pid" "$log" "main and endpoint"
wait_until "the endpoint outlived the main process" 100 "" gone "$ep"
pass "the endpoint stopped with the main process"

# The endpoint dies on its own: the main process stops, status 1.
start "$T_DIR/died.log"
kill -KILL "$ep"
wait_until "the main process did not stop after its endpoint died" 150 "" gone "$ms_pid"
wait "$ms_pid"
rc=$?
[ "$rc" -eq 1 ] || fail "exit status $rc after the endpoint died, expected 1"
expect_line "$T_DIR/died.log" "error: stress endpoint \(pid $ep\) killed by signal 9" \
	"the endpoint's death is logged"
expect_line "$T_DIR/died.log" "error: the stress endpoint is gone: stopping" \
	"and the main process stops with status 1"

# The main process killed: the endpoint dies with it.
start "$T_DIR/killed.log"
kill -KILL "$ms_pid"
wait_until "the endpoint outlived a killed main process" 100 "" gone "$ep"
pass "the endpoint dies with a killed main process"

# stress_socket = socket is refused at start.
"$MILTER_STRESS" -f -c "$conf" -p "unix:$endp" >"$T_DIR/same.out" 2>&1 && fail "same socket started"
expect_line "$T_DIR/same.out" "stress_socket and socket are both unix:$endp" "stress_socket = socket is refused"
