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
