#!/bin/bash
# make bench: what milter-stress costs, side by side in one run.
#
# 1. The milter protocol, played by milter-probe --bench as Postfix plays it
#    (one connection per SMTP session; 1 recipient, 10 headers, 4 KiB body):
#    the null milter (libmilter's floor: every callback, continue everywhere)
#    against milter-stress with the shipped config, normal ({stress}=no) and
#    stress ({stress}=yes), at each concurrency. The rounds alternate the
#    three, so drift on a shared machine hits them alike; the median round is
#    shown, with each milter's CPU per 1000 messages and its peak RSS.
# 2. Socket kinds: one session at a time and 16, over unix and inet sockets,
#    the null milter adding one header (as milter-stress does) against
#    milter-stress: the 40 ms Nagle stall of libmilter's own inet socket.
# 3. Thousands of sessions at once against milter-stress: errors, peak RSS,
#    threads and open descriptors of the milter.
# 4. Through Postfix: smtp-source into a private instance relaying to
#    smtp-sink, one listener per milter setup (none, null milter,
#    milter-stress normal, milter-stress with -o stress=yes, its stress
#    endpoint (stress_socket) from a -o stress=yes listener, and the same with
#    conf/example-flood.conf, which steps out of the session at HELO under
#    stress), alternating. smtp-source connects from 127.0.0.1, so the
#    rule accepting local clients is narrowed to ::1 for this part.
#
# Every part is bounded by its counts; the whole run by a watchdog.
# Settings (environment): BENCH_COUNT messages per protocol run (4000),
# BENCH_ROUNDS (3), BENCH_CONC ("1 16 128 512"), BENCH_SOCKET_COUNT (200),
# BENCH_HOLD sessions at once in part 3 (2000) and BENCH_HOLD_DELAY, the
# SMTP client's delay per command in ms (200), BENCH_PF_COUNT messages per
# Postfix run (1000), BENCH_PF_SESSIONS (20), BENCH_PARTS ("1 2 3 4"),
# BENCH_BASELINE: another milter-stress binary (an older build) that part 1
# runs normal mode beside this one, in the same rounds, for a before/after
# ratio of one change; BENCH_CONF: the config both run (default the shipped one).
# BENCH_SCRAPE=1: part 1 also runs normal mode on a milter-stress with
# metrics_listen set, which curl scrapes ten times a second throughout,
# beside the one nobody scrapes, in the same rounds.
#
#   make bench          (from a build tree; as root for part 4)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

count=${BENCH_COUNT:-4000}
rounds=${BENCH_ROUNDS:-3}
concs=${BENCH_CONC:-1 16 128 512}
socket_count=${BENCH_SOCKET_COUNT:-200}
hold=${BENCH_HOLD:-2000}
pf_count=${BENCH_PF_COUNT:-1000}
pf_sessions=${BENCH_PF_SESSIONS:-20}
parts=${BENCH_PARTS:-1 2 3 4}
shape=(--headers 10 --body-size 4k --client-addr 192.0.2.1)
conf=${BENCH_CONF:-$top_srcdir/conf/milter-stress.conf}
watchdog "${BENCH_WATCHDOG:-1800}"
need "$MILTER_STRESS"
need "$MILTER_PROBE"
need "$NULL_MILTER"
errors_total=0

part() { [[ " $parts " == *" $1 "* ]]; }

# Clock ticks of user+system CPU a process has used so far.
ticks_per_s=$(getconf CLK_TCK)

# status_kb PID FIELD: a /proc/PID/status field (VmHWM, VmRSS) in KiB.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# field LINE NAME: the value of NAME=value in a BENCH line.
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }

# start_milter NAME SOCKET CMD...: run a milter in the background; sets
# pid_NAME.
start_milter() {
	start_listener "$T_DIR/$1.log" "$2" "${@:3}"
	printf -v "pid_$1" %s "$bg_pid"
}

