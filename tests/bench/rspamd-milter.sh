#!/bin/bash
# milter-stress calling rspamd against rspamd's own milter (its proxy worker
# in milter mode), the same messages, side by side.
#
# One private rspamd (tests/rspamd-lib.sh) with 2 normal workers and, added
# here, a proxy worker with "milter = yes" whose upstream is those normal
# workers. milter-probe plays Postfix against each: rspamd's milter directly;
# milter-stress with rspamd_socket and one rule on rspamd's action, normal
# ({stress}=no: every message scanned) and stressed ({stress}=yes: none is).
# 2 KiB and 256 KiB messages, 16 and 128 sessions, SECONDS a run.
#
#   tests/bench/rspamd-milter.sh [SECONDS]   (make bench-rspamd-milter)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/rspamd-lib.sh"
secs=${1:-10}

rspamd_start 2
rspamd_stop
proxy_port=$(free_port)
cat >>"$rs_dir/rspamd.conf" <<EOF
worker "rspamd_proxy" {
	bind_socket = "127.0.0.1:$proxy_port";
	milter = yes;
	timeout = 120s;
	upstream "local" {
		default = yes;
		hosts = "127.0.0.1:$rspamd_port";
	}
	count = 1;
}
EOF
rspamd -f $rs_root -c "$rs_dir/rspamd.conf" --var=DBDIR="$rs_dir/db" \
	--var=RUNDIR="$rs_dir/run" --var=LOGDIR="$rs_dir" \
	--var=LOCAL_CONFDIR="$rs_dir/local" >>"$rs_dir/stdout" 2>&1 &
rspamd_pid=$!
track_pid $rspamd_pid
wait_until "rspamd does not come back" 300 $rspamd_pid rspamd_ping
wait_for_tcp "$proxy_port" 100 $rspamd_pid

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
