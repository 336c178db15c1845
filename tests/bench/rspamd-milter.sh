#!/bin/bash
# milter-stress calling rspamd against rspamd's own milter (its proxy worker
# in milter mode), the same messages, side by side.
#
# One private rspamd (tests/rspamd-lib.sh) with 2 normal workers and 2
# proxy workers in milter mode that scan themselves (RSPAMD_MILTER=1). milter-probe plays Postfix against each: rspamd's milter directly;
# milter-stress with rspamd_socket and one rule on rspamd's action, normal
# ({stress}=no: every message scanned) and stressed ({stress}=yes: none is).
# 2 KiB and 256 KiB messages, 16 and 128 sessions, SECONDS a run. Each run
# also prints the CPU time per message of rspamd's processes and of
# milter-stress (utime + stime from /proc, taken around the run).
#
# Then the same through Postfix, what an MX sees: a private Postfix
# instance relaying to smtp-sink, one smtpd listener per setup (no milter,
# rspamd's milter, milter-stress normal, milter-stress with -o stress=yes),
# smtp-source sending 2 KiB messages, RSPAMD_PF_COUNT (2000) a run at 16
# and 128 sessions, RSPAMD_PF_COUNT1 (300) in one session (where a milter's
# latency shows, not the host's CPU), RSPAMD_PF_ROUNDS (3) rounds, the
# setups alternating;
# msg/s is smtp-source's (every milter answers before smtpd does), median
# of the rounds, with the CPU a message of everything on the machine.
# RSPAMD_PF=0 leaves this part out.
#
#   tests/bench/rspamd-milter.sh [SECONDS]   (make bench-rspamd-milter)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/rspamd-lib.sh"
secs=${1:-10}

RSPAMD_MILTER=1 rspamd_start 2
proxy_port=$rspamd_milter_port

sock="$T_DIR/ms.sock"
cat >"$T_DIR/ms.conf" <<CONF
rspamd_socket = $rspamd_endpoint
rspamd_max_connections = 16
eom rspamd_action "reject" reject 550 5.7.1 "Spam"
CONF
"$MILTER_STRESS" -f -c "$T_DIR/ms.conf" -p "unix:$sock" 2>"$T_DIR/ms.log" &
ms_pid=$!
track_pid $ms_pid
wait_for_unix_socket "$sock"

hz=$(getconf CLK_TCK)
# per_msg TICKS N: microseconds of CPU a message
per_msg() { echo $(($1 * 1000000 / hz / ($2 > 0 ? $2 : 1))); }

for size in 2k 256k; do
	for conc in 16 128; do
		for who in rspamd-milter milter-stress-normal milter-stress-stress; do
			case $who in
			rspamd-milter) args=(-p "inet:$proxy_port@127.0.0.1") ;;
			milter-stress-normal) args=(-p "unix:$sock" -m '{stress}=no') ;;
			milter-stress-stress) args=(-p "unix:$sock" -m '{stress}=yes') ;;
			esac
			rs=$(pgrep -d ' ' -f '^rspamd: ')
			r0=$(cpu_ticks $rs) m0=$(cpu_ticks $ms_pid)
			line=$("$MILTER_PROBE" "${args[@]}" --timeout 60 --body-size $size \
				--bench "$conc,${secs}s" | tail -n 1)
			r1=$(cpu_ticks $rs) m1=$(cpu_ticks $ms_pid)
			n=$(sed -n 's/.* n=\([0-9]*\) .*/\1/p' <<<"$line")
			echo "size=$size conc=$conc $who: $line" \
				"cpu_us_per_msg: rspamd=$(per_msg $((r1 - r0)) "${n:-0}")" \
				"milter-stress=$(per_msg $((m1 - m0)) "${n:-0}")"
		done
	done
done
echo "command: milter-probe -p SOCKET --body-size SIZE [-m '{stress}=MODE'] --bench C,${secs}s"

[ "${RSPAMD_PF:-1}" = 0 ] && exit 0

