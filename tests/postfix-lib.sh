# Private Postfix instance and capturing SMTP sink for end-to-end tests
# (sourced after lib.sh, not run). Needs root, Postfix (postfix, postconf,
# smtp-sink) and, for pf_send, swaks.
#
#   . "$top_srcdir/tests/lib.sh"
#   . "$top_srcdir/tests/postfix-lib.sh"
#
#   sink_start "$T_DIR/sink"               # smtp-sink on $SINK_PORT, one file per message
#   port=$(free_port)
#   pf_start "$T_DIR/pf" \
#       "smtpd_milters = inet:127.0.0.1:$milter_port" \
#       "$(pf_smtpd "$port" -o stress=yes)"
#   pf_send "$port" "$T_DIR/swaks.out" --header "Subject: hello" || fail "..."
#   qid=$(pf_queue_id "$T_DIR/swaks.out")
#   f=$(sink_wait_match "id $qid(;|\$)") || fail "..."   # the captured message
#
# The instance lives entirely below its directory (main.cf and master.cf in
# DIR/etc, queue, data, the log file DIR/maillog) and listens only where the
# caller's master.cf lines say (use 127.0.0.1 and free ports), so it neither
# touches the system's Postfix nor port 25 and can run next to other
# instances. Mail goes to the smtp-sink started with sink_start (or is
# discarded if there is none); nothing leaves 127.0.0.1: DNS is off for
# delivery. One instance and one sink per test; both are stopped at exit.
#
# Functions:
#   pf_need                   fail unless root and every tool here is installed
#   pf_start DIR [MAIN_LINES [MASTER_LINES]]
#        Write the config and start Postfix. main.cf: the base settings
#        below, then MAIN_LINES, which replace base settings of the same
#        name. master.cf: the base services, then MASTER_LINES, which must
#        add the smtpd listeners (pf_smtpd) and replace base services of the
#        same name and type. Every directory above DIR must be searchable by
#        user postfix (T_DIR is). Sets PF_DIR, PF_CONF (config_directory),
#        PF_QUEUE, PF_LOG (the maillog) and PF_MASTER_PID. Fails with the log
#        on any error, a parameter that postconf does not know included (a
#        typo).
#        PF_POSTFIX, if set, is run instead of postfix(1) for the start
#        (a wrapper that starts the instance in a namespace of its own).
#   pf_smtpd PORT [ARG...]    print a master.cf line: smtpd on 127.0.0.1:PORT
#                             with ARGs (e.g. -o stress=yes)
#   pf_shipped_main MILTER_PORT
#        Print the active lines of the shipped conf/postfix-main.cf with the
#        milter endpoint moved to inet:127.0.0.1:MILTER_PORT (for pf_start's
#        MAIN_LINES). Status 1, with a message, if the snippet has no line
#        "smtpd_milters = unix:milter-stress/milter-stress.sock" (the
#        packaged socket).
#   pf_shipped_stress_smtpd PORT
#        Print the shipped conf/postfix-master.cf test listener (the line
#        "127.0.0.1:2526 ... smtpd" and its -o lines, stress=yes among them)
#        moved to 127.0.0.1:PORT. Status 1, with a message, if there is none.
#   pf_stop                   stop the instance and every process it started
#                             (also run at exit)
#   pf_group_alive PGID       is a (non-zombie) process of group PGID running?
#   pf_postconf ARG...        postconf(1) on the instance's config
#   pf_log                    print the maillog (for diagnostics)
#   pf_wait_log REGEX [TENTHS]  wait until a maillog line matches
#   pf_send PORT OUT [SWAKS-ARG...]
#        One message with swaks to 127.0.0.1:PORT, transcript in OUT; default
#        --from/--to/--helo that the base config accepts, overridable.
#        Returns swaks's status (0: the message was accepted).
#   pf_banner OUT             print the server greeting from a transcript
#   pf_queue_id OUT           print the queue ID from "250 ... queued as ID"
#   sink_start DIR [SMTP-SINK-OPTION...]
#        Start smtp-sink on 127.0.0.1:$SINK_PORT (a free port), capturing each
#        message to DIR/msg.XXXXXXXX (smtp-sink's -d; see smtp-sink(1) for the
#        format: X-Client-Addr, X-Mail-Args, ... then the message as received).
#        Sets SINK_DIR, SINK_PORT, SINK_PID, SINK_LOG. Start it before
#        pf_start, which then relays all mail to it.
#   sink_count                print how many messages were captured completely
#   sink_wait_count N [TENTHS]  wait until at least N messages are captured
#   sink_find REGEX           print the complete captures with a matching line
#   sink_wait_match REGEX [TENTHS]  wait for one, print it; status 1 on timeout
#   sink_dump                 print every capture (for diagnostics)
#   sink_stop                 stop smtp-sink (also done at exit)
#   sink_discard_start        smtp-sink on 127.0.0.1:$SINK_PORT that counts and
#                             throws away (for benches: capture files would
#                             cost more than what is compared)
#   pf_source PORT SESSIONS COUNT SIZE
#        smtp-source: COUNT messages of SIZE bytes in SESSIONS sessions at once
#        into 127.0.0.1:PORT, then wait until the queue is empty (60 s at
#        most). Sets pf_rate to the messages a second of smtp-source's own
#        time (every milter has answered before smtpd does). Fails on an
#        smtp-source error or a queue that does not drain.
#   pf_warm PORT SESSIONS SIZE  a few messages, so that the measured runs do
#                             not pay for Postfix starting its processes
#
# TENTHS is a timeout in tenths of a second (default 100).

