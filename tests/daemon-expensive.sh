#!/bin/bash
# The expensive checks through the real daemon, driven by milter-probe:
# dnsbl (IPv4, IPv6, A-record filters, the TXT reason in the reply),
# rhsbl_sender and rhsbl_helo against a dnsmasq started here with the test
# zones on its command line; body regexes over a streamed body (a match cut
# by the 65535-byte chunk boundary, body_scan_limit and the skip it sends);
# under stress, checks of mode-both rules are skipped and listed in the
# header while a mode-stress dnsbl rule still runs; a DNS server that does
# not answer: the verdict comes within connect_budget, the lookups of the
# stage go out together, the log says the budget ran out, the header lists
# the skip, after dnsbl_breaker_threshold timeouts the zones are suspended
# (answered at once, nothing sent), and once dnsbl_breaker_time is over and
# the server answers again they resume; budget_action and dns_error_action
# (a REFUSED answer) tempfail the stage when asked to.
#
# Addresses: listed clients are in TEST-NET-1 (192.0.2.0/24), the unlisted
# one in TEST-NET-2 (198.51.100.0/24), the IPv6 one in 2001:db8::/32. They
# are only strings in the milter dialogue: nothing is sent to them.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 55
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"

LISTED=192.0.2.10  # bl.test: 127.0.0.2 + TXT; not in hot.test
EXCLUDED=192.0.2.20 # bl.test: 127.0.1.5, outside the filter 127.0.0.[2..11]
HOT=192.0.2.30     # hot.test only (a stress-mode rule)
CLEAN=198.51.100.7 # in no zone
V6=2001:db8::25    # bl.test: 127.0.0.3
V6_NAME=5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2
REASON='Listed: see https://bl.test/lookup'

# 1. The DNS server: bl.test (a DNSBL with a filter), hot.test, dbl.test (an
# RHSBL). --local: names not listed get NXDOMAIN, nothing is forwarded.
DNS_PORT=""
dns_start DNS_PORT --local-ttl=300 \
	--local=/bl.test/ --local=/hot.test/ --local=/dbl.test/ \
	--host-record=10.2.0.192.bl.test,127.0.0.2 \
	"--txt-record=10.2.0.192.bl.test,$REASON" \
	--host-record=20.2.0.192.bl.test,127.0.1.5 \
	--txt-record=20.2.0.192.bl.test,excluded \
	--host-record=$V6_NAME.bl.test,127.0.0.3 \
	"--txt-record=$V6_NAME.bl.test,v6 listed" \
	--host-record=30.2.0.192.hot.test,127.0.0.2 \
	--host-record=spam.example.dbl.test,127.0.1.2 \
	"--txt-record=spam.example.dbl.test,bad domain"
pass "dnsmasq serves bl.test, hot.test and dbl.test on 127.0.0.1:$DNS_PORT"

# 2. The milter for the DNS checks (the body rules have one of their own,
# below: under stress every mode-both rule is skipped, whatever the message,
# so one milter with both would list both skips in every session). Every rule is of mode both unless it says normal or stress.
sock="$T_DIR/ms.sock"
cat >"$T_DIR/ms.conf" <<CONF
dns_servers = 127.0.0.1:$DNS_PORT
connect dnsbl bl.test=127.0.0.[2..11] reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain: \$rbl_reason"
connect stress name=hot dnsbl hot.test tempfail 421 4.7.1 "\$client_addr listed in \$rbl_domain; busy"
helo rhsbl_helo dbl.test reject 550 5.7.1 "\$rbl_class \$rbl_what rejected: \$rbl_reason"
mail rhsbl_sender dbl.test reject 554 5.7.1 "\$rbl_class \$rbl_what listed by \$rbl_domain: \$rbl_reason"
CONF
"$MILTER_STRESS" -n -c "$T_DIR/ms.conf" >"$T_DIR/n.out" 2>&1 || { cat "$T_DIR/n.out"; fail "-n refuses the config"; }
start_daemon "$T_DIR/ms.log" "unix:$sock" -vv -c "$T_DIR/ms.conf"

