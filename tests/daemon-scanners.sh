#!/bin/bash
# The content scanners, each a real server on loopback: clamd with a
# signature this test writes, spamd with Debian's rules, rspamd with GTUBE
# (tests/scanners-lib.sh, tests/rspamd-lib.sh). For each: a clean message
# is accepted, a test pattern is refused with the configured reply and
# template, under stress the scanner is skipped and listed in skipped= (and
# rspamd, asked by a rule of mode stress, gets the stress personality's
# settings id: its symbol MS_LIGHT comes back); a message over
# scan_size_limit is not sent. Then 64 sessions at once: the concurrency
# caps hold (connections counted at the scanners), and with clamd killed,
# then spamd hung (SIGSTOP), no session errs, every message gets its
# verdict within eom_budget, the breaker opens and, once the scanner is
# back, closes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/scanners-lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/rspamd-lib.sh"

watchdog 300
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"

CONC=64
EOM_MS=3000
MARGIN_MS=700 # the milter's own time past eom_budget on a loaded, shared machine
CLAMD_CAP=2
SPAMD_CAP=3

clamd_start 4
spamd_start $SPAMD_CAP
rspamd_start
pass "clamd, spamd and rspamd answer on loopback"

metrics_port=$(free_port)
conf=$T_DIR/ms.conf
cat >"$conf" <<EOF
metrics_listen = 127.0.0.1:$metrics_port
clamd_socket = inet:$clamd_port@127.0.0.1
spamd_socket = inet:$spamd_port@127.0.0.1
rspamd_socket = $rspamd_endpoint
clamd_max_connections = $CLAMD_CAP
spamd_max_connections = $SPAMD_CAP
scanner_breaker_threshold = 3
scanner_breaker_time = 1s
clamd_budget = 2s
spamd_budget = 2s
rspamd_budget = 2s
eom_budget = \${stress?{1s}:{${EOM_MS}ms}}
scan_size_limit = \${stress?{256k}:{100k}}
rspamd_settings_id = \${stress?{milter-stress-light}:{}}
eom virus reject 554 5.7.1 "virus \$virus_name found"
eom header X-Test /^spamd\$/ and spam_score > 5 reject 550 5.7.1 "spamd says \$spam_score"
eom header X-Test /^rspamd\$/ and rspamd_action "reject" reject 550 5.7.2 "rspamd says \$rspamd_action"
eom stress rspamd_symbol MS_LIGHT tag X-Light "light"
eom any tag X-Spam-Score "\$spam_score"
EOF
sock=$T_DIR/ms.sock
log=$T_DIR/ms.log
start_daemon "$log" "unix:$sock" -c "$conf"

printf 'Hello,\r\na letter of no interest.\r\n' >"$T_DIR/clean"
printf 'Hello,\r\n%s\r\n' "$CLAMD_TEST_STRING" >"$T_DIR/virus"
printf 'Hello,\r\n%s\r\n' "$GTUBE" >"$T_DIR/gtube"
{ head -c 150000 /dev/zero | tr '\0' 'a' | fold -w 70 | sed 's/$/\r/'; printf '%s\r\n' "$CLAMD_TEST_STRING"; } >"$T_DIR/big-virus"

# probe NAME STRESS BODY X-TEST: one transaction, its output in T_DIR/NAME.out
probe() {
	"$MILTER_PROBE" --timeout 20 -p "unix:$sock" -m "{stress}=$2" --queue-id "Q$1" \
		--header 'Subject: test' --header "X-Test: $4" --body "$T_DIR/$3" >"$T_DIR/$1.out" 2>&1 ||
		{ cat "$T_DIR/$1.out"; fail "$1: milter-probe failed"; }
}

probe clean no clean none
expect_line "$T_DIR/clean.out" '^result: accept' "clean: accepted"
expect_line "$T_DIR/clean.out" 'add header X-Spam-Score: [0-9.-]+$' "clean: spamd's score in the tag"
wait_for_line "$log" 'Qclean: .* scan=clamd:clean,spamd:[0-9.-]+/5\.00,rspamd:no_action/' 50 $ms_pid
pass "clean: all three scanners asked, each said clean"

probe virus no virus none
expect_line "$T_DIR/virus.out" 'eom: reject 554 5\.7\.1 virus MilterStress\.Test\.Sig\.UNOFFICIAL found' "clamd: the test signature refused with \$virus_name"
probe spamd no gtube spamd
expect_line "$T_DIR/spamd.out" 'eom: reject 550 5\.7\.1 spamd says [0-9]{3,}\.[0-9]{2}$' "spamd: GTUBE refused with \$spam_score"
probe rspamd no gtube rspamd
expect_line "$T_DIR/rspamd.out" 'eom: reject 550 5\.7\.2 rspamd says reject$' "rspamd: GTUBE refused with \$rspamd_action"

