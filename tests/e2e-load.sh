#!/bin/bash
# End to end: the own stress signal and the stress endpoint through a
# private Postfix, side by side with Postfix's {stress}.
#
# The milter reads the instance's master.cf (service_limits = auto, through
# MAIL_CONFIG): a smtpd service "loadtest" with a process limit of 5, named
# by -o milter_macro_daemon_name. It is a unix-domain service, because
# master never raises stress for a service that listens on loopback only
# (ARCHITECTURE.md F2), and runs with max_use=1, so that master's stress
# reaches new processes at once. main.cf has the shipped endpoint line,
# smtpd_milters = ${stress?{endpoint}:{socket}} (F21).
#
# 1. A -o stress=yes listener: its session reaches the endpoint
#    (X-Stress: yes (source=endpoint)): Postfix expands $stress there.
# 2. While a sampler sends a message every 0.3 s to loadtest, 4 idle
#    sessions are held (80 % of 5: stress_enter), then a 5th (Postfix's
#    limit), then all are closed. Printed: time to detect and to recover of
#    the milter's own signal and of Postfix's {stress} (from the greeting,
#    smtpd_banner = ... stress=${stress?{yes}:{no}}). Asserted: the own
#    signal enters within 2 s of the 4 sessions and leaves within
#    stress_hold + 2 s of the clients leaving (Postfix closes their milter
#    sessions a moment later; the levels tick once a second), and no sample
#    after that says source=sessions. Postfix's {stress} is printed, not
#    asserted: master raised it for neither a loopback inet service nor
#    this unix one in our runs.
# Also measured: the F10 bias, sessions a rule accepts at connect.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 150
need perl
need swaks
pf_need
hold_s=2
p_ms=$(free_port)
p_ep=$(free_port)
port_stress=$(free_port)
MLOG=$T_DIR/milter.log
at_exit e2e_diagnostics

sink_start "$T_DIR/sink"
# The shipped endpoint line, with this test's ports.
ep_line=$(sed -n 's/^#\(smtpd_milters = ${stress?{inet:127\.0\.0\.1:\)8891\(}:{inet:127\.0\.0\.1:\)8890}}$/\1'"$p_ep"'\2'"$p_ms"'}}/p' \
	"$top_srcdir/conf/postfix-main.cf")
[ -n "$ep_line" ] || fail "conf/postfix-main.cf has no endpoint line for loopback"
main=$(pf_shipped_main "$p_ms" | sed "s|^smtpd_milters = .*|$ep_line|") || fail "main.cf snippet"
pf_start "$T_DIR/pf" "$main" "$(pf_smtpd "$port_stress" -o stress=yes)
loadtest  unix  n       -       n       -       5       smtpd
  -o milter_macro_daemon_name=loadtest -o max_use=1 -o syslog_name=postfix/loadtest
accepted  unix  n       -       n       -       5       smtpd
  -o milter_macro_daemon_name=accepted -o syslog_name=postfix/accepted"
sock=$PF_QUEUE/public/loadtest
[ -S "$sock" ] || fail "no socket $sock"
pass "Postfix: $ep_line; loadtest (unix, maxproc 5)"

cat >"$T_DIR/ms.conf" <<EOF
socket = inet:$p_ms@127.0.0.1
stress_socket = inet:$p_ep@127.0.0.1
stress_sources = macro, sessions
service_limits = auto
stress_hold = ${hold_s}s
syslog_name = milter-stress-e2e
control_socket = $T_DIR/control
connect name=accept-at-connect daemon_name accepted accept
EOF
MAIL_CONFIG=$PF_CONF start_daemon "$MLOG" "inet:$p_ms@127.0.0.1" -c "$T_DIR/ms.conf"
milter_pid=$ms_pid
wait_for_tcp "$p_ep" 100 "$ms_pid"
expect_line "$MLOG" 'service_limits = auto: service loadtest \(unix\): daemon name loadtest, limit 5' \
	"the milter read loadtest's limit from the instance's master.cf"

# 1. The -o stress=yes listener's session goes to the endpoint.
send stressed "$port_stress"
[ "$rc" = 0 ] || { cat "$T_DIR/swaks-stressed.out"; fail "swaks to the stress listener: $rc"; }
delivered stressed "the -o stress=yes listener"
expect_header "$(sink_wait_match "queued as $qid|X-Stress: yes \(source=endpoint\)")" \
	'yes \(source=endpoint\)' "smtpd_milters = \${stress?...}: a stressed smtpd reaches the endpoint"

