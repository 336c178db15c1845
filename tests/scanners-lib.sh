# Private clamd and spamd for the tests (sourced after lib.sh).
#
# clamd_start [MAXTHREADS]: Debian's clamd with a clamd.conf of its own
# under T_DIR/clamd, TCP on 127.0.0.1 and a free port and a unix socket,
# its database directory the test's own with one signature written here:
# MilterStress.Test.Sig, the string in $CLAMD_TEST_STRING anywhere in a
# file (an .ndb body signature; clamd calls it
# MilterStress.Test.Sig.UNOFFICIAL). No freshclam, no download. Sets
# clamd_port, clamd_sock, clamd_pid (tracked), clamd_log. Returns once
# clamd answers PING.
#
# spamd_start [CHILDREN]: Debian's spamd with the rules of its package
# (/usr/share/spamassassin: GTUBE is there), a site config directory of its
# own (Debian's .pre files, which load the plugins; no local.cf), no user
# config, no network tests (-L), on 127.0.0.1 and a free port, CHILDREN
# (2) children. No sa-update. Sets spamd_port, spamd_pid (tracked),
# spamd_log. Returns once it answers PING.
#
# scanner_connections PORT: TCP connections to PORT that a process holds open
# on the client's side now (a spamd client that sent its message has shut
# down its writing side: fin-wait-2 until spamd replies; one the client gave
# up may linger in the kernel a little while, owned by no process).

need clamd
need spamd
need ss

CLAMD_TEST_STRING=MILTER-STRESS-TEST-VIRUS
# GTUBE, which both SpamAssassin and rspamd know.
GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'

# ping_tcp PORT REQUEST REPLY-REGEX
ping_tcp() {
	{ exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf '%b' "$2" >&9
	timeout 2 cat <&9 | grep -Eq "$3"
	pt_rc=$?
	exec 9<&-
	return $pt_rc
}

clamd_ping() { ping_tcp "$clamd_port" 'zPING\0' PONG; }

clamd_start() {
	cd_dir=$T_DIR/clamd
	mkdir -p "$cd_dir/db"
	hex=$(printf '%s' "$CLAMD_TEST_STRING" | od -An -tx1 | tr -d ' \n')
	echo "MilterStress.Test.Sig:0:*:$hex" >"$cd_dir/db/test.ndb"
	clamd_port=$(free_port)
	clamd_sock=$cd_dir/clamd.sock
	clamd_log=$cd_dir/clamd.log
	{
		echo "Foreground yes"
		echo "LocalSocket $clamd_sock"
		echo "LocalSocketMode 666"
		echo "TCPSocket $clamd_port"
		echo "TCPAddr 127.0.0.1"
		echo "DatabaseDirectory $cd_dir/db"
		echo "LogFile $clamd_log"
		echo "LogTime yes"
		echo "MaxThreads ${1:-4}"
		echo "SelfCheck 0"
	} >"$cd_dir/clamd.conf"
	clamd -c "$cd_dir/clamd.conf" >"$cd_dir/stdout" 2>&1 &
	clamd_pid=$!
	track_pid "$clamd_pid"
	(wait_until "clamd does not answer PING on 127.0.0.1:$clamd_port" 300 "$clamd_pid" clamd_ping) ||
		{ tail -n 20 "$cd_dir/stdout" "$clamd_log"; exit 1; }
}

spamd_ping() { ping_tcp "$spamd_port" 'PING SPAMC/1.5\r\n\r\n' PONG; }

spamd_start() {
	sd_dir=$T_DIR/spamd
	mkdir -p "$sd_dir/site"
	cp /etc/spamassassin/*.pre "$sd_dir/site/" || fail "no .pre files in /etc/spamassassin"
	chmod -R a+rX "$sd_dir"
	spamd_port=$(free_port)
	spamd_log=$sd_dir/spamd.log
	# As root spamd runs its children as nobody.
	spamd --siteconfigpath="$sd_dir/site" --nouser-config -L -x -i 127.0.0.1 \
		-p "$spamd_port" --max-children "${1:-2}" --min-children "${1:-2}" \
		-s "$spamd_log" -r "$sd_dir/spamd.pid" >"$sd_dir/stdout" 2>&1 &
	spamd_pid=$!
	track_pid "$spamd_pid"
	(wait_until "spamd does not answer PING on 127.0.0.1:$spamd_port" 600 "$spamd_pid" spamd_ping) ||
		{ tail -n 20 "$sd_dir/stdout" "$spamd_log"; exit 1; }
}

# spamd's children: the processes that scan.
spamd_all_pids() { echo "$spamd_pid"; ps -o pid= --ppid "$spamd_pid" 2>/dev/null; }

scanner_connections() {
	ss -Htnp state syn-sent state established state fin-wait-1 state fin-wait-2 \
		"( dport = :$1 )" 2>/dev/null | grep -c "users:"
}
