#!/bin/bash
# End to end: under stress the X-Stress header names the expensive checks
# of the calm personality that did not run, also those of rules of mode
# normal, which the stress personality does not have at all. One DNSBL rule
# and one body rule, both of mode normal; dnsmasq serves the zone bl.test.
# A listed client with "lottery" in its body:
# - would be refused on the normal listener (covered by e2e-dnsbl.sh); a
#   clean client there is delivered with "X-Stress: no";
# - is delivered on the "-o stress=yes" listener with "X-Stress: yes
#   (source=macro); skipped=dnsbl,body", and the milter's line for the
#   message and its statistics (SIGUSR1) say the same.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 50
LISTED=192.0.2.10  # bl.test: 127.0.0.2
CLEAN=198.51.100.7 # in no zone

DNS_PORT=""
dns_start DNS_PORT --local-ttl=300 --local=/bl.test/ --host-record=10.2.0.192.bl.test,127.0.0.2
pass "dnsmasq serves bl.test on 127.0.0.1:$DNS_PORT"

cat >"$T_DIR/ms.conf" <<CONF
dns_servers = 127.0.0.1:$DNS_PORT
connect normal name=listed dnsbl bl.test=127.0.0.[2..11] reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
eom normal name=content body /lottery/i reject 550 5.7.1 "content"
CONF
e2e_start "$T_DIR/ms.conf" "with a DNSBL and a body rule of mode normal"


# 1. Calm: a clean client, both checks run, nothing skipped.
send clean-normal "$port_normal" --xclient-addr "$CLEAN" --body "Hello"
delivered clean-normal "normal, clean client"
qid_normal=$qid

# 2. Stress: the listed client with the word in its body is delivered.
send listed-stress "$port_stress" --xclient-addr "$LISTED" --body "You won the LOTTERY"
delivered listed-stress "stress, listed client, 'lottery' in the body"
qid_stress=$qid

f_normal=$(sink_wait_match "id ${qid_normal}(;|\$)" 100) || fail "no capture of $qid_normal"
f_stress=$(sink_wait_match "id ${qid_stress}(;|\$)" 100) || fail "no capture of $qid_stress"
pass "smtp-sink captured both messages"
expect_header "$f_normal" 'no' "normal, delivered: 'X-Stress: no'"
expect_header "$f_stress" 'yes \(source=macro\); skipped=dnsbl,body' \
	"stress, delivered: 'X-Stress: yes (source=macro); skipped=dnsbl,body' for rules of mode normal"

# 3. The milter's line for each message, and its statistics.
expect_line "$MLOG" "^[^ ]+: $qid_normal: stress=no\(macro\) stage=eom action=accept client=[^ ]*\[${CLEAN//./\\.}\] .* ms=" \
	"milter log: the calm message's line"
if grep -E "^[^ ]+: $qid_normal: .* skipped=" "$MLOG"; then fail "milter log: the calm message skipped something"; fi
expect_line "$MLOG" "^[^ ]+: $qid_stress: stress=yes\(macro\) stage=eom action=accept client=[^ ]*\[${LISTED//./\\.}\] .* skipped=dnsbl,body ms=" \
	"milter log: the stressed message's line says skipped=dnsbl,body"
kill -USR1 "$milter_pid"
expect_line_wait() { wait_for_line "$1" "$2" 50 || { cat "$1"; fail "$3: no line matching '$2'"; }; pass "$3"; }
expect_line_wait "$MLOG" "messages=2 .* skipped: dnsbl=1 body=1 " "statistics (SIGUSR1): two messages, one skipped dnsbl and body"
if grep -Eq '(warning|error|fatal|panic):' "$MLOG"; then cat "$MLOG"; fail "milter log has warnings or errors"; fi
pass "milter log: no warnings or errors"

kill -0 "$milter_pid" 2>/dev/null || fail "milter-stress died during the test"
e2e_stop_all
exit 0