# The F10 bias: a session the milter accepts at connect; does it stay in
# the count while its smtpd still serves the client? Measured after the
# greeting and after EHLO and MAIL FROM; the count is never above the
# busy smtpd processes.
sock=$PF_QUEUE/public/accepted
# bias_hold WHAT COMMANDS: 4 sessions of "accepted", each sends COMMANDS
# (one a line, each answered) after the greeting, then idles; prints the
# busy smtpd processes and the milter's count.
bias_hold() {
	perl -MIO::Socket::UNIX -e '
		my @s;
		for (1 .. 4) {
			my $c = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die;
			my $l = <$c>;
			for my $cmd (split /\n/, $ARGV[1]) {
				print $c "$cmd\r\n";
				do { $l = <$c> } while ($l =~ /^\d{3}-/);
			}
			push @s, $c;
		}
		print "held\n"; $| = 1; sleep 600;' "$sock" "$2" >"$T_DIR/hold-bias.out" 2>&1 &
	bias=$!
	track_pid $bias
	wait_for_line "$T_DIR/hold-bias.out" '^held$' 100
	sleep 0.5
	busy=$(pgrep -f -c -- '-n accepted' || true)
	counted=$("$top_builddir/tools/milter-stress-ctl" -s "$T_DIR/control" status |
		sed -n 's/^ *sessions accepted *\([0-9]*\)\/.*/\1/p')
	echo "bias (F10), 4 idle sessions accepted at connect by a rule, after $1: smtpd processes of the service ${busy:-?}, counted by the milter ${counted:-0} (limit 5)"
	[ "${counted:-0}" -le 4 ] || fail "counted more sessions than there are"
	kill $bias
	wait $bias 2>/dev/null
	wait_until "the bias sessions did not leave the count" 50 "" sh -c \
		"! '$top_builddir/tools/milter-stress-ctl' -s '$T_DIR/control' status | grep -Eq 'sessions accepted +[1-9]'"
}
bias_hold "the greeting" ""
bias_hold "EHLO and MAIL FROM" "EHLO bias.milter-stress.test
MAIL FROM:<a@example.org>"
pass "the bias measured; the count is never above the sessions"

# 2. The load, with a sampler.
sock=$PF_QUEUE/public/loadtest
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# hold N NAME: N sessions of loadtest that got their greeting, idle until killed.
hold() {
	perl -MIO::Socket::UNIX -e '
		my @s;
		for (1 .. $ARGV[1]) {
			my $c = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
			my $l = <$c>; push @s, $c;
		}
		print "held\n"; $| = 1; sleep 600;' "$sock" "$1" >"$T_DIR/hold-$2.out" 2>&1 &
	track_pid $!
	eval "pid_$2=\$!"
}
# The sampler: a message every 0.3 s, each line "N START-TIME" in samples.
(
	i=0
	while :; do
		i=$((i + 1))
		echo "$i $EPOCHREALTIME" >>"$T_DIR/samples"
		swaks --socket "$sock" --timeout 30 --helo sampler.milter-stress.test \
			--from sender@example.org --to rcpt@example.net --header "X-Sample: $i" \
			>"$T_DIR/sample-$i.out" 2>&1 &
		sleep 0.3
	done
) &
sampler=$!
track_pid $sampler
sleep 1.5

t_a=$(now)
hold 4 a
wait_for_line "$T_DIR/hold-a.out" '^held$' 100
t_a_held=$(now)
wait_for_line "$MLOG" 'stress on: source=sessions service=loadtest' 20 "$milter_pid"
t_on=$(now)
pass "own signal: stress on $(since "$t_a_held" "$t_on") s after the 4th session"
sleep 3
t_b=$(now)
hold 1 b
wait_for_line "$T_DIR/hold-b.out" '^held$' 100
t_b_held=$(now)
sleep 3
t_c=$(now)
kill "$pid_a" "$pid_b"
wait_for_line "$MLOG" 'stress off: source=sessions service=loadtest' $(((hold_s + 1) * 10 + 5)) "$milter_pid"
t_off=$(now)
pass "own signal: stress off $(since "$t_c" "$t_off") s after the load stopped (stress_hold ${hold_s}s)"
sleep $((hold_s + 2))
kill "$sampler"
t_end=$(now)
sleep 1
# Every sample delivered (those held up by the full service included).
n=$(wc -l <"$T_DIR/samples")
wait_until "the samples did not all arrive" 300 "" sh -c "[ \$(grep -l '^X-Sample:' '$SINK_DIR'/msg.* 2>/dev/null | wc -l) -ge $((n - 1)) ]"