probe stressed yes gtube spamd
expect_line "$T_DIR/stressed.out" '^result: accept' "stress: GTUBE not refused: the scanners of mode both did not run"
expect_line "$T_DIR/stressed.out" 'add header X-Stress: yes \(source=macro\); skipped=clamd,spamd,rspamd$' "stress: the scanners listed in skipped="
# GTUBE ends rspamd's scan before the settings' symbol: a clean message.
probe light yes clean none
expect_line "$T_DIR/light.out" 'add header X-Light: light$' "stress: rspamd got the settings id milter-stress-light (its symbol MS_LIGHT came back)"

probe big no big-virus none
expect_line "$T_DIR/big.out" '^result: accept' "over scan_size_limit: not sent, so not refused"
expect_line "$T_DIR/big.out" 'add header X-Stress: no; skipped=clamd,spamd,rspamd$' "over scan_size_limit: listed in skipped="

# load NAME N [FAULT-COMMAND]: CONC sessions at once, N messages (virus,
# GTUBE and clean); FAULT-COMMAND runs once 40 are answered. Checks: no
# error, a verdict for each.
load() {
	name=$1
	out=$T_DIR/$1.bench
	: >"$T_DIR/$1.tr"
	"$MILTER_PROBE" --timeout 20 -p "unix:$sock" -m '{stress}=no' --header 'Subject: load' \
		--header 'X-Test: spamd' --body "$T_DIR/gtube" --bench "$CONC,$2" \
		--bench-transcript "$T_DIR/$1.tr" >"$out" 2>&1 &
	lpid=$!
	track_pid $lpid
	if [ -n "${3:-}" ]; then
		i=0
		while [ "$(wc -l <"$T_DIR/$1.tr")" -lt 40 ]; do
			[ $i -ge 600 ] && { cat "$out"; fail "$name: the load does not start"; }
			sleep 0.05
			i=$((i + 1))
		done
		eval "$3"
	fi
	peak_c=0 peak_s=0
	while kill -0 $lpid 2>/dev/null; do
		c=$(scanner_connections "$clamd_port") s=$(scanner_connections "$spamd_port")
		[ "$c" -gt "$peak_c" ] && peak_c=$c
		[ "$s" -gt "$peak_s" ] && peak_s=$s
		sleep 0.02
	done
	wait $lpid || { cat "$out"; fail "$name: milter-probe exited $?"; }
	bench=$(grep '^BENCH ' "$out")
	case $bench in
	*" n=$2 errors=0 "*) ;;
	*) cat "$out"; fail "$name: expected n=$2 errors=0 in '$bench'" ;;
	esac
	verdicts=$(grep -Ec 'result: (accept|reject at eom)' "$T_DIR/$1.tr")
	[ "$verdicts" = "$2" ] || fail "$name: $verdicts verdicts for $2 messages"
	pass "$name: $2 messages, $CONC at once, no error, each with its verdict; $(sed 's/^BENCH //' <<<"$bench")"
}

# spamd takes about 0.4 s a message here: with 64 at once most wait for one
# of its connections until spamd_budget and go on with skipped=spamd.
load caps 150
[ "$peak_c" -le $CLAMD_CAP ] && [ "$peak_s" -le $SPAMD_CAP ] ||
	fail "caps: $peak_c connections at clamd (cap $CLAMD_CAP), $peak_s at spamd (cap $SPAMD_CAP)"
[ "$peak_s" -ge 1 ] || fail "caps: no connection seen at spamd"
pass "caps: at most $peak_c connections seen at clamd (cap $CLAMD_CAP) and $peak_s at spamd (cap $SPAMD_CAP)"
refused=$(grep -c 'reject 550 5\.7\.1 spamd says' "$T_DIR/caps.tr")
skipped=$(grep -Ec 'skipped=[a-z,]*spamd[a-z,]* \| eom: add header X-Spam-Score: +\| eom: accept' "$T_DIR/caps.tr")
[ $((refused + skipped)) = 150 ] && [ "$refused" -ge 1 ] ||
	fail "caps: $refused refused by spamd's rule and $skipped with skipped=spamd, of 150"
