#!/bin/bash
# End to end through a real Postfix: milter-stress behind a private Postfix
# instance configured with the shipped snippets conf/postfix-main.cf and
# conf/postfix-master.cf (test listener with -o stress=yes), relaying to an
# smtp-sink that captures every message.
#
# 1. a message to the normal listener is delivered with "X-Stress: no";
# 2. a message to the stress listener is delivered with
#    "X-Stress: yes (source=macro)": Postfix passed {stress}=yes;
# 3. a message sent with XCLIENT shows the faked client address in the
#    milter's log line, i.e. Postfix hands the milter the XCLIENT client.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

# 1. milter-stress with the header settings spelled out, the sink, and Postfix
# with the shipped snippets (main.cf lines, the master.cf test listener).
cat >"$T_DIR/milter-stress.conf" <<'EOF'
stress_header = X-Stress
stress_macro = {stress}
EOF
e2e_start "$T_DIR/milter-stress.conf" "(defaults)"
# shellcheck disable=SC2016 # the literal text of the setting
[ "$(pf_postconf -h milter_macro_defaults)" = 'stress=${stress?{yes}:{no}}' ] ||
	fail "main.cf snippet not in effect: milter_macro_defaults = $(pf_postconf -h milter_macro_defaults)"

# 3. One message to each listener.
pf_send "$port_normal" "$T_DIR/swaks-normal.out" --header "Subject: e2e normal" ||
	fail "swaks to the normal listener failed"
pf_send "$port_stress" "$T_DIR/swaks-stress.out" --header "Subject: e2e stress" ||
	fail "swaks to the stress listener failed"

banner=$(pf_banner "$T_DIR/swaks-normal.out")
[ "$banner" = "220 $PF_HOSTNAME ESMTP stress=no" ] || fail "normal listener greeted with '$banner'"
pass "normal listener greets with stress=no"
banner=$(pf_banner "$T_DIR/swaks-stress.out")
[ "$banner" = "220 $PF_HOSTNAME ESMTP stress=yes" ] || fail "stress listener greeted with '$banner'"
pass "stress listener greets with stress=yes"

qid_normal=$(pf_queue_id "$T_DIR/swaks-normal.out")
qid_stress=$(pf_queue_id "$T_DIR/swaks-stress.out")
if [ -z "$qid_normal" ] || [ -z "$qid_stress" ]; then fail "no queue ID in the swaks transcripts"; fi
pass "both messages accepted (queue IDs $qid_normal, $qid_stress)"

sink_wait_count 2 100
f_normal=$(sink_wait_match "id ${qid_normal}(;|\$)" 10) || fail "no capture of $qid_normal"
f_stress=$(sink_wait_match "id ${qid_stress}(;|\$)" 10) || fail "no capture of $qid_stress"
pass "smtp-sink captured both messages"

# The header the milter added, exactly once (postfix-lib.sh).
expect_header "$f_normal" 'no' "normal listener: message carries 'X-Stress: no'"
expect_header "$f_stress" 'yes \(source=macro\)' "stress listener: message carries 'X-Stress: yes (source=macro)'"

wait_for_line "$MLOG" "$qid_normal: .*stress=no" 50 $milter_pid
pass "milter log: $qid_normal stress=no"
wait_for_line "$MLOG" "$qid_stress: .*stress=yes\(macro\)" 50 $milter_pid
pass "milter log: $qid_stress stress=yes(macro)"

# 4. XCLIENT: the milter sees the client that XCLIENT names.
pf_send "$port_normal" "$T_DIR/swaks-xclient.out" --header "Subject: e2e xclient" \
	--xclient-addr 192.0.2.7 --xclient-name xclient.milter-stress.test ||
	fail "swaks with XCLIENT failed"
qid_x=$(pf_queue_id "$T_DIR/swaks-xclient.out")
[ -n "$qid_x" ] || fail "no queue ID in the XCLIENT transcript"
f_x=$(sink_wait_match "id ${qid_x}(;|\$)" 100) || fail "no capture of $qid_x"
expect_line "$f_x" '^Received: from .*\(xclient\.milter-stress\.test \[192\.0\.2\.7\]\)' \
	"Postfix took the XCLIENT client (Received header)"
wait_for_line "$MLOG" "$qid_x: .*client=[^ ]*\[192\.0\.2\.7\]" 50 $milter_pid
pass "milter log: $qid_x client=...[192.0.2.7]"
expect_header "$f_x" 'no' "XCLIENT message carries 'X-Stress: no'"

# 5. Everything stops; nothing of the instance is left behind.
e2e_stop_all
exit 0
