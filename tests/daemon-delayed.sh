#!/bin/bash
# Delayed stages (milter-stress.conf(5), "Delayed stages"): connect and HELO
# wait for their DNS answers at most session_stage_wait, then answer the
# MTA and hand their rules on to MAIL FROM, where the verdict comes.
#  a. A listed client behind a DNS server that answers 300 ms late: connect
#     answers at once (continue), the 554 comes at MAIL FROM, logged as the
#     connect rule's; with session_stage_wait as long as connect_budget the
#     554 comes at connect, after the wait.
#  b. Order: a connect-stage accept (a welcome list, answered late) still
#     wins over a HELO-stage reject or tag that comes after it in the file,
#     though the HELO rule's own facts were known first.
#  c. A DNS server that never answers: connect and HELO answer at once, the
#     wait is at MAIL FROM and ends with connect_budget counted from
#     connect; the header lists the skip.
#  d. The client's own round trips (milter-probe --stage-delay) overlap the
#     lookup: with 150 ms before HELO and MAIL FROM each, nothing waits
#     300 ms anywhere.
#
# Clients are in TEST-NET-1, only strings in the milter dialogue; DNS is on
# 127.0.0.1; every probe has a timeout.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 60
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"
need perl

DNS_PORT=""
dns_start DNS_PORT --local-ttl=0 --local=/black.test/ --local=/white.test/ \
	--host-record=50.2.0.192.black.test,127.0.0.2 \
	--host-record=51.2.0.192.white.test,127.0.0.2
SLOW_PORT=$(free_port)
perl "$top_srcdir/tests/bench/dns-delay.pl" "$SLOW_PORT" "$DNS_PORT" 300 &
track_pid $!
SILENT_PORT=""
dns_silent_start SILENT_PORT "$T_DIR/silent.log"

# shellcheck disable=SC2016 # the $ are the milter's
cat >"$T_DIR/slow.conf" <<CONF
dns_servers = 127.0.0.1:$SLOW_PORT
connect_budget = 2s
helo_budget = 2s
connect dnsbl white.test accept
connect dnsbl black.test reject 554 5.7.1 "\$client_addr listed by \$rbl_domain"
helo helo bad.example reject 550 5.7.1 "bad helo"
CONF

n=0
# probe SOCK ADDR [OPTION...]: one transaction, its transcript in $out and
# its slowest reply (ms) and that reply's stage in $slow and $slow_at.
probe() {
	p_sock=$1 p_addr=$2
	shift 2
	n=$((n + 1))
	out="$T_DIR/case$n.out"
	"$MILTER_PROBE" --timeout 10 -p "unix:$p_sock" --client-addr "$p_addr" \
		--bench 1,1 --bench-transcript "$out" "$@" >"$out.bench" 2>&1 ||
		{ cat "$out" "$out.bench"; fail "milter-probe exited $?"; }
	tr ' ' '\n' <"$out" | grep -q . || fail "no transcript"
	# the transcript is one line; make it a line per stage for expect_line
	sed 's/ | /\n/g' -i "$out"
	slow=$(sed -n 's/.* reply_max=\([0-9]*\).*/\1/p' "$out.bench")
	slow_at=$(sed -n 's/^bench: slowest reply.*(\(.*\))$/\1/p' "$out.bench")
}

start_daemon "$T_DIR/a.log" "unix:$T_DIR/a.sock" -c "$T_DIR/slow.conf"
a_pid=$ms_pid

# a. the listed client: connect goes on at once, MAIL FROM rejects
probe "$T_DIR/a.sock" 192.0.2.50 --helo mx.example
expect_line "$out" '^.*connect [^ ]+ \[192\.0\.2\.50\]: continue$' "a: connect answers continue"
expect_line "$out" '^mail <[^>]*>: reject 554 5\.7\.1 192\.0\.2\.50 listed by black\.test$' \
	"a: the connect rule's 554 comes at MAIL FROM"
[ "$slow_at" = mail ] && [ "$slow" -ge 150 ] && [ "$slow" -lt 1000 ] ||
	{ cat "$out.bench"; fail "a: the wait should be at mail, 300 ms less the 100 ms at connect: $slow ms at $slow_at"; }
pass "a: the wait was at MAIL FROM ($slow ms); connect waited at most session_stage_wait"
wait_for_line "$T_DIR/a.log" 'stage=connect .*rule=.*slow\.conf:5.*reject|reject.*slow\.conf:5' 20 "$a_pid"
pass "a: the log names the connect rule (slow.conf:5)"

