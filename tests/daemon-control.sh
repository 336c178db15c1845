#!/bin/bash
# The control socket through the real daemon and milter-stress-ctl: the
# stress switch (source=control in the header and the log, kept across
# SIGUSR1 and a reload command, undone by auto), reload with a broken file,
# status and stats, the socket's mode and owner, a client of another uid, an
# oversized command, a silent client, commands during a load, and a client
# waiting on a daemon that dies.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

need perl
watchdog 150
CTL="$top_builddir/tools/milter-stress-ctl"
sock="$T_DIR/ms.sock"
ctl="$T_DIR/control"
conf="$T_DIR/ms.conf"
log="$T_DIR/ms.log"
# One named rule that every probe transaction meets, for status's busiest rules.
printf 'control_socket = %s\nconnect name=every-session any accept\n' "$ctl" >"$conf"
chmod 644 "$conf"
start_daemon "$log" "unix:$sock" -c "$conf"
wait_for_unix_socket "$ctl" 100 "$ms_pid"

# ctl ARGS...: milter-stress-ctl -c CONF ARGS (-s SOCKET ARGS: without -c);
# sets out (its output) and rc.
ctl() {
	c_conf=(-c "$conf")
	[ "${1:-}" != -s ] || c_conf=()
	out=$("$CTL" "${c_conf[@]}" "$@" 2>&1)
	rc=$?
}
expect_ctl() { # RC REGEX WHAT ARGS...
	e_rc=$1 e_re=$2 e_what=$3
	shift 3
	ctl "$@"
	[ "$rc" -eq "$e_rc" ] || fail "$e_what: exit $rc, expected $e_rc: $out"
	printf '%s\n' "$out" | grep -Eq -- "$e_re" || fail "$e_what: no line matching '$e_re' in: $out"
	pass "$e_what"
}
n=0
# probe MACRO-VALUE REGEX WHAT: one transaction with {stress}=VALUE.
probe() {
	n=$((n + 1))
	"$MILTER_PROBE" -p "unix:$sock" -m "{stress}=$1" --from "<p$n@example.com>" \
		>"$T_DIR/probe$n.out" 2>&1 || { cat "$T_DIR/probe$n.out"; fail "$3: milter-probe"; }
	expect_line "$T_DIR/probe$n.out" "$2" "$3"
}

# The socket: mode 0600, owned by the daemon's user.
owner=$(id -un)
[ "$(id -u)" = 0 ] && owner=nobody
[ "$(stat -c '%a %U' "$ctl")" = "600 $owner" ] ||
	fail "control socket is $(stat -c '%a %U' "$ctl"), expected 600 $owner"
pass "control socket: mode 0600, owner $owner"

probe no '^eom: add header X-Stress: no$' "before the switch: the macro decides (no)"
expect_ctl 0 '^ok: stress on for new sessions$' "stress on" stress on
probe no '^eom: add header X-Stress: yes \(source=control\)$' "stress on: the next session is stressed, source=control"
expect_line "$log" "stress=yes\\(control\\) .*from=<p$n@example\\.com>" "stress on: the log line says yes(control)"
expect_line "$log" 'control: uid [0-9]+ \(pid [0-9]+\) set stress on' "stress on: logged with the uid that asked"

kill -USR1 "$ms_pid"
wait_for_line "$log" 'reloaded configuration' 100 "$ms_pid"
probe no '^eom: add header X-Stress: yes \(source=control\)$' "the switch survives SIGUSR1"
expect_ctl 0 '^ok: reloaded, generation 3$' "reload answers ok with the generation" reload
probe no '^eom: add header X-Stress: yes \(source=control\)$' "the switch survives a reload command"
expect_ctl 0 '^stress: +on: forced by control' "status shows the switch" status
expect_ctl 0 '^config: .*ms\.conf, generation 3 \(2 reloads\)$' "status shows the generation" status
expect_ctl 0 '^sessions: +now 0, peak [0-9]+, cap 4000' "status shows the sessions" status
expect_ctl 0 "^ +$n connect accept every-session\$" "status shows the busiest rule with its $n verdicts" status
expect_ctl 0 '^statistics: messages=[0-9]+ ' "stats answers the statistics line" stats

