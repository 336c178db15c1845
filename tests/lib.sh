# Shared helpers for the shell tests (sourced by bash scripts: free_port and
# wait_for_tcp use bash's /dev/tcp).
#
# Every test gets its own temporary directory, removed at exit together with
# every process the test registered with `track_pid`. Tests print what they
# check; `fail` ends the test with a message. Exit 77 is never used: a test
# whose tool is missing fails, because CI installs every tool.

set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
MILTER_STRESS="$top_builddir/milter/milter-stress"
MILTER_PROBE="$top_builddir/tools/milter-probe"
NULL_MILTER="$top_builddir/tests/null-milter"

T_PIDS=""
T_AT_EXIT=""
T_STATUS=0
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ms-test.XXXXXX") || exit 99
chmod 755 "$T_DIR"

# milter-stress refuses to run as root without -u (milter-stress(8)). Run
# as root, the tests start it as nobody, as a production system would: then
# "$MILTER_STRESS" is a wrapper that puts "-u nobody" before the test's own
# options (a later -u wins). MILTER_STRESS_BIN is the program itself.
MILTER_STRESS_BIN=$MILTER_STRESS
if [ "$(id -u)" = 0 ]; then
	MILTER_STRESS="$T_DIR/milter-stress-as-nobody"
	printf '#!/bin/sh\nexec "%s" -u nobody "$@"\n' "$MILTER_STRESS_BIN" >"$MILTER_STRESS"
	chmod 755 "$MILTER_STRESS"
fi

