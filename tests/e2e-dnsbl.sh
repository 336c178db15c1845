#!/bin/bash
# End to end: the DNS and body checks through a real Postfix, configured
# with the shipped snippets, a normal smtpd listener and the "-o stress=yes"
# test listener; dnsmasq serves the test zones bl.test (a DNSBL) and
# dbl.test (an RHSBL). Clients are faked with XCLIENT (TEST-NET addresses,
# only strings in the dialogue); the session from 127.0.0.1 before XCLIENT
# is looked up too and is not listed.
#
# The rules: a DNSBL-listed client gets 554 in the normal personality and a
# 421 hang-up under stress (two rules, modes normal and stress); a listed
# sender domain (rhsbl_sender, mode both) gets 554 at MAIL; a body with
# "lottery" (body, mode both) gets 550 at end of data. Under stress the
# mode-both rules are skipped: a message with a listed sender and the word
# in its body is delivered, with "X-Stress: yes (source=macro);
# skipped=dnsbl,body" telling the content filters after the queue.
#
# How Postfix applies the connect replies (see e2e-rules.sh): a 554 at
# connect answers XCLIENT with Postfix's own "554 ... not accepting
# connections" and the milter's text comes at MAIL FROM; a 421 answers
# XCLIENT with Postfix's 421 and hangs up.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 55
LISTED=192.0.2.10   # bl.test: 127.0.0.2
CLEAN=198.51.100.7  # in no zone
SPAM_FROM=u@spam.example # dbl.test: 127.0.1.2

# 1. DNS, the milter, the sink, Postfix.
DNS_PORT=""
dns_start DNS_PORT --local-ttl=300 --local=/bl.test/ --local=/dbl.test/ \
	--host-record=10.2.0.192.bl.test,127.0.0.2 \
	--txt-record=10.2.0.192.bl.test,listed \
	--host-record=spam.example.dbl.test,127.0.1.2
pass "dnsmasq serves bl.test and dbl.test on 127.0.0.1:$DNS_PORT"

cat >"$T_DIR/ms.conf" <<CONF
dns_servers = 127.0.0.1:$DNS_PORT
connect normal name=listed dnsbl bl.test=127.0.0.[2..11] reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
connect stress name=listed-busy dnsbl bl.test=127.0.0.[2..11] tempfail 421 4.7.1 "\$client_addr blocked; busy"
mail name=sender rhsbl_sender dbl.test reject 554 5.7.1 "sender listed"
eom name=content body /lottery/i reject 550 5.7.1 "content"
CONF
e2e_start "$T_DIR/ms.conf" "with DNSBL, RHSBL and body rules"

# 2. A listed client: 554 on the normal listener, a 421 hang-up under stress.
send listed-normal "$port_normal" --xclient-addr "$LISTED" --xclient-optional
not_queued listed-normal
expect_reply listed-normal 'XCLIENT ' 1 "554 $PF_HOSTNAME ESMTP not accepting connections" \
	"normal, listed: XCLIENT (the new greeting) gets Postfix's 554"
expect_reply listed-normal 'MAIL FROM:' 1 "554 5.7.1 $LISTED blocked using bl.test" \
	"normal, listed: MAIL FROM gets the milter's 554 5.7.1 ($ms ms)"

send listed-stress "$port_stress" --xclient-addr "$LISTED" --xclient-optional
not_queued listed-stress
expect_reply listed-stress 'XCLIENT ' 1 "421 $PF_HOSTNAME Service unavailable - try again later" \
	"stress, listed: XCLIENT gets Postfix's 421 ($ms ms)"
[ -z "$(reply listed-stress 'MAIL FROM:')" ] || fail "stress, listed: MAIL FROM got a reply"
expect_line "$T_DIR/swaks-listed-stress.out" '^\*\*\* Remote host closed connection unexpectedly\.$' \
	"stress, listed: Postfix hung up"

