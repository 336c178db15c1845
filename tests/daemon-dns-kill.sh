#!/bin/bash
# The DNS server dies in the middle of a load. 128 sessions at once, every
# one from a new IPv6 client (so every DNSBL lookup misses the cache) against
# a dnsbl rule at connect; dnsmasq lists every client, so sessions are
# rejected while it lives. Then, mid-load:
#  1. dnsmasq is killed (SIGKILL: its port is closed, every query is refused
#     at once);
#  2. after a reload that points the milter at a new dnsmasq, that one is
#     stopped (SIGSTOP: it hangs, queries go unanswered).
# Each time: no protocol error, every transaction comes back with a verdict,
# the milter spends at most connect_budget (plus a little) on any message,
# the log shows the breaker suspending the zone, and the load completes.
#
# Seen from the MTA a session may wait longer: libmilter's worker pool hands
# a command that arrives while its idle workers are all being woken to the
# next worker that finishes, and while the server hangs, each of them is
# busy for up to connect_budget. So the slowest transaction may take about
# twice connect_budget; the test allows that plus a margin for a loaded
# machine, and still far less than Postfix's milter_command_timeout (30 s).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 90
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"

CONC=128
N=${DNS_KILL_N:-4000}
BUDGET_MS=500 # connect_budget: well below what c-ares alone would wait (2 x 750 ms)
MARGIN_MS=1500 # queueing of 128 sessions on a small, shared machine
MILTER_MS=$((BUDGET_MS + 400)) # the milter's own time on a message
THRESHOLD=5

# dns_up VAR: a dnsmasq that lists every name under bl.test (127.0.0.2);
# its pid is in dns_pid.
dns_up() {
	dns_start "$1" --address=/bl.test/127.0.0.2
}

conf=$T_DIR/ms.conf
write_conf() { # DNS-PORT
	cat >"$conf.new" <<EOF
dns_servers = 127.0.0.1:$1
connect_budget = ${BUDGET_MS}ms
dnsbl_breaker_threshold = $THRESHOLD
dnsbl_breaker_time = 1h
connect dnsbl bl.test=127.0.0.2 reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
EOF
	mv "$conf.new" "$conf" || fail "cannot write $conf"
}

PORT1=""
dns_up PORT1
dns1=$dns_pid
write_conf "$PORT1"
sock=$T_DIR/ms.sock
log=$T_DIR/ms.log
start_daemon "$log" "unix:$sock" -c "$conf"

# phase NAME SIGNAL DNS-PID BASE: a load from clients BASE::k; SIGNAL to the
# DNS server once the load is well under way.
phase() {
	name=$1
	out=$T_DIR/$1.out
	"$MILTER_PROBE" --timeout 10 -p "unix:$sock" --client-addr "$4" --bench-vary-client \
		-m '{stress}=no' --bench "$CONC,$N" --bench-transcript "$T_DIR/$1.tr" >"$out" 2>&1 &
	load=$!
	track_pid $load
	# Under way: a few hundred sessions answered by the live server.
	i=0
	while [ "$(wc -l 2>/dev/null <"$T_DIR/$1.tr" || echo 0)" -lt 300 ]; do
		[ $i -ge 300 ] && { cat "$out"; fail "$name: the load does not start"; }
		kill -0 $load 2>/dev/null || { cat "$out"; fail "$name: the load ended before the fault"; }
		sleep 0.05
		i=$((i + 1))
	done
	before=$(wc -l <"$T_DIR/$1.tr")
	kill "-$2" "$3" || fail "$name: cannot signal the DNS server"
	wait $load
	rc=$?
	cat "$out"
	[ $rc = 0 ] || fail "$name: milter-probe exited $rc"
	bench=$(grep '^BENCH ' "$out")
	case $bench in
	*" n=$N errors=0 "*) ;;
	*) fail "$name: expected n=$N errors=0 in '$bench'" ;;
	esac
	[ "$(wc -l <"$T_DIR/$1.tr")" = "$N" ] || fail "$name: $(wc -l <"$T_DIR/$1.tr") transcript lines, expected $N"
	max=$(sed -n 's/.* max=\([0-9]*\)\..*/\1/p' <<<"$bench")
	[ "$max" -le $((2 * BUDGET_MS + MARGIN_MS)) ] ||
		fail "$name: the slowest transaction took $max ms, more than twice connect_budget ($BUDGET_MS ms) + $MARGIN_MS ms"
	rejected=$(grep -c ': reject 554 5\.7\.1 .* blocked using bl\.test' "$T_DIR/$1.tr")
	[ "$rejected" -ge 200 ] ||
		fail "$name: $rejected clients rejected, expected most of the $before before the fault"
	rest=$((N - rejected))
	[ "$rest" -gt 0 ] || fail "$name: every client was rejected: the fault changed nothing"
	unlisted=$(grep -c 'add header X-Stress: no; skipped=dnsbl | eom: accept | result: accept$' "$T_DIR/$1.tr")
	[ "$unlisted" = "$rest" ] ||
		fail "$name: $rest sessions not rejected, but only $unlisted went on with 'skipped=dnsbl'"
	pass "$name: $N sessions, $CONC at once, none lost, no error; DNS server stopped (SIG$2) after $before; $rejected rejected while it answered, $rest went on with skipped=dnsbl; slowest ${max} ms at the MTA (connect_budget $BUDGET_MS ms)"
}

