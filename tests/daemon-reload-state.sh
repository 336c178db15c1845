#!/bin/bash
# What a reload (SIGUSR1) keeps: the DNSBL resolver is the daemon's state,
# not the configuration's, so a new snapshot does not start it afresh.
#  a. A zone the breaker suspended stays suspended after a reload: no
#     "resumed" line, the next lookup is skipped at once and sends nothing.
#  b. An answer in the cache is still there after a reload: the next
#     session's lookup is a cache hit (the statistics line's cache_hits
#     grows) and the DNS server sees no second query.
#  c. A reload that points dns_servers at another server: the next lookup
#     goes there, and the first server sees nothing more.
# Also: a reload with a server list c-ares refuses fails and changes nothing.
#
# Every address is on 127.0.0.0/8 or only a string in the milter dialogue
# (the clients, in TEST-NET-1); every probe has a timeout.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 60
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"

n=0
# probe SOCK ADDR: one transaction from client ADDR; sets out (the
# transcript) and ms (how long it took).
probe() {
	n=$((n + 1))
	out="$T_DIR/case$n.out"
	p_t0=$(date +%s%N)
	"$MILTER_PROBE" --timeout 10 -p "unix:$1" --client-addr "$2" --client-name client.example \
		-m '{stress}=no' >"$out" 2>&1 || { cat "$out"; fail "milter-probe exited $?"; }
	ms=$((($(date +%s%N) - p_t0) / 1000000))
}

# reload PID LOG: SIGUSR1, and wait until the LOG says the reload is done
# (the how-manyth "reloaded" line, so that a reload is not taken for the
# one before it).
reloads() { grep -c 'reloaded configuration from' "$1"; }
reloaded() { [ "$(reloads "$1")" -ge "$2" ]; } # LOG N: N reloads logged
reload() {
	r_want=$(($(reloads "$2") + 1))
	kill -USR1 "$1" || fail "the daemon is gone"
	wait_until "no reload logged in $2" 100 "$1" reloaded "$2" "$r_want"
}

# stat_field LOG NAME: NAME's value on the last statistics line of LOG.
stat_field() {
	grep 'statistics:' "$1" | tail -n 1 | sed -n "s/.* $2=\([0-9]*\).*/\1/p"
}

# stats PID LOG: a statistics line (SIGUSR1 logs one before it reloads).
stats() {
	reload "$1" "$2"
}

# ---- a. a suspended zone stays suspended ----
SILENT_PORT=""
dns_silent_start SILENT_PORT "$T_DIR/silent.log"
cat >"$T_DIR/a.conf" <<CONF
dns_servers = 127.0.0.1:$SILENT_PORT
connect_budget = 300ms
dnsbl_breaker_threshold = 2
dnsbl_breaker_time = 1h
connect dnsbl dead.test reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
CONF
start_daemon "$T_DIR/a.log" "unix:$T_DIR/a.sock" -c "$T_DIR/a.conf"
a_pid=$ms_pid
for a in 192.0.2.41 192.0.2.42; do
	probe "$T_DIR/a.sock" $a
	expect_line "$out" '^eom: add header X-Stress: no; skipped=dnsbl$' "a: $a: the silent server costs the budget ($ms ms)"
done
wait_for_line "$T_DIR/a.log" 'dnsbl zone dead\.test suspended after 2 lookups' 50
pass "a: the breaker suspended dead.test"

reload "$a_pid" "$T_DIR/a.log"
pass "a: reloaded"
probe "$T_DIR/a.sock" 192.0.2.43
expect_line "$out" '^eom: add header X-Stress: no; skipped=dnsbl$' "a: after the reload the lookup is still skipped"
[ "$ms" -lt 300 ] || { cat "$out"; fail "a: the transaction took $ms ms: the lookup waited, the zone is not suspended any more"; }
pass "a: the transaction took $ms ms, less than connect_budget (300 ms)"
sleep 0.3
if grep -q '^43\.2\.0\.192\.dead\.test$' "$T_DIR/silent.log"; then
	cat "$T_DIR/silent.log"
	fail "a: 43.2.0.192.dead.test was sent after the reload"
fi
pass "a: nothing was sent for the suspended zone after the reload"
if grep -q 'dnsbl zone dead\.test resumed' "$T_DIR/a.log"; then
	cat "$T_DIR/a.log"
	fail "a: the reload resumed the zone"
fi
pass "a: no 'resumed' line"
stats "$a_pid" "$T_DIR/a.log"
[ "$(stat_field "$T_DIR/a.log" suspended_zones)" = 1 ] ||
	{ grep statistics: "$T_DIR/a.log"; fail "a: the statistics line does not say suspended_zones=1"; }
pass "a: the statistics line says suspended_zones=1"

# bl_server VAR OCTET TXT: a dnsmasq that logs its queries and lists
# 192.0.2.OCTET in bl.test with the reason TXT, nothing else; sets VAR to
# its port and VAR_LOG to its log.
bl_server() {
	dns_start "$1" --log-queries --local-ttl=300 --local=/bl.test/ \
		"--host-record=$2.2.0.192.bl.test,127.0.0.2" "--txt-record=$2.2.0.192.bl.test,$3"
	printf -v "$1_LOG" '%s' "$T_DIR/dnsmasq-${!1}.log"
}

