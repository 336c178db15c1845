#!/bin/bash
# make bench-burst: how long the MTA waits for a reply when a burst of
# sessions arrives at once and every session's check waits its whole budget.
#
# A DNS server that never answers, connect_budget (BURST_BUDGET, 500 ms), a
# connect-stage DNSBL rule, the breaker held off (so every lookup waits the
# budget, the worst case), and a freshly started daemon; then N sessions at
# once (milter-probe --bench N,N, a new client each, as in a flood). The
# probe times each reply from writing the command it answers, as Postfix
# waits for it. Side by side in one run:
#   null   libmilter's floor: tests/null-milter whose connect callback
#          sleeps the budget (-S), a milter that blocks a worker per check;
#   base   BURST_BASELINE, another milter-stress build (before a change);
#   wait   this build with session_stage_wait as long as the budget: every
#          stage waits for its own answers (no delayed stages), but a
#          worker is still lent to libmilter before a session blocks;
#   ms     this build.
# Each at N in BURST_N ("16 128 512"), BURST_ROUNDS rounds (3), each round
# on a fresh daemon; the table shows the slowest reply's p99 and max, the
# slowest session, and the milter's peak thread count, median of the rounds.
#
# BURST_THINK: the SMTP client's think time per command in ms (0), as
# milter-probe --stage-delay: a real client's round trips, during which a
# lookup started at connect can come in before MAIL FROM.
#
#   make bench-burst [BURST_N="16 128"] [BURST_BASELINE=path/milter-stress]
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

budget=${BURST_BUDGET:-500}
sizes=${BURST_N:-16 128 512}
rounds=${BURST_ROUNDS:-3}
think=${BURST_THINK:-0}
watchdog "${BURST_WATCHDOG:-900}"
need "$MILTER_STRESS"
need "$MILTER_PROBE"
need "$NULL_MILTER"

SILENT_PORT=""
dns_silent_start SILENT_PORT "$T_DIR/silent.log"
cat >"$T_DIR/burst.conf" <<CONF
dns_servers = 127.0.0.1:$SILENT_PORT
connect_budget = ${budget}ms
dnsbl_breaker_threshold = 1000
max_sessions = 4000
connect dnsbl black.test reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
CONF

milters="null wait ms"
[ -n "${BURST_BASELINE:-}" ] && { need "$BURST_BASELINE"; milters="null base wait ms"; }

# start NAME: a fresh milter NAME on its own socket; sets pid.
start() {
	sock="unix:$T_DIR/$1.sock"
	rm -f "$T_DIR/$1.sock"
	case $1 in
	null) start_listener "$T_DIR/$1.log" "$sock" "$NULL_MILTER" -p "$sock" -S "$budget" ;;
	base)
		base_user=()
		[ "$(id -u)" = 0 ] && base_user=(-u nobody)
		start_listener "$T_DIR/$1.log" "$sock" "$BURST_BASELINE" "${base_user[@]}" -f \
			-c "$T_DIR/burst.conf" -p "$sock"
		;;
	ms) start_listener "$T_DIR/$1.log" "$sock" "$MILTER_STRESS" -f -c "$T_DIR/burst.conf" -p "$sock" ;;
	wait)
		start_listener "$T_DIR/$1.log" "$sock" "$MILTER_STRESS" -f -c "$T_DIR/burst.conf" -p "$sock" \
			-o session_stage_wait=1h
		;;
	esac
	pid=$bg_pid
}

# field LINE NAME: NAME's value in a BENCH line.
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }

declare -A r99 rmax smax thr where
for n in $sizes; do
	for r in $(seq "$rounds"); do
		for m in $milters; do
			start "$m"
			peak="$T_DIR/$m.threads"
			echo 0 >"$peak"
			( # the milter's thread count, sampled every 20 ms while the burst runs
				p=0
				while kill -0 "$pid" 2>/dev/null; do
					t=$(ms_threads "$pid")
					[ "${t:-0}" -gt "$p" ] && { p=$t; echo "$p" >"$peak"; }
					sleep 0.02
				done
			) &
			sampler=$!
			track_pid "$sampler"
			out="$T_DIR/$m.$n.$r.out"
			"$MILTER_PROBE" -p "unix:$T_DIR/$m.sock" --timeout 30 --bench "$n,$n" --stage-delay "$think" \
				--bench-vary-client --client-addr 2001:db8::1 -m '{stress}=no' >"$out" 2>&1 ||
				{ tail -n 5 "$out"; fail "$m: a burst of $n: milter-probe exited $?"; }
			line=$(grep '^BENCH ' "$out")
			r99[$m,$n]+=" $(field "$line" reply_p99)"
			rmax[$m,$n]+=" $(field "$line" reply_max)"
			smax[$m,$n]+=" $(field "$line" max)"
			# where the slowest reply of the round was (the probe's own line)
			where[$m,$n]+=" $(sed -n 's/^bench: slowest reply.*(\(.*\))$/\1/p' "$out")"
			stop_daemon_status "$pid" "$T_DIR/$m.log" "$m"
			wait "$sampler" 2>/dev/null
			thr[$m,$n]+=" $(cat "$peak")"
		done
	done
done

echo "milter-stress burst benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "budget ${budget} ms, a DNS server that never answers, client think time $think ms, medians of $rounds rounds"
echo "command: make bench-burst BURST_N=\"$sizes\" BURST_ROUNDS=$rounds BURST_THINK=$think${BURST_BASELINE:+ BURST_BASELINE=...}"
printf '%6s %6s | %14s %14s %14s | %8s | %s\n' N milter 'reply p99 ms' 'reply max ms' 'session max ms' threads 'slowest at (each round)'
for n in $sizes; do
	for m in $milters; do
		# shellcheck disable=SC2086 # word lists on purpose
		printf '%6s %6s | %14.0f %14.0f %14.0f | %8s |%s\n' "$n" "$m" \
			"$(median ${r99[$m,$n]})" "$(median ${rmax[$m,$n]})" \
			"$(median ${smax[$m,$n]})" "$(median ${thr[$m,$n]})" "${where[$m,$n]}"
	done
done
