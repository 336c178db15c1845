#!/bin/bash
# milter-stress calling rspamd against rspamd's own milter (its proxy worker
# in milter mode), the same messages, side by side.
#
# One private rspamd (tests/rspamd-lib.sh) with 2 normal workers and 2
# proxy workers in milter mode that scan themselves (RSPAMD_MILTER=1). milter-probe plays Postfix against each: rspamd's milter directly;
# milter-stress with rspamd_socket and one rule on rspamd's action, normal
# ({stress}=no: every message scanned) and stressed ({stress}=yes: none is).
# 2 KiB and 256 KiB messages, 16 and 128 sessions, SECONDS a run.
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
track_pid $!
wait_for_unix_socket "$sock"

for size in 2k 256k; do
	for conc in 16 128; do
		for who in rspamd-milter milter-stress-normal milter-stress-stress; do
			case $who in
			rspamd-milter) args=(-p "inet:$proxy_port@127.0.0.1") ;;
			milter-stress-normal) args=(-p "unix:$sock" -m '{stress}=no') ;;
			milter-stress-stress) args=(-p "unix:$sock" -m '{stress}=yes') ;;
			esac
			line=$("$MILTER_PROBE" "${args[@]}" --timeout 60 --body-size $size \
				--bench "$conc,${secs}s" | tail -n 1)
			echo "size=$size conc=$conc $who: $line"
		done
	done
done
echo "command: milter-probe -p SOCKET --body-size SIZE [-m '{stress}=MODE'] --bench C,${secs}s"
