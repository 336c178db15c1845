#!/bin/bash
# Soak: many sessions that the MTA cuts, against one daemon, and its memory.
#
# SESSIONS (default 100000) sessions in rounds of 10000, 16 at once
# (milter-probe --bench 16,10000 --cut-after TOTAL: session k of a round is
# cut after k mod (TOTAL+1) bytes, so every offset of the stream from before
# the negotiation to the end gets its turn, mid-packet included). Rounds
# alternate the normal and the stress personality. Between rounds, 1000
# whole transactions while the configuration is reloaded three times, so
# that sessions finish on snapshots that are no longer current. After each
# round the daemon's VmRSS, descriptors and threads are sampled and printed.
#
# Fails when the daemon dies, a session fails other than by the cut, the log
# has an error line, descriptors or threads do not return to their
# baseline, or the last RSS sample exceeds the first one after the warm-up
# (two rounds) by more than 1 MiB. The smallest piece of session state, a
# 24-byte struct conn, takes a 32-byte malloc chunk: losing it in 40% of the
# 80000 sessions after the warm-up adds 1 MiB. A clean daemon grew 116 to
# 200 KiB over those 80000 sessions and 164 KiB over 280000, all of it in
# the stacks of libmilter's worker threads (glibc keeps those of exited
# threads, and a new peak of workers adds one) and in the per-thread malloc
# arenas (17 here), the main heap flat within 4 KiB: bounded by the peak
# number of workers, not by the number of sessions. Leaks at fewer cut
# points are for LeakSanitizer: see daemon-disconnect.sh.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

SESSIONS=${1:-100000}
ROUND=10000
WARMUP=2
[ "$SESSIONS" -ge $((ROUND * (WARMUP + 1))) ] || fail "at least $((ROUND * (WARMUP + 1))) sessions"
watchdog $((SESSIONS / 100 + 120))
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"
t0=$EPOCHREALTIME

# Rules at every stage that never match, so that every callback runs.
cp "$top_srcdir/tests/every-stage.conf" "$T_DIR/ms.conf"
sock="$T_DIR/ms.sock"
log="$T_DIR/ms.log"
start_daemon "$log" "unix:$sock" -c "$T_DIR/ms.conf"
pid=$ms_pid
PROBE=("$MILTER_PROBE" -p "unix:$sock" --client-addr 192.0.2.1 --rcpt '<a@example.net>' --rcpt '<b@example.net>')

# The length of the stream in each personality.
for p in no yes; do
	"${PROBE[@]}" -v -m "{stress}=$p" >"$T_DIR/full-$p.out" 2>"$T_DIR/full-$p.v" ||
		{ cat "$T_DIR/full-$p.out" "$T_DIR/full-$p.v"; fail "the full transaction failed"; }
	expect_line "$T_DIR/full-$p.out" '^result: accept$' "stress=$p: a full transaction is accepted"
	printf -v "total_$p" '%s' "$(sed -n 's/^milter-probe: \([0-9]*\) bytes written$/\1/p' "$T_DIR/full-$p.v")"
done
fds=$(ms_fds $pid)
threads=$(ms_threads $pid)
echo "stream: $total_no bytes (normal), $total_yes bytes (stress); baseline $fds descriptors, $threads threads, VmRSS $(ms_rss $pid) KiB"

seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# bench NAME ARGS...: one --bench run; no errors allowed.
bench() {
	b_name=$1
	shift
	"${PROBE[@]}" "$@" >"$T_DIR/$b_name.out" 2>&1
	b_rc=$?
	[ $b_rc -eq 0 ] ||
		{ cat "$T_DIR/$b_name.out"; tail -n 20 "$log"; fail "$b_name: milter-probe exited $b_rc"; }
}

printf '%8s %12s %10s %5s %8s %9s\n' sessions whole+reload "VmRSS KiB" fds threads "round s"
done_n=0
whole=0
round=0
first=""
while [ $done_n -lt "$SESSIONS" ]; do
	round=$((round + 1))
	r0=$EPOCHREALTIME
	if [ $((round % 2)) -eq 1 ]; then p=no; else p=yes; fi
	total_var=total_$p
	bench "cut-$round" -m "{stress}=$p" --bench "16,$ROUND" --cut-after "${!total_var}"
	grep -q "errors=0" "$T_DIR/cut-$round.out" || fail "round $round: errors"
	done_n=$((done_n + ROUND))

	# Whole transactions while the configuration is reloaded under them.
	"${PROBE[@]}" -m "{stress}=$p" --bench 16,1000 >"$T_DIR/whole-$round.out" 2>&1 &
	w_pid=$!
	for _ in 1 2 3; do
		sleep 0.05
		kill -USR1 $pid
	done
	wait $w_pid || { cat "$T_DIR/whole-$round.out"; fail "round $round: whole transactions failed"; }
	whole=$((whole + 1000))

	kill -0 $pid 2>/dev/null || { tail -n 40 "$log"; fail "the daemon died in round $round"; }
	# Let the last sessions close before sampling.
	i=0
	while [ "$(ms_fds $pid)" -ne "$fds" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	rss=$(ms_rss $pid)
	printf '%8d %12d %10d %5d %8d %9s\n' $done_n $whole "$rss" "$(ms_fds $pid)" \
		"$(ms_threads $pid)" "$(seconds_since "$r0")"
	[ $round -eq $((WARMUP + 1)) ] && first=$rss
done
last=$rss

wait_for_baseline $pid "$fds" "$threads" "after $done_n cut sessions"
# Signals sent while one is pending coalesce: at least one reload a round.
reloads=$(grep -c 'reloaded configuration from' "$log")
[ "$reloads" -ge $round ] || fail "$reloads reloads done in $round rounds"
expect_clean_log "$log" "after $done_n cut sessions"
growth=$((last - first))
echo "VmRSS after warm-up: $first KiB; at the end: $last KiB; growth $growth KiB (bound 1024)"
[ $growth -le 1024 ] || fail "VmRSS grew by $growth KiB after the warm-up"
pass "VmRSS flat within 1 MiB over $((done_n - WARMUP * ROUND)) sessions after the warm-up"
stop_daemon $pid "$log" "soak"
echo "wall time: $(seconds_since "$t0") s"
