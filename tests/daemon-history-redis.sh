#!/bin/bash
# The client history shared through Redis by two daemons (two MX hosts): a
# client that delivered through the first is known to the second under
# stress. Then Redis is killed, and later hung (SIGSTOP), while 128
# sessions at once run through the first daemon: no session fails, the
# slowest reply stays within the read budget (plus the machine's own
# noise), the client is unknown while Redis is gone and known again when
# it is back. Last, the same server on its unix socket (redis:unix:PATH):
# a client the admin tool adds there is known to a daemon using it.
#
# redis-server is the test's own: a free port on 127.0.0.1, a config of its
# own on the command line, its files under the test's directory (an append
# only file, so that a killed server comes back with its data).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 200
need redis-server
need redis-cli
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"

rdir="$T_DIR/redis"
mkdir -p "$rdir"
RPORT=$(free_port)
redis_start() {
	redis-server --port "$RPORT" --bind 127.0.0.1 --protected-mode no --save '' \
		--unixsocket "$rdir/redis.sock" --unixsocketperm 777 \
		--appendonly yes --appendfsync always --dir "$rdir" --daemonize no \
		--logfile "$rdir/redis.log" &
	redis_pid=$!
	track_pid "$redis_pid"
	wait_for_tcp "$RPORT" 100 "$redis_pid"
}
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
redis_start
pass "redis-server on 127.0.0.1:$RPORT"

conf="$T_DIR/ms.conf"
cat >"$conf" <<CONF
history_store = redis:127.0.0.1:$RPORT
history_known_messages = 3
history_cache_time = 1s
history_read_budget = 50ms
history_store_timeout = 300ms
connect stress name=known-clients history known personality normal
helo stress name=bare-ip helo ip_literal tempfail 421 4.7.0 "Busy, try again later"
CONF
chmod 644 "$conf"
start_daemon "$T_DIR/a.log" "unix:$T_DIR/a.sock" -c "$conf"
a_pid=$ms_pid
# The second without a cache: every lookup asks Redis, through its thread.
{ cat "$conf"; echo "history_cache_size = 0"; } >"$T_DIR/b.conf"
chmod 644 "$T_DIR/b.conf"
start_daemon "$T_DIR/b.log" "unix:$T_DIR/b.sock" -c "$T_DIR/b.conf"
b_pid=$ms_pid

n=0
# probe SOCK ADDR STRESS HELO: one transaction; out (transcript), ms (time).
probe() {
	n=$((n + 1))
	out="$T_DIR/probe$n.out"
	p_t0=$(date +%s%N)
	"$MILTER_PROBE" --timeout 10 -p "unix:$1" --client-addr "$2" --helo "$4" \
		-m "{stress}=$3" >"$out" 2>&1 || true
	ms=$((($(date +%s%N) - p_t0) / 1000000))
}
# The known client, stressed, through the second daemon. Its HELO is a name:
# a refusal would count against it.
known_on_b() {
	probe "$T_DIR/b.sock" 192.0.2.50 yes mail.example
	grep -q '^eom: add header X-Stress: no (source=macro; stress=yes; client=known; rule=known-clients)$' "$out"
}
unknown_on_b() {
	probe "$T_DIR/b.sock" 192.0.2.50 yes mail.example
	grep -q '^eom: add header X-Stress: yes (source=macro; client=unknown)$' "$out"
}

# ---- shared: three messages through A make the client known to B ----
for i in 1 2 3; do probe "$T_DIR/a.sock" 192.0.2.50 no mail.example; done
stored() { [ "$(rcli HGET ms:h:192.0.2.50 a)" = 3 ]; }
wait_until "three messages of 192.0.2.50 not in Redis" 50 "$a_pid" stored
ttl=$(rcli TTL ms:h:192.0.2.50)
[ "$ttl" -gt 86400 ] || fail "the key's TTL is $ttl"
pass "one key per client with a TTL Redis enforces ($ttl s)"
known_on_b || { cat "$out"; fail "the second daemon does not know the client"; }
pass "a client that delivered through the first MX is known to the second under stress"
probe "$T_DIR/b.sock" 192.0.2.50 yes '[192.0.2.50]'
expect_line "$out" '^result: accept' "its bare-IP HELO passes there"
probe "$T_DIR/b.sock" 192.0.2.51 yes '[192.0.2.51]'
expect_line "$out" '^helo \[192\.0\.2\.51\]: tempfail 421' "a stranger's gets the stress rule's 421"

