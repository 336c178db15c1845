#!/bin/bash
# Hostile messages through the real daemon, driven by milter-probe: 64 KiB
# and 101 KiB header values (one line, folded), 10000 recipients, a 1 MiB body line
# without a line end, 1 MiB of bare CRs, empty, absent and 64 KiB macros,
# IPv6 and IPv4-mapped clients, a unix-socket client without an address and
# one of unknown family. Each case, with the shipped config (both
# personalities) and with one that uses every check kind that needs no
# network, must end in a verdict (a "result:" line); the daemon stays up,
# logs nothing that looks like an error, and stops cleanly (under ASan: no
# leak). Recipients past rcpt_limit get its deliberate 452 4.5.3. The
# 10000-recipient and 1 MiB-line cases are timed next to 5000 recipients
# and a 100 KiB line, to show linear work (printed, not asserted; past
# rcpt_limit each recipient costs more). Past rcpt_limit only the first 452
# is logged as a verdict, the others in one line with their count.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

watchdog 100
[ -x "$MILTER_STRESS" ] || fail "$MILTER_STRESS is not built"
[ -x "$MILTER_PROBE" ] || fail "$MILTER_PROBE is not built"

# Every check kind that needs no network, at every stage; none matches the
# default transaction of milter-probe.
cat >"$T_DIR/every.conf" <<'CONF'
connect client 192.0.2.66 reject 554 5.7.1 "$client_addr blocked"
connect client_name .bad.example /^dyn-[0-9]+\./ reject 550 5.7.1 "dynamic name"
connect macro {case} connect-reject reject 554 5.7.1 "macro at connect"
connect !client 10.0.0.0/8 and macro j /^never$/ tempfail 451 4.3.0 "never"
helo stress helo ip_literal tempfail 421 4.7.0 "Busy, try again later"
helo helo /^never\./ .never.example reject 550 5.7.1 "bad helo"
mail authenticated accept
mail sender <> and macro {case} no-bounce reject 550 5.7.1 "no bounces"
mail sender /^spam[0-9]+@/ @spam.example reject 550 5.7.1 "bad sender"
rcpt recipient @bad.example user@ reject 550 5.1.1 "no such user $recipient"
rcpt rcpt_count > 500 tempfail 452 4.5.3 "Too many recipients by rule"
data macro {case} data-tempfail tempfail 451 4.3.0 "data later"
header header Subject /lottery/i reject 550 5.7.1 "Content rejected"
header header * /^X-Never: / log reject 550 5.7.1 "would reject"
eoh header X-Spam-Flag /^YES$/ discard
body body /lottery winner/i /(a+)+b/ reject 550 5.7.1 "body rejected"
eom macro {case} eom-reject reject 554 5.7.0 "rejected at end"
eom stress any tag X-Checked "by $rule under stress"
CONF

# start NAME CONF: a daemon on its own socket; sets NAME_pid and NAME_sock.
start() {
	start_daemon "$T_DIR/$1.log" "unix:$T_DIR/$1.sock" -c "$2"
	printf -v "$1_pid" '%s' "$ms_pid"
	printf -v "$1_sock" '%s' "$T_DIR/$1.sock"
}
start shipped "$top_srcdir/conf/milter-stress.conf"
start every "$T_DIR/every.conf"

# The inputs, made with the shell's tools only.
repeat() { head -c "$2" /dev/zero | tr '\0' "$1"; }
{
	printf 'From: <a@example.org>\nSubject: a big header\nX-Big: '
	repeat x 65536
	printf '\n\nbody\n'
} >"$T_DIR/big-header.eml"
{
	printf 'From: <a@example.org>\nSubject: lottery '
	repeat x 65536
	printf '\n\nbody\n'
} >"$T_DIR/big-subject.eml"
{
	printf 'From: <a@example.org>\nX-Folded: start'
	for _ in $(seq 1 1600); do printf '\n\t%s' "$(repeat y 63)"; done
	printf '\n\nbody\n'
} >"$T_DIR/folded.eml"
repeat y 1048576 >"$T_DIR/mib-line"
repeat y 104858 >"$T_DIR/tenth-line"
{ repeat y 1048570; printf 'lottery winner'; } >"$T_DIR/mib-line-match"
repeat '\r' 1048576 >"$T_DIR/mib-cr"
BIG_MACRO=$(repeat m 65536)
RCPTS=() # --rcpt ADDR pairs: 20000 words
for i in $(seq 1 10000); do RCPTS+=(--rcpt "<u$i@example.net>"); done

# cpu_ms PID: user + system CPU time of a process so far, in ms.
CLK_TCK=$(getconf CLK_TCK)
cpu_ms() { echo $(($(cpu_ticks "$1") * 1000 / CLK_TCK)); }