n=0
case_sock=$sock
case_log=$T_DIR/ms.log
# case_ EXPECTED-REGEX WHAT PROBE-ARGS...: one transaction, one expected line;
# sets out (the transcript) and ms (how long the probe took).
case_() {
	want=$1
	what=$2
	shift 2
	n=$((n + 1))
	out="$T_DIR/case$n.out"
	c_t0=$(date +%s%N)
	"$MILTER_PROBE" --timeout 10 -p "unix:$case_sock" "$@" >"$out" 2>&1 ||
		{ cat "$out"; echo "--- milter log:"; cat "$case_log"; fail "$what: milter-probe exited $?"; }
	ms=$((($(date +%s%N) - c_t0) / 1000000))
	expect_line "$out" "$want" "$what ($ms ms)"
}
no_line() { # FILE REGEX WHAT
	if grep -Eq -- "$2" "$1"; then cat "$1"; fail "$3: a line matches '$2'"; fi
	pass "$3"
}

# 3. dnsbl at connect, normal personality.
case_ "^connect client\.example \[$LISTED\]: reject 554 5\.7\.1 $LISTED blocked using bl\.test: $REASON\$" \
	"dnsbl: listed IPv4, 554 with \$rbl_domain and the TXT \$rbl_reason" \
	--client-addr $LISTED --client-name client.example -m '{stress}=no'
case_ "^connect client\.example \[$CLEAN\]: continue\$" "dnsbl: unlisted IPv4 (NXDOMAIN) goes on" \
	--client-addr $CLEAN --client-name client.example -m '{stress}=no'
expect_line "$out" '^eom: add header X-Stress: no$' "dnsbl: unlisted, nothing skipped: 'X-Stress: no'"
case_ "^connect client\.example \[$EXCLUDED\]: continue\$" \
	"dnsbl: 127.0.1.5 is outside the filter 127.0.0.[2..11]: not listed" \
	--client-addr $EXCLUDED --client-name client.example -m '{stress}=no'
case_ "^connect client\.example \[$V6\]: reject 554 5\.7\.1 (IPv6:)?$V6 blocked using bl\.test: v6 listed\$" \
	"dnsbl: listed IPv6 (reversed nibbles)" \
	--client-addr $V6 --client-name client.example -m '{stress}=no'
case_ "^connect client\.example \[$HOT\]: continue\$" "dnsbl: the stress-mode rule does not run in the normal personality" \
	--client-addr $HOT --client-name client.example -m '{stress}=no'
expect_line "$out" '^eom: add header X-Stress: no$' "dnsbl: a rule not active is not a skip"

# 4. rhsbl at helo and mail.
case_ '^helo spam\.example: reject 550 5\.7\.1 Helo command spam\.example rejected: bad domain$' \
	"rhsbl_helo: listed HELO name, \$rbl_class Helo command" --client-addr $CLEAN --helo spam.example
case_ '^mail <u@spam\.example>: reject 554 5\.7\.1 Sender address spam\.example listed by dbl\.test: bad domain$' \
	"rhsbl_sender: listed sender domain, \$rbl_class Sender address, \$rbl_what the domain" --client-addr $CLEAN --from '<u@spam.example>'
case_ '^mail <u@Spam\.Example>: reject 554 5\.7\.1 ' "rhsbl_sender: the domain in any case" \
	--client-addr $CLEAN --from '<u@Spam.Example>'
case_ '^mail <u@ok\.example>: continue$' "rhsbl_sender: unlisted domain goes on" \
	--client-addr $CLEAN --from '<u@ok.example>'
case_ '^mail <>: continue$' "rhsbl_sender: the null sender has no domain to look up" \
	--client-addr $CLEAN --from '<>'

# 5. Under stress: the mode-both dnsbl and rhsbl rules are skipped and the
# skip is listed; the mode-stress rule runs.
case_ "^connect client\.example \[$LISTED\]: continue\$" "stress: mode-both dnsbl rule skipped, listed client goes on" \
	--client-addr $LISTED --client-name client.example -m '{stress}=yes'
expect_line "$out" '^eom: add header X-Stress: yes \(source=macro\); skipped=dnsbl$' \
	"stress: 'X-Stress: yes (source=macro); skipped=dnsbl'"
case_ "^connect client\.example \[$HOT\]: tempfail 421 4\.7\.1 $HOT listed in hot\.test; busy\$" \
	"stress: the mode-stress dnsbl rule runs: 421" \
	--client-addr $HOT --client-name client.example -m '{stress}=yes'
case_ '^mail <u@spam\.example>: continue$' "stress: mode-both rhsbl_sender skipped" \
	--client-addr $CLEAN --from '<u@spam.example>' -m '{stress}=yes'
expect_line "$out" '^eom: add header X-Stress: yes \(source=macro\); skipped=dnsbl$' \
	"stress: an rhsbl skip is listed as dnsbl"
