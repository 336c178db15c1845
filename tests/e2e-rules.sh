#!/bin/bash
# End to end: the shipped example rule set (conf/example-rules.conf) through
# a real Postfix, configured with the shipped snippets, with a normal smtpd
# listener and the snippet's "-o stress=yes" test listener. Every session
# really comes from 127.0.0.1 (which the first rule accepts); XCLIENT makes
# Postfix end that milter session and open a new one for the faked client.
#
# What Postfix does with the milter's replies here (Postfix 3.7):
# - connect reject 554 (normal listener): Postfix answers XCLIENT with its
#   own "554 HOST ESMTP not accepting connections" (the new greeting) and
#   gives the milter's "554 5.7.1 ADDR is listed" at MAIL FROM. swaks stops
#   after a failed XCLIENT unless --xclient-optional, so that is used to see
#   MAIL FROM;
# - connect tempfail 421 (stress listener): Postfix answers XCLIENT with its
#   own "421 HOST Service unavailable - try again later" and hangs up: the
#   next command finds the connection closed;
# - helo tempfail 421 (stress listener; swaks repeats its --helo after
#   XCLIENT): the EHLO gets the milter's own "421 4.7.0 ..." and Postfix
#   hangs up. The EHLO before XCLIENT, from 127.0.0.1, is not refused.
#
# Checked: the replies swaks sees and at which command, the hang-ups, that no
# refused session got a queue file or reached the sink, that clean clients
# are delivered on both listeners with the right X-Stress header, Postfix's
# milter-reject lines, and the milter's verdict lines (rule name or
# FILE:LINE, stress=yes(macro) / stress=no(macro)).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 50
RULES=$top_srcdir/conf/example-rules.conf
LISTED=192.0.2.66  # in the listed range 192.0.2.0/24
CLEAN=198.51.100.7 # matches no rule
HELO_CLIENT=198.51.100.9 # matches no client rule; says HELO with an IP literal
HELO_LITERAL='[192.0.2.1]'

# The helo rule has no name: its verdict line names it FILE:LINE.
helo_line=$(grep -n '^helo[[:space:]]' "$RULES" | cut -d: -f1)
case $helo_line in
'' | *[!0-9]*) fail "$RULES: expected exactly one helo rule, found lines '$helo_line'" ;;
esac

# 1. The milter with the example rules, the sink, Postfix.
e2e_start "$RULES" "-c example-rules.conf"

# expect_hangup NAME CMD: CMD was sent, got no reply, and swaks found the
# connection closed.
expect_hangup() {
	grep -q "^ -> $2" "$T_DIR/swaks-$1.out" || { cat "$T_DIR/swaks-$1.out"; fail "$1: swaks did not send $2"; }
	[ -z "$(reply "$1" "$2")" ] || { cat "$T_DIR/swaks-$1.out"; fail "$1: $2 got a reply"; }
	expect_line "$T_DIR/swaks-$1.out" '^\*\*\* Remote host closed connection unexpectedly\.$' \
		"$1: Postfix hung up (${2% } found the connection closed)"
}

# 2. A listed client on the normal listener: 554 at connect.
send listed-normal "$port_normal" --xclient-addr "$LISTED" --xclient-optional
not_queued listed-normal
expect_reply listed-normal 'XCLIENT ' 1 "554 $PF_HOSTNAME ESMTP not accepting connections" \
	"normal, listed: XCLIENT (the new greeting) gets Postfix's 554"
expect_reply listed-normal 'MAIL FROM:' 1 "554 5.7.1 $LISTED is listed" \
	"normal, listed: MAIL FROM gets the milter's 554 5.7.1 ($ms ms)"
expect_line "$T_DIR/swaks-listed-normal.out" '^<-  221 ' "normal, listed: no hang-up, QUIT is answered"

