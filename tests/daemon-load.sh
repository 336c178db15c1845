#!/bin/bash
# The own stress signal through the real daemon: idle sessions of service
# smtpd (milter-probe --idle, {daemon_name}=smtpd) pushed to 80 % of a small
# limit make the next session stressed with source=sessions, and it
# negotiates fewer stages than a calm one; the status shows the level; once
# the idle sessions are gone, stress ends within stress_hold + 1 s, each
# transition logged once. service_limits = auto reads postconf -M (a
# stand-in postconf that prints a real transcript), a name master.cf does
# not send is a warning naming file:line, no postconf falls back to the
# documented default and says so, one that hangs is killed after 10 s, and
# a limit of zero is refused at load.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 150
CTL="$top_builddir/tools/milter-stress-ctl"
sock="$T_DIR/ms.sock"
ctl="$T_DIR/control"
conf="$T_DIR/ms.conf"
log="$T_DIR/ms.log"
hold_s=2
# The calm personality reads headers and the body; the stressed one neither.
cat >"$conf" <<EOF
control_socket = $ctl
stress_sources = macro, sessions
service_limits = smtpd=10
stress_hold = ${hold_s}s
header normal name=subject header subject /buy now/ reject 550 5.7.1 "no"
body normal name=body body /viagra/ reject 550 5.7.1 "no"
EOF
chmod 644 "$conf"
start_daemon "$log" "unix:$sock" -c "$conf"
wait_for_unix_socket "$ctl" 100 "$ms_pid"

# probe NAME: one transaction of service smtpd; output in T_DIR/NAME.out.
probe() {
	"$MILTER_PROBE" -p "unix:$sock" -m '{daemon_name}=smtpd' >"$T_DIR/$1.out" 2>&1 ||
		{ cat "$T_DIR/$1.out"; fail "$1: milter-probe exited $?"; }
}
# The number of NO* (stage turned off) flags a probe's negotiation shows.
stages_off() { sed -n 's/^negotiate: .*protocol 0x[0-9a-f]* //p' "$T_DIR/$1.out" | tr ' ' '\n' | grep -c '^NO'; }

probe calm
expect_line "$T_DIR/calm.out" '^eom: add header X-Stress: no \(source=none\)$' "calm below the limit"
calm_off=$(stages_off calm)

# 8 of 10: stress_enter (80 %).
"$MILTER_PROBE" -p "unix:$sock" --idle 8 --hold 60 -m '{daemon_name}=smtpd' \
	>"$T_DIR/idle.out" 2>&1 &
idle=$!
track_pid $idle
wait_for_line "$log" 'stress on: source=sessions service=smtpd 8/10 \(80%\)' 100 "$ms_pid"
pass "8 idle sessions of smtpd: stress on, logged with its figures"
probe stressed
expect_line "$T_DIR/stressed.out" '^eom: add header X-Stress: yes \(source=sessions\)' \
	"the next session is stressed by source=sessions"
stressed_off=$(stages_off stressed)
[ "$stressed_off" -gt "$calm_off" ] ||
	fail "a stressed session turned off $stressed_off stages, a calm one $calm_off"
grep -q 'NOBODY' "$T_DIR/stressed.out" || fail "the stressed session still asks for the body"
pass "it negotiates fewer stages than a calm one ($stressed_off against $calm_off off)"
expect_line "$log" 'stress=yes\(sessions\)' "the log line says source sessions"
status=$("$CTL" -s "$ctl" status) || fail "status: $status"
printf '%s\n' "$status" | grep -Eq 'sessions smtpd +8/10 80% stressed since' ||
	fail "status: $status"
pass "status shows the level of smtpd"

# The idle sessions end: calm again within stress_hold + 1 s.
kill "$idle"
t0=$EPOCHREALTIME
wait_for_line "$log" 'stress off: source=sessions service=smtpd 0/10' $(((hold_s + 1) * 10)) "$ms_pid"
took=$(echo "$t0 $EPOCHREALTIME" | awk '{ printf "%.2f", $2 - $1 }')
probe recovered
expect_line "$T_DIR/recovered.out" '^eom: add header X-Stress: no \(source=none\)$' \
	"calm again $took s after the load stopped (stress_hold ${hold_s}s)"
