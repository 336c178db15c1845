#!/bin/bash
# Reload under load: 256 sessions at once against the real daemon while its
# configuration is reloaded (SIGUSR1) every 100 ms, alternating between two
# versions A and B, then a broken file reloaded in the middle of a load.
#
# Every stage of A and B leaves a mark of its version in what the probe sees:
# a tag header per stage (connect, helo, mail, rcpt, data, eoh, eom), the
# text of a tempfail at rcpt, the name of the stress header, and the
# negotiation (B has a body rule, so B sessions negotiate the body stage and
# A sessions NOBODY). milter-probe's transcript (one line per transaction)
# then shows that:
#  - no session mixes A and B: each runs on one snapshot, the one it
#    negotiated with, from connect to end of message;
#  - both versions were served during the load (the reloads took effect);
#  - no message was lost: every transaction ran to its verdict, no protocol
#    error, no transaction missing or twice;
#  - a broken file reloaded during the load is logged with file:line and
#    changes nothing: every session of that load runs on B, the last good
#    version.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 90
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"

CONC=256
N1=${RELOAD_LOAD_N:-12000} # transactions while A and B alternate
N2=$((N1 / 4))            # transactions around the broken reloads

# The two versions; every v=X is a mark the probe sees (8 per transaction).
version() { # V
	cat <<EOF
stress_header = X-Stress-$1
connect any tag X-Conf-Connect "v=$1"
helo any tag X-Conf-Helo "v=$1"
mail any tag X-Conf-Mail "v=$1"
rcpt recipient r1@example.com tempfail 450 4.7.1 "v=$1"
rcpt any tag X-Conf-Rcpt "v=$1"
data any tag X-Conf-Data "v=$1"
eoh any tag X-Conf-Eoh "v=$1"
eom any tag X-Conf-Eom "v=$1"
EOF
	[ "$1" = B ] && echo 'eom body /not in this body/ reject 550 5.7.1 "v=B"'
}
version A >"$T_DIR/A.conf"
version B >"$T_DIR/B.conf"
# B with an unterminated string on line 5.
sed '5s/"v=B"$/"v=B/' "$T_DIR/B.conf" >"$T_DIR/broken.conf"
"$MILTER_STRESS" -n -c "$T_DIR/broken.conf" >/dev/null 2>&1 && fail "the broken file loads"
for v in A B; do
	"$MILTER_STRESS" -n -c "$T_DIR/$v.conf" >"$T_DIR/n.out" 2>&1 || { cat "$T_DIR/n.out"; fail "$v.conf does not load"; }
done

conf=$T_DIR/ms.conf
# use FILE: make FILE the configuration, atomically (a reload never reads
# half a file).
use() {
	cp "$1" "$conf.new" || fail "cannot write $conf.new"
	mv "$conf.new" "$conf" || fail "cannot rename $conf.new"
}
use "$T_DIR/A.conf"
sock=$T_DIR/ms.sock
log=$T_DIR/ms.log
start_daemon "$log" "unix:$sock" -c "$conf"

count() { grep -c -- "$1" "$log"; }

# load NAME N: a load of N transactions in the background, CONC at once;
# two recipients, the first of which every version tempfails.
load() {
	"$MILTER_PROBE" --timeout 20 -p "unix:$sock" --rcpt '<r1@example.com>' --rcpt '<r2@example.com>' \
		--bench "$CONC,$2" --bench-transcript "$T_DIR/$1.tr" >"$T_DIR/$1.out" 2>&1 &
	load_pid=$!
	track_pid $load_pid
}

# finish NAME N: wait for the load; it must have ended without errors and
# with one complete transcript line per transaction.
finish() {
	wait $load_pid
	rc=$?
	cat "$T_DIR/$1.out"
	bench=$(grep '^BENCH ' "$T_DIR/$1.out")
	[ $rc = 0 ] || fail "$1: milter-probe exited $rc"
	case $bench in
	*" n=$2 errors=0 "*) ;;
	*) fail "$1: expected n=$2 errors=0 in '$bench'" ;;
	esac
	pass "$1: $2 transactions, no protocol error"
	got=$(cut -d: -f1 "$T_DIR/$1.tr" | sort -n | uniq | wc -l)
	lines=$(wc -l <"$T_DIR/$1.tr")
	if [ "$got" != "$2" ] || [ "$lines" != "$2" ]; then
		fail "$1: $lines transcript lines for $got distinct transactions, expected $2"
	fi
	bad=$(grep -cv ' | result: accept$' "$T_DIR/$1.tr")
	[ "$bad" = 0 ] || { grep -v ' | result: accept$' "$T_DIR/$1.tr" | head -n 3; fail "$1: $bad transactions not accepted"; }
	pass "$1: every transaction appears once and reached its verdict (accept): none lost"
}

