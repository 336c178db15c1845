#!/bin/bash
# max_sessions through a real Postfix: with the milter's one session held
# open by milter-probe, an SMTP client gets Postfix's own 421 at once and is
# hung up on, and Postfix logs the milter's reply; with overload_action =
# accept the message is delivered, unfiltered (no X-Stress header).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 120
printf 'max_sessions = 1\n' >"$T_DIR/ms.conf"
e2e_start "$T_DIR/ms.conf" "(max_sessions = 1)"
"$MILTER_PROBE" -p "inet:$milter_port@127.0.0.1" --hold 60 >"$T_DIR/held.out" 2>&1 &
held=$!
track_pid $held
wait_for_line "$T_DIR/held.out" '^connect ' 100 $held
pass "the milter's one session is held open"

pf_send "$port_normal" "$T_DIR/swaks-over.out" --header "Subject: over" &&
	fail "a message went through past max_sessions"
expect_line "$T_DIR/swaks-over.out" '^<\*\* 421 ' "the client gets 421 at the greeting"
expect_line "$T_DIR/swaks-over.out" 'closed connection' "and Postfix hangs up"
pf_wait_log 'milter-reject: CONNECT from localhost\[127\.0\.0\.1\]: 421 4\.7\.0 Too many sessions, try again later'
pass "Postfix logs the milter's 421 4.7.0 and its text"
wait_for_line "$MLOG" 'warning: max_sessions=1 reached' 100 $milter_pid
pass "the milter logs the cap"

echo 'overload_action = accept' >>"$T_DIR/ms.conf"
n=$(grep -c 'reloaded configuration' "$MLOG")
kill -USR1 "$milter_pid"
i=0
while [ "$(grep -c 'reloaded configuration' "$MLOG")" -le "$n" ]; do
	[ $i -ge 100 ] && fail "no reload"
	sleep 0.1
	i=$((i + 1))
done
pf_send "$port_normal" "$T_DIR/swaks-accept.out" --header "Subject: accepted over the cap" ||
	fail "overload_action = accept: the message was not accepted"
qid=$(pf_queue_id "$T_DIR/swaks-accept.out")
f=$(sink_wait_match "id ${qid}(;|\$)") || fail "no capture of $qid"
grep -q '^X-Stress:' "$f" && fail "the accepted message was filtered"
pass "overload_action = accept: delivered without filtering"

kill "$held"
kill -0 "$milter_pid" 2>/dev/null || fail "milter-stress died during the test"
