#!/bin/bash
# make bench-history: what the client history costs.
#
# 1. A history read as a session makes it at connect (history-read.c):
#    p50/p99/max from the store (cache off) and from the cache, LMDB and
#    Redis (a redis-server of its own on a free loopback port).
# 2. The write-behind queue under 512 sessions at once, every session a new
#    client (milter-probe --bench-vary-client): the queue's peak and the
#    updates dropped, from /metrics, LMDB and Redis.
# 3. A million clients into LMDB through the daemon: the file's size, the
#    daemon's peak RSS, the clients the file holds.
#
# Settings (environment): BENCH_HISTORY_CLIENTS for part 1 (100000),
# BENCH_HISTORY_LOAD sessions for part 2 (40000), BENCH_HISTORY_MILLION
# clients for part 3 (1000000), BENCH_HISTORY_PARTS ("1 2 3").
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

clients=${1:-${BENCH_HISTORY_CLIENTS:-100000}}
load=${BENCH_HISTORY_LOAD:-40000}
million=${BENCH_HISTORY_MILLION:-1000000}
parts=${BENCH_HISTORY_PARTS:-1 2 3}
watchdog "${BENCH_WATCHDOG:-3600}"
need redis-server
need curl
READ="$top_builddir/tests/history-read"
part() { [[ " $parts " == *" $1 "* ]]; }

hdir="$T_DIR/hist"
mkdir -p "$hdir"
[ "$(id -u)" != 0 ] || chown nobody "$hdir"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --protected-mode no --save '' --appendonly no \
	--dir "$T_DIR" --daemonize no --logfile "$T_DIR/redis.log" &
track_pid $!
wait_for_tcp "$RPORT" 100 $!

if part 1; then
	echo "== 1. one history read ($clients clients, half of them in the store)"
	"$READ" "lmdb:$hdir/read.lmdb" "$clients" | sed 's/^/lmdb  /'
	"$READ" "redis:127.0.0.1:$RPORT" "$clients" | sed 's/^/redis /'
fi

# metric PORT NAME: a sample of /metrics.
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="milter_stress_$2" '$1 == n { print $2 }'; }

# daemon NAME STORE [PARAM...]: milter-stress with the history in STORE and
# metrics on a free port; sets sock, mport, pid.
daemon() {
	d_name=$1 d_store=$2
	shift 2
	mport=$(free_port)
	sock="$T_DIR/$d_name.sock"
	{
		echo "history_store = $d_store"
		echo "metrics_listen = 127.0.0.1:$mport"
		echo "connect stress name=known history known personality normal"
		for p in "$@"; do echo "$p"; done
	} >"$T_DIR/$d_name.conf"
	chmod 644 "$T_DIR/$d_name.conf"
	start_daemon "$T_DIR/$d_name.log" "unix:$sock" -c "$T_DIR/$d_name.conf"
	pid=$ms_pid
	wait_for_tcp "$mport" 100 "$pid"
}

if part 2; then
	echo "== 2. the write-behind queue: 512 sessions at once, $load sessions, each a new client"
	for store in "lmdb:$hdir/load.lmdb" "redis:127.0.0.1:$RPORT"; do
		daemon load "$store" "history_ipv6_prefix = 128"
		"$MILTER_PROBE" --timeout 60 -p "unix:$sock" --client-addr 2001:db8:1::1 --bench-vary-client \
			-m '{stress}=yes' --bench "512,$load" >"$T_DIR/load.out" 2>&1 || true
		sleep 1
		printf '%-6s %s\n' "${store%%:*}" "$(grep '^BENCH ' "$T_DIR/load.out")"
		printf '%-6s queue peak %s, now %s, updates %s, dropped %s, store errors %s\n' "${store%%:*}" \
			"$(metric "$mport" history_queue_peak)" "$(metric "$mport" history_queue_depth)" \
			"$(metric "$mport" history_updates_total)" "$(metric "$mport" history_updates_dropped_total)" \
			"$(metric "$mport" history_store_errors_total)"
		stop_daemon_status "$pid" "$T_DIR/load.log" "load"
	done
fi

if part 3; then
	echo "== 3. $million clients into LMDB (history_size 256m)"
	daemon million "lmdb:$hdir/million.lmdb" "history_ipv6_prefix = 128"
	rss0=$(ms_rss "$pid")
	t0=$(date +%s)
	"$MILTER_PROBE" --timeout 60 -p "unix:$sock" --client-addr 2001:db8:2::1 --bench-vary-client \
		-m '{stress}=no' --bench "64,$million" >"$T_DIR/million.out" 2>&1 || true
	sleep 2
	hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
	rss=$(ms_rss "$pid")
	echo "load: $(grep '^BENCH ' "$T_DIR/million.out") ($(($(date +%s) - t0)) s)"
	echo "updates $(metric "$mport" history_updates_total), dropped $(metric "$mport" history_updates_dropped_total)"
	stop_daemon_status "$pid" "$T_DIR/million.log" "million"
	echo "daemon RSS: at start ${rss0} KiB, after ${rss} KiB, peak ${hwm} KiB"
	echo "file: $(stat -c %s "$hdir/million.lmdb") bytes ($(du -k "$hdir/million.lmdb" | cut -f1) KiB on disk)"
	echo "clients in the file: $("$top_builddir/tools/milter-stress-history" -s "lmdb:$hdir/million.lmdb" dump | wc -l)"
fi
