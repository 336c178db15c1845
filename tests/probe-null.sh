#!/bin/bash
# milter-probe against the null milter: the whole transaction, stage by stage,
# a body that needs several chunks, an inet socket, and the errors (nobody
# listening, usage).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

need "$MILTER_PROBE"
need "$NULL_MILTER"

SOCK="$T_DIR/null.sock"
"$NULL_MILTER" -p "unix:$SOCK" -H 'X-Stress: yes (source=macro)' -T 10 \
	2>"$T_DIR/null.err" &
track_pid $!
wait_for_unix_socket "$SOCK" 100 $!

# 1. One transaction: header, two recipients, body file, a connect macro.
printf 'line one\nline two\n' >"$T_DIR/body.txt"
"$MILTER_PROBE" -p "unix:$SOCK" --header 'Subject: probe test' \
	--rcpt '<a@example.com>' --rcpt b@example.com --body "$T_DIR/body.txt" \
	-m '{stress}=yes' >"$T_DIR/out" 2>"$T_DIR/err"
rc=$?
[ "$rc" -eq 0 ] || { cat "$T_DIR/out" "$T_DIR/err"; fail "probe exited $rc, expected 0"; }
cat >"$T_DIR/expected" <<'EOF'
negotiate: version 6 actions 0x000001ff protocol 0x00000000 (nothing disabled)
connect localhost [127.0.0.1]: continue
helo probe.example: continue
mail <sender@example.com>: continue
rcpt <a@example.com>: continue
rcpt <b@example.com>: continue
data: continue
header Subject: continue
eoh: continue
body 20 bytes: continue
eom: add header X-Stress: yes (source=macro)
eom: accept
result: accept
EOF
diff -u "$T_DIR/expected" "$T_DIR/out" || fail "transcript differs"
pass "transcript: every stage continue, eom adds the header and accepts"
expect_line "$T_DIR/out" '^negotiate: version 6 actions 0x000001ff protocol 0x00000000 \(nothing disabled\)$' "negotiation"
expect_line "$T_DIR/out" '^body 20 bytes: continue$' "LF line ends sent as CRLF"
expect_line "$T_DIR/out" '^eom: add header X-Stress: yes \(source=macro\)$' "eom: add header line"
[ -s "$T_DIR/err" ] && { cat "$T_DIR/err"; fail "unexpected stderr"; }
pass "nothing on stderr"

# 2. A body above 65535 bytes goes in 65535-byte chunks, as Postfix sends it.
awk 'BEGIN { for (i = 0; i < 2000; i++) printf "%098d\r\n", i }' >"$T_DIR/big.txt"
"$MILTER_PROBE" -p "unix:$SOCK" --body "$T_DIR/big.txt" -v >"$T_DIR/out" 2>"$T_DIR/err" ||
	{ cat "$T_DIR/out" "$T_DIR/err"; fail "big body: probe failed"; }
n=$(grep -c '^body 65535 bytes: continue$' "$T_DIR/out")
[ "$n" -eq 3 ] || { cat "$T_DIR/out"; fail "expected 3 full chunks, got $n"; }
expect_line "$T_DIR/out" '^body 3395 bytes: continue$' "200000-byte body: 3 x 65535 + 3395"
expect_line "$T_DIR/out" '^result: accept$' "big body accepted"
expect_line "$T_DIR/err" '> B \[body\] 65535 bytes' "-v shows the packets sent"
expect_line "$T_DIR/err" '< a \[accept\]' "-v shows the packets received"

# 3. A --message file; no -H: no header is added.
SOCK2="$T_DIR/plain.sock"
"$NULL_MILTER" -p "unix:$SOCK2" 2>>"$T_DIR/null.err" &
track_pid $!
wait_for_unix_socket "$SOCK2" 100 $!
printf 'From: <a@example.com>\nSubject: folded\n  subject\n\nbody\n' >"$T_DIR/msg.txt"
"$MILTER_PROBE" -p "unix:$SOCK2" --message "$T_DIR/msg.txt" --client-addr ::1 \
	--from '<>' >"$T_DIR/out" 2>"$T_DIR/err" ||
	{ cat "$T_DIR/out" "$T_DIR/err"; fail "message file: probe failed"; }
