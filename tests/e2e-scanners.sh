#!/bin/bash
# End to end through a private Postfix with the content scanners: rspamd
# (GTUBE, and its settings id under stress) and clamd (a signature this test
# writes), each a private server on loopback. On the normal listener a clean
# message is delivered with rspamd's score in a header, GTUBE is refused
# with rspamd's action in the reply, the test virus with its name; on the
# "-o stress=yes" listener GTUBE is delivered with "X-Stress: yes
# (source=macro); skipped=clamd,rspamd", and a rule of mode stress still
# asks rspamd, with the settings id of the stress personality.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"
. "$top_srcdir/tests/scanners-lib.sh"
. "$top_srcdir/tests/rspamd-lib.sh"

watchdog 120

clamd_start 2
rspamd_start
pass "clamd on 127.0.0.1:$clamd_port, rspamd on 127.0.0.1:$rspamd_port"

cat >"$T_DIR/ms.conf" <<CONF
clamd_socket = inet:$clamd_port@127.0.0.1
rspamd_socket = $rspamd_endpoint
rspamd_settings_id = \${stress?{milter-stress-light}:{}}
eom virus reject 554 5.7.1 "Virus found: \$virus_name"
eom rspamd_action "reject" reject 550 5.7.1 "Spam: rspamd says \$rspamd_action (\$rspamd_score)"
eom stress rspamd_symbol MS_LIGHT tag X-Light "light"
eom any tag X-Rspamd-Score "\$rspamd_score"
CONF
e2e_start "$T_DIR/ms.conf" "with clamd and rspamd"

send clean "$port_normal" --body "Hello, a letter of no interest."
delivered clean "normal, clean"
f=$(sink_wait_match "id ${qid}(;|\$)" 100) || fail "no capture of $qid"
expect_header "$f" 'no' "normal, clean: 'X-Stress: no'"
grep -q '^X-Rspamd-Score: [0-9.-]*$' "$f" || { cat "$f"; fail "normal, clean: no X-Rspamd-Score"; }
pass "normal, clean: rspamd's score in X-Rspamd-Score"

send gtube "$port_normal" --body "$GTUBE"
not_queued gtube
expect_reply gtube '\.$' 1 '550 5.7.1 Spam: rspamd says reject (15.00)' "normal, GTUBE: refused with rspamd's action and score"

send virus "$port_normal" --body "Hello, $CLAMD_TEST_STRING"
not_queued virus
expect_reply virus '\.$' 1 '554 5.7.1 Virus found: MilterStress.Test.Sig.UNOFFICIAL' "normal, the test virus: refused with its name"

send gtube-stress "$port_stress" --body "$GTUBE"
delivered gtube-stress "stress, GTUBE"
f=$(sink_wait_match "id ${qid}(;|\$)" 100) || fail "no capture of $qid"
expect_header "$f" 'yes \(source=macro\); skipped=clamd,rspamd' "stress, GTUBE delivered: the scanners listed in skipped="

send light-stress "$port_stress" --body "Hello, a letter of no interest."
delivered light-stress "stress, clean"
f=$(sink_wait_match "id ${qid}(;|\$)" 100) || fail "no capture of $qid"
grep -q '^X-Light: light$' "$f" || { cat "$f"; fail "stress: no X-Light"; }
pass "stress: a rule of mode stress asked rspamd with the settings id milter-stress-light (X-Light)"

expect_line "$MLOG" ": stress=no\(macro\) stage=eom .* scan=clamd:clean,rspamd:no_action/" "milter log: what each scanner found"
if grep -Eq '(warning|error|fatal|panic):' "$MLOG"; then cat "$MLOG"; fail "milter log has warnings or errors"; fi
pass "milter log: no warnings or errors"
rspamd_expect_offline
e2e_stop_all
exit 0
