#!/bin/bash
# make bench, small: every part runs and prints its table, and milter-probe
# sees no protocol error. The ratios are not judged here (they are
# measurements, see make bench), but one bound is: 2000 sessions at once
# against milter-stress, with zero errors and a peak RSS under 128 MiB.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
# (bench.sh takes the end-to-end lock itself for its Postfix part.)
watchdog 300

out=$T_DIR/bench.out
BENCH_COUNT=300 BENCH_ROUNDS=1 BENCH_CONC="1 16" BENCH_SOCKET_COUNT=20 \
	BENCH_HOLD=2000 BENCH_PF_COUNT=100 BENCH_WATCHDOG=280 \
	bash "$top_srcdir/tests/bench/bench.sh" >"$out" 2>&1
rc=$?
cat "$out"
[ "$rc" -eq 0 ] || fail "bench.sh exited $rc"
for want in '^== 1\. milter protocol' '^ +16 \| +[0-9]+ ' '^stress +milter CPU [0-9.]+ s per 1000 messages, peak RSS' \
	'^== 2\. socket kinds' '^ +1 \| +[0-9]+ msg/s' '^== 3\. 2000 sessions at once' \
	'^== 4\. through Postfix' '^stress +[0-9.]+ +[0-9.]+x' '^flood +[0-9.]+ +[0-9.]+x' '^protocol errors seen by milter-probe: 0$'; do
	expect_line "$out" "$want" "bench output: $want"
done
n=$(grep -c '^  target: zero errors, peak RSS under 128 MiB: met$' "$out")
[ "$n" -eq 2 ] || fail "2000 sessions at once: expected zero errors and RSS < 128 MiB in both modes"
pass "2000 sessions at once, normal and stress: zero errors, peak RSS under 128 MiB"
