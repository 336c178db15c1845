#!/bin/bash
# milter-stress stopped (SIGTERM) in the middle of a load through a real
# Postfix configured with the shipped conf/postfix-main.cf, whose
# milter_default_action = tempfail. CLIENTS SMTP clients send PER messages
# each, one SMTP session per message, each with a Message-ID of its own; in
# the middle of it the milter gets SIGTERM. Then:
#  - every session got 2xx or 4xx, never 5xx (the milter has no rule that
#    rejects: a 5xx would be unearned), and never a dropped connection;
#  - milter-stress is started again, and the clients send once more what
#    was tempfailed: it is all accepted;
#  - the sink got every message exactly once: none lost, none twice.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

watchdog 120
need perl
CLIENTS=10
PER=20
N=$((CLIENTS * PER))

cat >"$T_DIR/milter-stress.conf" <<'EOF'
stress_header = X-Stress
EOF
e2e_start "$T_DIR/milter-stress.conf" "(no rules)"
action=$(pf_postconf -h milter_default_action)
[ "$action" = tempfail ] || fail "the shipped main.cf snippet sets milter_default_action = $action"
pass "the shipped snippet sets milter_default_action = tempfail"

# smtp-client PORT OUT ID...: one SMTP session per ID; appends "ID STAGE
# CODE" to OUT for each: the stage of the first reply that was not 2xx/3xx
# and its code, or "eom 250". A connection that breaks without a reply is
# CODE "none".
cat >"$T_DIR/smtp-client.pl" <<'EOF'
use strict;
use warnings;
use IO::Socket::INET;

my ($port, $out, @ids) = @ARGV;
open(my $o, '>>', $out) or die "$out: $!\n";
$o->autoflush(1);

sub reply {
	my ($s) = @_;
	while (defined(my $line = <$s>)) {
		return 'bad' unless $line =~ /^(\d\d\d)([ -])/;
		return $1 if $2 eq ' ';
	}
	return 'none';
}

sub session {
	my ($id) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10)
		or return ('connect', 'none');
	$s->autoflush(1);
	my @steps = (
		['banner', undef, qr/^2/],
		['ehlo', "EHLO client.milter-stress.test\r\n", qr/^2/],
		['mail', "MAIL FROM:<sender\@example.org>\r\n", qr/^2/],
		['rcpt', "RCPT TO:<rcpt\@example.net>\r\n", qr/^2/],
		['data', "DATA\r\n", qr/^3/],
		['eom', "From: <sender\@example.org>\r\nTo: <rcpt\@example.net>\r\n"
			. "Subject: $id\r\nMessage-ID: <$id\@milter-stress.test>\r\n\r\n"
			. "Message $id.\r\n.\r\n", qr/^2/],
	);
	for my $st (@steps) {
		my ($stage, $cmd, $ok) = @$st;
		print $s $cmd if defined $cmd;
		my $code = reply($s);
		return ($stage, $code) unless $code =~ $ok;
		if ($stage eq 'eom') {
			print $s "QUIT\r\n";
			reply($s);
			return ($stage, $code);
		}
	}
}

for my $id (@ids) {
	my ($stage, $code) = session($id);
	print $o "$id $stage $code\n";
}
EOF