# probe NAME SOCKET MACRO-ARGS... -- PROBE-ARGS...: one bench run; sets
# line (the BENCH line) and adds the milter's CPU ticks to cpu_NAME.
probe() {
	p_name=$1 p_sock=$2
	shift 2
	p_pid_var=pid_$p_name
	p_t0=$(cpu_ticks "${!p_pid_var}")
	line=$("$MILTER_PROBE" -p "$p_sock" "$@" 2>>"$T_DIR/probe.err" | tail -n 1)
	p_cpu_var=cpu_$p_name
	printf -v "$p_cpu_var" %s $((${!p_cpu_var:-0} + $(cpu_ticks "${!p_pid_var}") - p_t0))
	p_err=$(field "$line" errors)
	[ -n "$p_err" ] || { tail -n 5 "$T_DIR/probe.err"; fail "no BENCH line from milter-probe"; }
	errors_total=$((errors_total + p_err))
}

# side_by_side A B TITLE-A TITLE-B: part 1's medians of milters A and B
# per concurrency, and B/A.
side_by_side() {
	printf '%8s | %10s %12s | %10s %12s %11s\n' sessions "$3/s" p99-ms "$4/s" p99-ms "$4/$3"
	for c in $concs; do
		# shellcheck disable=SC2086 # word lists on purpose
		{
			b=$(median ${mps[$1,$c]}) bp=$(median ${p99[$1,$c]})
			o=$(median ${mps[$2,$c]}) op=$(median ${p99[$2,$c]})
		}
		awk -v c="$c" -v b="$b" -v bp="$bp" -v o="$o" -v op="$op" 'BEGIN {
			printf "%8d | %10.0f %12.2f | %10.0f %12.2f %10.2fx\n", c, b, bp, o, op, o / b }'
	done
}