pass "caps: $refused refused by spamd, $skipped went on with skipped=spamd (its budget spent waiting)"
expect_line "$log" 'spamd scan timeout after [0-9]+ ms: all 3 connections busy until the deadline' "caps: a scan that found no free connection says so"
# A scan that waited most of its budget for a slot does not count against
# spamd (check_scan tests it); on a loaded machine spamd itself may take
# longer than its budget and its breaker open: then it is said, not failed.
grep -q 'scanner spamd suspended' "$log" &&
	pass "caps: (spamd itself ran out of its budget three times in a row: its breaker opened)"

# Killed: connections refused at once.
load killed 150 'kill -KILL $clamd_pid; wait $clamd_pid 2>/dev/null'
wait_for_line "$log" 'scanner clamd suspended after 3 scans in a row' 50 $ms_pid
expect_line "$log" 'clamd scan error after [0-9]+ ms: connect to inet:[0-9]+@127\.0\.0\.1: Connection refused' "killed: the failed scans are logged with their reason"
expect_line "$T_DIR/killed.tr" 'X-Stress: no; skipped=clamd' "killed: messages went on with skipped=clamd"
# Back on the same port: the next scan after scanner_breaker_time probes it.
clamd -c "$T_DIR/clamd/clamd.conf" >>"$T_DIR/clamd/stdout" 2>&1 &
clamd_pid=$!
track_pid $clamd_pid
wait_until "clamd does not come back" 300 $clamd_pid clamd_ping
sleep 1.2
probe back no virus none
expect_line "$T_DIR/back.out" 'virus MilterStress' "killed: clamd back, the probe scan refused the virus"
expect_line "$log" 'scanner clamd resumed' "killed: the breaker closed"

# Hung: spamd and its children stopped; connections are accepted by the
# kernel, nothing answers.
# spamd_answers NAME: a GTUBE message until spamd's rule refuses it (its
# breaker, if the loads above opened it, closes on the first probe).
spamd_answers() {
	i=0
	until probe "$1" no gtube spamd && grep -q 'spamd says' "$T_DIR/$1.out"; do
		i=$((i + 1))
		[ $i -ge 15 ] && { cat "$T_DIR/$1.out"; fail "$1: spamd does not answer"; }
		sleep 1
	done
}
spamd_answers spamready
opened=$(grep -c 'scanner spamd suspended' "$log")
load hung 200 'for p in $(spamd_all_pids); do kill -STOP $p; done'
wait_until "hung: the breaker did not open" 50 $ms_pid \
	test "$(grep -c 'scanner spamd suspended after 3 scans in a row' "$log")" -gt "$opened"
expect_line "$log" 'spamd scan timeout after [0-9]+ ms' "hung: the scans that waited are logged as timeouts"
for p in $(spamd_all_pids); do kill -CONT $p; done
sleep 1.2
spamd_answers spamback
wait_for_line "$log" 'scanner spamd resumed' 50 $ms_pid
pass "hung: spamd back, the breaker closed"

# The scanners' series at /metrics.
curl -s -m 5 "http://127.0.0.1:$metrics_port/metrics" >"$T_DIR/metrics" || fail "no /metrics"
for want in 'scans_total\{scanner="clamd",result="ok"\} [1-9]' \
	'scans_total\{scanner="clamd",result="suspended"\} [1-9]' \
	'scans_total\{scanner="spamd",result="timeout"\} [1-9]' \
	'scans_total\{scanner="rspamd",result="ok"\} [1-9]' \
	"scanner_connections_peak\\{scanner=\"spamd\"\\} [1-$SPAMD_CAP]\$" \
	'scanner_connections\{scanner="clamd"\} 0$'; do
	expect_line "$T_DIR/metrics" "^milter_stress_$want" "metrics: $want"
done

# The milter's own time on each message (ms= of its log lines).
mmax=$(sed -n 's/.* ms=\([0-9]*\)\.[0-9]*$/\1/p' "$log" | sort -n | tail -n 1)
[ -n "$mmax" ] && [ "$mmax" -le $((EOM_MS + MARGIN_MS)) ] ||
	fail "the milter spent ${mmax:-?} ms on a message, more than eom_budget ($EOM_MS ms) + $MARGIN_MS ms"
pass "the milter spent at most $mmax ms on any message (eom_budget $EOM_MS ms)"
if grep -Eq 'Sanitizer|runtime error|(fatal|panic):' "$log"; then
	cat "$log"
	fail "the milter log has a sanitizer report or a fatal error"
fi
rspamd_expect_offline
stop_daemon_status "$ms_pid" "$log" "milter-stress"
expect_line "$log" 'statistics: .* clamd: ok=[1-9][0-9]* timeout=[0-9]+ error=[1-9][0-9]* peak=[1-2] spamd: ok=[1-9]' \
	"the statistics line at stop counts each scanner's scans"
exit 0