# run_clients ROUND ID...: the IDs shared out among CLIENTS clients running
# at once; results in $T_DIR/ROUND.res. Sets clients_pids.
run_clients() {
	round=$1
	shift
	: >"$T_DIR/$round.res"
	clients_pids=""
	for c in $(seq 1 $CLIENTS); do
		ids=()
		i=0
		for id in "$@"; do
			[ $((i % CLIENTS + 1)) = "$c" ] && ids+=("$id")
			i=$((i + 1))
		done
		[ ${#ids[@]} -gt 0 ] || continue
		perl "$T_DIR/smtp-client.pl" "$port_normal" "$T_DIR/$round.res" "${ids[@]}" \
			2>>"$T_DIR/$round.err" &
		track_pid $!
		clients_pids="$clients_pids $!"
	done
}

wait_clients() {
	for p in $clients_pids; do wait "$p" || fail "an SMTP client exited with status $?"; done
}

all_ids=()
for c in $(seq 1 $CLIENTS); do
	for k in $(seq 1 $PER); do all_ids+=("sigterm-$c-$k"); done
done

# 1. The load, and SIGTERM once a third of it is done.
t0=$(date +%s%N)
run_clients first "${all_ids[@]}"
i=0
while [ "$(wc -l <"$T_DIR/first.res")" -lt $((N / 3)) ]; do
	[ $i -ge 600 ] && fail "the load does not progress: $(wc -l <"$T_DIR/first.res") of $N after 60 s"
	sleep 0.1
	i=$((i + 1))
done
done_at_term=$(wc -l <"$T_DIR/first.res")
kill -TERM "$milter_pid"
t_term=$(date +%s%N)
wait_until "milter-stress did not stop within 15 s of SIGTERM" 150 "" gone "$milter_pid"
stop_ms=$((($(date +%s%N) - t_term) / 1000000))
wait "$milter_pid"
rc=$?
[ $rc = 0 ] || fail "milter-stress exited $rc after SIGTERM"
pass "milter-stress stopped ${stop_ms} ms after SIGTERM, with $done_at_term of $N sessions done"
wait_clients
secs=$((($(date +%s%N) - t0) / 1000000))
[ "$(wc -l <"$T_DIR/first.res")" = $N ] || fail "$(wc -l <"$T_DIR/first.res") results for $N messages"

# 2. Replies: 2xx or 4xx, never 5xx, never none.
count() { awk -v re="$2" '$3 ~ re' "$T_DIR/$1.res" | wc -l | tr -d ' '; }
ok=$(count first '^2')
tempfailed=$(count first '^4')
if [ $((ok + tempfailed)) != $N ]; then
	awk '$3 !~ /^[24]/' "$T_DIR/first.res" | head
	fail "$((N - ok - tempfailed)) sessions got neither 2xx nor 4xx (above)"
fi
[ "$tempfailed" -gt 0 ] || fail "no session was tempfailed: the milter stopped after the load"
stages=$(awk '$3 ~ /^4/ { print $2 " " $3 }' "$T_DIR/first.res" | sort | uniq -c | awk '{ printf "%s%s %s x%s", s, $2, $3, $1; s = ", " }')
pass "first round: $N messages from $CLIENTS clients in $secs ms: $ok accepted, $tempfailed tempfailed ($stages), no 5xx, none without a reply"

# 3. The milter again, on the same port; the tempfailed ones once more.
start_daemon "$MLOG" "inet:$milter_port@127.0.0.1" -c "$T_DIR/milter-stress.conf"
milter_pid=$ms_pid
mapfile -t retry < <(awk '$3 ~ /^4/ { print $1 }' "$T_DIR/first.res")
run_clients retry "${retry[@]}"
wait_clients
ok2=$(count retry '^2')
if [ "$ok2" != "$tempfailed" ]; then
	awk '$3 !~ /^2/' "$T_DIR/retry.res" | head
	fail "retry: $ok2 of $tempfailed accepted (the others above)"
fi
pass "retry with the milter back: all $tempfailed tempfailed messages accepted"

# 4. The sink: every message exactly once.
sink_wait_count $N 300
sink_files | xargs grep -h '^Message-ID: <sigterm-' | sed 's/^Message-ID: <\(.*\)@.*/\1/' |
	sort >"$T_DIR/delivered"
printf '%s\n' "${all_ids[@]}" | sort >"$T_DIR/sent"
dups=$(uniq -d "$T_DIR/delivered" | wc -l)
[ "$dups" = 0 ] || { uniq -d "$T_DIR/delivered" | head; fail "$dups messages delivered twice"; }
if ! cmp -s "$T_DIR/sent" "$T_DIR/delivered"; then
	comm -23 "$T_DIR/sent" "$T_DIR/delivered" | head
	fail "$(comm -23 "$T_DIR/sent" "$T_DIR/delivered" | wc -l) messages never delivered (above)"
fi
pass "the sink has each of the $N messages exactly once"
n_xs=$(sink_files | xargs grep -l '^X-Stress: no$' | wc -l)
[ "$n_xs" = $N ] || fail "$n_xs of $N delivered messages carry X-Stress: no: some passed without the milter"
pass "every delivered message went through the milter (X-Stress: no)"
exit 0