echo "milter-stress benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. the milter protocol ----------------------------------------------
if part 1; then
	start_milter null "unix:$T_DIR/null.sock" "$NULL_MILTER" -p "unix:$T_DIR/null.sock"
	start_milter normal "unix:$T_DIR/normal.sock" "$MILTER_STRESS" -f -c "$conf" -p "unix:$T_DIR/normal.sock"
	start_milter stress "unix:$T_DIR/stress.sock" "$MILTER_STRESS" -f -c "$conf" -p "unix:$T_DIR/stress.sock"
	milters="null normal stress"
	if [ -n "${BENCH_BASELINE:-}" ]; then
		need "$BENCH_BASELINE"
		base_user=()
		[ "$(id -u)" = 0 ] && base_user=(-u nobody) # as lib.sh runs $MILTER_STRESS
		start_milter base "unix:$T_DIR/base.sock" "$BENCH_BASELINE" "${base_user[@]}" -f -c "$conf" \
			-p "unix:$T_DIR/base.sock"
		milters="null base normal stress"
	fi
	if [ -n "${BENCH_SCRAPE:-}" ]; then
		need curl
		scrape_port=$(free_port)
		{ cat "$conf"; echo "metrics_listen = 127.0.0.1:$scrape_port"; } >"$T_DIR/scraped.conf"
		start_milter scraped "unix:$T_DIR/scraped.sock" "$MILTER_STRESS" -f -c "$T_DIR/scraped.conf" -p "unix:$T_DIR/scraped.sock"
		milters="$milters scraped"
		(
			n=0
			while :; do
				curl -s -o /dev/null "http://127.0.0.1:$scrape_port/metrics" && n=$((n + 1))
				echo $n >"$T_DIR/scrapes.new" && mv "$T_DIR/scrapes.new" "$T_DIR/scrapes"
				sleep 0.1
			done
		) &
		track_pid $!
	fi
	declare -A mps p99 msgs probe_cpu
	echo
	echo "== 1. milter protocol: $count messages per run (1 rcpt, 10 headers, 4 KiB body), $rounds rounds, median shown"
	for r in $(seq 1 "$rounds"); do
		for c in $concs; do
			for m in $milters; do
				mode=no
				[ $m = stress ] && mode=yes
				probe "$m" "unix:$T_DIR/$m.sock" "${shape[@]}" -m "{stress}=$mode" --bench "$c,$count"
				mps[$m,$c]+=" $(field "$line" mps)"
				p99[$m,$c]+=" $(field "$line" p99)"
				msgs[$m]=$((${msgs[$m]:-0} + count))
				probe_cpu[$m]=$(awk -v a="${probe_cpu[$m]:-0}" -v b="$(field "$line" cpu)" 'BEGIN { print a + b }')
			done
		done
	done
	printf '\n%8s | %-23s | %-35s | %-35s\n' sessions "null milter" "milter-stress normal" "milter-stress stress"
	printf '%8s | %10s %12s | %10s %12s %11s | %10s %12s %11s\n' "" msg/s p99-ms msg/s p99-ms "vs null" msg/s p99-ms "vs null"
	for c in $concs; do
		# shellcheck disable=SC2086 # word lists on purpose
		{
			n=$(median ${mps[null,$c]}) np=$(median ${p99[null,$c]})
			o=$(median ${mps[normal,$c]}) op=$(median ${p99[normal,$c]})
			s=$(median ${mps[stress,$c]}) sp=$(median ${p99[stress,$c]})
		}
		awk -v c="$c" -v n="$n" -v np="$np" -v o="$o" -v op="$op" -v s="$s" -v sp="$sp" 'BEGIN {
			printf "%8d | %10.0f %12.2f | %10.0f %12.2f %10.2fx | %10.0f %12.2f %10.2fx\n",
				c, n, np, o, op, o / n, s, sp, s / n }'
		printf -v "ratio_normal_$c" %s "$(awk -v a="$o" -v b="$n" 'BEGIN { printf "%.2f", a / b }')"
		printf -v "ratio_stress_$c" %s "$(awk -v a="$s" -v b="$n" 'BEGIN { printf "%.2f", a / b }')"
		printf -v "p99_lower_$c" %s "$(awk -v a="$sp" -v b="$np" 'BEGIN { print (a < b) ? "yes" : "no" }')"
	done
	if [ -n "${BENCH_BASELINE:-}" ]; then
		echo
		echo "before/after: normal mode, $BENCH_BASELINE (before) against $MILTER_STRESS (after), same rounds"
		side_by_side base normal before after
	fi
	if [ -n "${BENCH_SCRAPE:-}" ]; then
		echo
		echo "scraped/unscraped: normal mode, /metrics scraped 10 times a second (scraped) or never (normal), same rounds; $(cat "$T_DIR/scrapes") scrapes"
		side_by_side normal scraped normal scraped
	fi
	echo
	for m in $milters; do
		pid_var=pid_$m cpu_var=cpu_$m
		awk -v m="$m" -v t="${!cpu_var}" -v hz="$ticks_per_s" -v n="${msgs[$m]}" \
			-v rss="$(status_kb "${!pid_var}" VmHWM)" -v pc="${probe_cpu[$m]}" 'BEGIN {
			printf "%-7s milter CPU %.3f s per 1000 messages, peak RSS %.1f MiB; load generator CPU %.3f s per 1000\n",
				m, t / hz / n * 1000, rss / 1024, pc / n * 1000 }'
	done
	echo "command: milter-probe -p unix:SOCK --headers 10 --body-size 4k --client-addr 192.0.2.1 -m '{stress}=no|yes' --bench C,$count"
	echo
	echo "targets (normal mode >= 0.9x null at 16 and 128; stress mode faster than null with a lower p99 at 128 and 512):"
	for c in 16 128; do
		v=ratio_normal_$c
		[ -n "${!v:-}" ] && echo "  normal/null at $c sessions: ${!v}x $(awk -v r="${!v}" 'BEGIN { print (r >= 0.9) ? "met" : "NOT met" }')"
	done
	for c in 128 512; do
		v=ratio_stress_$c l=p99_lower_$c
		[ -n "${!v:-}" ] && echo "  stress/null at $c sessions: ${!v}x, p99 lower: ${!l} $(awk -v r="${!v}" -v l="${!l}" 'BEGIN { print (r > 1 && l == "yes") ? "met" : "NOT met" }')"
	done
	kill "$pid_null" "$pid_normal" "$pid_stress" ${pid_base:+"$pid_base"} 2>/dev/null
