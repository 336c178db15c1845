#!/bin/bash
# End to end: delayed stages (milter-stress.conf(5), "Delayed stages")
# through a private Postfix. The DNSBL answers 400 ms late (a relay in front
# of dnsmasq), more than session_stage_wait (100 ms): the connect stage
# answers Postfix at once, Postfix greets the client (XCLIENT's new
# greeting is 220, not the 554 of a connect-stage reject), and the listed
# client's refusal comes at MAIL FROM, where Postfix gives a connect 5xx
# anyway: the milter's 554 on the normal listener; under stress (Postfix's
# -o stress=yes listener), the stress rule's 421, and Postfix hangs up. An
# unlisted client is delivered. The milter logs the verdict as the connect
# rule's.
#
# Clients are faked with XCLIENT (TEST-NET addresses, only strings in the
# dialogue); DNS is on 127.0.0.1.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 60
need perl
LISTED=192.0.2.10  # bl.test: 127.0.0.2
CLEAN=198.51.100.7 # in no zone

DNS_PORT=""
dns_start DNS_PORT --local-ttl=0 --local=/bl.test/ --host-record=10.2.0.192.bl.test,127.0.0.2
SLOW_PORT=$(free_port)
perl "$top_srcdir/tests/bench/dns-delay.pl" "$SLOW_PORT" "$DNS_PORT" 400 &
track_pid $!
pass "dnsmasq serves bl.test, 400 ms late on 127.0.0.1:$SLOW_PORT"

# shellcheck disable=SC2016 # the $ are the milter's
cat >"$T_DIR/ms.conf" <<CONF
dns_servers = 127.0.0.1:$SLOW_PORT
connect_budget = 3s
connect normal name=listed dnsbl bl.test reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
connect stress name=listed-busy dnsbl bl.test tempfail 421 4.7.1 "\$client_addr blocked; busy"
CONF
e2e_start "$T_DIR/ms.conf" "with connect-stage DNSBL rules and a DNS server 400 ms late"

# 1. Normal listener: greeted, then refused at MAIL FROM.
send listed-normal "$port_normal" --xclient-addr "$LISTED" --xclient-optional
not_queued listed-normal
xclient=$(reply listed-normal 'XCLIENT ' 1)
[[ $xclient == "220 "* ]] || { cat "$T_DIR/swaks-listed-normal.out"; fail "normal, listed: XCLIENT got '$xclient', not the 220 greeting"; }
pass "normal, listed: XCLIENT gets the 220 greeting: the connect stage did not wait for the late answer"
expect_reply listed-normal 'MAIL FROM:' 1 "554 5.7.1 $LISTED blocked using bl.test" \
	"normal, listed: MAIL FROM gets the connect rule's 554 ($ms ms)"
wait_for_line "$MLOG" "stage=connect rule=listed action=reject 554 5\.7\.1" 50 "$milter_pid"
pass "normal, listed: logged as the connect rule's verdict"

# 2. Stress listener: greeted, then the 421 at MAIL FROM, and Postfix hangs up.
send listed-stress "$port_stress" --xclient-addr "$LISTED" --xclient-optional
not_queued listed-stress
xclient=$(reply listed-stress 'XCLIENT ' 1)
[[ $xclient == "220 "* ]] || { cat "$T_DIR/swaks-listed-stress.out"; fail "stress, listed: XCLIENT got '$xclient', not the 220 greeting"; }
expect_reply listed-stress 'MAIL FROM:' 1 "421 4.7.1 $LISTED blocked; busy" \
	"stress, listed: MAIL FROM gets the stress rule's 421 ($ms ms)"
expect_line "$T_DIR/swaks-listed-stress.out" '^\*\*\* Remote host closed connection unexpectedly\.$' \
	"stress, listed: Postfix hung up"

# 3. An unlisted client is delivered.
send clean-normal "$port_normal" --xclient-addr "$CLEAN" --body "Hello"
delivered clean-normal "normal, unlisted client"
