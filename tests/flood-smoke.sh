#!/bin/bash
# make bench-flood, small: a few seconds of bot flood against Postfix alone
# (a), Postfix with milter-stress on the {stress} macro (b), with its own
# load signal (c) and with the client-dependent personality (d), asserting
# what is not a timing: no legitimate message refused, every legitimate
# message the server accepted delivered exactly once and nothing delivered
# that it did not accept, the table and the plot made; c's and d's logs
# show stress entered during the flood and left after it, and in d the
# known legitimate senders were never answered as strangers.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
# (flood.sh takes the end-to-end lock itself, through postfix-lib.sh.)
watchdog 480

configs="a b c d"
out=$T_DIR/flood
FLOOD_CONFIGS=$configs FLOOD_WARM=2 FLOOD_SECONDS=8 FLOOD_CALM=20 \
	FLOOD_BOTS=30 FLOOD_SMTPD_LIMIT=5 FLOOD_LEGIT_RATE=2 FLOOD_BOT_DELAY=0.2,1 \
	FLOOD_LEGIT_TIMEOUT=30 FLOOD_OUT="$out" FLOOD_PNG="$T_DIR/flood.png" FLOOD_WATCHDOG=460 \
	bash "$top_srcdir/tests/bench/flood.sh" >"$T_DIR/flood.out" 2>&1
rc=$?
cat "$T_DIR/flood.out"
[ "$rc" -eq 0 ] || fail "flood.sh exited $rc"
expect_line "$T_DIR/flood.out" '^command: make bench-flood ' "the command is printed"
expect_line "$T_DIR/flood.out" '^config +\| legit/s flood \| p50 s \| p99 s' "the table is printed"
if [ ! -s "$T_DIR/flood.png" ] || [ "$(head -c 4 "$T_DIR/flood.png" | od -An -c | tr -d ' ')" != '211PNG' ]; then
	fail "no PNG plot"
fi
pass "the goodput plot is a PNG"

# One line per configuration: TAG ACCEPTED REFUSED DEFERRED DELIVERED TWICE
# LOST EXTRA BOTS MS_ON MS_CALM
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["tag"], r["legit_accepted"], r["legit_refused"], r["legit_deferred"], r["delivered"],
          r["delivered_twice"], r["accepted_not_delivered"], r["delivered_not_accepted"],
          r["bot_sessions"], r["ms_stress_after_s"], r["ms_calm_after_s"])' \
	"$out/results.jsonl" >"$T_DIR/rows" || fail "cannot read $out/results.jsonl"
seen=""
while read -r tag acc refused deferred delivered twice lost extra bots ms_on ms_calm; do
	seen="$seen $tag"
	[ "$bots" -gt 0 ] || fail "$tag: no bot session"
	[ "$acc" -gt 0 ] || fail "$tag: no legitimate message accepted"
	[ "$refused" -eq 0 ] || fail "$tag: $refused legitimate messages refused"
	[ "$twice" -eq 0 ] || fail "$tag: $twice legitimate messages delivered twice"
	[ "$lost" -eq 0 ] || fail "$tag: $lost accepted legitimate messages never reached the sink"
	[ "$extra" -eq 0 ] || fail "$tag: $extra legitimate messages delivered that the client did not see accepted"
	[ "$delivered" -eq "$acc" ] || fail "$tag: $delivered of $acc accepted messages delivered exactly once"
	pass "$tag: $acc legitimate messages accepted and delivered exactly once, none refused ($deferred deferred), $bots bot sessions"
	if [ "$tag" = c ] || [ "$tag" = d ]; then
		[ "$ms_on" != None ] || fail "$tag: the milter never logged 'stress on' during the flood"
		[ "$ms_calm" != None ] || fail "$tag: the milter did not log 'stress off' after the flood"
		pass "$tag: the milter's own signal: stressed ${ms_on} s into the flood, calm ${ms_calm} s after it"
	fi
done <"$T_DIR/rows"
[ "$seen" = " $configs" ] || fail "configurations reported:$seen, expected $configs"
pass "every configuration reported: $configs"

# d: the legitimate senders are known, so none met the strangers' 421; the
# bots are strangers, and some of them did.
grep -q 'personality=normal' "$out/d.milter.log" ||
	fail "d: no session got the normal personality from a personality rule"
if grep 'busy: strangers' "$out/d.events" | grep -q '"kind": "legit"'; then
	fail "d: a known legitimate sender was answered as a stranger"
fi
pass "d: known senders kept the normal personality under stress"
