#!/bin/bash
# The daemon on a temporary unix socket, driven by milter-probe: the stress
# header and log line for each stress source, a forged header removed, an
# IPv6 client, reload on SIGUSR1 (good and broken files), stop on SIGTERM.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

sock="$T_DIR/ms.sock"
cp "$top_srcdir/conf/milter-stress.conf" "$T_DIR/ms.conf"
start_daemon "$T_DIR/ms.log" "unix:$sock" -c "$T_DIR/ms.conf"
first_pid=$ms_pid
# The socket exists before the privileges are dropped and the start is logged.
wait_for_line "$T_DIR/ms.log" "starting: listening on unix:$sock" 100 $first_pid
pass "start is logged"

# probe NAME ARGS...: run one transaction, output in $T_DIR/NAME.out
probe() {
	name=$1
	shift
	"$MILTER_PROBE" -p "unix:$sock" "$@" >"$T_DIR/$name.out" 2>&1 ||
		{ cat "$T_DIR/$name.out"; fail "$name: milter-probe exited $?"; }
}

probe stress -m '{stress}=yes' --queue-id Q1STRESS
expect_line "$T_DIR/stress.out" '^eom: add header X-Stress: yes \(source=macro\)$' \
	"stressed session: X-Stress: yes (source=macro)"
expect_line "$T_DIR/stress.out" '^eom: accept$' "stressed session: accepted"
expect_line "$T_DIR/ms.log" \
	'Q1STRESS: stress=yes\(macro\) stage=eom rule=[^ ]+\.conf:[0-9]+ action=accept client=localhost\[127\.0\.0\.1\] helo=<probe\.example> from=<sender@example\.com> to=<rcpt@example\.com> ms=[0-9.]+$' \
	"stressed session: log line"
expect_line "$T_DIR/stress.out" '^negotiate: .*NOBODY' "negotiation turns off the body stage"
expect_line "$T_DIR/stress.out" '^body: not sent' "milter-probe sent no body"

probe calm -m '{stress}=no' --queue-id Q2CALM
expect_line "$T_DIR/calm.out" '^eom: add header X-Stress: no$' "calm session: X-Stress: no"
expect_line "$T_DIR/ms.log" 'Q2CALM: stress=no\(macro\) stage=eom rule=[^ ]+ action=accept' "calm session: log line"

probe nomacro --queue-id Q3NONE
expect_line "$T_DIR/nomacro.out" '^eom: add header X-Stress: no \(source=none\)$' \
	"no macro: X-Stress: no (source=none)"

probe forged -m '{stress}=no' --queue-id Q4FORGED --header 'X-Stress: yes (source=macro)' \
	--header 'Subject: forged'
expect_line "$T_DIR/forged.out" '^eom: (change|delete).*X-Stress' "forged header removed"
expect_line "$T_DIR/forged.out" '^eom: add header X-Stress: no$' "real header added"

probe ipv6 -m '{stress}=yes' --queue-id Q5V6 --client-addr 2001:db8::25 --client-name v6.example
expect_line "$T_DIR/ms.log" 'Q5V6: stress=yes\(macro\) .* client=v6\.example\[2001:db8::25\]' \
	"IPv6 client in the log line"

probe multi --queue-id Q6MULTI --rcpt '<a@example.net>' --rcpt '<b@example.net>' --rcpt '<c@example.net>'
expect_line "$T_DIR/ms.log" 'Q6MULTI: .* to=<a@example\.net> nrcpt=3 ms=' "recipient count in the log line"

# Reload: a changed header name applies to new sessions.
sed 's/^stress_header = X-Stress$/stress_header = X-Load/' "$T_DIR/ms.conf" >"$T_DIR/ms.conf.new"
mv "$T_DIR/ms.conf.new" "$T_DIR/ms.conf"
kill -USR1 $first_pid
wait_for_line "$T_DIR/ms.log" 'reloaded configuration from' 100 $first_pid
probe reloaded -m '{stress}=yes'
expect_line "$T_DIR/reloaded.out" '^eom: add header X-Load: yes \(source=macro\)$' "reload applies"

# A broken file changes nothing and says why, with file:line.
printf 'stress_header = X-Broken\nstres_macro = {x}\n' >"$T_DIR/ms.conf"
kill -USR1 $first_pid
wait_for_line "$T_DIR/ms.log" 'reload failed' 100 $first_pid
expect_line "$T_DIR/ms.log" "$T_DIR/ms.conf:2: .*stres_macro.*stress_macro" "broken reload names file:line"
probe after-broken -m '{stress}=yes'
expect_line "$T_DIR/after-broken.out" '^eom: add header X-Load: yes \(source=macro\)$' \
	"broken reload keeps the old configuration"

# -o stress=yes forces the stress personality whatever the macro says.
sock2="$T_DIR/ms2.sock"
start_daemon "$T_DIR/ms2.log" "unix:$sock2" -c /dev/null -o stress=yes
"$MILTER_PROBE" -p "unix:$sock2" -m '{stress}=no' >"$T_DIR/forced.out" 2>&1 || fail "probe forced"
expect_line "$T_DIR/forced.out" '^eom: add header X-Stress: yes \(source=forced\)$' "-o stress=yes forces"

# SIGTERM stops, cleanly.
stop_daemon_status "$first_pid" "$T_DIR/ms.log" "SIGTERM"
expect_line "$T_DIR/ms.log" 'stopping' "stop is logged"
expect_line "$T_DIR/ms.log" 'statistics: messages=[1-9][0-9]* rejected=0 tempfailed=0 discarded=0 skipped: dnsbl=0 body=0' \
	"counters are logged at stop"
