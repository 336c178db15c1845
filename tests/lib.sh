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

# wait_for_unix_socket PATH [TENTHS]: wait until a unix socket exists.
wait_for_unix_socket() {
	i=0
	while [ ! -S "$1" ]; do
		[ $i -ge "${2:-100}" ] && fail "socket $1 did not appear"
		sleep 0.1
		i=$((i + 1))
	done
}

# wait_for_tcp PORT [TENTHS]: wait until 127.0.0.1:PORT accepts connections.
wait_for_tcp() {
	i=0
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		[ $i -ge "${2:-100}" ] && fail "nothing listens on 127.0.0.1:$1"
		sleep 0.1
		i=$((i + 1))
	done
}

# free_port: print a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	while :; do
		p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000 ))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# wait_for_line FILE REGEX [TENTHS]: wait until FILE has a line matching REGEX.
wait_for_line() {
	i=0
	while ! grep -Eq -- "$2" "$1" 2>/dev/null; do
		[ $i -ge "${3:-100}" ] && { echo "--- $1:"; cat "$1" 2>/dev/null; fail "no line matching '$2' in $1"; }
		sleep 0.1
		i=$((i + 1))
	done
}

# expect_line FILE REGEX WHAT: assert a line matches now.
expect_line() {
	grep -Eq -- "$2" "$1" || { echo "--- $1:"; cat "$1"; fail "$3: no line matching '$2'"; }
	pass "$3"
}
