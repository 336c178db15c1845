#!/bin/bash
# End to end: what an SMTP client really gets when a rule answers at
# connect, under Postfix's own stress defaults. Four listeners, told apart
# by milter_macro_daemon_name (the daemon_name check), and main.cf's
# smtpd_hard_error_limit = ${stress?{1}:{20}} (Postfix's default, set here
# so the test does not depend on it):
# - stress, "reject 521": Postfix answers the greeting with its own "554
#   HOST ESMTP not accepting connections" and counts an error; with a limit
#   of 1 it then sends "421 4.7.0 HOST Error: too many errors" and hangs up
#   before reading any command. The milter's 521 never reaches the client;
# - normal (limit 20), "reject 521": the same 554 greeting, EHLO is
#   accepted, MAIL FROM gets the milter's 521 and Postfix hangs up;
# - stress, "tempfail 421": Postfix answers the greeting with its own "421
#   HOST Service unavailable - try again later" and hangs up at once: the
#   shape milter-stress.conf(5) recommends for a hang-up under stress;
# - stress, "tempfail 451": a normal 220 greeting (only a 5xx changes it),
#   the milter's 451 at MAIL FROM, and that refusal is the one error:
#   Postfix's 421 at the next command.
# swaks stops after a refused greeting, so a plain client written here goes
# on with EHLO and MAIL FROM as a careless client would.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 50

cat >"$T_DIR/ms.conf" <<'CONF'
connect name=hard daemon_name hard reject 521 5.7.1 "Go away"
connect name=soft daemon_name soft tempfail 421 4.7.1 "Busy, try again later"
connect name=later daemon_name later tempfail 451 4.7.1 "Try again later"
CONF
e2e_milter "$T_DIR/ms.conf" "with a 521, a 421 and a 451 rule at connect"
p_stress521=$(free_port)
p_normal521=$(free_port)
p_stress421=$(free_port)
p_stress451=$(free_port)
main=$(pf_shipped_main "$milter_port") || fail "main.cf snippet"
pf_start "$T_DIR/pf" "$main
smtpd_hard_error_limit = \${stress?{1}:{20}}" \
	"$(pf_smtpd "$p_stress521" -o stress=yes -o syslog_name=postfix/stress521 -o milter_macro_daemon_name=hard)
$(pf_smtpd "$p_normal521" -o syslog_name=postfix/normal521 -o milter_macro_daemon_name=hard)
$(pf_smtpd "$p_stress421" -o stress=yes -o syslog_name=postfix/stress421 -o milter_macro_daemon_name=soft)
$(pf_smtpd "$p_stress451" -o stress=yes -o syslog_name=postfix/stress451 -o milter_macro_daemon_name=later)"
[ "$(pf_postconf -x -h -o stress=yes smtpd_hard_error_limit)" = 1 ] || fail "smtpd_hard_error_limit is not 1 under stress"
[ "$(pf_postconf -x -h smtpd_hard_error_limit)" = 20 ] || fail "smtpd_hard_error_limit is not 20 without stress"
pass "Postfix: smtpd_hard_error_limit 1 under stress, 20 without; listeners $p_stress521 $p_normal521 $p_stress421 $p_stress451"

# dialog NAME PORT CMD...: read the greeting, then send each CMD and read its
# reply, until Postfix hangs up. Transcript in dialog-NAME.out: "<- " reply
# lines, "-> " commands, "*** closed" when the connection ended.
dialog() {
	(
		trap '' PIPE
		exec 3<>"/dev/tcp/127.0.0.1/$2" || exit 1
		d_name=$1
		shift 2
		dialog_reply || exit 0
		for d_cmd; do
			printf '%s\r\n' "$d_cmd" >&3 2>/dev/null
			echo "-> $d_cmd"
			dialog_reply || exit 0
		done
		dialog_reply # after the last command: closed, or anything else
		exit 0
	) >"$T_DIR/dialog-$1.out" || fail "$1: cannot connect to port $2"
}
dialog_reply() {
	while :; do
		IFS= read -r -t 10 d_line <&3 2>/dev/null
		d_rc=$?
		[ $d_rc -gt 128 ] && { echo "*** no reply within 10 s"; return 1; }
		[ $d_rc = 0 ] || { echo "*** closed"; return 1; }
		d_line=${d_line%$'\r'}
		echo "<- $d_line"
		case $d_line in [0-9][0-9][0-9]-*) ;; *) return 0 ;; esac
	done
}
# expect_dialog NAME WHAT: the transcript is exactly standard input.
expect_dialog() {
	if ! diff -u - "$T_DIR/dialog-$1.out" >"$T_DIR/dialog-$1.diff"; then
		cat "$T_DIR/dialog-$1.diff"
		fail "$2: the client got something else"
	fi
	pass "$2"
}
H=$PF_HOSTNAME
CMDS=("EHLO client.example" "MAIL FROM:<a@example.org>" "RCPT TO:<b@example.net>")