t_cleanup() {
	T_STATUS=$?
	t_hooks=$T_AT_EXIT
	T_AT_EXIT=""
	while [ -n "$t_hooks" ]; do
		t_cmd=${t_hooks%%"
"*}
		t_hooks=${t_hooks#*"
"}
		(eval "$t_cmd") </dev/null
	done
	for p in $T_PIDS; do kill "$p" 2>/dev/null; done
	for p in $T_PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null
	done
	if [ -n "${KEEP_TEST_DIR:-}" ]; then echo "kept $T_DIR"; else rm -rf "$T_DIR"; fi
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

track_pid() { T_PIDS="$T_PIDS $1"; }

# at_exit CMD: run the shell command CMD at exit (also after fail), before the
# processes of track_pid are killed; the last one registered runs first. CMD
# runs in a subshell, so its own exit or failure cannot cut the cleanup
# short; $T_STATUS holds the test's exit status.
at_exit() {
	T_AT_EXIT="$1
$T_AT_EXIT"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# watchdog SECONDS: end the test (exit 130, with the usual cleanup) if it
# still runs after SECONDS. A command running in the foreground then (swaks,
# sleep) finishes first: keep their own timeouts short. The sleeper is
# stopped with the other tracked processes at exit.
watchdog() {
	(
		trap 'kill "$wd_sleep" 2>/dev/null; exit 0' TERM
		sleep "$1" &
		wd_sleep=$!
		wait "$wd_sleep" || exit 0
		echo "FAIL: watchdog: still running after $1 s" >&2
		kill -TERM $$
	) &
	track_pid $!
}

pass() { echo "ok: $*"; }

need() {
	command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || fail "required tool '$1' is not installed (.ci/run and install-deps.sh install it)"
}

# wait_until WHAT TENTHS PID CMD...: run CMD every 0.1 s until it succeeds;
# fail with WHAT after TENTHS tries, or at once when PID (if not empty), the
# process that should make CMD succeed, is gone.
wait_until() {
	w_what=$1 w_tries=$2 w_pid=$3
	shift 3
	w_i=0
	until "$@"; do
		[ $w_i -ge "$w_tries" ] && fail "$w_what"
		[ -z "$w_pid" ] || kill -0 "$w_pid" 2>/dev/null || fail "$w_what: process $w_pid exited"
		sleep 0.1
		w_i=$((w_i + 1))
	done
}

# gone PID: the process has exited.
gone() { ! kill -0 "$1" 2>/dev/null; }

# wait_for_unix_socket PATH [TENTHS [PID]]: wait until a unix socket exists.
wait_for_unix_socket() { wait_until "socket $1 did not appear" "${2:-100}" "${3:-}" test -S "$1"; }

# wait_for_tcp PORT [TENTHS [PID]]: wait until 127.0.0.1:PORT accepts connections.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# cpu_ticks PID...: user + system CPU time of the processes so far, in
# clock ticks (getconf CLK_TCK a second); a process that is gone counts 0.
cpu_ticks() {
	local t=0 p f
	for p in "$@"; do
		f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo $t
}
# median N...: the median of the numbers (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wait_for_tcp() { wait_until "nothing listens on 127.0.0.1:$1" "${2:-100}" "${3:-}" tcp_open "$1"; }

# start_listener LOG SOCKET CMD...: run CMD in the background, stderr
# appended to LOG, and wait until SOCKET (unix:PATH, inet:PORT[@127.0.0.1])
# listens; sets bg_pid. When CMD exits first or never listens, fails with
# the end of LOG.
start_listener() {
	sl_log=$1 sl_sock=$2
	shift 2
	"$@" 2>>"$sl_log" &
	bg_pid=$!
	track_pid "$bg_pid"
	sl_port=${sl_sock#inet:}
	# A subshell: its fail() comes back here, to show the log.
	case $sl_sock in
	unix:*) (wait_for_unix_socket "${sl_sock#unix:}" 100 "$bg_pid") ;;
	inet:*) (wait_for_tcp "${sl_port%@*}" 100 "$bg_pid") ;;
	*) false ;;
	esac || { tail -n 40 "$sl_log"; fail "${1##*/}: nothing listens on $sl_sock"; }
}

# start_daemon LOG SOCKET [OPTION...]: milter-stress -f OPTION... -p SOCKET
# through start_listener; sets ms_pid.
start_daemon() {
	sd_log=$1 sd_sock=$2
	shift 2
	start_listener "$sd_log" "$sd_sock" "$MILTER_STRESS" -f "$@" -p "$sd_sock"
	ms_pid=$bg_pid
}

# free_port: print a TCP port on 127.0.0.1 that nothing listens on now.
# Tests run in parallel (make -j): a port that is free now may be picked by
# another test before anyone binds it. Ports handed out are recorded under a
# lock in a file shared by the tests of this machine, and not handed out again
# while they are among the last 2000.
T_PORTS=${TMPDIR:-/tmp}/milter-stress-test-ports
free_port() {
	(
		# Below the kernel's ephemeral range: a port that an outgoing
		# connection (Postfix's smtp, a milter client) holds as its source
		# port cannot be bound, and Postfix's master then dies at start with
		# nothing in its log.
		t_eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
		[ "${t_eph_low:-0}" -gt 12000 ] || t_eph_low=32768
		flock 9
		while :; do
			p=$((10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (t_eph_low - 10000)))
			grep -qx "$p" "$T_PORTS" 2>/dev/null && continue
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
			echo "$p" >>"$T_PORTS"
			if [ "$(wc -l <"$T_PORTS")" -gt 2000 ]; then
				tail -n 1000 "$T_PORTS" >"$T_PORTS.new" && mv "$T_PORTS.new" "$T_PORTS"
			fi
			echo "$p"
			exit 0
		done
	) 9>>"$T_PORTS.lock"
}

# One Postfix instance at a time: concurrent starts have failed with nothing
# in the log ("mail system startup failed"). The lock is held until exit.
serialize_e2e() {
	exec 8>>"${TMPDIR:-/tmp}/milter-stress-e2e.lock"
	flock 8
}

# wait_for_line FILE REGEX [TENTHS [PID]]: wait_until (default 100 tenths)
# FILE has a line matching REGEX; PID, if given, is the process that should
# write it. Shows FILE when it fails.
has_line() { grep -Eq -- "$2" "$1" 2>/dev/null; }
wait_for_line() {
	# A subshell: its fail() comes back here, to show the file.
	(wait_until "no line matching '$2' in $1" "${3:-100}" "${4:-}" has_line "$1" "$2") && return 0
	echo "--- $1:"
	cat "$1" 2>/dev/null
	exit 1
}

# expect_line FILE REGEX WHAT: assert a line matches now.
expect_line() {
	grep -Eq -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$3: no line matching '$2'"; }
	pass "$3"
}

# dns_start VAR [DNSMASQ-OPTION...]: start dnsmasq (Debian's dnsmasq-base)
# as a DNS server on 127.0.0.1 and a free port, with its records given as
# options (--host-record=NAME,ADDR --txt-record=NAME,TEXT --local=/ZONE/
# ...; see dnsmasq(8)), no other source of names (no resolv.conf, no
# /etc/hosts, no upstream), no config file. Sets VAR to the port and returns
# once it accepts TCP connections (it binds UDP and TCP together before it
# answers); the process is tracked, its log is T_DIR/dnsmasq-PORT.log. A
# port that turns out taken (for UDP) is retried with another one.
dns_start() {
	dns_var=$1
	shift
	need /usr/sbin/dnsmasq
	dns_try=0
	while [ $dns_try -lt 5 ]; do
		dns_try=$((dns_try + 1))
		dns_port=$(free_port)
		/usr/sbin/dnsmasq --no-daemon --conf-file=/dev/null --pid-file= \
			--port="$dns_port" --listen-address=127.0.0.1 --bind-interfaces \
			--no-resolv --no-hosts --log-facility=- "$@" \
			>"$T_DIR/dnsmasq-$dns_port.log" 2>&1 &
		dns_pid=$!
		track_pid "$dns_pid"
		dns_i=0
		while [ $dns_i -lt 100 ] && kill -0 "$dns_pid" 2>/dev/null; do
			if (exec 3<>"/dev/tcp/127.0.0.1/$dns_port") 2>/dev/null; then
				printf -v "$dns_var" '%s' "$dns_port"
				return 0
			fi
			sleep 0.1
			dns_i=$((dns_i + 1))
		done
		if kill -0 "$dns_pid" 2>/dev/null; then
			cat "$T_DIR/dnsmasq-$dns_port.log"
			fail "dnsmasq does not answer on 127.0.0.1:$dns_port after 10 s"
		fi
		grep -q 'in use' "$T_DIR/dnsmasq-$dns_port.log" ||
			{ cat "$T_DIR/dnsmasq-$dns_port.log"; fail "dnsmasq exited at start"; }
	done
	fail "dnsmasq: no free port in 5 tries"
}

# dns_silent_start VAR LOG [SWITCH]: a DNS server that does not answer: a
# UDP socket on 127.0.0.1 that reads every query and drops it, writing the
# query name of each to LOG (one per line). With SWITCH (a file name) it
# drops queries only while that file exists and otherwise answers each with
# NXDOMAIN. Sets VAR to its port; tracked.
dns_silent_start() {
	need perl
	dns_pf="$T_DIR/silent-dns.$RANDOM.port"
	: >"$2"
	perl -MIO::Socket::INET -e '
		my ($logf, $pf, $switch) = @ARGV;
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
			Proto => "udp") or die "silent dns: $!\n";
		open(my $log, ">>", $logf) or die "silent dns: $logf: $!\n";
		$log->autoflush(1);
		open(my $p, ">", $pf) or die "silent dns: $pf: $!\n";
		print $p $s->sockport, "\n";
		close $p;
		my $q;
		while (defined(my $from = $s->recv($q, 65535))) {
			my ($i, @l) = (12);
			while ($i < length $q) {
				my $n = ord substr($q, $i, 1);
				last if $n == 0 || $n > 63;
				push @l, substr($q, $i + 1, $n);
				$i += $n + 1;
			}
			print $log join(".", @l), "\n";
			next if !defined $switch || -e $switch || $i + 5 > length $q;
			# NXDOMAIN: the id, QR RD RA rcode 3, the question.
			$s->send(substr($q, 0, 2) . pack("n5", 0x8183, 1, 0, 0, 0)
				. substr($q, 12, $i + 5 - 12), 0, $from);
		}' "$2" "$dns_pf" ${3:+"$3"} 2>"$dns_pf.err" &
	track_pid $!
	dns_i=0
	while [ ! -s "$dns_pf" ]; do
		[ $dns_i -ge 100 ] && { cat "$dns_pf.err"; fail "the silent DNS server did not start"; }
		sleep 0.1
		dns_i=$((dns_i + 1))
	done
	printf -v "$1" '%s' "$(head -n 1 "$dns_pf")" # written at once, at close
}

# run_fuzzer NAME MAX_LEN [LIBFUZZER-ARG...]: the libFuzzer target NAME,
# the program tests/FUZZ_BIN (default NAME) with FUZZ_PRELOAD (if set) as
# LD_PRELOAD. First every input in tests/fuzz/regress/NAME/ (each failed
# once; each must pass now), then FUZZ_SECONDS (default 4) of fuzzing from a
# copy of the seed corpus tests/fuzz/FUZZ_SEEDS (default NAME without
# "fuzz_"), run in that copy (includes in inputs look there). The copy is in
# T_DIR, or in FUZZ_CORPUS/(NAME without "fuzz_") when that is set, where it
# is kept and grows from run to run. A crash, a leak, a sanitizer report, an
# input slower than 10 s or above 2 GiB fails; the inputs are kept in the
# build tree's tests/fuzz-crashes/NAME/. Sets fuzz_execs (inputs run) and
# fuzz_regress (regression inputs replayed).
run_fuzzer() {
	f_name=$1
	f_max=$2
	shift 2
	f_bin="$top_builddir/tests/${FUZZ_BIN:-$f_name}"
	f_seeds="$top_srcdir/tests/fuzz/${FUZZ_SEEDS:-${f_name#fuzz_}}"
	f_regress="$top_srcdir/tests/fuzz/regress/$f_name"
	f_keep="$top_builddir/tests/fuzz-crashes/$f_name"
	f_dir="$T_DIR/$f_name"
	f_corpus="${FUZZ_CORPUS:-$f_dir}/${f_name#fuzz_}"
	f_env=()
	[ -z "${FUZZ_PRELOAD:-}" ] || f_env=("LD_PRELOAD=$FUZZ_PRELOAD")
	[ -x "$f_bin" ] || fail "$f_bin is not built (make -C tests ${f_bin##*/})"
	[ -z "${FUZZ_PRELOAD:-}" ] || [ -f "$FUZZ_PRELOAD" ] || fail "$FUZZ_PRELOAD is not built"
	mkdir -p "$f_dir/artifacts" "$f_corpus" || fail "mkdir"
	cp "$f_seeds"/* "$f_corpus/" || fail "copying the corpus"
	chmod -R u+w "$f_corpus"
	f_inputs=()
	[ -d "$f_regress" ] && f_inputs=("$f_regress"/*)
	fuzz_regress=${#f_inputs[@]}
	if [ "$fuzz_regress" -gt 0 ] && ! (cd "$f_corpus" &&
		env "${f_env[@]}" UBSAN_OPTIONS=print_stacktrace=1 "$f_bin" -rss_limit_mb=2048 \
			-timeout=10 "$@" "${f_inputs[@]}" >"$f_dir/regress.log" 2>&1); then
		tail -n 60 "$f_dir/regress.log"
		fail "$f_name fails again on an input of $f_regress"
	fi
	(cd "$f_corpus" &&
		env "${f_env[@]}" UBSAN_OPTIONS=print_stacktrace=1 "$f_bin" \
			-max_total_time="${FUZZ_SECONDS:-4}" -rss_limit_mb=2048 -timeout=10 \
			-max_len="$f_max" -print_final_stats=1 "$@" \
			-artifact_prefix="$f_dir/artifacts/" . >"$f_dir/fuzz.log" 2>&1)
	f_rc=$?
	if [ $f_rc -ne 0 ] || ls "$f_dir"/artifacts/* >/dev/null 2>&1; then
		tail -n 60 "$f_dir/fuzz.log"
		mkdir -p "$f_keep"
		cp "$f_dir"/artifacts/* "$f_keep/" 2>/dev/null
		fail "$f_name exited $f_rc; inputs kept in $f_keep (once fixed, add them to tests/fuzz/regress/$f_name/)"
	fi
	fuzz_execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$f_dir/fuzz.log")
}

# ms_fds PID, ms_threads PID, ms_rss PID: open descriptors, threads and
# resident memory (KiB) of a process, from /proc.
ms_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
ms_threads() { sed -n 's/^Threads:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null; }
ms_rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null; }

# wait_for_baseline PID FDS THREADS WHAT: wait up to 10 s until the process
# has FDS descriptors and at most THREADS threads again (libmilter closes a
# session's socket and retires its worker after the callbacks returned).
wait_for_baseline() {
	i=0
	while [ "$(ms_fds "$1")" -ne "$2" ] || [ "$(ms_threads "$1")" -gt "$3" ]; do
		if [ $i -ge 100 ]; then
			ls -l "/proc/$1/fd"
			fail "$4: $(ms_fds "$1") descriptors and $(ms_threads "$1") threads, baseline $2 and $3"
		fi
		sleep 0.1
		i=$((i + 1))
	done
	pass "$4: descriptors ($2) and threads (<= $3) back to the baseline"
}

# expect_clean_log LOG WHAT: nothing in the daemon's log (its stderr, where
# sanitizers write too) suggests a crash, a leak or an internal error. A log
# that is missing or cannot be read fails: it proves nothing.
expect_clean_log() {
	ecl_lines=$(grep -Ein 'error|warning|fatal|panic|assert|sanitizer|no session state|runtime error' "$1")
	# grep: 0 lines found, 1 none, 2 the file could not be read.
	[ $? -le 1 ] || fail "$2: cannot read the log $1"
	ecl_lines=$(printf '%s\n' "$ecl_lines" | grep -v ' action=' | head -n 20)
	[ -z "$ecl_lines" ] || { printf '%s\n' "$ecl_lines"; fail "$2: the log has error lines"; }
	pass "$2: no error, crash or sanitizer line in the log"
}

# stop_daemon PID LOG WHAT: SIGTERM, wait for the exit (libmilter takes up to
# about 5 s), expect status 0 and a clean log: under ASan the leak check runs
# at exit and writes its report to stderr (the log), and abort_on_error=1
# turns it into an abnormal status. stop_daemon_status does all but the log
# check, for tests whose log has warnings on purpose.
stop_daemon() {
	stop_daemon_status "$@"
	expect_clean_log "$2" "$3: after stop"
	pass "$3: stopped cleanly (status 0, no leak report)"
}

stop_daemon_status() {
	kill -TERM "$1" || fail "$3: the daemon is gone before SIGTERM"
	wait_until "$3: the daemon did not stop within 15 s of SIGTERM" 150 "" gone "$1"
	wait "$1"
	sd_rc=$?
	if [ $sd_rc -ne 0 ]; then
		tail -n 40 "$2"
		fail "$3: exit status $sd_rc after SIGTERM"
	fi
}