expect_ctl 0 '^ok: stress off' "stress off" stress off
probe yes '^eom: add header X-Stress: no \(source=control\)$' "stress off: the macro's yes is overruled"
expect_ctl 0 '^ok: stress auto' "stress auto" stress auto
probe yes '^eom: add header X-Stress: yes \(source=macro\)$' "auto: the macro decides again (yes)"
probe no '^eom: add header X-Stress: no$' "auto: the macro decides again (no)"
expect_ctl 0 '^stress: +auto: from the \{stress\} macro$' "status: auto" status

# A broken file: the errors with file:line, the old configuration kept.
cp "$conf" "$T_DIR/good.conf"
printf 'no_such_parameter = 1\n' >>"$conf"
expect_ctl 2 'ms\.conf does not load: give the control socket with -s' \
	"-c with a broken file: the client says why and points to -s" status
expect_ctl 1 '^error: .*ms\.conf:3: .*no_such_parameter' "reload of a broken file: file:line" -s "$ctl" reload
expect_ctl 1 '^error: reload failed; configuration generation 3 is kept$' \
	"reload of a broken file: the old one is kept" -s "$ctl" reload
cp "$T_DIR/good.conf" "$conf"
probe yes '^eom: add header X-Stress: yes \(source=macro\)$' "after the failed reload the daemon works"

# Errors of the command line itself.
expect_ctl 1 "^error: unknown command 'bogus'" "unknown command: one error line" bogus
expect_ctl 1 '^error: stress takes one argument' "missing argument" stress
expect_ctl 1 "^error: bad argument 'maybe'" "bad argument" stress maybe
expect_ctl 2 'usage:' "no command: usage, exit 2"
expect_ctl 2 'cannot connect to .*nowhere' "no daemon there: exit 2" -s "$T_DIR/nowhere" status

# perl_client DATA [SHUT]: connect, send DATA (\0 in it: a NUL byte) and
# shut our side when SHUT,
# print what comes back until the daemon closes (at most 20 s).
perl_client() {
	perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!\n";
		(my $d = $ARGV[1]) =~ s/\\0/\0/g;
		print $s $d;
		$s->shutdown(1) if $ARGV[2];
		$SIG{ALRM} = sub { die "no close within 20 s\n" };
		alarm 20;
		local $/;
		my $a = <$s>;
		print defined $a ? $a : "";' "$ctl" "$@"
}
big=$(head -c 3000 /dev/zero | tr '\0' x)
perl_client "$big" 1 >"$T_DIR/big.out" 2>&1 || { cat "$T_DIR/big.out"; fail "oversized command: client"; }
expect_line "$T_DIR/big.out" '^error: command longer than 1024 bytes$' "oversized command: one error line"
[ "$(wc -l <"$T_DIR/big.out")" -eq 1 ] || fail "oversized command: more than one line"
perl_client 'status\0' 1 >"$T_DIR/nul.out" 2>&1
expect_line "$T_DIR/nul.out" '^error: NUL byte at offset 6' "a NUL byte: one error line"
t0=$(date +%s)
perl_client "" >"$T_DIR/silent.out" 2>&1 || { cat "$T_DIR/silent.out"; fail "silent client: not closed"; }
t1=$(date +%s)
expect_line "$T_DIR/silent.out" '^error: no command within 5 s$' "silent client: an error line"
[ $((t1 - t0)) -ge 4 ] && [ $((t1 - t0)) -le 10 ] || fail "silent client dropped after $((t1 - t0)) s"
pass "silent client: dropped after $((t1 - t0)) s"
expect_ctl 0 '^milter-stress ' "the daemon still answers after them" status