# 3. The same client on the stress listener: 421 at connect, hang-up.
send listed-stress "$port_stress" --xclient-addr "$LISTED" --xclient-optional
not_queued listed-stress
expect_reply listed-stress 'XCLIENT ' 1 "421 $PF_HOSTNAME Service unavailable - try again later" \
	"stress, listed: XCLIENT gets Postfix's 421 ($ms ms)"
expect_hangup listed-stress 'MAIL FROM:'

# 4. An IP literal in HELO: a 421 hang-up under stress only. swaks says
# EHLO again after XCLIENT with the same name.
send helo-stress "$port_stress" --xclient-addr "$HELO_CLIENT" --helo "$HELO_LITERAL"
not_queued helo-stress
expect_reply helo-stress 'EHLO ' 1 "250-$PF_HOSTNAME" "stress, helo: EHLO from 127.0.0.1 is accepted"
expect_reply helo-stress 'XCLIENT ' 1 "220 $PF_HOSTNAME ESMTP stress=yes" "stress, helo: XCLIENT accepted"
expect_reply helo-stress 'EHLO ' 2 "421 4.7.0 Busy, try again later" \
	"stress, helo: EHLO $HELO_LITERAL after XCLIENT gets the milter's 421 4.7.0 ($ms ms)"
expect_hangup helo-stress 'HELO '

send helo-normal "$port_normal" --xclient-addr "$HELO_CLIENT" --helo "$HELO_LITERAL"
[ "$rc" = 0 ] || { cat "$T_DIR/swaks-helo-normal.out"; fail "normal, helo: swaks exited $rc"; }
expect_reply helo-normal 'EHLO ' 2 "250-$PF_HOSTNAME" "normal, helo: EHLO $HELO_LITERAL after XCLIENT is accepted"
qid_helo=$(pf_queue_id "$T_DIR/swaks-helo-normal.out")
[ -n "$qid_helo" ] || fail "normal, helo: no queue ID"
pass "normal, helo: message accepted ($qid_helo, $ms ms)"

# 5. A client that matches nothing: delivered on both listeners.
send clean-normal "$port_normal" --xclient-addr "$CLEAN"
[ "$rc" = 0 ] || { cat "$T_DIR/swaks-clean-normal.out"; fail "normal, clean: swaks exited $rc"; }
qid_normal=$(pf_queue_id "$T_DIR/swaks-clean-normal.out")
pass "normal, clean: message accepted ($qid_normal, $ms ms)"
send clean-stress "$port_stress" --xclient-addr "$CLEAN"
[ "$rc" = 0 ] || { cat "$T_DIR/swaks-clean-stress.out"; fail "stress, clean: swaks exited $rc"; }
qid_stress=$(pf_queue_id "$T_DIR/swaks-clean-stress.out")
pass "stress, clean: message accepted ($qid_stress, $ms ms)"
if [ -z "$qid_normal" ] || [ -z "$qid_stress" ]; then fail "no queue ID in the clean transcripts"; fi

sink_wait_count 3 100
f_normal=$(sink_wait_match "id ${qid_normal}(;|\$)" 10) || fail "no capture of $qid_normal"
f_stress=$(sink_wait_match "id ${qid_stress}(;|\$)" 10) || fail "no capture of $qid_stress"
f_helo=$(sink_wait_match "id ${qid_helo}(;|\$)" 10) || fail "no capture of $qid_helo"
pass "smtp-sink captured the three accepted messages"

expect_line "$f_normal" "^Received: from .*\[${CLEAN//./\\.}\]\)" "normal, clean: Received names the XCLIENT client"
expect_header "$f_normal" 'no' "normal, clean: 'X-Stress: no'"
expect_line "$f_stress" "^Received: from .*\[${CLEAN//./\\.}\]\)" "stress, clean: Received names the XCLIENT client"
expect_header "$f_stress" 'yes \(source=macro\)' "stress, clean: 'X-Stress: yes (source=macro)'"
expect_line "$f_helo" '^Received: from \[192\.0\.2\.1\] ' "normal, helo: Received names the HELO literal"
expect_header "$f_helo" 'no' "normal, helo: 'X-Stress: no'"

