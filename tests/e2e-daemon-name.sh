#!/bin/bash
# End to end: the daemon_name check through a real Postfix with two
# listeners that differ only in milter_macro_daemon_name, the value Postfix
# sends as {daemon_name} ($myhostname unless master.cf sets it per service).
# The rules accept whatever arrives on the "submission" service and refuse
# the rest at connect, so one client gets two answers by port alone:
# - on the plain listener Postfix answers the connection with its own "554
#   ... not accepting connections" (the milter's 554 5.7.1 at connect; its
#   text is in the maillog) and nothing is queued;
# - on the submission listener the message is delivered to the sink.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 50

cat >"$T_DIR/daemon-name.conf" <<'CONF'
syslog_name = milter-stress-e2e
connect name=submission daemon_name submission accept
connect name=port25 any reject 554 5.7.1 "Port 25 is closed to $client_addr here"
CONF

e2e_milter "$T_DIR/daemon-name.conf" "with daemon_name rules"
port_plain=$(free_port)
port_sub=$(free_port)
pf_start "$T_DIR/pf" "smtpd_milters = inet:127.0.0.1:$milter_port
milter_default_action = tempfail" "$(pf_smtpd "$port_plain")
$(pf_smtpd "$port_sub" -o syslog_name=postfix/submission -o milter_macro_daemon_name=submission)"
pass "Postfix: plain smtpd on $port_plain, 'submission' smtpd on $port_sub"

# 1. The plain listener: {daemon_name} is $myhostname, the port-25 rule refuses.
send plain "$port_plain"
not_queued plain
expect_line "$T_DIR/swaks-plain.out" "^<\*\* 554 $PF_HOSTNAME ESMTP not accepting connections\$" \
	"plain listener: Postfix refuses the connection"
expect_line "$PF_LOG" "postfix/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: CONNECT from [^ ]*\[127\.0\.0\.1\]: 554 5\.7\.1 Port 25 is closed to 127\.0\.0\.1 here;" \
	"maillog: the plain listener's session got the milter's 554 5.7.1 at connect"

# 2. The submission listener: accepted at connect, delivered.
send sub "$port_sub"
[ "$rc" = 0 ] || { cat "$T_DIR/swaks-sub.out"; fail "submission listener: swaks exited $rc"; }
qid=$(pf_queue_id "$T_DIR/swaks-sub.out")
[ -n "$qid" ] || fail "submission listener: no queue ID"
pass "submission listener: message accepted ($qid, $ms ms)"
sink_wait_match "id ${qid}(;|\$)" 100 >/dev/null || fail "no capture of $qid"
pass "smtp-sink captured the submission message"
[ "$(sink_count)" = 1 ] || { sink_dump; fail "smtp-sink captured $(sink_count) messages, expected 1"; }

# 3. The milter's verdicts name the rules.
expect_line "$MLOG" ": stress=[a-z]+\([a-z]+\) stage=connect rule=port25 action=reject 554 5\.7\.1 " \
	"milter log: rule=port25 refused the plain listener's session"
expect_line "$MLOG" "^[^ ]+: [0-9A-F]+: stress=[a-z]+\\([a-z]+\\) stage=eom rule=submission action=accept " \
	"milter log: rule=submission accepted the session at connect (logged with its message)"
if grep -Eq '(warning|error|fatal|panic):' "$MLOG"; then cat "$MLOG"; fail "milter log has warnings or errors"; fi
pass "milter log: no warnings or errors"

kill -0 "$milter_pid" 2>/dev/null || fail "milter-stress died during the test"
e2e_stop_all
exit 0