# load SECONDS NAME: 128 sessions at once against A, in the background.
load() {
	"$MILTER_PROBE" --timeout 20 -p "unix:$T_DIR/a.sock" --client-addr 2001:db8::1 \
		--bench-vary-client -m '{stress}=yes' --bench "128,${1}s" >"$T_DIR/$2.bench" 2>&1 &
	load_pid=$!
	track_pid "$load_pid"
}
# check_load NAME: no errors, and the slowest reply within the budget + noise.
check_load() {
	wait "$load_pid" || true
	line=$(grep '^BENCH ' "$T_DIR/$1.bench") || { cat "$T_DIR/$1.bench"; fail "$1: no BENCH line"; }
	errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
	reply_max=$(sed -n 's/.* reply_max=\([0-9.]*\).*/\1/p' <<<"$line")
	[ "$errors" = 0 ] || { cat "$T_DIR/$1.bench"; fail "$1: $errors sessions failed"; }
	# 50 ms of budget; a 2-core machine running 128 sessions and the test
	# adds its own scheduling delays, so the bound is generous but finite.
	awk -v m="$reply_max" 'BEGIN { exit !(m < 1000) }' ||
		{ cat "$T_DIR/$1.bench"; fail "$1: a reply took $reply_max ms"; }
	pass "$1: $(sed -n 's/^bench: \([0-9]* transactions\).*/\1/p' "$T_DIR/$1.bench"), errors=0, slowest reply $reply_max ms"
}

# ---- Redis killed under load ----
load 6 killed
sleep 1.5
kill -KILL "$redis_pid"
wait "$redis_pid" 2>/dev/null
sleep 1.2 # the cached answer expires (history_cache_time)
unknown_on_b || { cat "$out"; fail "Redis is gone, yet the client is known"; }
[ "$ms" -lt 2000 ] || fail "the probe took $ms ms with Redis gone"
pass "Redis killed: the client is unknown (probe $ms ms)"
redis_start
wait_until "the client is not known again once Redis is back" 100 "" known_on_b
pass "Redis back (its append-only file): the client is known again"
check_load killed
wait_for_line "$T_DIR/a.log" 'client history: (read|write): redis 127\.0\.0\.1:[0-9]+: .*logged at most once a minute' 10

# ---- Redis hung under load ----
load 6 hung
sleep 1.5
kill -STOP "$redis_pid"
sleep 1.2
unknown_on_b || { kill -CONT "$redis_pid"; cat "$out"; fail "Redis hangs, yet the client is known"; }
[ "$ms" -lt 2000 ] || { kill -CONT "$redis_pid"; fail "the probe took $ms ms with Redis hung"; }
pass "Redis hung: the client is unknown (probe $ms ms)"
sleep 1
kill -CONT "$redis_pid"
wait_until "the client is not known again once Redis answers" 100 "" known_on_b
pass "Redis answers again: the client is known again"
check_load hung

complaints=$(grep -c 'client history: read:' "$T_DIR/b.log")
[ "$complaints" -le 4 ] || fail "$complaints read errors logged by B: not once a minute"
pass "errors logged at most once a minute per kind ($complaints read lines in B's log)"
stop_daemon_status "$a_pid" "$T_DIR/a.log" "a"
stop_daemon_status "$b_pid" "$T_DIR/b.log" "b"
pass "both daemons stop"

# ---- the same server on its unix socket: the admin tool and a daemon ----
sed "s#^history_store = .*#history_store = redis:unix:$rdir/redis.sock#" "$conf" >"$T_DIR/c.conf"
chmod 644 "$T_DIR/c.conf"
"$top_builddir/tools/milter-stress-history" -c "$T_DIR/c.conf" add 192.0.2.88 >/dev/null ||
	fail "milter-stress-history could not add over redis:unix:"
[ "$(rcli HGET ms:h:192.0.2.88 a)" -ge 3 ] || fail "the tool's client is not in Redis"
pass "redis:unix: the admin tool adds a client"
start_daemon "$T_DIR/c.log" "unix:$T_DIR/c.sock" -c "$T_DIR/c.conf"
c_pid=$ms_pid
probe "$T_DIR/c.sock" 192.0.2.88 yes mail.example
expect_line "$out" '^eom: add header X-Stress: no \(source=macro; stress=yes; client=known; rule=known-clients\)$' \
	"redis:unix: the daemon knows the tool's client"
stop_daemon_status "$c_pid" "$T_DIR/c.log" "c"
