#!/bin/bash
# The content scanners, normal against stress, side by side in one run, and
# the milter's memory with 200 messages of 10 MiB at once.
#
# clamd, spamd and rspamd on loopback (tests/scanners-lib.sh,
# tests/rspamd-lib.sh), all three asked at end of message by rules of mode
# both: in the normal personality ({stress}=no) every message is scanned,
# under stress ({stress}=yes) none is and the header lists them. Messages
# of 2 KiB, 256 KiB and 2 MiB, 16 and 128 sessions at once, SECONDS each.
# Then 200 sessions at once each sending 10 MiB (scan_size_limit 20m): the
# milter's peak RSS (VmHWM), with the spool's memory threshold at its
# default (256k) and at 64m (every message in memory).
#
#   tests/bench/scanners.sh [SECONDS]   (from a build tree: make bench-scanners)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/scanners-lib.sh"
. "$top_srcdir/tests/rspamd-lib.sh"
secs=${1:-10}

clamd_start 8
spamd_start 4
rspamd_start 2

sock="$T_DIR/ms.sock"
conf() { # SPOOL-MEMORY SIZE-LIMIT
	cat >"$T_DIR/ms.conf" <<CONF
clamd_socket = inet:$clamd_port@127.0.0.1
spamd_socket = inet:$spamd_port@127.0.0.1
rspamd_socket = $rspamd_endpoint
clamd_max_connections = 8
spamd_max_connections = 4
rspamd_max_connections = 16
scan_spool_memory = $1
scan_size_limit = \${stress?{256k}:{$2}}
eom virus reject 554 5.7.1 "virus \$virus_name found"
eom spam_score > 5 and !spam_rule MISSING_DATE reject 550 5.7.1 "spam"
eom rspamd_action "reject" reject 550 5.7.1 "spam"
CONF
}
start() {
	"$MILTER_STRESS" -f -c "$T_DIR/ms.conf" -p "unix:$sock" 2>"$T_DIR/ms.log" &
	ms_pid=$!
	track_pid $ms_pid
	wait_for_unix_socket "$sock"
}
stop() { kill -TERM $ms_pid; wait $ms_pid 2>/dev/null; rm -f "$sock"; }

conf 256k 10m
start
for size in 2k 256k 2m; do
	for conc in 16 128; do
		for mode in no yes; do
			line=$("$MILTER_PROBE" -p "unix:$sock" --timeout 60 --body-size $size \
				-m "{stress}=$mode" --bench "$conc,${secs}s" | tail -n 1)
			echo "size=$size conc=$conc stress=$mode: $line"
		done
	done
done
echo "command: milter-probe -p unix:SOCK --body-size SIZE -m '{stress}=MODE' --bench C,${secs}s"
# What each scanner answered in the normal runs: ok, timeout, error, skipped.
grep -o ' scan=[^ ]*' "$T_DIR/ms.log" | sed 's/^ scan=//' | tr ',' '\n' |
	awk -F: '{ r = ($2 == "timeout" || $2 == "error" || $2 == "skipped") ? $2 : "ok"; n[$1 " " r]++ }
		END { for (k in n) print "normal runs, scans: " k " " n[k] }' | sort
stop

# The same load under stress against a milter with no scanner at all: what
# the scanners' configuration costs a stressed session.
printf 'eom virus reject\n' >"$T_DIR/ms.conf"
start
for conc in 16 128; do
	line=$("$MILTER_PROBE" -p "unix:$sock" --body-size 2k -m "{stress}=yes" --bench "$conc,${secs}s" |
		tail -n 1)
	echo "no scanner configured, size=2k conc=$conc stress=yes: $line"
done
stop

for mem in 256k 64m; do
	conf $mem 20m
	start
	line=$("$MILTER_PROBE" -p "unix:$sock" --timeout 120 --body-size 10m -m '{stress}=no' \
		--bench 200,200 | tail -n 1)
	hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$ms_pid/status")
	echo "200 x 10 MiB at once, scan_spool_memory=$mem: peak RSS $((hwm / 1024)) MiB; $line"
	stop
done
echo "command: milter-probe -p unix:SOCK --body-size 10m -m '{stress}=no' --bench 200,200; VmHWM of the milter"