# 3. An unlisted client, normal listener: a listed sender gets 554 at MAIL,
# a body with "lottery" 550 at end of data, a clean message is delivered.
send sender-normal "$port_normal" --xclient-addr "$CLEAN" --from "$SPAM_FROM"
not_queued sender-normal
expect_reply sender-normal 'MAIL FROM:' 1 "554 5.7.1 sender listed" "normal: rhsbl_sender, MAIL FROM gets 554 5.7.1 ($ms ms)"
send body-normal "$port_normal" --xclient-addr "$CLEAN" --body "You won the LOTTERY"
not_queued body-normal
expect_line "$T_DIR/swaks-body-normal.out" '^<\*\* +550 5\.7\.1 content$' "normal: body rule, end of data gets 550 5.7.1 ($ms ms)"
send clean-normal "$port_normal" --xclient-addr "$CLEAN" --body "Hello"
delivered clean-normal "normal, unlisted client"
qid_normal=$qid

# 4. Under stress the same listed sender and body are delivered: the
# mode-both checks are skipped, and the header says so.
send clean-stress "$port_stress" --xclient-addr "$CLEAN" --from "$SPAM_FROM" --body "You won the LOTTERY"
delivered clean-stress "stress, unlisted client, listed sender, 'lottery' in the body"
qid_stress=$qid

f_normal=$(sink_wait_match "id ${qid_normal}(;|\$)" 100) || fail "no capture of $qid_normal"
f_stress=$(sink_wait_match "id ${qid_stress}(;|\$)" 100) || fail "no capture of $qid_stress"
pass "smtp-sink captured both delivered messages"
expect_header "$f_normal" 'no' "normal, delivered: 'X-Stress: no'"
expect_header "$f_stress" 'yes \(source=macro\); skipped=dnsbl,body' \
	"stress, delivered: 'X-Stress: yes (source=macro); skipped=dnsbl,body'"
expect_line "$f_stress" "^Received: from .*\[${CLEAN//./\\.}\]\)" "stress, delivered: Received names the XCLIENT client"
[ "$(sink_count)" = 2 ] || { sink_dump; fail "smtp-sink captured $(sink_count) messages, expected 2"; }
pass "nothing refused reached the sink"

# 5. Postfix's and the milter's logs.
L=${LISTED//./\\.}
expect_line "$PF_LOG" "postfix/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: MAIL from [^ ]*\[$L\]: 554 5\.7\.1 $L blocked using bl\.test;" \
	"maillog: normal listener, milter-reject 554 5.7.1 at MAIL"
expect_line "$PF_LOG" "postfix/stress-test/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: XCLIENT from [^ ]*\[$L\]: 421 4\.7\.1 $L blocked; busy;" \
	"maillog: stress listener, milter-reject 421 4.7.1 at XCLIENT"
expect_line "$MLOG" ": stress=no\(macro\) stage=connect rule=listed action=reject 554 5\.7\.1 client=[^ ]*\[$L\]( |\$)" \
	"milter log: rule=listed, reject 554 5.7.1"
expect_line "$MLOG" ": stress=yes\(macro\) stage=connect rule=listed-busy action=tempfail 421 4\.7\.1 client=[^ ]*\[$L\]( |\$)" \
	"milter log: rule=listed-busy, tempfail 421 4.7.1"
expect_line "$MLOG" "stage=mail rule=sender action=reject 554 5\.7\.1 " "milter log: rule=sender, reject at mail"
expect_line "$MLOG" "stage=eom rule=content action=reject 550 5\.7\.1 " "milter log: rule=content, reject at eom"
if grep -Eq '(warning|error|fatal|panic):' "$MLOG"; then cat "$MLOG"; fail "milter log has warnings or errors"; fi
pass "milter log: no warnings or errors"

# 6. Everything stops.
kill -0 "$milter_pid" 2>/dev/null || fail "milter-stress died during the test"
pf_stop
sink_stop
exit 0