start_daemon "$T_DIR/a2.log" "unix:$T_DIR/a2.sock" -c "$T_DIR/slow.conf" -o session_stage_wait=2s
probe "$T_DIR/a2.sock" 192.0.2.50 --helo mx.example
expect_line "$out" '^.*connect [^ ]+ \[192\.0\.2\.50\]: reject 554 5\.7\.1 192\.0\.2\.50 listed by black\.test$' \
	"a: session_stage_wait = connect_budget: the 554 comes at connect"
[ "$slow_at" = connect ] || fail "a: the wait should be at connect: $slow ms at $slow_at"

# b. order: the welcome list at connect wins over the HELO rule after it
probe "$T_DIR/a.sock" 192.0.2.51 --helo bad.example
grep -q 'reject' "$out" && { cat "$out"; fail "b: a HELO rule rejected a client that a connect rule before it accepts"; }
expect_line "$out" '^result: accept$' "b: the connect accept (answered late) wins over the later HELO reject"
# a HELO stage that only tags, so it needs no reply: it too waits behind
# the delayed connect stage, whose accept ends the session's rules
{
	grep -v '^helo' "$T_DIR/slow.conf"
	echo 'helo helo tagged.example tag X-Helo-Tag "tagged"'
} >"$T_DIR/tag.conf"
start_daemon "$T_DIR/b.log" "unix:$T_DIR/b.sock" -c "$T_DIR/tag.conf"
probe "$T_DIR/b.sock" 192.0.2.51 --helo tagged.example
grep -q 'X-Helo-Tag' "$out" && { cat "$out"; fail "b: a HELO tag ran before the connect accept that comes first"; }
expect_line "$out" '^result: accept$' "b: a HELO stage that only tags waits behind the delayed connect stage too"
probe "$T_DIR/b.sock" 192.0.2.54 --helo tagged.example
expect_line "$out" '^eom: add header X-Helo-Tag: tagged$' "b: a client on no list gets the HELO stage's tag"
probe "$T_DIR/a.sock" 192.0.2.52 --helo bad.example
expect_line "$out" '^mail <[^>]*>: reject 550 5\.7\.1 bad helo$' \
	"b: a client on no list: the HELO rule rejects, at MAIL FROM after the connect rules"

# c. a server that never answers: the budget is counted from connect
cat >"$T_DIR/silent.conf" <<CONF
dns_servers = 127.0.0.1:$SILENT_PORT
connect_budget = 600ms
connect dnsbl black.test reject 554 5.7.1 "listed"
CONF
start_daemon "$T_DIR/c.log" "unix:$T_DIR/c.sock" -c "$T_DIR/silent.conf"
probe "$T_DIR/c.sock" 192.0.2.53
expect_line "$out" '^eom: add header X-Stress: no.*; skipped=dnsbl$' "c: the lookup timed out and is listed as skipped"
[ "$slow_at" = mail ] && [ "$slow" -ge 350 ] && [ "$slow" -lt 900 ] ||
	{ cat "$out.bench"; fail "c: the 600 ms budget from connect should end at MAIL FROM: $slow ms at $slow_at"; }
pass "c: connect and HELO answered at once; MAIL FROM waited $slow ms, the rest of connect_budget"

# d. the client's think time overlaps the late answer: no reply waits
probe "$T_DIR/a.sock" 192.0.2.50 --helo mx.example --stage-delay 150
expect_line "$out" '^mail <[^>]*>: reject 554 5\.7\.1 192\.0\.2\.50 listed by black\.test$' \
	"d: with client round trips, still rejected at MAIL FROM"
[ "$slow" -lt 150 ] || { cat "$out.bench"; fail "d: a reply waited $slow ms at $slow_at: the lookup did not overlap the client's round trips"; }
pass "d: the slowest reply took $slow ms ($slow_at): the 300 ms lookup ran during the client's round trips"

# The metrics count what was delayed, and the workers lent to libmilter
# (the silent server of c made sessions block).
need curl
M_PORT=$(free_port)
start_daemon "$T_DIR/m.log" "unix:$T_DIR/m.sock" -c "$T_DIR/silent.conf" \
	-o "metrics_listen=127.0.0.1:$M_PORT"
probe "$T_DIR/m.sock" 192.0.2.55
curl -sf "http://127.0.0.1:$M_PORT/metrics" >"$T_DIR/metrics" || fail "no metrics"
expect_line "$T_DIR/metrics" '^milter_stress_stages_delayed_total\{stage="connect"\} 1$' \
	"metrics: one connect stage delayed"
expect_line "$T_DIR/metrics" '^milter_stress_workers_lent_total [1-9][0-9]*$' \
	"metrics: a worker lent before the session blocked"

stop_daemon "$a_pid" "$T_DIR/a.log" "delayed stages"