# Nothing refused was delivered, or even queued: the three sessions above
# are all that reached the sink, and Postfix created no queue file for the
# listed client nor for the helo client on the stress listener.
[ "$(sink_count)" = 3 ] || { sink_dump; fail "smtp-sink captured $(sink_count) messages, expected 3"; }
if [ -n "$(sink_find "\[${LISTED//./\\.}\]")" ]; then sink_dump; fail "a message from $LISTED reached the sink"; fi
if grep -Eq ": [0-9A-Za-z]+: client=[^ ]*\[${LISTED//./\\.}\]" "$PF_LOG" ||
	grep -Eq "postfix/stress-test/smtpd\[[0-9]+\]: [0-9A-Za-z]+: client=[^ ]*\[${HELO_CLIENT//./\\.}\]" "$PF_LOG"; then
	pf_log
	fail "Postfix queued a message of a refused session"
fi
pass "refused sessions: nothing queued, nothing delivered"

# Postfix's side: where it applied each milter reply.
L=${LISTED//./\\.}
H=${HELO_CLIENT//./\\.}
expect_line "$PF_LOG" "postfix/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: XCLIENT from [^ ]*\[$L\]: 554 5\.7\.1 $L is listed;" \
	"maillog: normal listener, milter-reject 554 5.7.1 at XCLIENT (connect)"
expect_line "$PF_LOG" "postfix/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: MAIL from [^ ]*\[$L\]: 554 5\.7\.1 $L is listed;" \
	"maillog: normal listener, the same reply again at MAIL"
expect_line "$PF_LOG" "postfix/stress-test/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: XCLIENT from [^ ]*\[$L\]: 421 4\.7\.1 $L is listed; busy, try again later;" \
	"maillog: stress listener, milter-reject 421 4.7.1 at XCLIENT"
expect_line "$PF_LOG" "postfix/stress-test/smtpd\[[0-9]+\]: disconnect from [^ ]*\[$L\] ehlo=1 xclient=0/1 commands=1/2\$" \
	"maillog: stress listener, disconnect after XCLIENT, no further command read"
expect_line "$PF_LOG" "postfix/stress-test/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: EHLO from [^ ]*\[$H\]: 421 4\.7\.0 Busy, try again later; .*helo=<\[192\.0\.2\.1\]>" \
	"maillog: stress listener, milter-reject 421 4.7.0 at EHLO"

# The milter's verdict lines.
expect_line "$MLOG" ": stress=no\(macro\) stage=connect rule=listed action=reject 554 5\.7\.1 client=[^ ]*\[$L\]( |\$)" \
	"milter log: rule=listed, stress=no(macro), reject 554 5.7.1"
expect_line "$MLOG" ": stress=yes\(macro\) stage=connect rule=listed-busy action=tempfail 421 4\.7\.1 client=[^ ]*\[$L\]( |\$)" \
	"milter log: rule=listed-busy, stress=yes(macro), tempfail 421 4.7.1"
expect_line "$MLOG" ": stress=yes\(macro\) stage=helo rule=([^ ]*/)?example-rules\.conf:$helo_line action=tempfail 421 4\.7\.0 client=[^ ]*\[$H\] helo=<\[192\.0\.2\.1\]>" \
	"milter log: rule=example-rules.conf:$helo_line, stress=yes(macro), tempfail 421 4.7.0"
n=$(grep -Ec ' action=(reject|tempfail)' "$MLOG")
[ "$n" = 3 ] || { cat "$MLOG"; fail "milter log: $n refusals, expected 3"; }
pass "milter log: exactly the three refusals"
if grep -Eq '(warning|error|fatal|panic):' "$MLOG"; then cat "$MLOG"; fail "milter log has warnings or errors"; fi
pass "milter log: no warnings or errors"

# 6. Everything stops.
kill -0 "$milter_pid" 2>/dev/null || fail "milter-stress died during the test"
e2e_stop_all
exit 0