expect_line "$T_DIR/ms.log" 'stress=yes\(macro\) stage=connect rule=hot action=tempfail 421 4\.7\.1 ' \
	"log: the verdict of the mode-stress rule"

# 6. Bodies, through a milter with one body rule.
sockb="$T_DIR/msb.sock"
cat >"$T_DIR/msb.conf" <<'CONF'
body_scan_limit = 100k
eom body /won the lottery/i reject 550 5.7.1 "Content rejected"
CONF
start_daemon "$T_DIR/msb.log" "unix:$sockb" -vv -c "$T_DIR/msb.conf"
case_sock=$sockb
case_log=$T_DIR/msb.log
# milter-probe turns LF into CRLF and sends 65535-byte chunks: 819 lines
# of 78+2 bytes are 65520 bytes, so the boundary cuts the next line 15 bytes
# in, in the middle of "won the lottery": "won" | " the lottery".
body_fill() { # LINES: LINES lines of 78 letters
	awk -v n="$1" 'BEGIN { l = sprintf("%78s", ""); gsub(/ /, "a", l); for (i = 0; i < n; i++) print l }'
}
{
	body_fill 819
	echo '0123456 you won the lottery today'
	body_fill 10
} >"$T_DIR/straddle.txt"
off=$(sed 's/$/\r/' "$T_DIR/straddle.txt" | grep -abo 'won the lottery' | cut -d: -f1)
if [ "$off" -ge 65535 ] || [ $((off + 15)) -le 65535 ]; then
	fail "test body: 'won the lottery' at byte $off does not straddle byte 65535"
fi
pass "test body: 'won the lottery' spans bytes $off..$((off + 14)), across the chunk boundary at 65535"
case_ '^eom: reject 550 5\.7\.1 Content rejected$' "body: a match cut by the chunk boundary is found" \
	--client-addr $CLEAN --body "$T_DIR/straddle.txt" -m '{stress}=no'
expect_line "$out" '^body 65535 bytes: continue$' "body: the first chunk is 65535 bytes, and goes on"
{ body_fill 20; } >"$T_DIR/clean.txt"
case_ '^eom: add header X-Stress: no$' "body: a clean body passes, nothing skipped" \
	--client-addr $CLEAN --body "$T_DIR/clean.txt" -m '{stress}=no'
no_line "$out" '^eom: reject' "body: a clean body is not rejected"

# Past body_scan_limit (100k): the milter answers skip, the probe (as
# Postfix) stops sending, and a match after the limit is not seen.
{
	body_fill 2600 # 208000 bytes
	echo 'you won the lottery'
} >"$T_DIR/big.txt"
case_ '^body: skip \([0-9]+ bytes not sent\)$' "body_scan_limit 100k: the milter skips the rest of the body" \
	--client-addr $CLEAN --body "$T_DIR/big.txt" -m '{stress}=no'