# 1. Killed: the breaker opens on refused lookups, not only on timeouts.
phase killed KILL "$dns1" 2001:db8:1::
wait_for_line "$log" 'dnsbl zone bl\.test suspended after [0-9]+ lookups in a row' 50 $ms_pid
failed=$(grep -c 'stage=connect DNS lookup failed: bl\.test (.*bl\.test: ' "$log")
all_failed=$(grep -c 'DNS lookup failed' "$log")
[ "$failed" = "$all_failed" ] && [ "$failed" -gt 0 ] || {
	grep 'DNS lookup failed' "$log" | head -n 3
	fail "killed: $all_failed 'DNS lookup failed' lines, $failed of them name the zone and the error"
}
pass "killed: the breaker suspended bl.test; $failed lookups failed before it did, each logged with its zone and error"
[ "$failed" -lt $((CONC * 2)) ] ||
	fail "killed: $failed failed lookups: the breaker did not stop them"

# 2. Hung: a new server, taken in by a reload (a new snapshot has a breaker
# of its own), then stopped without closing its port.
PORT2=""
dns_up PORT2
dns2=$dns_pid
at_exit "kill -CONT $dns2"
write_conf "$PORT2"
kill -USR1 $ms_pid
wait_for_line "$log" 'reloaded configuration from' 50 $ms_pid
phase hung STOP "$dns2" 2001:db8:2::
wait_for_line "$log" "dnsbl zone bl\\.test suspended after [0-9]+ lookups in a row" 50 $ms_pid
n_open=$(grep -c 'dnsbl zone bl\.test suspended' "$log")
[ "$n_open" = 2 ] || fail "hung: $n_open breaker openings logged, expected 2"
expect_line "$log" 'stage=connect budget ran out: bl\.test after [0-9]+ ?ms' "hung: the log says the connect budget ran out on bl.test"
timeouts=$(grep -c 'stage=connect budget ran out' "$log")
pass "hung: the breaker suspended bl.test after $timeouts lookups ran out of budget"
[ "$timeouts" -lt $((CONC * 2)) ] || fail "hung: $timeouts timeouts: the breaker did not stop them"

# The milter's own time on each message (ms= of its log lines).
mmax=$(sed -n 's/.* ms=\([0-9]*\)\.[0-9]*$/\1/p' "$log" | sort -n | tail -n 1)
if [ -z "$mmax" ] || [ "$mmax" -gt "$MILTER_MS" ]; then
	fail "the milter spent ${mmax:-?} ms on a message, more than $MILTER_MS ms (connect_budget $BUDGET_MS ms + 400 ms)"
fi
pass "the milter spent at most $mmax ms on any message (connect_budget $BUDGET_MS ms)"
if grep -Eq 'Sanitizer|runtime error|(fatal|panic):' "$log"; then
	cat "$log"
	fail "the milter log has a sanitizer report or a fatal error"
fi
stop_daemon_status "$ms_pid" "$log" "milter-stress"
expect_line "$log" 'statistics: messages=[0-9]+ .* skipped: dnsbl=[1-9]' "the skips are counted"
grep 'statistics:' "$log" | tail -n 1
exit 0