fi

# ---- 2. socket kinds: the 40 ms stall -------------------------------------
if part 2; then
	echo
	echo "== 2. socket kinds: $socket_count messages per run, each milter adds a header"
	hdr='X-Stress: no'
	p_null_inet=$(free_port) p_ms_inet=$(free_port)
	start_milter nullu "unix:$T_DIR/nullu.sock" "$NULL_MILTER" -H "$hdr" -p "unix:$T_DIR/nullu.sock"
	start_milter nulli "inet:$p_null_inet" "$NULL_MILTER" -H "$hdr" -p "inet:$p_null_inet@127.0.0.1"
	start_milter msu "unix:$T_DIR/msu.sock" "$MILTER_STRESS" -f -c "$conf" -p "unix:$T_DIR/msu.sock"
	start_milter msi "inet:$p_ms_inet" "$MILTER_STRESS" -f -c "$conf" -p "inet:$p_ms_inet@127.0.0.1"
	printf '%8s | %-42s | %-42s\n' sessions "null milter -H: unix / inet" "milter-stress: unix / inet"
	for c in 1 16; do
		row=()
		for m in nullu nulli msu msi; do
			case $m in
			*u) sock=unix:$T_DIR/$m.sock ;;
			nulli) sock=inet:$p_null_inet@127.0.0.1 ;;
			msi) sock=inet:$p_ms_inet@127.0.0.1 ;;
			esac
			probe "$m" "$sock" "${shape[@]}" --bench "$c,$socket_count"
			row+=("$(field "$line" mps)" "$(field "$line" p50)")
		done
		printf '%8d | %6.0f msg/s %5.2f / %6.0f msg/s %6.2f ms | %6.0f msg/s %5.2f / %6.0f msg/s %6.2f ms\n' "$c" "${row[@]}"
	done
	echo "(msg/s and p50 latency per socket kind; command: milter-probe -p unix:SOCK|inet:PORT@127.0.0.1 --headers 10 --body-size 4k --bench C,$socket_count)"
	kill "$pid_nullu" "$pid_nulli" "$pid_msu" "$pid_msi" 2>/dev/null
fi

