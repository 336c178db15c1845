#!/bin/bash
# The rspamd client's latency against a private rspamd (tests/rspamd-lib.sh:
# RSPAMD_BENCH_WORKERS normal workers, default 2), a 2 KiB and a 2 MiB
# message (text, then a base64 attachment), from memory and from a file,
# at 1 and 16 concurrent scans: p50, p99, scans per second. Also rspamd's
# start time. RSPAMD_BENCH_RULES=1: rspamd runs Debian's rules too (what
# a scan costs on a real MX); otherwise almost nothing but GTUBE (what the
# client and the protocol cost). Then the same messages through rspamd's
# own milter (its proxy worker in milter mode, driven by milter-probe
# --bench, a new milter connection per message as Postfix makes): what an
# MX that chains rspamd's milter waits per message.
#
#   tests/bench/rspamd.sh [COUNT]      (from a build tree: make bench-rspamd)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/rspamd-lib.sh"
count=${1:-400}
bench="$top_builddir/tests/rspamd-bench"
[ -x "$bench" ] || fail "$bench is not built (make -C tests rspamd-bench)"

# A message of about SIZE bytes: headers, a text part, an attachment.
make_message() {
	{
		printf 'From: a@example.org\r\nTo: b@example.org\r\nSubject: report\r\n'
		printf 'Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\n' "$RANDOM"
		printf 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
		printf 'Content-Type: text/plain\r\n\r\n'
		for i in $(seq 1 12); do printf 'Line %d of the quarterly report, nothing unusual in it.\r\n' "$i"; done
		printf -- '--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n'
		head -c $(($1 * 3 / 4)) /dev/urandom | base64 -w 76 | sed 's/$/\r/'
		printf -- '--b--\r\n'
	} | head -c "$1" >"$2"
}

rules=""
[ -n "${RSPAMD_BENCH_RULES:-}" ] && rules=rules
RSPAMD_MILTER=1 rspamd_start "${RSPAMD_BENCH_WORKERS:-2}" $rules
label="no rules (GTUBE only)"
[ -n "$rules" ] && label="Debian's rules/rspamd.lua"
echo "rspamd: ${RSPAMD_BENCH_WORKERS:-2} workers, $label, started and answering in $rspamd_start_ms ms"
make_message 2048 "$T_DIR/2k.eml"
make_message $((2 * 1024 * 1024)) "$T_DIR/2m.eml"

for msg in 2k 2m; do
	n=$count
	[ $msg = 2m ] && n=$((count / 4))
	for mode in mem fd; do
		for c in 1 16; do
			printf '%s %s: ' "$msg" "$mode"
			"$bench" "$rspamd_endpoint" "$T_DIR/$msg.eml" "$c" "$n" "$mode" ||
				fail "scans failed"
		done
	done
done
for msg in 2k 2m; do
	n=$count
	[ $msg = 2m ] && n=$((count / 4))
	for c in 1 16; do
		printf "%s rspamd's milter: " "$msg"
		"$MILTER_PROBE" -p "inet:$rspamd_milter_port@127.0.0.1" --timeout 30 \
			--message "$T_DIR/$msg.eml" --bench "$c,$n" | grep '^BENCH' ||
			fail "milter-probe against rspamd's milter"
	done
done
rspamd_expect_offline >/dev/null
