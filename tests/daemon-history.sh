#!/bin/bash
# The client history in LMDB through the real daemon: a stranger under
# stress gets the stress rule's 421, a client with enough accepted mail is
# known and keeps the normal personality (header and log say why); the
# admin tool reads the file while the daemon runs; the history survives a
# restart (what is queued at stop is written); a reload switches stores in
# place; a damaged file is moved
# aside with a clear error and the daemon starts with a fresh one; a
# small history_size holds against thousands of clients; and a file the
# admin tool created as root is one the daemon (as nobody) can open.
#
# Clients are TEST-NET addresses: only strings in the milter dialogue.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 150
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
HIST="$top_builddir/tools/milter-stress-history"
hdir="$T_DIR/hist"
mkdir -p "$hdir"
[ "$(id -u)" != 0 ] || chown nobody "$hdir"
db="$hdir/history.lmdb"
conf="$T_DIR/ms.conf"
cat >"$conf" <<CONF
history_store = lmdb:$db
history_known_messages = 2
history_cache_time = 0
connect stress name=known-clients history known personality normal
helo stress name=bare-ip helo ip_literal tempfail 421 4.7.0 "Busy, try again later"
CONF
chmod 644 "$conf"

n=0
# probe ADDR STRESS HELO: one transaction; out is its transcript.
probe() {
	n=$((n + 1))
	out="$T_DIR/probe$n.out"
	"$MILTER_PROBE" --timeout 10 -p "unix:$sock" --client-addr "$1" --helo "$3" \
		-m "{stress}=$2" >"$out" 2>&1 || true
}
# accepted ADDR N: the tool shows N accepted messages for ADDR.
accepted() { "$HIST" -c "$conf" show "$1" 2>/dev/null | grep -q " accepted=$2 "; }

start() { # LOG
	sock="$T_DIR/ms$n.sock"
	start_daemon "$1" "unix:$sock" -c "$conf"
}

# ---- a stranger, then a known client ----
log="$T_DIR/a.log"
start "$log"
pid=$ms_pid
wait_for_line "$log" "client history: lmdb:$db open" 50
probe 192.0.2.10 yes '[192.0.2.10]'
expect_line "$out" '^helo \[192\.0\.2\.10\]: tempfail 421 4\.7\.0' "a stranger with a bare-IP HELO under stress: 421"
probe 192.0.2.20 no mail.example
probe 192.0.2.20 no mail.example
expect_line "$out" '^eom: add header X-Stress: no \(source=macro; client=unknown\)$' "calm: the header names the client's verdict"
wait_until "the two messages of 192.0.2.20 are not in the file" 50 "$pid" accepted 192.0.2.20 2
pass "the admin tool reads the file while the daemon runs"
probe 192.0.2.20 yes '[192.0.2.20]'
expect_line "$out" '^eom: add header X-Stress: no \(source=macro; stress=yes; client=known; rule=known-clients\)$' \
	"a known client under stress keeps the normal personality, bare-IP HELO and all"
expect_line "$log" 'stress=no\(macro\) client=known personality=normal\(rule=known-clients,at=connect,stress=yes\)' \
	"the log line says why"
# What is queued at stop is written before the daemon exits.
probe 192.0.2.30 no mail.example
stop_daemon "$pid" "$log" "a"
accepted 192.0.2.30 1 || fail "the message just before the stop was not written"
pass "the queue is written at stop"

# ---- a restart ----
log="$T_DIR/b.log"
start "$log"
pid=$ms_pid
probe 192.0.2.20 yes '[192.0.2.20]'
expect_line "$out" 'client=known; rule=known-clients' "after a restart the client is still known"
# A reload to another store: opened in place, the cache emptied.
sed "s#^history_store = .*#history_store = lmdb:$hdir/other.lmdb#" "$conf" >"$conf.new" && mv "$conf.new" "$conf"
chmod 644 "$conf"
kill -USR1 "$pid"
wait_for_line "$log" "client history: lmdb:$hdir/other\.lmdb open" 50
probe 192.0.2.20 yes mail.example
expect_line "$out" '^eom: add header X-Stress: yes \(source=macro; client=unknown\)$' "a reload to another store: the client is unknown there"
sed "s#^history_store = .*#history_store = lmdb:$db#" "$conf" >"$conf.new" && mv "$conf.new" "$conf"
chmod 644 "$conf"
kill -USR1 "$pid"
reopened() { [ "$(grep -c "client history: lmdb:$db open" "$log")" -ge 2 ]; }
wait_until "the first store is not opened again" 50 "$pid" reopened
probe 192.0.2.20 yes mail.example
expect_line "$out" 'client=known; rule=known-clients' "and back: known again"
stop_daemon "$pid" "$log" "b"