# versions NAME: check each transcript line is wholly A or wholly B; print
# "A-count B-count".
versions() {
	awk '
		{
			a = gsub(/v=A/, "&"); b = gsub(/v=B/, "&")
			nobody = /NOBODY/; body = / \| body [0-9]+ bytes: continue \| /
			ha = /add header X-Stress-A: /; hb = /add header X-Stress-B: /
			if (a == 8 && b == 0 && nobody && !body && ha && !hb) na++
			else if (b == 8 && a == 0 && !nobody && body && hb && !ha) nb++
			else if (bad++ < 3) print "mixed or incomplete: " $0 > "/dev/stderr"
		}
		END {
			if (bad > 3) print "... " bad " such transactions" > "/dev/stderr"
			print na + 0, nb + 0
			exit bad > 0
		}' "$T_DIR/$1.tr"
}

# 1. A and B alternate every 100 ms during the load.
load alternate "$N1"
sent=0
v=A
t0=$(date +%s%N)
# On a 100 ms schedule: the time the loop itself takes is not added.
next=$((${EPOCHREALTIME/./} + 100000))
while kill -0 $load_pid 2>/dev/null; do
	wait_us=$((next - ${EPOCHREALTIME/./}))
	[ $wait_us -gt 0 ] && sleep "$(printf '0.%06d' $wait_us)"
	next=$((next + 100000))
	if [ $v = A ]; then v=B; else v=A; fi
	use "$T_DIR/$v.conf"
	kill -USR1 $ms_pid || fail "milter-stress is gone"
	sent=$((sent + 1))
done
ms=$((($(date +%s%N) - t0) / 1000000))
finish alternate "$N1"
# The last signal may still be in progress.
sleep 0.5
reloads=$(count 'reloaded configuration from')
[ "$(count 'reload failed')" = 0 ] || { cat "$log"; fail "a good file failed to reload"; }
[ "$reloads" -ge 10 ] || fail "only $reloads reloads during the load ($sent signals in $ms ms)"
pass "alternate: $reloads reloads done for $sent SIGUSR1 sent, one every $((ms / sent)) ms for $ms ms, all under load"
split=$(versions alternate) || fail "alternate: sessions that mix A and B (above)"
read -r na nb <<<"$split"
if [ "$na" = 0 ] || [ "$nb" = 0 ]; then
	fail "alternate: $na sessions on A, $nb on B: the reloads did not take effect"
fi
pass "alternate: every session on one snapshot: $na wholly on A, $nb wholly on B, none mixed"

# 2. B, then a broken file reloaded during the load, every 100 ms.
use "$T_DIR/B.conf"
kill -USR1 $ms_pid
i=0
while [ "$(count 'reloaded configuration from')" -le "$reloads" ]; do
	[ $i -ge 100 ] && fail "no reload of B"
	sleep 0.1
	i=$((i + 1))
done
load broken "$N2"
sleep 0.2
use "$T_DIR/broken.conf"
bsent=0
while kill -0 $load_pid 2>/dev/null; do
	kill -USR1 $ms_pid || fail "milter-stress is gone"
	bsent=$((bsent + 1))
	sleep 0.1
done
finish broken "$N2"
sleep 0.5
failed=$(count 'reload failed; keeping the configuration loaded before')
[ "$failed" -ge 1 ] || { cat "$log"; fail "no failed reload logged"; }
expect_line "$log" "reload: $conf:5:[0-9]+: missing '\"'" "broken: the log names the file and line (ms.conf:5)"
pass "broken: $failed reloads of the broken file refused during the load ($bsent SIGUSR1 sent)"
split=$(versions broken) || fail "broken: sessions that mix A and B (above)"
read -r na nb <<<"$split"
if [ "$na" != 0 ] || [ "$nb" != "$N2" ]; then
	fail "broken: $na sessions on A, $nb on B; expected all $N2 on B, the last good version"
fi
pass "broken: all $nb sessions ran on B, the last good configuration"

# 3. The daemon is sound: no warning but the expected ones, no sanitizer
# report, and it stops cleanly on SIGTERM.
if grep -v 'reload: .*ms\.conf:5:\|reload failed' "$log" | grep -Eq '(warning|error|fatal|panic):|Sanitizer|runtime error'; then
	cat "$log"
	fail "unexpected warnings or errors in the milter log"
fi
stop_daemon_status "$ms_pid" "$log" "milter-stress"
pass "milter-stress stopped with status 0, no sanitizer report"
exit 0