# ---- b. a cached answer stays cached ----
DNS1=""
DNS1_LOG=""
bl_server DNS1 10 'first server'
cat >"$T_DIR/b.conf" <<CONF
dns_servers = 127.0.0.1:$DNS1
connect dnsbl bl.test reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain: \$rbl_reason"
CONF
start_daemon "$T_DIR/b.log" "unix:$T_DIR/b.sock" -c "$T_DIR/b.conf"
b_pid=$ms_pid
probe "$T_DIR/b.sock" 192.0.2.10
expect_line "$out" '^connect client\.example \[192\.0\.2\.10\]: reject 554 5\.7\.1 .*: first server$' \
	"b: the listed client is rejected"
wait_for_line "$DNS1_LOG" 'query\[A\] 10\.2\.0\.192\.bl\.test ' 50
pass "b: the first server was asked"

reload "$b_pid" "$T_DIR/b.log"
hits0=$(stat_field "$T_DIR/b.log" cache_hits)
[ -n "$hits0" ] || { grep statistics: "$T_DIR/b.log"; fail "b: no cache_hits on the statistics line"; }
probe "$T_DIR/b.sock" 192.0.2.10
expect_line "$out" '^connect client\.example \[192\.0\.2\.10\]: reject 554 5\.7\.1 .*: first server$' \
	"b: after the reload the client is still rejected, with the TXT reason"
stats "$b_pid" "$T_DIR/b.log"
hits1=$(stat_field "$T_DIR/b.log" cache_hits)
[ "$hits1" -gt "$hits0" ] || { grep statistics: "$T_DIR/b.log"; fail "b: cache_hits $hits0 -> $hits1: no cache hit after the reload"; }
pass "b: cache_hits $hits0 -> $hits1 across the reload"
sleep 0.3
queries=$(grep -c 'query\[A\] 10\.2\.0\.192\.bl\.test ' "$DNS1_LOG")
[ "$queries" = 1 ] || { cat "$DNS1_LOG"; fail "b: the server was asked $queries times for 10.2.0.192.bl.test"; }
pass "b: the server was asked once, before the reload"

# ---- c. new dns_servers take the next lookup ----
DNS2=""
DNS2_LOG=""
bl_server DNS2 20 'second server'

# A list c-ares refuses: the reload fails, the old servers stay.
sed "s/^dns_servers = .*/dns_servers = not-an-address:53/" "$T_DIR/b.conf" >"$T_DIR/b.conf.new"
mv "$T_DIR/b.conf.new" "$T_DIR/b.conf"
kill -USR1 "$b_pid"
wait_for_line "$T_DIR/b.log" 'reload: .*bad DNS server list' 50
wait_for_line "$T_DIR/b.log" 'reload failed; keeping the configuration loaded before' 50
pass "c: a server list c-ares refuses fails the reload"

sed "s/^dns_servers = .*/dns_servers = 127.0.0.1:$DNS2/" "$T_DIR/b.conf" >"$T_DIR/b.conf.new"
mv "$T_DIR/b.conf.new" "$T_DIR/b.conf"
reload "$b_pid" "$T_DIR/b.log"
probe "$T_DIR/b.sock" 192.0.2.20
expect_line "$out" '^connect client\.example \[192\.0\.2\.20\]: reject 554 5\.7\.1 .*: second server$' \
	"c: after the reload the second server answers"
wait_for_line "$DNS2_LOG" 'query\[A\] 20\.2\.0\.192\.bl\.test ' 50
pass "c: the lookup went to the second server"
probe "$T_DIR/b.sock" 192.0.2.30
expect_line "$out" '^connect client\.example \[192\.0\.2\.30\]: continue$' "c: an unlisted client goes on"
wait_for_line "$DNS2_LOG" 'query\[A\] 30\.2\.0\.192\.bl\.test ' 50
sleep 0.3
if grep -Eq 'query\[A\] (20|30)\.2\.0\.192\.bl\.test ' "$DNS1_LOG"; then
	cat "$DNS1_LOG"
	fail "c: the first server was still asked after the reload"
fi
pass "c: the first server was not asked after the reload"

# No stop here: the daemons are ended at exit. Their stop is other tests'
# (daemon-dns-kill.sh, e2e-sigterm.sh); under TSan a stop after idle
# periods such as these ones sometimes meets a race inside libmilter's
# worker pool (its controller destroys the pool's mutex while an idle
# worker waits on it), which is not this test's subject.
for f in a b; do
	if grep -Eq 'Sanitizer|runtime error|(fatal|panic):' "$T_DIR/$f.log"; then
		cat "$T_DIR/$f.log"
		fail "$f.log has a sanitizer report or a fatal error"
	fi
done
pass "logs: no sanitizer report, no fatal error"
exit 0