# ---- 3. thousands of sessions at once -------------------------------------
if part 3; then
	echo
	# Each session waits hold_delay ms before each SMTP command and the
	# message, as across a network, so all of them are open at once.
	hold_delay=${BENCH_HOLD_DELAY:-200}
	echo "== 3. $hold sessions at once against milter-stress (shipped config), $((hold * 3)) messages per mode, $hold_delay ms client delay per SMTP command"
	for mode in no yes; do
		m=hold_$mode
		start_milter "$m" "unix:$T_DIR/$m.sock" "$MILTER_STRESS" -f -c "$conf" -p "unix:$T_DIR/$m.sock"
		pid_var=pid_$m
		# Sample the milter's threads and descriptors while the load runs.
		(
			max_t=0 max_f=0
			while kill -0 "${!pid_var}" 2>/dev/null && [ ! -e "$T_DIR/$m.done" ]; do
				t=$(status_kb "${!pid_var}" Threads)
				f=$(find "/proc/${!pid_var}/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
				[ "${t:-0}" -gt $max_t ] && max_t=$t
				[ "$f" -gt $max_f ] && max_f=$f
				echo "$max_t $max_f" >"$T_DIR/$m.peak"
				sleep 0.05
			done
		) &
		track_pid $!
		probe "$m" "unix:$T_DIR/$m.sock" "${shape[@]}" -m "{stress}=$mode" --stage-delay "$hold_delay" --bench "$hold,$((hold * 3))"
		touch "$T_DIR/$m.done"
		sleep 0.1
		read -r max_t max_f <"$T_DIR/$m.peak"
		rss=$(status_kb "${!pid_var}" VmHWM)
		echo "stress=$mode: $(field "$line" mps) msg/s, p99 $(field "$line" p99) ms, errors $(field "$line" errors); milter peak RSS $((rss / 1024)) MiB, peak threads $max_t, peak open descriptors $max_f"
		echo "  target: zero errors, peak RSS under 128 MiB: $([ "$(field "$line" errors)" = 0 ] && [ "$rss" -lt $((128 * 1024)) ] && echo met || echo "NOT met")"
		kill "${!pid_var}" 2>/dev/null
	done
	echo "command: milter-probe -p unix:SOCK --headers 10 --body-size 4k --client-addr 192.0.2.1 -m '{stress}=no|yes' --stage-delay $hold_delay --bench $hold,$((hold * 3))"
fi

# ---- 4. through Postfix -----------------------------------------------------
if part 4; then
	. "$top_srcdir/tests/postfix-lib.sh"
	pf_need
	need smtp-source
	echo
	echo "== 4. through Postfix: smtp-source, $pf_count messages of 4 KiB per run in $pf_sessions sessions at once (one message each), $rounds rounds"
	p_null=$(free_port) p_ms=$(free_port) p_flood=$(free_port) p_ep=$(free_port)
	p_ms2=$(free_port) p_ep2=$(free_port)
	start_milter pfnull "inet:$p_null" "$NULL_MILTER" -p "inet:$p_null@127.0.0.1"
	# smtp-source connects from 127.0.0.1, which the shipped rules accept as
	# a local client at once: narrow that rule to ::1, so that every session
	# takes the path of a remote client.
	for c in milter-stress example-flood; do
		sed 's|^connect client 127\.0\.0\.0/8 \[::1\]/128 accept$|connect client [::1]/128 accept|' \
			"$top_srcdir/conf/$c.conf" >"$T_DIR/pf-$c.conf"
		grep -q '^connect client \[::1\]/128 accept$' "$T_DIR/pf-$c.conf" || fail "$c.conf: no local-client rule to narrow"
	done
	# The same milter-stress serves the stress endpoint (stress_socket).
	start_milter pfms "inet:$p_ms" "$MILTER_STRESS" -f -c "$T_DIR/pf-milter-stress.conf" -p "inet:$p_ms@127.0.0.1" \
		-o stress_socket="inet:$p_ep@127.0.0.1"
	wait_for_tcp "$p_ep"
	# The endpoint again, with stress_header_forged = postfix: no header
	# asked for (Postfix's header_checks would remove forged copies; the
	# messages here have none, so none are configured).
	start_milter pfms2 "inet:$p_ms2" "$MILTER_STRESS" -f -c "$T_DIR/pf-milter-stress.conf" -p "inet:$p_ms2@127.0.0.1" \
		-o stress_socket="inet:$p_ep2@127.0.0.1" -o stress_header_forged=postfix
	wait_for_tcp "$p_ep2"
	start_milter pfflood "inet:$p_flood" "$MILTER_STRESS" -f -c "$T_DIR/pf-example-flood.conf" \
		-p "inet:$p_flood@127.0.0.1"
	sink_discard_start
	declare -A pf_port pf_mps
	setups="none null normal stress endpoint endpoint-nohdr flood"
	for s in $setups; do pf_port[$s]=$(free_port); done
	main=$(pf_shipped_main "$p_ms") || fail "main.cf snippet"
	pf_start "$T_DIR/pf" "$main
default_process_limit = 200" "$(pf_smtpd "${pf_port[none]}" -o smtpd_milters=)
$(pf_smtpd "${pf_port[null]}" -o smtpd_milters=inet:127.0.0.1:"$p_null")
$(pf_smtpd "${pf_port[normal]}")
$(pf_smtpd "${pf_port[stress]}" -o stress=yes)
$(pf_smtpd "${pf_port[endpoint]}" -o stress=yes -o smtpd_milters=inet:127.0.0.1:"$p_ep")
$(pf_smtpd "${pf_port[endpoint-nohdr]}" -o stress=yes -o smtpd_milters=inet:127.0.0.1:"$p_ep2")
$(pf_smtpd "${pf_port[flood]}" -o stress=yes -o smtpd_milters=inet:127.0.0.1:"$p_flood")"
	# Warm up: Postfix starts its smtpd, cleanup and smtp processes on
	# demand; none of the measured runs should pay for that.
	for s in $setups; do pf_warm "${pf_port[$s]}" "$pf_sessions" 4096; done
	for r in $(seq 1 "$rounds"); do
		for s in $setups; do
			pf_source "${pf_port[$s]}" "$pf_sessions" "$pf_count" 4096
			pf_mps[$s]+=" $pf_rate"
		done
	done
	deferred=$(grep -c 'status=deferred' "$PF_LOG" || true)
	milter_tempfail=$(grep -Ec 'milter-(reject|tempfail|discard)|4\.7\.1 Service unavailable' "$PF_LOG" || true)
	# shellcheck disable=SC2086 # word lists on purpose
	base=$(median ${pf_mps[none]})
	printf '%-22s %10s %10s   (rounds: msg/s)\n' "setup" "msg/s" "vs none"
	for s in $setups; do
		# shellcheck disable=SC2086
		v=$(median ${pf_mps[$s]})
		awk -v s="$s" -v v="$v" -v b="$base" -v all="${pf_mps[$s]}" 'BEGIN {
			printf "%-22s %10.1f %9.2fx  %s\n", s, v, v / b, all }'
	done
	# shellcheck disable=SC2086
	st=$(median ${pf_mps[stress]})
	# shellcheck disable=SC2086
	fl=$(median ${pf_mps[flood]})
	# shellcheck disable=SC2086
	ep=$(median ${pf_mps[endpoint]})
	echo "target: the stress endpoint (stress_socket, shipped config) at 0.9x no milter or more: $(awk -v a="$ep" -v b="$base" 'BEGIN { printf "%.2fx %s", a / b, (a / b >= 0.9) ? "met" : "NOT met" }')"
	# shellcheck disable=SC2086
	ep2=$(median ${pf_mps[endpoint-nohdr]})
	echo "        ... with stress_header_forged = postfix: $(awk -v a="$ep2" -v b="$base" 'BEGIN { printf "%.2fx %s", a / b, (a / b >= 0.9) ? "met" : "NOT met" }')"
	echo "target: milter-stress in stress mode within 10% of no milter: shipped config $(awk -v a="$st" -v b="$base" 'BEGIN { printf "%.2fx %s", a / b, (a / b >= 0.9) ? "met" : "NOT met" }'), example-flood.conf $(awk -v a="$fl" -v b="$base" 'BEGIN { printf "%.2fx %s", a / b, (a / b >= 0.9) ? "met" : "NOT met" }')"
	echo "deferred deliveries: $deferred; milter rejects/tempfails: $milter_tempfail"
	echo "command: smtp-source -s $pf_sessions -m $pf_count -l 4096 -f sender@example.com -t rcpt@example.com 127.0.0.1:PORT (listener: none | -o smtpd_milters=null | shipped | shipped -o stress=yes | -o stress=yes -o smtpd_milters=the stress endpoint (and one with stress_header_forged = postfix) | example-flood.conf -o stress=yes)"
	[ "$milter_tempfail" -eq 0 ] || errors_total=$((errors_total + milter_tempfail))
fi

echo
echo "protocol errors seen by milter-probe: $errors_total"
[ "$errors_total" -eq 0 ] || { tail -n 20 "$T_DIR/probe.err"; fail "$errors_total errors"; }