expect_line "$T_DIR/out" '^connect localhost \[::1\]: continue$' "IPv6 client"
expect_line "$T_DIR/out" '^mail <>: continue$' "null sender"
expect_line "$T_DIR/out" '^header Subject: continue$' "folded header"
expect_line "$T_DIR/out" '^body 6 bytes: continue$' "body after the blank line"
grep -q 'add header' "$T_DIR/out" && fail "null milter without -H added a header"
expect_line "$T_DIR/out" '^result: accept$' "message file accepted"

# 3b. A generated message shape: recipients, headers, body size; the load
# mode for a few seconds (C,Ds) with that shape.
"$MILTER_PROBE" -p "unix:$SOCK2" --rcpts 3 --headers 7 --body-size 4k >"$T_DIR/out" 2>"$T_DIR/err" ||
	{ cat "$T_DIR/out" "$T_DIR/err"; fail "shape: probe failed"; }
[ "$(grep -c '^rcpt <rcpt[1-3]@example.com>: continue$' "$T_DIR/out")" -eq 3 ] ||
	{ cat "$T_DIR/out"; fail "--rcpts 3: expected 3 generated recipients"; }
[ "$(grep -c '^header ' "$T_DIR/out")" -eq 7 ] || { cat "$T_DIR/out"; fail "--headers 7: expected 7 headers"; }
expect_line "$T_DIR/out" '^header X-Probe-Filler-7: continue$' "--headers: fillers after the default headers"
expect_line "$T_DIR/out" '^body 4096 bytes: continue$' "--body-size 4k: exactly 4096 bytes"
"$MILTER_PROBE" -p "unix:$SOCK2" --headers 10 --body-size 4k --bench 4,1s >"$T_DIR/out" 2>"$T_DIR/err" ||
	{ cat "$T_DIR/out" "$T_DIR/err"; fail "--bench 4,1s failed"; }
expect_line "$T_DIR/out" '^BENCH conc=4 n=[1-9][0-9]* errors=0 secs=1\.[0-9]* ' "--bench C,Ds: runs about D seconds, no errors"

# 4. The same over an inet socket (libmilter's port@host syntax).
PORT=$(free_port)
"$NULL_MILTER" -p "inet:$PORT@127.0.0.1" 2>>"$T_DIR/null.err" &
track_pid $!
i=0
until "$MILTER_PROBE" -p "inet:$PORT@127.0.0.1" --timeout 2 >"$T_DIR/out" 2>"$T_DIR/err"; do
	[ $i -ge 50 ] && { cat "$T_DIR/err"; fail "inet:$PORT@127.0.0.1: no milter"; }
	sleep 0.1
	i=$((i + 1))
done
expect_line "$T_DIR/out" '^result: accept$' "inet socket"

# 5. Nobody listens: exit 1 and say what failed.
"$MILTER_PROBE" -p "unix:$T_DIR/nobody.sock" >"$T_DIR/out" 2>"$T_DIR/err"
rc=$?
[ "$rc" -eq 1 ] || fail "no listener: exit $rc, expected 1"
expect_line "$T_DIR/err" "^milter-probe: connect to unix:$T_DIR/nobody.sock: No such file or directory$" "no listener: clear message"
[ -s "$T_DIR/out" ] && fail "no listener: output on stdout"
pass "no listener: exit 1"

# 6. Usage errors exit 2.
"$MILTER_PROBE" --rcpt x@example.com >/dev/null 2>"$T_DIR/err"
rc=$?
[ "$rc" -eq 2 ] || fail "missing -p: exit $rc, expected 2"
expect_line "$T_DIR/err" '^milter-probe: -p SOCKET is required$' "missing -p: exit 2"
"$MILTER_PROBE" -p "unix:$SOCK" -m 'header:x=1' >/dev/null 2>"$T_DIR/err"
[ $? -eq 2 ] || fail "bad macro stage: expected exit 2"
pass "bad macro stage: exit 2"

# The milters survived all of this.
for p in $T_PIDS; do
	kill -0 "$p" 2>/dev/null || { cat "$T_DIR/null.err"; fail "a null milter died"; }
done
pass "null milters still running"
