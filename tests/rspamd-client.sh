#!/bin/bash
# The rspamd client (shared/rspamd.c) against a real rspamd: check_rspamd
# with its live cases (clean, GTUBE, settings id, envelope, unix socket and
# http:// endpoints, a 10 MiB message from a file, 24 threads on one client,
# rspamd stopped with SIGSTOP: timeout at the deadline and cancel; killed
# during a scan and after: an error at once). rspamd is private and offline
# (rspamd-lib.sh); its start time is printed. First, rspamd's own milter
# (RSPAMD_MILTER=1, for comparisons) refuses GTUBE through milter-probe.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/rspamd-lib.sh"
watchdog 180

RSPAMD_MILTER=1 rspamd_start
pass "rspamd started and answers /ping in $rspamd_start_ms ms"

printf 'From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\n%s\r\n' \
	'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X' >"$T_DIR/gtube.eml"
"$MILTER_PROBE" -p "inet:$rspamd_milter_port@127.0.0.1" --timeout 10 --message "$T_DIR/gtube.eml" \
	>"$T_DIR/probe.out" 2>&1 || { cat "$T_DIR/probe.out"; fail "milter-probe against rspamd's milter"; }
expect_line "$T_DIR/probe.out" '^eom: reject 554 5\.7\.1 Gtube pattern' "rspamd's own milter refuses GTUBE"

RSPAMD_ENDPOINT=$rspamd_endpoint RSPAMD_SOCK=$rspamd_sock \
	RSPAMD_PIDS="$(rspamd_all_pids | tr '\n' ' ')" \
	"$top_builddir/tests/check_rspamd" || fail "check_rspamd against rspamd"
pass "the client against rspamd: verdicts, settings id, endpoints, 10 MiB from a file, threads, hung, killed"

rspamd_expect_offline
gone "$rspamd_pid" || fail "rspamd survived SIGKILL"