[ "$(grep -c 'stress on:' "$log")" -eq 1 ] && [ "$(grep -c 'stress off:' "$log")" -eq 1 ] ||
	fail "transitions logged: $(grep 'stress o' "$log")"
pass "one line per transition"
stop_daemon "$ms_pid" "$log" main

# service_limits = auto, from a stand-in postconf printing a real transcript.
mkdir "$T_DIR/bin"
cat >"$T_DIR/bin/postconf" <<EOF
#!/bin/sh
case "\$*" in
-M) cat "$top_srcdir/tests/postconf-M.txt" ;;
"-h default_process_limit") echo 50 ;;
*) exit 1 ;;
esac
EOF
chmod 755 "$T_DIR/bin/postconf"
printf 'stress_sources = macro, sessions\nservice_limits = auto\n' >"$T_DIR/auto.conf"
printf '# limits by hand\nservice_limits = smtpd=10, nosuch=3\nstress_sources = sessions\n' >"$T_DIR/named.conf"
chmod 644 "$T_DIR/auto.conf" "$T_DIR/named.conf"

PATH="$T_DIR/bin:$PATH" start_daemon "$T_DIR/auto.log" "unix:$sock" -c "$T_DIR/auto.conf"
wait_for_line "$T_DIR/auto.log" 'service_limits = auto: service submission \(inet\): daemon name submission, limit 20' 50 "$ms_pid"
expect_line "$T_DIR/auto.log" 'service smtpd \(pass\): no milter_macro_daemon_name, counted as smtpd, limit 50' \
	"auto: postscreen's pass service counts as smtpd, with default_process_limit"
stop_daemon "$ms_pid" "$T_DIR/auto.log" auto

PATH="$T_DIR/bin:$PATH" start_daemon "$T_DIR/named.log" "unix:$sock" -c "$T_DIR/named.conf"
wait_for_line "$T_DIR/named.log" "warning: $T_DIR/named.conf:2: service_limits: no smtpd service in master.cf has -o milter_macro_daemon_name=nosuch" 50 "$ms_pid"
pass "a service master.cf does not name is a warning at file:line"
grep -q 'milter_macro_daemon_name=smtpd' "$T_DIR/named.log" && fail "smtpd itself warned about"
stop_daemon_status "$ms_pid" "$T_DIR/named.log" named

PATH="/nonexistent" start_daemon "$T_DIR/nopostconf.log" "unix:$sock" -c "$T_DIR/auto.conf"
wait_for_line "$T_DIR/nopostconf.log" 'service_limits = auto: cannot run postconf \(not installed\?\); counting every session as smtpd against 100' 50 "$ms_pid"
pass "no postconf: auto falls back to smtpd=100 and says so"
stop_daemon_status "$ms_pid" "$T_DIR/nopostconf.log" "no postconf"

# A postconf that hangs: killed after 10 s, the start goes on with the fallback.
mkdir "$T_DIR/hung"
printf '#!/bin/sh
exec sleep 600
' >"$T_DIR/hung/postconf"
chmod 755 "$T_DIR/hung/postconf"
rm -f "${sock#unix:}"
t0=$EPOCHREALTIME
PATH="$T_DIR/hung:$PATH" start_daemon "$T_DIR/hung.log" "unix:$sock" -c "$T_DIR/auto.conf"
took=$(echo "$t0 $EPOCHREALTIME" | awk '{ printf "%.1f", $2 - $1 }')
wait_for_line "$T_DIR/hung.log" 'service_limits = auto: postconf -M gave no answer within 10 s; counting every session as smtpd against 100' 30 "$ms_pid"
pass "a hung postconf is killed after 10 s (the daemon listened after $took s) and auto falls back"
pgrep -f "$T_DIR/hung/postconf" >/dev/null && fail "the hung postconf is still running"
stop_daemon_status "$ms_pid" "$T_DIR/hung.log" "hung postconf"

"$MILTER_STRESS_BIN" -n -c /dev/null -o service_limits=smtpd=0 >"$T_DIR/zero.out" 2>&1 &&
	fail "a limit of zero loaded"
expect_line "$T_DIR/zero.out" 'service_limits=smtpd=0: service_limits: the limit of smtpd must be a number from 1' \
	"a limit of zero is refused at load"
