#!/bin/bash
# Privileges: started as root the daemon needs -u and never runs as root
# (-u root and a group root are refused); with -u nobody the process runs as
# nobody, the unix socket gets socket_mode and the user's ownership (user
# postfix can connect through the group or not, as the mode says), and a
# user who cannot read the config is warned that reloads will fail. And the
# log never carries message bodies, even at the highest verbosity with body
# rules that match.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test checks -u and needs root (as CI runs it)"
need runuser
id postfix >/dev/null 2>&1 || fail "no user postfix (install-deps.sh installs Postfix)"
watchdog 60
cp /dev/null "$T_DIR/empty.conf"

# refused CASE ARGS...: milter-stress (not the -u wrapper) must exit 1 at
# once with the message, without making its socket.
refused() {
	what=$1
	want=$2
	shift 2
	rm -f "$T_DIR/refused.sock"
	"$MILTER_STRESS_BIN" -f -c "$T_DIR/empty.conf" -p "unix:$T_DIR/refused.sock" "$@" \
		>"$T_DIR/refused.out" 2>&1 && fail "$what: milter-stress started"
	[ -e "$T_DIR/refused.sock" ] && fail "$what: the socket was made"
	expect_line "$T_DIR/refused.out" "$want" "$what is refused"
}

refused "root without -u" 'error: refusing to run as root: give -u USER, see milter-stress\(8\)$'
refused "-u root" 'error: -u root: refusing to run as root \(uid 0\)' -u root
refused "-u nobody:root" 'error: -u nobody:root: refusing to run with group root \(gid 0\)' \
	-u nobody:root
refused "-u with no such user" "error: -u no-such-user-x: no such user 'no-such-user-x'" \
	-u no-such-user-x
# Detached, the error still reaches the terminal that started it.
"$MILTER_STRESS_BIN" -c "$T_DIR/empty.conf" -p "unix:$T_DIR/refused.sock" >"$T_DIR/bg.out" 2>&1 &&
	fail "root without -u started in the background"
expect_line "$T_DIR/bg.out" 'refusing to run as root' "detached: the refusal is on stderr"
"$MILTER_STRESS_BIN" -n -c "$T_DIR/empty.conf" >/dev/null || fail "-n refused as root"
pass "-n (no socket, no sessions) runs as root"

# start NAME USER ARGS...: the daemon as USER on unix:$T_DIR/NAME.sock, log
# in $T_DIR/NAME.log; sets pid.
start() {
	name=$1
	user=$2
	shift 2
	"$MILTER_STRESS_BIN" -f -u "$user" -p "unix:$T_DIR/$name.sock" "$@" 2>"$T_DIR/$name.log" &
	pid=$!
	track_pid $pid
	wait_for_unix_socket "$T_DIR/$name.sock" 100 "$pid"
	wait_for_line "$T_DIR/$name.log" 'starting: listening on' 100 $pid
}

start plain nobody -c "$T_DIR/empty.conf"
uid=$(id -u nobody)
gid=$(id -g nobody)
expect_line /proc/$pid/status "^Uid:[[:space:]]+${uid}[[:space:]]+${uid}[[:space:]]+${uid}[[:space:]]+${uid}\$" \
	"-u nobody: every uid of the process is nobody's"
expect_line /proc/$pid/status "^Gid:[[:space:]]+${gid}[[:space:]]+${gid}[[:space:]]+${gid}[[:space:]]+${gid}\$" \
	"-u nobody: every gid is nogroup's"
grep -Eq '^Groups:.*\b0\b' /proc/$pid/status && fail "group root is still a supplementary group"
[ "$(stat -c '%a %U' "$T_DIR/plain.sock")" = "660 nobody" ] ||
	fail "socket: $(stat -c '%a %U:%G' "$T_DIR/plain.sock"), expected 660 nobody"
pass "the socket has socket_mode 0660 and belongs to nobody"
"$MILTER_PROBE" -p "unix:$T_DIR/plain.sock" >"$T_DIR/plain.out" 2>&1 || fail "probe as root"
expect_line "$T_DIR/plain.out" '^result: accept$' "the milter answers as nobody"

# The socket's group and mode decide whether Postfix's smtpd (user postfix)
# can connect: milter-probe runs as postfix from a copy it can reach.
cp "$MILTER_PROBE" "$T_DIR/probe"
chmod 755 "$T_DIR/probe"
start group nobody:postfix -c "$T_DIR/empty.conf"
[ "$(stat -c '%a %U %G' "$T_DIR/group.sock")" = "660 nobody postfix" ] ||
	fail "socket: $(stat -c '%a %U %G' "$T_DIR/group.sock")"
runuser -u postfix -- "$T_DIR/probe" -p "unix:$T_DIR/group.sock" >"$T_DIR/group.out" 2>&1 ||
	{ cat "$T_DIR/group.out"; fail "user postfix cannot use a 0660 socket of group postfix"; }
pass "-u nobody:postfix, socket_mode 0660: user postfix connects"
start private nobody:postfix -c "$T_DIR/empty.conf" -o socket_mode=0600
[ "$(stat -c '%a' "$T_DIR/private.sock")" = 600 ] || fail "socket_mode=0600 not applied"
runuser -u postfix -- "$T_DIR/probe" -p "unix:$T_DIR/private.sock" >"$T_DIR/private.out" 2>&1 &&
	fail "user postfix connected to a 0600 socket of user nobody"
pass "socket_mode 0600: user postfix cannot connect"

# A config the user cannot read: started (read as root), reloads will fail.
mkdir -m 700 "$T_DIR/secret"
cp /dev/null "$T_DIR/secret/ms.conf"
start secret nobody -c "$T_DIR/secret/ms.conf"
expect_line "$T_DIR/secret.log" \
	"warning: user nobody cannot read $T_DIR/secret/ms.conf \(Permission denied\): reloads will fail" \
	"an unreadable config is reported at start"

# No body bytes in the log: body rules at the body and eom stages match a
# marker in the body, at the highest verbosity; the verdict is logged.
marker="body-marker-$RANDOM$RANDOM"
cat >"$T_DIR/body.conf" <<EOF
body body /no-such-text/ reject 550 5.7.1 "never"
eom body /$marker/ reject 550 5.7.1 "Content rejected"
EOF
{
	printf 'first line of the body\n'
	for i in $(seq 200); do printf '%s line %d %s\n' "$marker" "$i" "$marker"; done
	printf '%s' "$marker"
	head -c 70000 /dev/zero | tr '\0' 'x'
	printf '\n'
} >"$T_DIR/body.txt"
start body nobody -vvv -c "$T_DIR/body.conf"
"$MILTER_PROBE" -p "unix:$T_DIR/body.sock" --queue-id QBODY1 --body "$T_DIR/body.txt" \
	--header "Subject: a test" >"$T_DIR/body.out" 2>&1 || fail "probe body"
expect_line "$T_DIR/body.out" '^eom: reject 550 5\.7\.1 Content rejected$' "the body rule matched"
wait_for_line "$T_DIR/body.log" 'QBODY1: .*stage=eom rule=[^ ]+ action=reject 550 5\.7\.1' 100 $pid
pass "the verdict is logged"
grep -q 'QBODY1: trace: stage=eom' "$T_DIR/body.log" || fail "no -vv trace of the body rule"
pass "the body rules are traced"
grep -n "$marker\|xxxxxxxx\|first line of the body" "$T_DIR/body.log" &&
	fail "body bytes in the log"
pass "no body bytes in the log at -vvv"