# Per sample: start time, Postfix's {stress} (the greeting), the milter's header.
while read -r i t; do
	f=$(grep -l "^X-Sample: $i\$" "$SINK_DIR"/msg.* 2>/dev/null | head -n 1)
	[ -n "$f" ] || continue
	pfs=$(sed -n 's/^<- *220 .*ESMTP stress=\([a-z]*\).*$/\1/p' "$T_DIR/sample-$i.out" | head -n 1)
	xs=$(sed -n 's/^X-Stress: //p' "$f" | head -n 1)
	echo "$i $t ${pfs:-?} $xs"
done <"$T_DIR/samples" >"$T_DIR/table"
awk -v a="$t_a" '{ x = $4; for (k = 5; k <= NF; k++) x = x " " $k
	printf "sample %3d started at %+6.2f s: postfix stress=%s, X-Stress: %s\n", $1, $2 - a, $3, x }' \
	"$T_DIR/table" >"$T_DIR/table.txt"

# first_after T FIELD REGEX: the start time of the first sample after T whose
# field (3: Postfix's greeting, 4: the X-Stress value) matches.
first_after() { awk -v t="$1" -v f="$2" -v re="$3" '$2 >= t && $f ~ re { print $2; exit }' "$T_DIR/table"; }
own_first=$(awk -v t="$t_a_held" '$2 >= t && /source=sessions/ { print $2; exit }' "$T_DIR/table")
own_calm=$(awk -v t="$t_off" '$2 >= t && !/source=sessions/ { print $2; exit }' "$T_DIR/table")
pf_first=$(first_after "$t_b_held" 3 '^yes$')
pf_calm=$(first_after "$t_c" 3 '^no$')
echo "--- samples (time from the first idle session):"
cat "$T_DIR/table.txt"
echo "--- side by side (load: 4 of 5 at +$(since "$t_a" "$t_a_held") s, 5 of 5 at +$(since "$t_a" "$t_b_held") s, none from +$(since "$t_a" "$t_c") s):"
echo "own signal:       detect $(since "$t_a_held" "$t_on") s after 80 % (first stressed sample +${own_first:+$(since "$t_a_held" "$own_first")} s); recover $(since "$t_c" "$t_off") s after the load stopped (first calm sample +${own_calm:+$(since "$t_c" "$own_calm")} s)"
if [ -n "$pf_first" ]; then
	pf_det="$(since "$t_b_held" "$pf_first") s after the limit"
else
	pf_det="not raised"
fi
if [ -z "$pf_first" ]; then
	pf_rec="-"
elif [ -n "$pf_calm" ]; then
	pf_rec="$(since "$t_c" "$pf_calm") s after the load stopped"
else
	pf_rec="still on $(since "$t_c" "$t_end") s after the load stopped"
fi
echo "Postfix {stress}: detect $pf_det; recover: $pf_rec"
grep -E 'warning: service "loadtest".*process limit' "$PF_LOG" | head -n 1
[ -n "$own_first" ] || fail "no sample was stressed by source=sessions"
awk -v a="$t_a_held" -v b="$own_first" 'BEGIN { exit !(b - a < 2) }' ||
	fail "the first sample stressed by the own signal came $(since "$t_a_held" "$own_first") s after 80 %"
pass "a sample stressed by the own signal within 2 s of 80 %"
# Postfix and libmilter take a moment to close a session whose client left,
# and the levels tick once a second: hold + 2 s.
awk -v a="$t_c" -v b="$t_off" -v h="$hold_s" 'BEGIN { exit !(b - a <= h + 2) }' ||
	fail "stress off $(since "$t_c" "$t_off") s after the load stopped"
pass "the own signal is calm within stress_hold + 2 s of the clients leaving"
# After the own signal is off, no sample says source=sessions.
awk -v t="$t_off" '$2 >= t + 0.05 && /source=sessions/ { exit 1 }' "$T_DIR/table" ||
	fail "a sample after stress off still says source=sessions"
pass "no sample stressed by the own signal after it left"
e2e_stop_all