PF_DIR=""
PF_CONF=""
PF_QUEUE=""
PF_LOG=""
PF_MASTER_PID=""
SINK_DIR=""
SINK_PORT=""
SINK_PID=""
SINK_LOG=""
PF_HOSTNAME=mx.milter-stress.test
PF_AT_EXIT=""

# Base main.cf. Why each group is there:
# - the instance's own directories: the queue directory must exist and be
#   owned by root; "postfix start" (post-install create-missing) creates its
#   subdirectories and data_directory with the owners Postfix expects, and
#   master, as user postfix, must reach data_directory (master.lock);
# - there may be no syslog daemon: log to a file through postlogd (the
#   postlog service below); the file must lie below maillog_file_prefixes;
# - no local delivery (no aliases, no /etc/aliases.db needed): every domain
#   is a relay domain, relayed to the sink, so the relay restrictions accept
#   any recipient from any client, XCLIENT-faked ones included;
# - delivery without DNS to the numeric [127.0.0.1]:port;
# - no TLS (no tlsmgr), no postmaster notices (they would land in the sink);
# - short retry times, so a deferred message cannot outlive a test's timeout
#   by minutes;
# - the greeting shows the stress personality of the listener.
pf_main_base() {
	cat <<EOF
compatibility_level = 3.6
queue_directory = $1/queue
data_directory = $1/data
maillog_file = $1/maillog
maillog_file_prefixes = $1
myhostname = $PF_HOSTNAME
mydomain = milter-stress.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:5.1.1 no local delivery in this test instance
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_authorized_xclient_hosts = 127.0.0.0/8
relay_domains = static:all
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
notify_classes =
biff = no
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
smtpd_banner = \$myhostname ESMTP stress=\${stress?{yes}:{no}}
EOF
	if [ -n "$SINK_PORT" ]; then
		echo "relayhost = [127.0.0.1]:$SINK_PORT"
	else
		echo "default_transport = discard:no capture sink"
		echo "relay_transport = discard:no capture sink"
	fi
}

