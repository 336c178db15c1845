#!/bin/bash
# metrics_listen through the real daemon: after an accept, a reject, a
# tempfail and a skip under stress the series count exactly those; a reload
# keeps them; promtool accepts a real scrape; anything but GET /metrics is
# 404; a port already in use stops the start, naming the address and the
# reason; a bad metrics_listen names file:line; scrapes during a load of
# 256 sessions at once answer.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 120
need curl
need promtool
port=$(free_port)
sock="$T_DIR/ms.sock"
cat >"$T_DIR/ms.conf" <<EOF
metrics_listen = 127.0.0.1:$port
connect name=ok client 192.0.2.77 accept
connect name=blocked client 192.0.2.66 reject 554 5.7.1 "blocked"
rcpt name=later recipient @slow.example tempfail 450 4.2.0 "later"
eom name=lottery body /lottery/ reject 550 5.7.1 "no"
EOF
start_daemon "$T_DIR/ms.log" "unix:$sock" -c "$T_DIR/ms.conf"
url="http://127.0.0.1:$port/metrics"
wait_until "metrics on 127.0.0.1:$port" 100 "$ms_pid" tcp_open "$port"
expect_line "$T_DIR/ms.log" "serving metrics on http://127\.0\.0\.1:$port/metrics" "start-up names the URL"

scrape() { curl -sS --max-time 10 -o "$T_DIR/$1.prom" "$url" || fail "scrape $1: curl exited $?"; }

# has FILE SERIES VALUE: the sample is exactly there.
has() {
	got=$(awk -v s="$2" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' "$1")
	[ "$got" = "$3" ] || fail "$2: expected $3, got '${got:-(none)}'"
}

probe() {
	"$MILTER_PROBE" -p "unix:$sock" "$@" >"$T_DIR/probe.out" 2>&1 ||
		{ cat "$T_DIR/probe.out"; fail "milter-probe $*: exited $?"; }
}

probe --client-addr 192.0.2.77 -m '{stress}=no'
probe --client-addr 192.0.2.66 -m '{stress}=no'
probe --rcpt '<u@slow.example>' -m '{stress}=no'
probe -m '{stress}=yes'
expect_line "$T_DIR/probe.out" '^eom: add header X-Stress: yes \(source=macro\); skipped=body$' \
	"the stressed message skipped the body rule"

scrape first
P=milter_stress_
while read -r series value; do
	has "$T_DIR/first.prom" "$series" "$value"
done <<EOF
${P}sessions_total{personality="normal",source="macro"} 3
${P}sessions_total{personality="stress",source="macro"} 1
${P}sessions_total{personality="normal",source="none"} 0
${P}sessions 0
${P}sessions_refused_total 0
${P}verdicts_total{stage="connect",action="accept",rule="ok"} 1
${P}verdicts_total{stage="connect",action="reject",rule="blocked"} 1
${P}verdicts_total{stage="rcpt",action="tempfail",rule="later"} 1
${P}verdicts_total{stage="eom",action="reject",rule="lottery"} 0
${P}verdicts_total{stage="eom",action="accept",rule=""} 1
${P}skipped_total{kind="body"} 1
${P}skipped_total{kind="dnsbl"} 0
${P}stage_duration_seconds_count{stage="connect"} 4
${P}config_generation 1
${P}config_reload_failures_total 0
EOF
[ "$(grep -c "^${P}verdicts_total" "$T_DIR/first.prom")" = 5 ] ||
	{ grep "^${P}verdicts_total" "$T_DIR/first.prom"; fail "expected 5 verdict series"; }
grep -Eq "^${P}build_info\{version=\"[^\"]+\"\} 1$" "$T_DIR/first.prom" || fail "no build_info"
pass "the counters equal the transactions sent"

promtool check metrics <"$T_DIR/first.prom" >"$T_DIR/promtool.out" 2>&1 ||
	{ cat "$T_DIR/promtool.out"; fail "promtool check metrics"; }
pass "promtool check metrics accepts a scrape"

ctype=$(curl -sS -o /dev/null -w '%{content_type}' "$url")
case $ctype in "text/plain; version=0.0.4"*) ;; *) fail "content type '$ctype'" ;; esac
for what in "/" "/metrics/x" "/favicon.ico"; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$what")
	[ "$code" = 404 ] || fail "GET $what: $code, expected 404"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url")