# case_ DAEMON NAME EXPECTED-RESULT-REGEX PROBE-ARGS...: one transaction
# from 192.0.2.1 unless the args say otherwise; its result line must match.
# Sets ms to the time it took and cpu to the daemon's CPU time for it (ms;
# steadier than the time on a shared machine).
case_() {
	c_daemon=$1
	c_name=$2
	c_want=$3
	shift 3
	c_sock=${c_daemon}_sock
	c_pid=${c_daemon}_pid
	c_out="$T_DIR/$c_daemon-$c_name.out"
	c_t0=$EPOCHREALTIME
	c_cpu0=$(cpu_ms "${!c_pid}")
	"$MILTER_PROBE" -p "unix:${!c_sock}" --timeout 20 --client-addr 192.0.2.1 "$@" >"$c_out" 2>&1
	c_rc=$?
	[ $c_rc -eq 0 ] ||
		{ tail -n 20 "$c_out"; tail -n 20 "$T_DIR/$c_daemon.log"; fail "$c_daemon $c_name: milter-probe exited $c_rc"; }
	ms=$(awk -v a="$c_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	cpu=$(($(cpu_ms "${!c_pid}") - c_cpu0))
	kill -0 "${!c_pid}" 2>/dev/null || { tail -n 40 "$T_DIR/$c_daemon.log"; fail "$c_daemon died in $c_name"; }
	c_result=$(grep '^result: ' "$c_out") || { tail -n 20 "$c_out"; fail "$c_daemon $c_name: no result line"; }
	echo "$c_result" | grep -Eq -- "$c_want" || { tail -n 20 "$c_out"; fail "$c_daemon $c_name: $c_result, expected $c_want"; }
	pass "$c_daemon $c_name: $c_result (${ms} ms, daemon CPU ${cpu} ms)"
}

for d in shipped every; do
	for p in no yes; do
		m=(-m "{stress}=$p")
		# Headers: a 64 KiB value on one line, and 101 KiB folded over 1600
		# lines (Postfix's header_size_limit is 100 KiB by default).
		case_ $d "big-header-$p" '^result: accept$' "${m[@]}" --message "$T_DIR/big-header.eml"
		case_ $d "folded-$p" '^result: accept$' "${m[@]}" --message "$T_DIR/folded.eml"
		if [ $d = every ]; then
			case_ $d "big-subject-$p" '^result: reject at header$' "${m[@]}" --message "$T_DIR/big-subject.eml"
			expect_line "$T_DIR/$d-big-subject-$p.out" '^header Subject: reject 550 5\.7\.1 Content rejected$' \
				"$d: a 64 KiB Subject is matched whole"
		else
			case_ $d "big-subject-$p" '^result: accept$' "${m[@]}" --message "$T_DIR/big-subject.eml"
		fi

		# Bodies: one 1 MiB line without a line end (the probe adds the
		# last CRLF), the same with a match at its end, 1 MiB of bare CRs.
		case_ $d "tenth-line-$p" '^result: accept$' "${m[@]}" --body "$T_DIR/tenth-line"
		tenth="$ms ms (daemon CPU $cpu ms)"
		case_ $d "mib-line-$p" '^result: accept$' "${m[@]}" --body "$T_DIR/mib-line"
		# Only the every config in the normal personality scans bodies.
		[ $d = every ] && [ $p = no ] &&
			echo "  time: 1 MiB line $ms ms (daemon CPU $cpu ms), 100 KiB line $tenth"
		if [ $d = every ] && [ $p = no ]; then
			# body_scan_limit is 1m: the match ends at byte 1048584.
			case_ $d "mib-line-match-$p" '^result: accept$' "${m[@]}" --body "$T_DIR/mib-line-match"
			case_ $d "line-match-$p" '^result: reject at body$' "${m[@]}" \
				--body <(repeat y 500000; printf 'lottery winner')
		else
			case_ $d "mib-line-match-$p" '^result: accept$' "${m[@]}" --body "$T_DIR/mib-line-match"
		fi
		case_ $d "mib-cr-$p" '^result: accept$' "${m[@]}" --body "$T_DIR/mib-cr"

		# 10000 recipients, and 5000 to compare.
		case_ $d "rcpt5k-$p" '^result: accept$' "${m[@]}" "${RCPTS[@]:0:10000}"
		half="$ms ms (daemon CPU $cpu ms)"
		case_ $d "rcpt10k-$p" '^result: accept$' "${m[@]}" "${RCPTS[@]}"
		echo "  time: 10000 recipients $ms ms (daemon CPU $cpu ms), 5000 recipients $half"

		# Macros: empty, absent (none given), 64 KiB.
		# An empty {auth_authen} is no authentication; an empty i is no
		# queue id (NOQUEUE in the log).
		case_ $d "empty-macros-$p" '^result: accept$' -m '{stress}=' -m 'j=' -m '{daemon_name}=' -m 'v=' \
			-m '_=' --queue-id '' -m 'mail:{auth_authen}=' -m 'rcpt:{rcpt_addr}=' -m '{case}='
		case_ $d "big-macro-$p" '^result: accept$' "${m[@]}" -m "{case}=$BIG_MACRO" -m "mail:{auth_type}=$BIG_MACRO"

		# Clients: IPv6, IPv4-mapped, loopback IPv6, unix socket without a
		# path, unknown family.
		case_ $d "ipv6-$p" '^result: accept$' "${m[@]}" --client-addr 2001:db8::25 --client-name v6.example
		case_ $d "ipv6-loopback-$p" '^result: accept( at connect)?$' "${m[@]}" --client-addr ::1
		case_ $d "unix-$p" '^result: accept$' "${m[@]}" --client-addr unix --client-name localhost
		case_ $d "none-$p" '^result: accept$' "${m[@]}" --client-addr none --client-name unknown
	done
	case_ $d absent-macros '^result: accept$'
done

# The IPv4-mapped address of a listed client is that client.
case_ every mapped '^result: reject at connect$' --client-addr ::ffff:192.0.2.66
expect_line "$T_DIR/every-mapped.out" 'reject 554 5\.7\.1 .*192\.0\.2\.66 blocked' "every: IPv4-mapped client matched as IPv4"

# rcpt_limit answers each recipient past it with its own 452, in both
# personalities; the rule in the every config answers from the 501st.
for p in no yes; do
	limit=1000
	[ $p = yes ] && limit=100
	n=$(grep -c '^rcpt <u[0-9]*@example\.net>: tempfail 452 4\.5\.3 ' "$T_DIR/shipped-rcpt10k-$p.out")
	[ "$n" -eq $((10000 - limit)) ] || fail "shipped stress=$p: $n recipients got 452, expected $((10000 - limit))"
	expect_line "$T_DIR/shipped-rcpt10k-$p.out" "^rcpt <u$((limit + 1))@example\.net>: tempfail 452 4\.5\.3 " \
		"shipped stress=$p: recipient $((limit + 1)) gets 452 4.5.3"
	expect_line "$T_DIR/shipped-rcpt10k-$p.out" "^rcpt <u${limit}@example\.net>: continue$" \
		"shipped stress=$p: recipient $limit is accepted"
done
expect_line "$T_DIR/shipped.log" "stage=rcpt rule=rcpt_limit action=tempfail 452 4\.5\.3 client=.*to=<u1001@example\.net>" \
	"shipped: the first 452 is logged as the rcpt_limit verdict"
expect_line "$T_DIR/shipped.log" "stage=rcpt rule=rcpt_limit action=tempfail 452 4\.5\.3 \\(8999 more recipients\\) client=" \
	"shipped stress=no: the other 8999 in one line"
expect_line "$T_DIR/shipped.log" "stress=yes.* stage=rcpt rule=rcpt_limit action=tempfail 452 4\.5\.3 \\(9899 more recipients\\) client=" \
	"shipped stress=yes: the other 9899 in one line"
n=$(grep -c 'rule=rcpt_limit' "$T_DIR/shipped.log")
[ "$n" -eq 8 ] || fail "shipped: $n rcpt_limit lines in the log for four messages of 5000 and 10000 recipients"
pass "shipped: 8 rcpt_limit lines for four messages of 5000 and 10000 recipients"
n=$(grep -c '^rcpt <u[0-9]*@example\.net>: tempfail 452 4\.5\.3 Too many recipients by rule$' "$T_DIR/every-rcpt10k-no.out")
[ "$n" -eq 9500 ] || fail "every: $n recipients got the rule's 452, expected 9500"
pass "every: recipients 501 to 10000 get the rule's 452"

# Above 1 MiB no packet can carry the header: milter-probe says so and
# sends nothing of it.
{ printf 'Subject: too big\nX-Huge: '; repeat z 1048576; printf '\n\nbody\n'; } >"$T_DIR/huge.eml"
"$MILTER_PROBE" -p "unix:$every_sock" --client-addr 192.0.2.1 --message "$T_DIR/huge.eml" >"$T_DIR/huge.out" 2>&1 &&
	fail "a 1 MiB header went out in one packet"
expect_line "$T_DIR/huge.out" '^milter-probe: header: the packet for header X-Huge would exceed 1048576 bytes$' \
	"milter-probe refuses a header above 1 MiB"

for d in shipped every; do
	pid=${d}_pid
	expect_clean_log "$T_DIR/$d.log" "$d"
	stop_daemon "${!pid}" "$T_DIR/$d.log" "$d"
done
