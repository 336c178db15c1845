#!/bin/bash
# The rule table through the real daemon, driven by milter-probe: a verdict at
# every stage with every action, both personalities of one rule set, a dry
# run, tags and quarantine, the limits, the negotiated stages, -n and -vv.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

sock="$T_DIR/ms.sock"
cat >"$T_DIR/ms.conf" <<'CONF'
# The seed scenario: a listed client gets 554 in calm times, a 421 hang-up
# under stress.
connect normal client 192.0.2.88 reject 554 5.7.1 "$client_addr listed"
connect stress client 192.0.2.88 tempfail 421 4.7.1 "$client_addr listed, busy"
connect client 192.0.2.66 reject 554 5.7.1 "$client_addr blocked"
connect client 192.0.2.77 accept
helo helo ip_literal tempfail 421 4.7.0 "Busy, try again later"
mail sender <> reject 550 5.7.1 "no bounces here"
mail sender @tag.example tag X-Tagged "by $rule"
mail name=dry sender @dry.example log reject 550 5.7.1 "would reject"
rcpt recipient @bad.example reject 550 5.1.1 "no such user $recipient"
rcpt recipient @slow.example tempfail 450 4.2.0 "try later"
rcpt recipient @trash.example discard
data macro {case} data-tempfail tempfail 451 4.3.0 "data later"
header header Subject /lottery/i reject 550 5.7.1 "Content rejected"
eoh header X-Spam-Flag /^YES$/ discard
body macro {case} body-tempfail tempfail 451 4.3.0 "body later"
eom sender @quarantine.example quarantine "held: $sender"
eom macro {case} eom-reject reject 554 5.7.0 "rejected at end"
CONF
start_daemon "$T_DIR/ms.log" "unix:$sock" -vv -c "$T_DIR/ms.conf"

n=0
# case EXPECTED-REGEX WHAT PROBE-ARGS...: one transaction, one expected line.
case_() {
	want=$1
	what=$2
	shift 2
	n=$((n + 1))
	out="$T_DIR/case$n.out"
	"$MILTER_PROBE" -p "unix:$sock" "$@" >"$out" 2>&1 ||
		{ cat "$out"; fail "$what: milter-probe exited $?"; }
	expect_line "$out" "$want" "$what"
}

case_ '^connect client\.example \[192\.0\.2\.66\]: reject 554 5\.7\.1 192\.0\.2\.66 blocked$' \
	"connect: reject with a template" --client-addr 192.0.2.66 --client-name client.example
case_ '^connect client\.example \[192\.0\.2\.88\]: reject 554 5\.7\.1 192\.0\.2\.88 listed$' \
	"normal personality: 554" --client-addr 192.0.2.88 --client-name client.example -m '{stress}=no'
case_ '^connect client\.example \[192\.0\.2\.88\]: tempfail 421 4\.7\.1 192\.0\.2\.88 listed, busy$' \
	"stress personality: 421" --client-addr 192.0.2.88 --client-name client.example -m '{stress}=yes'
case_ '^eom: add header X-Stress: no$' "connect: accept still gets the header" \
	--client-addr 192.0.2.77 -m '{stress}=no'
case_ '^helo \[192\.0\.2\.1\]: tempfail 421 4\.7\.0 Busy, try again later$' "helo: tempfail 421" \
	--helo '[192.0.2.1]'
case_ '^mail <>: reject 550 5\.7\.1 no bounces here$' "mail: reject" --from '<>'
case_ '^rcpt <u@bad\.example>: reject 550 5\.1\.1 no such user <u@bad\.example>$' \
	"rcpt: reject one recipient" --rcpt '<u@bad.example>' --rcpt '<ok@example.net>'
expect_line "$T_DIR/case$n.out" '^rcpt <ok@example\.net>: continue$' "rcpt: the other recipient goes on"
case_ '^rcpt <u@slow\.example>: tempfail 450 4\.2\.0 try later$' "rcpt: tempfail" --rcpt '<u@slow.example>'
case_ '^rcpt <u@trash\.example>: discard$' "rcpt: discard" --rcpt '<u@trash.example>'
case_ '^data: tempfail 451 4\.3\.0 data later$' "data: tempfail" -m '{case}=data-tempfail'
case_ '^header Subject: reject 550 5\.7\.1 Content rejected$' "header: reject" \
	--header 'Subject: You won the LOTTERY' --header 'From: <a@example.org>'
case_ '^eoh: discard$' "eoh: discard on the header set" \
	--header 'X-Spam-Flag: YES' --header 'Subject: hi'
