#!/bin/bash
# The MTA hangs up at every possible point: milter-probe --cut-after plays one
# transaction through every stage and closes the connection after each byte
# offset of its stream in turn (before negotiation, mid-packet, between
# packets, after the aborts, before QUIT). After each cut the daemon must
# have freed the session: it answers a normal transaction, its descriptors
# and threads return to the baseline, its log has no error, and it stops
# cleanly on SIGTERM (under ASan with detect_leaks=1 the leak check then runs
# and a leak fails the test). A second pass with a config that needs no
# reply at most stages (the probe batches those packets) cuts at every
# packet boundary and one byte either side.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 100
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"

# Rules at every stage that never match, so that every callback runs.
cp "$top_srcdir/tests/every-stage.conf" "$T_DIR/all.conf"
CLIENT=(--client-addr 192.0.2.1 --rcpt '<a@example.net>' --rcpt '<b@example.net>')

sock="$T_DIR/ms.sock"
log="$T_DIR/ms.log"
cp "$T_DIR/all.conf" "$T_DIR/ms.conf"
start_daemon "$log" "unix:$sock" -c "$T_DIR/ms.conf"
pid=$ms_pid

# cut_pass NAME EVERY|BOUNDARIES [PROBE-ARGS...]: measure the stream of one
# full transaction, cut it at the chosen offsets, check the daemon.
cut_pass() {
	name=$1
	mode=$2
	shift 2
	"$MILTER_PROBE" -p "unix:$sock" -v "$@" >"$T_DIR/$name.full" 2>"$T_DIR/$name.v" ||
		{ cat "$T_DIR/$name.full" "$T_DIR/$name.v"; fail "$name: the full transaction failed"; }
	expect_line "$T_DIR/$name.full" '^result: accept$' "$name: the full transaction is accepted"
	total=$(sed -n 's/^milter-probe: \([0-9]*\) bytes written$/\1/p' "$T_DIR/$name.v")
	[ -n "$total" ] && [ "$total" -gt 100 ] || fail "$name: no byte count in milter-probe -v"
	fds=$(ms_fds $pid)
	threads=$(ms_threads $pid)
	echo "$name: $total bytes in the MTA's stream; baseline $fds descriptors, $threads threads"

	if [ "$mode" = EVERY ]; then
		offsets=$(seq 0 $((total - 1)))
	else
		# Packet boundaries from the -v dump ("N bytes" of payload after a
		# 5-byte header), and one byte either side of each.
		offsets=$(awk -v total="$total" '/^milter-probe: > / {
				for (i = 1; i <= NF; i++) if ($i == "bytes" || $i == "bytes:") n = $(i - 1)
				b[++k] = off; off += n + 5 }
			END { if (off != total) exit 1
				for (i = 1; i <= k; i++) for (d = -1; d <= 1; d++)
				if (b[i] + d >= 0 && b[i] + d < total) print b[i] + d }' \
			"$T_DIR/$name.v" | sort -nu) || fail "$name: the packets do not add up to $total bytes"
	fi

	# One process per cut and nothing else in the loop: it is most of the
	# test's time. The outputs are checked together afterwards.
	n=0
	: >"$T_DIR/$name.out"
	for off in $offsets; do
		"$MILTER_PROBE" -p "unix:$sock" --timeout 10 --cut-after "$off" "$@" \
			>>"$T_DIR/$name.out" 2>&1
		rc=$?
		[ $rc -eq 0 ] ||
			{ tail -n 20 "$T_DIR/$name.out"; fail "$name: cut after $off bytes: milter-probe exited $rc"; }
		n=$((n + 1))
		kill -0 $pid 2>/dev/null || { tail -n 40 "$log"; fail "$name: the daemon died after a cut at $off"; }
	done
	[ "$(grep -c '^cut: after [0-9]* bytes' "$T_DIR/$name.out")" -eq $n ] ||
		fail "$name: not every one of the $n runs was cut"
	[ "$(grep -c '^result: cut at ' "$T_DIR/$name.out")" -eq $n ] ||
		fail "$name: not every one of the $n runs ended in a cut"
	pass "$name: $n cuts survived; by stage:$(sed -n 's/^result: cut at //p' "$T_DIR/$name.out" |
		sort | uniq -c | awk '{printf " %s=%s", $2, $1}')"
	grep -q '^cut: after [0-9]* bytes, [0-9]* of the' "$T_DIR/$name.out" ||
		fail "$name: no cut fell inside a packet"
	grep -q '^result: cut at negotiate' "$T_DIR/$name.out" && grep -q '^result: cut at quit' "$T_DIR/$name.out" ||
		fail "$name: the cuts do not span negotiation to QUIT"

	"$MILTER_PROBE" -p "unix:$sock" "$@" >"$T_DIR/$name.after" 2>&1 ||
		{ cat "$T_DIR/$name.after"; fail "$name: the transaction after the cuts failed"; }
	expect_line "$T_DIR/$name.after" '^result: accept$' "$name: a transaction after the cuts is accepted"
	wait_for_baseline $pid "$fds" "$threads" "$name"
	expect_clean_log "$log" "$name"
}

cut_pass every EVERY "${CLIENT[@]}"

# The shipped config under stress: most stages negotiated away or without a
# reply, so several packets go out in one write.
cp "$top_srcdir/conf/milter-stress.conf" "$T_DIR/ms.conf"
kill -USR1 $pid
wait_for_line "$log" 'reloaded configuration from' 100 $pid
cut_pass batched BOUNDARIES "${CLIENT[@]}" -m '{stress}=yes'

stop_daemon $pid "$log" "daemon"