unsent=$(sed -n 's/^body: skip (\([0-9]*\) bytes not sent)$/\1/p' "$out")
sent=$(sed -n 's/^body \([0-9]*\) bytes: .*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
if [ "$sent" -lt 102400 ] || [ "$sent" -gt $((102400 + 65535)) ]; then
	cat "$out"
	fail "body_scan_limit: $sent bytes sent before the skip, expected 100k..100k+64k"
fi
total=$(sed 's/$/\r/' "$T_DIR/big.txt" | wc -c)
[ $((sent + unsent)) = "$total" ] || { cat "$out"; fail "body_scan_limit: $sent + $unsent bytes, expected $total"; }
pass "body_scan_limit: $sent bytes sent, $unsent not sent"
no_line "$out" '^eom: reject' "body_scan_limit: a match past the limit is not seen"
expect_line "$out" '^eom: (add header X-Stress: no|accept)$' "body_scan_limit: the message goes on"

# Under stress the body rule (mode both) is skipped.
case_ '^eom: add header X-Stress: yes \(source=macro\); skipped=body$' \
	"stress: body rule skipped, 'skipped=body'" \
	--client-addr $CLEAN --body "$T_DIR/straddle.txt" -m '{stress}=yes'
no_line "$out" '^eom: reject' "stress: the body is not rejected"
for f in ms msb; do
	if grep -Eq '(warning|error|fatal|panic):' "$T_DIR/$f.log"; then cat "$T_DIR/$f.log"; fail "$f.log has warnings or errors"; fi
done
pass "milter logs: no warnings or errors"

# 7. A DNS server that does not answer (c-ares asks dns_servers for every
# zone, so this is a milter of its own) while the file silent.drop exists,
# and answers NXDOMAIN once it is gone. connect_budget 300 ms, breaker after
# 2 timeouts, suspended for 2 s.
SILENT_PORT=""
touch "$T_DIR/silent.drop"
dns_silent_start SILENT_PORT "$T_DIR/silent.log" "$T_DIR/silent.drop"
sock2="$T_DIR/ms2.sock"
cat >"$T_DIR/ms2.conf" <<CONF
dns_servers = 127.0.0.1:$SILENT_PORT
connect_budget = 300ms
dnsbl_breaker_threshold = 2
dnsbl_breaker_time = 2s
connect dnsbl dead.test reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
connect dnsbl dead2.test reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
CONF
start_daemon "$T_DIR/ms2.log" "unix:$sock2" -vv -c "$T_DIR/ms2.conf"

# dead_probe ADDR: one transaction; sets out and ms.
dead_probe() {
	n=$((n + 1))
	out="$T_DIR/case$n.out"
	c_t0=$(date +%s%N)
	"$MILTER_PROBE" --timeout 10 -p "unix:$sock2" --client-addr "$1" --client-name client.example \
		-m '{stress}=no' >"$out" 2>&1 || { cat "$out"; cat "$T_DIR/ms2.log"; fail "milter-probe exited $?"; }
	ms=$((($(date +%s%N) - c_t0) / 1000000))
}
for a in 192.0.2.41 192.0.2.42; do
	dead_probe $a
	expect_line "$out" "^connect client\.example \[${a//./\\.}\]: continue\$" \
		"dead DNS, $a: connect goes on (budget_action continue)"
	[ "$ms" -ge 250 ] || { cat "$out"; fail "dead DNS, $a: the transaction took $ms ms: the lookup did not wait"; }
	[ "$ms" -lt 1800 ] || { cat "$out"; fail "dead DNS, $a: $ms ms, more than connect_budget 300 ms + 1.5 s"; }
	pass "dead DNS, $a: the whole transaction took $ms ms (connect_budget 300 ms)"
	expect_line "$out" '^eom: add header X-Stress: no; skipped=dnsbl$' \
		"dead DNS, $a: 'X-Stress: no; skipped=dnsbl'"
done
# The two lookups of the stage went out together: one after the other, the
# second would have found the budget spent and sent nothing.
for z in dead dead2; do
	grep -q "^41\.2\.0\.192\.$z\.test\$" "$T_DIR/silent.log" ||
		{ cat "$T_DIR/silent.log"; fail "the silent server never got 41.2.0.192.$z.test"; }
done
pass "both lookups of the stage reached the silent server within one budget (in parallel)"
# The check is named by its zone.
expect_line "$T_DIR/ms2.log" 'stage=connect budget ran out: .*dead\.test.* after [0-9]+ ?ms' \
	"log: the connect budget ran out, in the dead.test lookup, after how long"
wait_for_line "$T_DIR/ms2.log" 'dead\.test.*suspended|suspended.*dead\.test' 20 $ms_pid
wait_for_line "$T_DIR/ms2.log" 'dead2\.test.*suspended|suspended.*dead2\.test' 20 $ms_pid
t_suspended=$(date +%s%N)
pass "log: after 2 timeouts the breaker suspends dead.test and dead2.test"
dead_probe 192.0.2.43
expect_line "$out" '^connect client\.example \[192\.0\.2\.43\]: continue$' "breaker open: connect goes on"
[ "$ms" -lt 300 ] || { cat "$out"; fail "breaker open: the transaction took $ms ms, not less than connect_budget"; }
pass "breaker open: the whole transaction took $ms ms"
expect_line "$out" '^eom: add header X-Stress: no; skipped=dnsbl$' "breaker open: the skip is listed"
sleep 0.3
if grep -q '^43\.2\.0\.192\.' "$T_DIR/silent.log"; then
	cat "$T_DIR/silent.log"
	fail "breaker open: a lookup for 192.0.2.43 was still sent"
fi
pass "breaker open: nothing was sent for the suspended zone"
grep -Eq 'dead\.test.*resumed|resumed.*dead\.test' "$T_DIR/ms2.log" && fail "the breaker resumed with the server still silent"

# The server answers again; once dnsbl_breaker_time is over, the next lookup
# goes out as the breaker's probe, is answered and resumes the zone.
rm -f "$T_DIR/silent.drop"
left=$((2300 - ($(date +%s%N) - t_suspended) / 1000000))
[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
dead_probe 192.0.2.45
expect_line "$out" '^connect client\.example \[192\.0\.2\.45\]: continue$' "breaker half-open: connect goes on"
expect_line "$out" '^eom: add header X-Stress: no$' "breaker half-open: answered (NXDOMAIN), nothing skipped ($ms ms)"
grep -q '^45\.2\.0\.192\.dead\.test$' "$T_DIR/silent.log" ||
	{ cat "$T_DIR/silent.log"; fail "breaker half-open: 45.2.0.192.dead.test was not sent"; }
pass "breaker half-open: the lookup was sent"
wait_for_line "$T_DIR/ms2.log" 'dead\.test.*resumed|resumed.*dead\.test' 20 $ms_pid
wait_for_line "$T_DIR/ms2.log" 'dead2\.test.*resumed|resumed.*dead2\.test' 20 $ms_pid
pass "log: the breaker resumes both zones"

# budget_action = tempfail: the same server, silent again; the stage
# tempfails. The connect stage hands its rules on to MAIL FROM after
# session_stage_wait (100 ms), so the tempfail comes there; with a wait as
# long as the budget it comes at connect.
touch "$T_DIR/silent.drop"
sock3="$T_DIR/ms3.sock"
{
	sed '/^dnsbl_breaker/d' "$T_DIR/ms2.conf"
	echo 'budget_action = tempfail'
} >"$T_DIR/ms3.conf"
start_daemon "$T_DIR/ms3.log" "unix:$sock3" -c "$T_DIR/ms3.conf"
n=$((n + 1))
"$MILTER_PROBE" --timeout 10 -p "unix:$sock3" --client-addr 192.0.2.44 >"$T_DIR/case$n.out" 2>&1 ||
	{ cat "$T_DIR/case$n.out"; fail "milter-probe exited $?"; }
expect_line "$T_DIR/case$n.out" '^connect [^ ]+ \[192\.0\.2\.44\]: continue$' \
	"budget_action tempfail: connect answers at once (session_stage_wait)"
expect_line "$T_DIR/case$n.out" '^mail <[^>]*>: tempfail( 4[0-9][0-9] .*)?$' \
	"budget_action tempfail: the delayed connect stage tempfails at MAIL FROM when the budget runs out"
sock3b="$T_DIR/ms3b.sock"
start_daemon "$T_DIR/ms3b.log" "unix:$sock3b" -c "$T_DIR/ms3.conf" -o session_stage_wait=1h
n=$((n + 1))
"$MILTER_PROBE" --timeout 10 -p "unix:$sock3b" --client-addr 192.0.2.47 >"$T_DIR/case$n.out" 2>&1 ||
	{ cat "$T_DIR/case$n.out"; fail "milter-probe exited $?"; }
expect_line "$T_DIR/case$n.out" '^connect [^ ]+ \[192\.0\.2\.47\]: tempfail( 4[0-9][0-9] .*)?$' \
	"budget_action tempfail: with session_stage_wait >= connect_budget, connect itself tempfails"

# 8. dns_error_action: dnsmasq answers REFUSED for err.test (a zone it does
# not serve, with no upstream): continue (the default) or tempfail.
# shellcheck disable=SC2016 # the $ are the milter's
printf '%s\n' "dns_servers = 127.0.0.1:$DNS_PORT" \
	'connect dnsbl err.test reject 554 5.7.1 "$client_addr blocked using $rbl_domain"' >"$T_DIR/ms4.conf"
for action in continue tempfail; do
	sock4="$T_DIR/ms4-$action.sock"
	start_daemon "$T_DIR/ms4-$action.log" "unix:$sock4" -c "$T_DIR/ms4.conf" \
		-o dns_error_action=$action
	n=$((n + 1))
	"$MILTER_PROBE" --timeout 10 -p "unix:$sock4" --client-addr 192.0.2.46 >"$T_DIR/case$n.out" 2>&1 ||
		{ cat "$T_DIR/case$n.out"; fail "milter-probe exited $?"; }
	if [ $action = continue ]; then
		want='^connect [^ ]+ \[192\.0\.2\.46\]: continue$'
	else
		want='^connect [^ ]+ \[192\.0\.2\.46\]: tempfail( 4[0-9][0-9] .*)?$'
	fi
	expect_line "$T_DIR/case$n.out" "$want" "dns_error_action $action: a REFUSED lookup, connect: $action"
done
exit 0
