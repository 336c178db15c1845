#!/bin/bash
# End to end: the client history through a real Postfix (the shipped
# snippets: a normal listener and the "-o stress=yes" one). A client that
# delivered enough mail in calm times is known: on the stress listener its
# bare-IP HELO passes and its message is delivered with "X-Stress: no
# (source=macro; stress=yes; client=known; rule=known-clients)". A stranger
# that behaves the same way gets the stress rule's 421 at HELO, and Postfix
# hangs up. The two clients are two loopback addresses (swaks
# --local-interface): XCLIENT would not do, as swaks says its bare-IP HELO
# from 127.0.0.1 before XCLIENT, and the stress rule refuses that first.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 60
HIST="$top_builddir/tools/milter-stress-history"
KNOWN=127.0.0.71
STRANGER=127.0.0.72
hdir="$T_DIR/hist"
mkdir -p "$hdir"
[ "$(id -u)" != 0 ] || chown nobody "$hdir"
cat >"$T_DIR/history.conf" <<CONF
syslog_name = milter-stress-e2e
history_store = lmdb:$hdir/history.lmdb
history_known_messages = 2
history_cache_time = 0
connect stress name=known-clients history known personality normal
helo stress name=bare-ip helo ip_literal tempfail 421 4.7.0 "Busy, try again later"
CONF
chmod 644 "$T_DIR/history.conf"
e2e_start "$T_DIR/history.conf" "with a client history in LMDB"

# 1. Two messages in calm times make a client known.
for i in 1 2; do
	send calm$i "$port_normal" --local-interface "$KNOWN"
	delivered calm$i "calm, $KNOWN, message $i"
done
known() { "$HIST" -c "$T_DIR/history.conf" show "$KNOWN" | grep -q ' stress=known$'; }
wait_until "$KNOWN is not known in the history" 50 "$milter_pid" known
pass "the history counts $KNOWN's two messages"

# 2. Under stress, the known client's bare-IP HELO passes.
send known-stress "$port_stress" --local-interface "$KNOWN" --helo "[$KNOWN]"
delivered known-stress "stress, known client with a bare-IP HELO"
qid_known=$qid

# 3. A stranger that behaves the same way: the stress rule's 421.
send stranger-stress "$port_stress" --local-interface "$STRANGER" --helo "[$STRANGER]"
not_queued stranger-stress
expect_reply stranger-stress 'EHLO ' 1 "421 4.7.0 Busy, try again later" \
	"stress, stranger with a bare-IP HELO: the milter's 421 4.7.0"

f=$(sink_wait_match "id ${qid_known}(;|\$)" 100) || fail "no capture of $qid_known"
expect_header "$f" 'no \(source=macro; stress=yes; client=known; rule=known-clients\)' \
	"the known client's message says why it kept the normal personality"
[ "$(sink_count)" = 3 ] || { sink_dump; fail "smtp-sink captured $(sink_count) messages, expected 3"; }
pass "only the known client's and the calm messages reached the sink"
expect_line "$MLOG" "stress=no\(macro\) client=known personality=normal\(rule=known-clients,at=connect,stress=yes\) stage=eom action=accept client=[^ ]*\[${KNOWN//./\\.}\]" \
	"milter log: the known client's line"
expect_line "$MLOG" "stress=yes\(macro\) client=unknown stage=helo rule=bare-ip action=tempfail 421 4\.7\.0 client=[^ ]*\[${STRANGER//./\\.}\]" \
	"milter log: the stranger's line"
if grep -Eq '(warning|error|fatal|panic):' "$MLOG"; then cat "$MLOG"; fail "milter log has warnings or errors"; fi
pass "milter log: no warnings or errors"

kill -0 "$milter_pid" 2>/dev/null || fail "milter-stress died during the test"
e2e_stop_all
exit 0
