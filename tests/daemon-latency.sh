#!/bin/bash
# The latency source through the real daemon: a DNS server that never
# answers makes the early stages slow (connect waits session_stage_wait,
# MAIL FROM the rest of connect_budget); within a tick of the p90 passing
# stress_latency the next session is stressed with source=latency, from
# negotiation on (latency has no service, so negotiation knows); once the
# slow seconds have left the 10 s window, stress ends.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 90
need perl
SILENT_PORT=""
dns_silent_start SILENT_PORT "$T_DIR/silent.log"
sock="$T_DIR/ms.sock"
log="$T_DIR/ms.log"
cat >"$T_DIR/ms.conf" <<CONF
dns_servers = 127.0.0.1:$SILENT_PORT
connect_budget = 400ms
stress_sources = macro, latency
stress_latency = 100ms
stress_hold = 1s
connect normal name=listed dnsbl black.test reject 554 5.7.1 "listed"
body normal name=body body /viagra/ reject 550 5.7.1 "no"
CONF
chmod 644 "$T_DIR/ms.conf"
start_daemon "$log" "unix:$sock" -c "$T_DIR/ms.conf"

probe() { # NAME: one transaction, output in T_DIR/NAME.out
	"$MILTER_PROBE" --timeout 10 -p "unix:$sock" --client-addr 192.0.2.7 >"$T_DIR/$1.out" 2>&1 ||
		{ cat "$T_DIR/$1.out"; fail "$1: milter-probe exited $?"; }
}

probe calm
expect_line "$T_DIR/calm.out" '^eom: add header X-Stress: no \(source=none\)' "first session calm"
grep -q NOBODY "$T_DIR/calm.out" && fail "a calm session negotiated the body away"
for i in 1 2 3; do probe slow$i; done
t0=$EPOCHREALTIME
wait_for_line "$log" 'stress on: source=latency p90=[0-9]+ms/100ms' 30 "$ms_pid"
pass "slow DNS: stress on from the latency source, $(echo "$t0 $EPOCHREALTIME" | awk '{ printf "%.1f", $2 - $1 }') s after the slow sessions"
probe stressed
expect_line "$T_DIR/stressed.out" '^eom: add header X-Stress: yes \(source=latency\)' \
	"the next session is stressed by source=latency"
grep -q '^negotiate: .*NOBODY' "$T_DIR/stressed.out" ||
	{ cat "$T_DIR/stressed.out"; fail "the stressed session still negotiated the body"; }
pass "... from negotiation on: it asks for no body"
# Fast sessions from now on; the slow ones leave the window.
t0=$EPOCHREALTIME
for _ in $(seq 40); do
	probe fast
	has_line "$log" 'stress off: source=latency' && break
	sleep 0.5
done
wait_for_line "$log" 'stress off: source=latency' 50 "$ms_pid"
pass "stress off $(echo "$t0 $EPOCHREALTIME" | awk '{ printf "%.1f", $2 - $1 }') s after the stressed session (window 10 s, hold 1 s)"
probe calm-again
expect_line "$T_DIR/calm-again.out" '^eom: add header X-Stress: no \(source=none\)' "calm again"
# budget and breaker warnings are expected: the DNS server never answers
stop_daemon_status "$ms_pid" "$log" latency