# ---- a damaged file ----
head -c 65536 /dev/urandom >"$db"
log="$T_DIR/c.log"
start "$log"
pid=$ms_pid
wait_for_line "$log" "client history: .*moved aside to $db\.corrupt\.[0-9]+ \(lmdb $db: open: .*\); a fresh one is created" 50
pass "a damaged file: a clear error, moved aside"
ls "$db".corrupt.* >/dev/null || fail "no $db.corrupt.* file"
probe 192.0.2.20 yes '[192.0.2.20]'
expect_line "$out" '^helo \[192\.0\.2\.20\]: tempfail 421' "the fresh history knows nobody"
probe 192.0.2.40 no mail.example
wait_until "the fresh file takes no updates" 50 "$pid" accepted 192.0.2.40 1
pass "the fresh file takes updates"
stop_daemon_status "$pid" "$log" "c"

# ---- the size bound ----
small="$hdir/small.lmdb"
cat >"$conf" <<CONF
history_store = lmdb:$small
history_size = 1m
history_ipv6_prefix = 128
CONF
log="$T_DIR/d.log"
start "$log"
pid=$ms_pid
"$MILTER_PROBE" --timeout 10 -p "unix:$sock" --client-addr 2001:db8::1 --bench-vary-client \
	--bench 16,20000 >"$T_DIR/bench.out" 2>&1 || { cat "$T_DIR/bench.out"; fail "the load failed"; }
grep -q ' errors=0' "$T_DIR/bench.out" || grep -q 'errors: 0' "$T_DIR/bench.out" ||
	{ cat "$T_DIR/bench.out"; fail "the load had errors"; }
stop_daemon_status "$pid" "$log" "d"
size=$(stat -c %s "$small")
clients=$("$HIST" -s "lmdb:$small" dump | wc -l)
[ "$size" -le 1048576 ] || fail "the file grew to $size bytes, past history_size (1 MiB)"
[ "$clients" -gt 1000 ] || fail "only $clients clients in the file"
pass "20000 clients into a 1 MiB history: $clients kept, file $size bytes"
grep -Eq 'client history: lmdb:.* is full: [0-9]+ clients not seen for longest removed' "$log" || fail "the full file is not logged"
pass "the full file is logged"

# ---- a file the admin tool made first, as root ----
# Run as root, the tool gives the new file and its lock file to the owner of
# their directory (nobody here): the daemon, running as nobody, opens it
# rather than moving it aside as damaged.
pre="$hdir/pre.lmdb"
cat >"$conf" <<CONF
history_store = lmdb:$pre
history_known_messages = 2
connect stress name=known-clients history known personality normal
CONF
"$HIST" -c "$conf" add 192.0.2.77 >/dev/null || fail "the tool could not add 192.0.2.77"
if [ "$(id -u)" = 0 ]; then
	[ "$(stat -c %U "$pre")" = nobody ] && [ "$(stat -c %U "$pre-lock")" = nobody ] ||
		fail "the tool left $(stat -c %U "$pre") / $(stat -c %U "$pre-lock") as owners, not nobody"
	pass "as root, the tool gave the new file and its lock to the directory's owner"
fi
log="$T_DIR/e.log"
start "$log"
pid=$ms_pid
wait_for_line "$log" "client history: lmdb:$pre open" 50
probe 192.0.2.77 yes '[192.0.2.77]'
expect_line "$out" '^eom: add header X-Stress: no \(source=macro; stress=yes; client=known; rule=known-clients\)$' \
	"the daemon opened the tool's file: the client it added is known"
grep -q 'moved aside' "$log" && fail "the daemon moved the tool's file aside"
stop_daemon_status "$pid" "$log" "e"