case_ '^body [0-9]+ bytes: tempfail 451 4\.3\.0 body later$' "body: tempfail" -m '{case}=body-tempfail'
case_ '^eom: reject 554 5\.7\.0 rejected at end$' "eom: reject" -m '{case}=eom-reject'
case_ '^eom: quarantine held: <a@quarantine\.example>$' "eom: quarantine" --from '<a@quarantine.example>'
case_ '^eom: add header X-Tagged: by ' "mail: tag" --from '<a@tag.example>'
case_ '^eom: accept$' "dry run lets the message through" --from '<a@dry.example>'
expect_line "$T_DIR/ms.log" 'stage=mail rule=dry action=log\(would reject 550 5\.7\.1\)' "dry run is logged"
expect_line "$T_DIR/ms.log" 'stage=rcpt rule=[^ ]*:[0-9]+ action=reject 550 5\.1\.1 ' "verdict lines name the rule"
expect_line "$T_DIR/ms.log" 'trace: stage=connect rule=.* no match' "-vv traces every rule tried"

# Negotiation follows the rules: nothing needs unknown commands.
expect_line "$T_DIR/case1.out" '^negotiate: .*NOUNKNOWN' "negotiation drops unused stages"

# A config with no rules negotiates away eoh and body, keeps data (NODATA
# would cost 40 ms over inet), answers it (an unanswered one costs the next
# packet 40 ms over inet, ARCHITECTURE F25), and asks no reply to headers.
sock2="$T_DIR/ms2.sock"
start_daemon "$T_DIR/ms2.log" "unix:$sock2" -c /dev/null
"$MILTER_PROBE" -p "unix:$sock2" >"$T_DIR/norules.out" 2>&1 || fail "probe without rules"
expect_line "$T_DIR/norules.out" '^negotiate: .*NOBODY.*NOEOH' "no rules: body and eoh not needed"
expect_line "$T_DIR/norules.out" '^data: continue$' "no rules: data kept and answered"
expect_line "$T_DIR/norules.out" '^header Subject: \(no reply\)$' "no rules: headers need no reply"

# Limits, stress-conditional: one rejection ends a stressed session.
case_ '^rcpt <ok@example\.net>: tempfail 421 4\.7\.0 Error: too many errors$' \
	"stress: error_limit 1 hangs up after one rejection" -m '{stress}=yes' \
	--rcpt '<u@bad.example>' --rcpt '<ok@example.net>'
sock3="$T_DIR/ms3.sock"
start_daemon "$T_DIR/ms3.log" "unix:$sock3" -c /dev/null -o rcpt_limit=2
"$MILTER_PROBE" -p "unix:$sock3" --rcpt '<a@example.net>' --rcpt '<b@example.net>' \
	--rcpt '<c@example.net>' >"$T_DIR/limit.out" 2>&1 || fail "probe rcpt_limit"
expect_line "$T_DIR/limit.out" '^rcpt <c@example\.net>: tempfail 452 4\.5\.3 Error: too many recipients$' \
	"rcpt_limit: 452 4.5.3 past the limit"

# -n shows the compiled rules of each personality.
"$MILTER_STRESS" -n -c "$T_DIR/ms.conf" >"$T_DIR/n.out" 2>&1 || { cat "$T_DIR/n.out"; fail "-n"; }
"$MILTER_STRESS" -n -c "$T_DIR/ms.conf" -o stress=yes >"$T_DIR/ns.out" 2>&1 || fail "-n stress"
expect_line "$T_DIR/n.out" 'ms\.conf:3: connect .*reject 554 5\.7\.1' "-n: the normal rule with file:line"
grep -q 'tempfail 421 4\.7\.1' "$T_DIR/n.out" && fail "-n: the stress-only rule shows in the normal personality"
expect_line "$T_DIR/ns.out" 'ms\.conf:4: connect .*tempfail 421 4\.7\.1' "-n -o stress=yes: the stress rule"

# Reply validation at load: "521 4.7.1" is refused with file:line.
printf 'connect any reject 521 4.7.1 "bye"\n' >"$T_DIR/bad.conf"
"$MILTER_STRESS" -n -c "$T_DIR/bad.conf" >"$T_DIR/bad.out" 2>&1 && fail "521 4.7.1 accepted"
expect_line "$T_DIR/bad.out" 'bad\.conf:1:[0-9]+: .*4\.7\.1' "521 4.7.1 refused at load with file:line:column"