# 1. Under stress, a 5xx at connect: the 554 greeting, then Postfix's 421.
dialog stress521 "$p_stress521" "${CMDS[@]}"
expect_dialog stress521 "stress, reject 521 at connect: 554 greeting, Postfix's own 421 at the first command, hang-up" <<OUT
<- 554 $H ESMTP not accepting connections
-> EHLO client.example
<- 421 4.7.0 $H Error: too many errors
-> MAIL FROM:<a@example.org>
*** closed
OUT
expect_line "$PF_LOG" "postfix/stress521/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: CONNECT from [^ ]*\[127\.0\.0\.1\]: 521 5\.7\.1 Go away;" \
	"maillog, stress: the milter's 521 5.7.1 at CONNECT (the log is the only place its text shows)"
expect_line "$PF_LOG" "postfix/stress521/smtpd\[[0-9]+\]: too many errors after CONNECT from [^ ]*\[127\.0\.0\.1\]\$" \
	"maillog, stress: 'too many errors after CONNECT': Postfix sent its 421 before reading a command"
expect_line "$PF_LOG" "postfix/stress521/smtpd\[[0-9]+\]: disconnect from [^ ]*\[127\.0\.0\.1\] commands=0/0\$" \
	"maillog, stress: disconnect, no command read"

# 2. Without stress (limit 20), the same rule: the 521 comes at MAIL FROM.
dialog normal521 "$p_normal521" "${CMDS[@]}"
grep -q "^<- 250 " "$T_DIR/dialog-normal521.out" || { cat "$T_DIR/dialog-normal521.out"; fail "normal: EHLO not accepted"; }
sed -i '/^<- 250[- ]/d' "$T_DIR/dialog-normal521.out" # EHLO's feature list
expect_dialog normal521 "normal, reject 521 at connect: 554 greeting, EHLO accepted, the milter's 521 at MAIL FROM, hang-up" <<OUT
<- 554 $H ESMTP not accepting connections
-> EHLO client.example
-> MAIL FROM:<a@example.org>
<- 521 5.7.1 Go away
-> RCPT TO:<b@example.net>
*** closed
OUT

# 3. Under stress, a 421 at connect: Postfix's 421 greeting, hang-up.
dialog stress421 "$p_stress421" "${CMDS[@]}"
expect_dialog stress421 "stress, tempfail 421 at connect: Postfix's 421 greeting, hang-up" <<OUT
<- 421 $H Service unavailable - try again later
-> EHLO client.example
*** closed
OUT
expect_line "$PF_LOG" "postfix/stress421/smtpd\[[0-9]+\]: NOQUEUE: milter-reject: CONNECT from [^ ]*\[127\.0\.0\.1\]: 421 4\.7\.1 Busy, try again later;" \
	"maillog, stress: the milter's 421 4.7.1 at CONNECT"

# 4. Under stress, another 4xx at connect: a normal greeting, the milter's
# reply at MAIL FROM, which is an error: Postfix's 421 at the next command.
dialog stress451 "$p_stress451" "${CMDS[@]}"
grep -q "^<- 220 $H ESMTP" "$T_DIR/dialog-stress451.out" || { cat "$T_DIR/dialog-stress451.out"; fail "stress, 451: no 220 greeting"; }
grep -q "^<- 250 " "$T_DIR/dialog-stress451.out" || { cat "$T_DIR/dialog-stress451.out"; fail "stress, 451: EHLO not accepted"; }
sed -i -e '/^<- 250[- ]/d' -e '/^<- 220 /d' "$T_DIR/dialog-stress451.out"
expect_dialog stress451 "stress, tempfail 451 at connect: 220 greeting, EHLO accepted, the milter's 451 at MAIL FROM, Postfix's 421 at the next command" <<OUT
-> EHLO client.example
-> MAIL FROM:<a@example.org>
<- 451 4.7.1 Try again later
-> RCPT TO:<b@example.net>
<- 421 4.7.0 $H Error: too many errors
*** closed
OUT

# 5. The milter logged each verdict; nothing was queued.
expect_line "$MLOG" ": stress=yes\(macro\) stage=connect rule=hard action=reject 521 5\.7\.1 " "milter log: stress, rule=hard, reject 521"
expect_line "$MLOG" ": stress=no\(macro\) stage=connect rule=hard action=reject 521 5\.7\.1 " "milter log: normal, rule=hard, reject 521"
expect_line "$MLOG" ": stress=yes\(macro\) stage=connect rule=soft action=tempfail 421 4\.7\.1 " "milter log: stress, rule=soft, tempfail 421"
if grep -Eq ': [0-9A-Za-z]+: client=' "$PF_LOG"; then pf_log; fail "Postfix queued a message"; fi
if grep -Eq '(warning|error|fatal|panic):' "$MLOG"; then cat "$MLOG"; fail "milter log has warnings or errors"; fi
pass "nothing queued; milter log without warnings"

kill -0 "$milter_pid" 2>/dev/null || fail "milter-stress died during the test"
e2e_stop_all
exit 0