# Through Postfix.
. "$top_srcdir/tests/postfix-lib.sh"
pf_need
need smtp-source
pf_count=${RSPAMD_PF_COUNT:-2000}
pf_count1=${RSPAMD_PF_COUNT1:-300}
# count SESSIONS: the messages of a run
count() { if [ "$1" = 1 ]; then echo "$pf_count1"; else echo "$pf_count"; fi; }
pf_rounds=${RSPAMD_PF_ROUNDS:-3}
# Postfix speaks to milter-stress over TCP, as to rspamd's milter: a second
# milter-stress with the same config on a port.
p_ms=$(free_port)
start_listener "$T_DIR/pfms.log" "inet:$p_ms" "$MILTER_STRESS" -f -c "$T_DIR/ms.conf" \
	-p "inet:$p_ms@127.0.0.1"
sink_discard_start
declare -A pf_port pf_mps pf_cpu
setups="none rspamd-milter milter-stress-normal milter-stress-stress"
for s in $setups; do pf_port[$s]=$(free_port); done
main=$(pf_shipped_main "$p_ms") || fail "main.cf snippet"
pf_start "$T_DIR/pf" "$main
default_process_limit = 300" "$(pf_smtpd "${pf_port[none]}" -o smtpd_milters=)
$(pf_smtpd "${pf_port[rspamd-milter]}" -o smtpd_milters=inet:127.0.0.1:"$proxy_port")
$(pf_smtpd "${pf_port[milter-stress-normal]}")
$(pf_smtpd "${pf_port[milter-stress-stress]}" -o stress=yes)"
# all_ticks: CPU ticks of every process on the machine (the load generator,
# Postfix, the milters, rspamd: what a message costs the host).
all_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
for conc in 1 16 128; do
	n=$(count "$conc")
	for s in $setups; do pf_warm "${pf_port[$s]}" "$conc" 2048; done
	for r in $(seq 1 "$pf_rounds"); do
		for s in $setups; do
			c0=$(all_ticks)
			pf_source "${pf_port[$s]}" "$conc" "$n" 2048
			c1=$(all_ticks)
			pf_mps[$s,$conc]+=" $pf_rate"
			pf_cpu[$s,$conc]+=" $(per_msg $((c1 - c0)) "$n")"
		done
	done
done
deferred=$(grep -c 'status=deferred' "$PF_LOG" || true)
milter_refused=$(grep -Ec 'milter-(reject|tempfail|discard)' "$PF_LOG" || true)
echo
echo "through Postfix: 2 KiB messages, $pf_count a run ($pf_count1 in one session), median of $pf_rounds rounds (msg/s of each round)"
printf '%-22s %8s %10s %12s %16s   %s\n' setup sessions msg/s "vs none" "host CPU a msg" rounds
for conc in 1 16 128; do
	# shellcheck disable=SC2086 # word lists on purpose
	base=$(median ${pf_mps[none,$conc]})
	for s in $setups; do
		# shellcheck disable=SC2086
		v=$(median ${pf_mps[$s,$conc]}) cpu=$(median ${pf_cpu[$s,$conc]})
		awk -v s="$s" -v c="$conc" -v v="$v" -v b="$base" -v cpu="$cpu" -v all="${pf_mps[$s,$conc]}" 'BEGIN {
			printf "%-22s %8d %10.1f %11.2fx %13d us  %s\n", s, c, v, v / b, cpu, all }'
	done
	# shellcheck disable=SC2086
	n=$(median ${pf_mps[milter-stress-normal,$conc]}) r=$(median ${pf_mps[rspamd-milter,$conc]})
	echo "milter-stress normal / rspamd's milter at $conc sessions: $(awk -v a="$n" -v b="$r" 'BEGIN { printf "%.2fx", a / b }')"
done
echo "deferred deliveries: $deferred; milter rejects/tempfails: $milter_refused"
echo "command: smtp-source -s SESSIONS -m COUNT -l 2048 -f sender@example.com -t rcpt@example.com 127.0.0.1:PORT (listener: -o smtpd_milters= | -o smtpd_milters=rspamd's milter | shipped main.cf with milter-stress | the same -o stress=yes)"