# Another uid: the file mode stops it; past the mode, SO_PEERCRED does.
if [ "$(id -u)" = 0 ]; then
	need setpriv
	other() { setpriv --reuid=1 --regid=1 --clear-groups "$CTL" -s "$ctl" status >"$T_DIR/other.out" 2>&1; }
	other
	[ $? -eq 2 ] || { cat "$T_DIR/other.out"; fail "uid 1: not refused by the socket's mode"; }
	expect_line "$T_DIR/other.out" 'cannot connect.*Permission denied' "uid 1: refused by mode 0600 (exit 2)"
	chmod 666 "$ctl"
	other
	o_rc=$?; [ $o_rc -eq 1 ] || { cat "$T_DIR/other.out"; fail "uid 1: not refused by the daemon (exit $o_rc)"; }
	expect_line "$T_DIR/other.out" '^error: permission denied' "uid 1 past the mode: refused by SO_PEERCRED (exit 1)"
	expect_line "$log" 'control: refused uid 1 ' "the refusal is logged"
	chmod 600 "$ctl"
fi

# Commands during a load: every one answers, the load completes.
"$MILTER_PROBE" -p "unix:$sock" --bench 64,2000 >"$T_DIR/bench.out" 2>&1 &
bench=$!
track_pid $bench
i=0
while kill -0 $bench 2>/dev/null && [ $i -lt 200 ]; do
	for c in status stats "stress on" "stress off" reload "stress auto"; do
		# shellcheck disable=SC2086
		ctl $c
		[ "$rc" -eq 0 ] || fail "during the load: '$c' exited $rc: $out"
	done
	i=$((i + 1))
done
wait $bench || { tail "$T_DIR/bench.out"; fail "the load failed during control commands"; }
pass "$i rounds of control commands during a 64-session load; the load completed"
expect_ctl 0 '^ok: reloaded' "a reload after the load" reload

# Nothing in the log of a sanitizer build says a race, a leak or worse.
if grep -Eq 'Sanitizer|runtime error|panic' "$log"; then
	grep -E -A20 'Sanitizer|runtime error|panic' "$log" | head -n 60
	fail "the daemon's log has a sanitizer report"
fi
pass "no sanitizer report in the daemon's log"

# A clean stop with the control thread running: it is joined, status 0.
ctl2="$T_DIR/control2"
printf 'control_socket = unix:%s\n' "$ctl2" >"$T_DIR/ms2.conf"
ms1=$ms_pid
start_daemon "$T_DIR/ms2.log" "unix:$T_DIR/ms2.sock" -c "$T_DIR/ms2.conf"
ms2=$ms_pid
ms_pid=$ms1
wait_for_unix_socket "$ctl2" 100 "$ms2"
expect_ctl 0 '^ok: stress on' "second daemon: stress on" -s "$ctl2" stress on
stop_daemon "$ms2" "$T_DIR/ms2.log" "second daemon with a control socket"

# A client waiting on a daemon that dies: exit 2 and a message, no hang.
kill -STOP "$ms_pid"
"$CTL" -c "$conf" -t 1 status >"$T_DIR/stuck.out" 2>&1
rc=$?
[ $rc -eq 2 ] || { cat "$T_DIR/stuck.out"; fail "stopped daemon: exit $rc"; }
expect_line "$T_DIR/stuck.out" 'no answer in time' "a stopped daemon: the client times out (exit 2)"
"$CTL" -c "$conf" -t 30 status >"$T_DIR/dead.out" 2>&1 &
waiter=$!
sleep 0.5
kill -KILL "$ms_pid"
kill -CONT "$ms_pid" 2>/dev/null
wait_until "the client still waits 5 s after the daemon died" 50 "" gone "$waiter"
wait $waiter
rc=$?
[ $rc -eq 2 ] || { cat "$T_DIR/dead.out"; fail "killed daemon: client exit $rc"; }
expect_line "$T_DIR/dead.out" 'closed the connection without an answer' "the daemon killed while a client waits: exit 2 with a message"