# Base master.cf: the internal services a relay needs, chroot off for all
# (the queue directory is no chroot jail) and no public listener: the caller
# adds the smtpd listeners (pf_smtpd). postlog is the postlogd service behind
# maillog_file.
pf_master_base() {
	cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# pf_without main|master FILE: copy standard input without the parameters
# (main) or services (master: name and type) that FILE defines, so that the
# caller's lines replace base lines instead of repeating them (Postfix warns
# about every repeated parameter).
pf_without() {
	awk -v kind="$1" '
		function key(line,   k) {
			if (line ~ /^[ \t]*(#|$)/ || line ~ /^[ \t]/) return ""
			if (kind == "master") { split(line, f); return f[1] " " f[2] }
			if (!match(line, /^[A-Za-z0-9_]+[ \t]*=/)) return ""
			k = substr(line, 1, RLENGTH - 1)
			sub(/[ \t]+$/, "", k)
			return k
		}
		FNR == NR { k = key($0); if (k != "") drop[k] = 1; next }
		{ k = key($0); if (k != "" && (k in drop)) { skip = 1; next } }
		skip && /^[ \t]+[^ \t]/ { next }
		{ skip = 0; print }' "$2" -
}

pf_smtpd() {
	pf_p=$1
	shift
	echo "127.0.0.1:$pf_p inet  n       -       n       -       -       smtpd${*:+ $*}"
}

# The shipped snippets, as an administrator would paste them (these run in
# $(...): they return a status instead of calling fail).
pf_shipped_main() {
	pf_snip=$top_srcdir/conf/postfix-main.cf
	pf_lines=$(sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' \
		-e "s|^smtpd_milters = unix:milter-stress/milter-stress\.sock\$|smtpd_milters = inet:127.0.0.1:$1|" \
		"$pf_snip") || { echo "cannot read $pf_snip" >&2; return 1; }
	printf '%s\n' "$pf_lines" | grep -q "^smtpd_milters = inet:127\.0\.0\.1:$1\$" ||
		{ echo "$pf_snip has no line 'smtpd_milters = unix:milter-stress/milter-stress.sock'" >&2; return 1; }
	printf '%s\n' "$pf_lines"
}

pf_shipped_stress_smtpd() {
	pf_snip=$top_srcdir/conf/postfix-master.cf
	pf_lines=$(awk -v port="$1" '
		/^127\.0\.0\.1:2526[ \t]/ { sub(/^127\.0\.0\.1:2526/, "127.0.0.1:" port); print; on = 1; next }
		on && /^[ \t]+[^ \t]/ { print; next }
		{ on = 0 }' "$pf_snip")
	printf '%s\n' "$pf_lines" | grep -q -- '-o stress=yes' ||
		{ echo "$pf_snip has no listener '127.0.0.1:2526 ... smtpd -o stress=yes'" >&2; return 1; }
	printf '%s\n' "$pf_lines"
}

pf_need() {
	[ "$(id -u)" = 0 ] || fail "a private Postfix instance needs root (postfix start)"
	need postfix
	need postconf
	need smtp-sink
	need swaks
}

pf_start() {
	[ $# -ge 1 ] || fail "usage: pf_start DIR [MAIN_LINES [MASTER_LINES]]"
	[ -z "$PF_MASTER_PID" ] || fail "pf_start: an instance is already running in $PF_DIR"
	[ "$(id -u)" = 0 ] || fail "a private Postfix instance needs root (postfix start)"
	need postfix
	need postconf
	mkdir -p "$1" || fail "cannot create $1"
	PF_DIR=$(cd "$1" && pwd)
	PF_CONF=$PF_DIR/etc
	PF_QUEUE=$PF_DIR/queue
	PF_LOG=$PF_DIR/maillog
	mkdir -p "$PF_CONF" "$PF_QUEUE" || fail "cannot create $PF_DIR/etc and queue"
	chown root:root "$PF_DIR" "$PF_QUEUE"
	chmod 755 "$PF_DIR" "$PF_QUEUE"
	printf '%s\n' "${2:-}" >"$PF_DIR/main.extra"
	printf '%s\n' "${3:-}" >"$PF_DIR/master.extra"
	{
		pf_main_base "$PF_DIR" | pf_without main "$PF_DIR/main.extra"
		cat "$PF_DIR/main.extra"
	} >"$PF_CONF/main.cf"
	{
		pf_master_base | pf_without master "$PF_DIR/master.extra"
		cat "$PF_DIR/master.extra"
	} >"$PF_CONF/master.cf"
	# Postfix rereads a main.cf that changed in the last second or two
	# until it is older (in case an editor is still writing it): that cost
	# every fresh instance 2 s. The files are complete, so backdate them.
	touch -d "@$(($(date +%s) - 60))" "$PF_CONF/main.cf" "$PF_CONF/master.cf"
	# Postfix ignores a misspelled parameter; postconf names it.
	postconf -c "$PF_CONF" -n >/dev/null 2>"$PF_DIR/postconf.err"
	if [ -s "$PF_DIR/postconf.err" ]; then
		cat "$PF_DIR/postconf.err"
		fail "postconf does not accept the configuration in $PF_CONF"
	fi
	if [ -z "$PF_AT_EXIT" ]; then
		at_exit pf_stop
		PF_AT_EXIT=1
	fi
	if ! "${PF_POSTFIX:-postfix}" -c "$PF_CONF" start >"$PF_DIR/start.out" 2>&1; then
		cat "$PF_DIR/start.out"
		pf_log
		fail "postfix -c $PF_CONF start failed"
	fi
	# "postfix start" returns once master has initialized (master -w):
	# its listeners are bound and its pid file is written.
	PF_MASTER_PID=$(sed -n '1s/[^0-9]//gp' "$PF_QUEUE/pid/master.pid" 2>/dev/null)
	if [ -z "$PF_MASTER_PID" ] || ! kill -0 "$PF_MASTER_PID" 2>/dev/null; then
		pf_log
		fail "Postfix master is not running after start"
	fi
	if grep -Eq '(warning|fatal|error|panic):' "$PF_DIR/start.out" "$PF_LOG"; then
		cat "$PF_DIR/start.out"
		pf_log
		fail "postfix start complained"
	fi
}

# pf_group_alive PGID: is a process of group PGID still running? Zombies
# do not count: the children of a dead master are reaped by init, which can
# take a second; kill -0 would still see them.
pf_group_alive() {
	for pf_s in /proc/[0-9]*/stat; do
		{ read -r pf_l <"$pf_s"; } 2>/dev/null || continue
		pf_l=${pf_l##*) }  # after "PID (COMM) ": STATE PPID PGRP ...
		pf_state=${pf_l%% *}
		pf_l=${pf_l#* }
		pf_l=${pf_l#* }
		[ "${pf_l%% *}" = "$1" ] && [ "$pf_state" != Z ] && [ "$pf_state" != X ] && return 0
	done
	return 1
}

# master is a session leader: its children (smtpd, qmgr, postlogd, ...) are
# in its process group, and it passes SIGTERM on to them. "postfix stop"
# would do the same but polls only once a second.
pf_stop() {
	[ -n "$PF_MASTER_PID" ] || return 0
	kill -TERM "$PF_MASTER_PID" 2>/dev/null
	pf_i=0
	while pf_group_alive "$PF_MASTER_PID" && [ $pf_i -lt 100 ]; do
		sleep 0.1
		pf_i=$((pf_i + 1))
	done
	if pf_group_alive "$PF_MASTER_PID"; then
		echo "postfix: killing process group $PF_MASTER_PID after 10 s" >&2
		kill -KILL -- "-$PF_MASTER_PID" 2>/dev/null
	fi
	PF_MASTER_PID=""
}

pf_postconf() { postconf -c "$PF_CONF" "$@"; }

pf_log() {
	echo "--- Postfix log ${PF_LOG:-(none)}:"
	[ -n "$PF_LOG" ] && cat "$PF_LOG" 2>/dev/null
	return 0
}

pf_wait_log() {
	wait_for_line "$PF_LOG" "$1" "${2:-100}"
}

pf_send() {
	[ $# -ge 2 ] || fail "usage: pf_send PORT OUT [SWAKS-ARG...]"
	need swaks
	pf_p=$1
	pf_out=$2
	shift 2
	swaks --server "127.0.0.1:$pf_p" --timeout 10 --helo client.milter-stress.test \
		--from sender@example.org --to rcpt@example.net "$@" >"$pf_out" 2>&1
}

pf_banner() {
	sed -n 's/^<- *\(220 .*\)$/\1/p' "$1" | head -n 1
}

pf_queue_id() {
	sed -n 's/^<- *250 .*queued as \([0-9A-Za-z]*\).*$/\1/p' "$1" | tail -n 1
}

# delivered NAME WHAT: swaks run NAME (its status in $rc, its time in $ms)
# was accepted; sets qid.
delivered() { # NAME WHAT: sets qid
	[ "$rc" = 0 ] || { cat "$T_DIR/swaks-$1.out"; fail "$2: swaks exited $rc"; }
	qid=$(pf_queue_id "$T_DIR/swaks-$1.out")
	[ -n "$qid" ] || { cat "$T_DIR/swaks-$1.out"; fail "$2: no queue ID"; }
	pass "$2: accepted as $qid ($ms ms)"
}

# expect_header FILE VALUE WHAT: the delivered message FILE has exactly one
# X-Stress header, whose value matches the regex VALUE.
expect_header() { # FILE VALUE WHAT
	n=$(grep -c '^X-Stress:' "$1")
	[ "$n" = 1 ] || { cat "$1"; fail "$3: $n X-Stress headers, expected 1"; }
	expect_line "$1" "^X-Stress: $2\$" "$3"
}

sink_start() {
	[ $# -ge 1 ] || fail "usage: sink_start DIR [SMTP-SINK-OPTION...]"
	[ -z "$SINK_PID" ] || fail "sink_start: smtp-sink is already running"
	need smtp-sink
	mkdir -p "$1" || fail "cannot create $1"
	SINK_DIR=$(cd "$1" && pwd)
	shift
	SINK_LOG=$SINK_DIR.log
	SINK_PORT=$(free_port)
	# As root, smtp-sink must drop privileges (-u); it then creates the
	# capture files as that user.
	sink_user=""
	if [ "$(id -u)" = 0 ]; then
		sink_user="-u postfix"
		chown postfix "$SINK_DIR"
	fi
	# shellcheck disable=SC2086
	smtp-sink $sink_user -d "$SINK_DIR/msg." "$@" "127.0.0.1:$SINK_PORT" 64 >"$SINK_LOG" 2>&1 &
	SINK_PID=$!
	track_pid "$SINK_PID"
	wait_for_tcp "$SINK_PORT"
	kill -0 "$SINK_PID" 2>/dev/null || { cat "$SINK_LOG"; fail "smtp-sink did not start"; }
}

sink_stop() {
	[ -n "$SINK_PID" ] || return 0
	kill "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=""
}

# smtp-sink creates the file at MAIL FROM and closes it at the final "." of
# DATA, before it answers 250; an aborted transaction's file is removed. The
# message is written through a 4 KiB buffer, and a finished capture always
# ends with an empty line: take that as the sign that it is complete. (A
# capture over 4 KiB could look complete for a moment if a buffer flush ends
# right after an empty line; a test that must be sure waits for Postfix's
# "status=sent" too.)
sink_complete() {
	[ -s "$1" ] && [ "$(tail -c 2 "$1" | od -An -tx1 | tr -d ' \n')" = 0a0a ]
}

sink_files() {
	for sink_f in "$SINK_DIR"/msg.*; do
		[ -f "$sink_f" ] && sink_complete "$sink_f" && echo "$sink_f"
	done
	return 0
}

sink_count() {
	sink_files | wc -l | tr -d ' '
}

sink_wait_count() {
	sink_i=0
	while [ "$(sink_count)" -lt "$1" ]; do
		if [ $sink_i -ge "${2:-100}" ]; then
			sink_dump
			fail "smtp-sink captured $(sink_count) messages, expected $1"
		fi
		sleep 0.1
		sink_i=$((sink_i + 1))
	done
}

sink_find() {
	for sink_g in $(sink_files); do
		grep -Eq -- "$1" "$sink_g" && echo "$sink_g"
	done
	return 0
}

sink_wait_match() {
	sink_i=0
	while :; do
		sink_m=$(sink_find "$1" | head -n 1)
		[ -n "$sink_m" ] && { echo "$sink_m"; return 0; }
		[ $sink_i -ge "${2:-100}" ] && return 1
		sleep 0.1
		sink_i=$((sink_i + 1))
	done
}

sink_dump() {
	echo "--- smtp-sink log ${SINK_LOG:-(none)}:"
	[ -n "$SINK_LOG" ] && cat "$SINK_LOG" 2>/dev/null
	for sink_f in "${SINK_DIR:-/nonexistent}"/msg.*; do
		[ -f "$sink_f" ] || continue
		echo "--- captured $sink_f:"
		cat "$sink_f"
	done
	return 0
}

# ---- the common frame of an end-to-end test -------------------------------
#
# e2e_milter CONFIG WHAT: milter-stress with CONFIG on a free inet port
# (log in $MLOG, pid in $milter_pid, port in $milter_port) and the sink. On
# failure the logs and swaks transcripts are printed. WHAT names the milter
# in the ok line.
e2e_milter() {
	pf_need
	[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
	MLOG=$T_DIR/milter.log
	at_exit e2e_diagnostics # registered first: runs after Postfix has stopped
	milter_port=$(free_port)
	start_daemon "$MLOG" "inet:$milter_port@127.0.0.1" -c "$1"
	milter_pid=$ms_pid
	pass "milter-stress $2 listens on inet:$milter_port@127.0.0.1"
	sink_start "$T_DIR/sink"
}

# e2e_start CONFIG WHAT: e2e_milter, then Postfix with the shipped snippets:
# a normal listener on $port_normal and the snippet's -o stress=yes listener
# on $port_stress.
e2e_start() {
	e2e_milter "$1" "$2"
	port_normal=$(free_port)
	port_stress=$(free_port)
	e2e_main=$(pf_shipped_main "$milter_port") || fail "main.cf snippet"
	e2e_stress=$(pf_shipped_stress_smtpd "$port_stress") || fail "master.cf snippet"
	pf_start "$T_DIR/pf" "$e2e_main" "$(pf_smtpd "$port_normal")
$e2e_stress"
	pass "Postfix: normal smtpd on $port_normal, stress smtpd on $port_stress, sink on $SINK_PORT"
}

# e2e_stop_all: stop Postfix, the sink and milter-stress, and check that
# nothing of the instance is left behind and the milter exits on SIGTERM.
e2e_stop_all() {
	e2e_pgid=$PF_MASTER_PID
	pf_stop
	pf_group_alive "$e2e_pgid" && fail "Postfix processes left after stop (process group $e2e_pgid)"
	pass "Postfix stopped, no process left"
	sink_stop
	kill "$milter_pid" 2>/dev/null
	# libmilter notices a stop request only when its listener's poll times
	# out: allow up to 10 s.
	i=0
	while kill -0 "$milter_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -0 "$milter_pid" 2>/dev/null && fail "milter-stress did not exit on SIGTERM within 10 s"
	pass "milter-stress exited on SIGTERM"
}

# shellcheck disable=SC2317 # called by at_exit
e2e_diagnostics() {
	[ "$T_STATUS" = 0 ] && return 0
	pf_log
	echo "--- milter log $MLOG:"
	cat "$MLOG" 2>/dev/null
	sink_dump
	for f in "$T_DIR"/swaks-*.out; do
		[ -f "$f" ] && { echo "--- $f:"; cat "$f"; }
	done
	return 0
}

# send NAME PORT SWAKS-ARG...: one session, transcript in swaks-NAME.out;
# sets rc (swaks's status) and ms (how long it took).
send() {
	s_name=$1
	s_port=$2
	shift 2
	s_t0=$(date +%s%N)
	pf_send "$s_port" "$T_DIR/swaks-$s_name.out" --header "Subject: $(basename "$0") $s_name" "$@"
	rc=$?
	ms=$((($(date +%s%N) - s_t0) / 1000000))
}

# reply NAME CMD-REGEX [N]: the first reply line to the Nth command (default
# the first) that matches, without swaks's prefix; empty if none came.
reply() {
	awk -v re="^ -> $2" -v n="${3:-1}" '
		$0 ~ re { seen++; if (seen == n) { on = 1; next } }
		on && /^ -> / { exit }
		on && /^<(-|\*\*) / { sub(/^<(-|\*\*) +/, ""); print; exit }' "$T_DIR/swaks-$1.out"
}

# expect_reply NAME CMD-REGEX N WANT WHAT: the reply is exactly WANT.
expect_reply() {
	got=$(reply "$1" "$2" "$3")
	[ "$got" = "$4" ] || { cat "$T_DIR/swaks-$1.out"; fail "$5: got '$got', expected '$4'"; }
	pass "$5: '$got'"
}

# not_queued NAME: the session ended without a queued message.
not_queued() {
	if grep -q 'queued as' "$T_DIR/swaks-$1.out"; then
		cat "$T_DIR/swaks-$1.out"
		fail "$1: the message was accepted"
	fi
	[ "$rc" != 0 ] || fail "$1: swaks exited 0"
}

# Sourcing this file makes the test an end-to-end one: wait for any other
# end-to-end test of this machine to finish first (see serialize_e2e).
serialize_e2e

sink_discard_start() {
	need smtp-sink
	SINK_PORT=$(free_port)
	smtp-sink -u postfix "127.0.0.1:$SINK_PORT" 256 >"$T_DIR/sink-discard.log" 2>&1 &
	track_pid $!
	wait_for_tcp "$SINK_PORT"
}

pf_queued() {
	find "$PF_QUEUE"/maildrop "$PF_QUEUE"/incoming "$PF_QUEUE"/active "$PF_QUEUE"/deferred \
		-type f 2>/dev/null | wc -l
}

pf_source() {
	local t0 t1 i=0

	t0=$(date +%s%N)
	timeout 600 smtp-source -s "$2" -m "$3" -l "$4" -f sender@example.com \
		-t rcpt@example.com "127.0.0.1:$1" >"$T_DIR/source.out" 2>&1 ||
		{ cat "$T_DIR/source.out"; fail "smtp-source to 127.0.0.1:$1 failed"; }
	t1=$(date +%s%N)
	while [ "$(pf_queued)" -gt 0 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(pf_queued)" -eq 0 ] || fail "127.0.0.1:$1: the queue did not drain in 60 s"
	pf_rate=$(awk -v n="$3" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
}

pf_warm() {
	smtp-source -s "$2" -m $(($2 * 2)) -l "$3" -f sender@example.com \
		-t rcpt@example.com "127.0.0.1:$1" >/dev/null 2>&1
}