[ "$code" = 404 ] || fail "POST /metrics: $code, expected 404"
pass "GET /metrics only"

# A reload: counters kept, the generation counted, a failed one too.
kill -USR1 "$ms_pid"
wait_until "no reload" 100 "$ms_pid" grep -q 'reloaded configuration' "$T_DIR/ms.log"
scrape reloaded
has "$T_DIR/reloaded.prom" "${P}config_generation" 2
has "$T_DIR/reloaded.prom" "${P}verdicts_total{stage=\"connect\",action=\"reject\",rule=\"blocked\"}" 1
cp "$T_DIR/ms.conf" "$T_DIR/good.conf"
echo "connect bogus-check x accept" >>"$T_DIR/ms.conf"
kill -USR1 "$ms_pid"
wait_until "no failed reload" 100 "$ms_pid" grep -q 'reload failed' "$T_DIR/ms.log"
cp "$T_DIR/good.conf" "$T_DIR/ms.conf"
scrape failed
has "$T_DIR/failed.prom" "${P}config_reload_failures_total" 1
has "$T_DIR/failed.prom" "${P}config_generation" 2
pass "a reload keeps the counters and is counted"

# The port is in use (by the daemon above): a second daemon refuses to start.
sed "s/^metrics_listen.*/metrics_listen = 127.0.0.1:$port/" "$T_DIR/ms.conf" >"$T_DIR/busy.conf"
rc=0
timeout 20 "$MILTER_STRESS" -f -c "$T_DIR/busy.conf" -p "unix:$T_DIR/busy.sock" \
	>"$T_DIR/busy.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || { cat "$T_DIR/busy.log"; fail "started on a port in use (exit $rc)"; }
expect_line "$T_DIR/busy.log" "metrics_listen=127\.0\.0\.1:$port: Address already in use" \
	"the refusal names the address and the reason"

# A bad value names the file and the line.
printf 'max_sessions = 10\nmetrics_listen = 9890\n' >"$T_DIR/bad.conf"
"$MILTER_STRESS_BIN" -n -c "$T_DIR/bad.conf" >"$T_DIR/bad.out" 2>&1 && fail "-n accepted metrics_listen = 9890"
expect_line "$T_DIR/bad.out" 'bad\.conf:2: .*metrics_listen.*expected HOST:PORT or \[IPV6\]:PORT' \
	"a bad metrics_listen names file:line"

# Scrapes while 256 sessions run at once.
"$MILTER_PROBE" --timeout 30 -p "unix:$sock" --bench 256,8192 >"$T_DIR/bench.out" 2>&1 &
bench_pid=$!
track_pid $bench_pid
n=0
while kill -0 $bench_pid 2>/dev/null && [ $n -lt 100 ]; do
	n=$((n + 1))
	scrape load$n
	promtool check metrics <"$T_DIR/load$n.prom" >"$T_DIR/promtool.out" 2>&1 ||
		{ cat "$T_DIR/promtool.out"; fail "promtool on scrape $n under load"; }
	sleep 0.05
done
wait $bench_pid || { cat "$T_DIR/bench.out"; fail "the load failed"; }
grep -q ' n=8192 errors=0 ' "$T_DIR/bench.out" || { cat "$T_DIR/bench.out"; fail "load errors"; }
[ $n -ge 1 ] || fail "the load ended before the first scrape"
scrape after
has "$T_DIR/after.prom" "${P}sessions_total{personality=\"normal\",source=\"none\"}" 8192
has "$T_DIR/after.prom" "${P}sessions" 0
peak=$(awk '$1 == "milter_stress_sessions_peak" { print $2 }' "$T_DIR/after.prom")
[ "$peak" -gt 1 ] || fail "sessions_peak $peak after 256 at once"
pass "$n scrapes during 256 sessions at once, all valid; the load had no error"
