#!/bin/bash
# make bench-flood: legitimate mail through a bot flood, Postfix alone
# against Postfix with milter-stress, side by side in one run.
#
# The scene, built anew for every configuration (so Postfix's stress latch,
# its postscreen cache and the milter's state start from zero each time):
# - a private Postfix: postscreen on 127.0.0.1 hands clients over to
#   "smtpd pass" with a small process limit (FLOOD_SMTPD_LIMIT, 20). master
#   puts that service under stress when all its processes are busy (it never
#   does for a plain loopback smtpd); the greeting shows stress=yes|no, which
#   every client records (only smtpd's greeting has it: postscreen's own,
#   when it cannot hand a client over, does not). Legitimate clients skip
#   postscreen's tests (postscreen_access_list), bots take its greeting
#   test. Mail is relayed to smtp-sink; relay_recipient_maps knows one
#   recipient, rcpt@example.net.
# - a DNSBL, bl.test, listing the bots' network 127.1.0.0/16: dnsmasq behind
#   tests/bench/dns-delay.pl (FLOOD_DNS_DELAY ms, 50) on port 53 of a
#   loopback address of its own. Postfix's resolver only asks port 53 of the
#   servers in /etc/resolv.conf, so Postfix runs in a mount namespace where a
#   private resolv.conf names that server (unshare -m; nothing is changed
#   outside the namespace).
# - the clients (tests/bench/flood-clients.py): legitimate senders at
#   FLOOD_LEGIT_RATE messages/s (2) from 127.2.0.0/16 for the whole run;
#   FLOOD_BOTS bots (150) from 2000 addresses of 127.1.0.0/16 during the
#   flood only, slow (FLOOD_BOT_DELAY, "1,4" s before each command), bare-IP
#   HELO, unknown recipients, unfinished DATA, reconnecting when refused.
#   Phases: FLOOD_WARM s (5) calm, FLOOD_SECONDS s (60) of flood, FLOOD_CALM
#   s (30) calm again; a legitimate session gives up after
#   FLOOD_LEGIT_TIMEOUT s (60) and counts as deferred.
#
# Configurations:
#   a  Postfix alone: its stress defaults and its strongest built-in defence,
#      reject_rbl_client bl.test with rbl_reply_maps answering 521 (and
#      hanging up) under stress, 554 otherwise.
#   b  a + milter-stress, stress from Postfix's {stress} macro only, with the
#      shipped flood profile conf/example-flood.conf (less its line that
#      accepts every loopback client: here the bots are loopback clients)
#      and a stress-mode DNSBL rule on bl.test (421 at connect).
#   c  b + the milter's own load signal: stress_sources = macro, sessions,
#      with service_limits = smtpd=FLOOD_SMTPD_LIMIT (stress_enter 80 %).
#   d  c + the client-dependent personality: an LMDB client history in
#      which the legitimate senders' addresses are known (FLOOD_KNOWN_D of
#      them, 20: every one; written with milter-stress-history before the
#      milter starts), a personality rule that gives known clients the
#      normal personality under stress, and a stress rule that answers
#      every stranger 421 (try later) at connect.
#   c and d can be replaced: FLOOD_CONF_C (a configuration file) or
#      FLOOD_ADD_C (lines added to b's configuration) and FLOOD_PRE_C
#      (lines put before it: rules run in file order); FLOOD_CONF_D,
#      FLOOD_ADD_D and FLOOD_PRE_D the same. In those files @DNS@ is replaced by the
#      DNSBL's server (for dns_servers), @LIMIT@ by smtpd's process limit
#      (for the milter's count of sessions), @PORT2@ by a second free port
#      and @STATE@ by a directory of the configuration's own (for a history
#      store); FLOOD_MAIN_C / FLOOD_MAIN_D are extra main.cf lines for them
#      (@PORT@ and @PORT2@ are the milter's ports), e.g. a stress endpoint
#      in smtpd_milters; FLOOD_KNOWN_name legitimate addresses are written
#      into its history store first.
#   Any other name (a-z0-9) is a configuration of your own, defined the same
#   way (FLOOD_CONF_name or FLOOD_ADD_name), e.g. a variant of b to compare;
#   FLOOD_OPTS_name are options for the milter's command line (e.g.
#   "-o stress=yes", the stress personality from the start).
# FLOOD_CONFIGS ("a b c d") picks which run, in that order.
#
# Figures per configuration: legitimate messages accepted per second during
# the flood, p50/p99 latency (connect to the final 250) of the legitimate
# messages started during the flood, legitimate messages delivered exactly
# once (matched at the sink), deferred and refused; bot sessions and those
# refused; the seconds bots held smtpd processes (from the bot side: from
# smtpd's greeting to the end of the session); seconds from the flood's start
# to the first stressed greeting and from its end to the last one
# (Postfix's {stress}); the milter's own "stress on"/"stress off" log lines
# when its configuration has a load signal of its own; CPU seconds of the
# whole Postfix process tree and of the milter. Then a PNG of legitimate
# goodput over time, one line per configuration (FLOOD_PNG, default
# flood.png in the current directory). FLOOD_OUT keeps the raw files.
#
#   make bench-flood [FLOOD_SECONDS=60] [FLOOD_CONF_C=path] ...
#   (a $ in a FLOOD_* value on make's command line is written $$)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/postfix-lib.sh"

warm=${FLOOD_WARM:-5}
flood=${FLOOD_SECONDS:-60}
calm=${FLOOD_CALM:-30}
bots=${FLOOD_BOTS:-150}
rate=${FLOOD_LEGIT_RATE:-2}
limit=${FLOOD_SMTPD_LIMIT:-20}
dns_delay=${FLOOD_DNS_DELAY:-50}
bot_delay=${FLOOD_BOT_DELAY:-1,4}
legit_timeout=${FLOOD_LEGIT_TIMEOUT:-60}
configs=${FLOOD_CONFIGS:-a b c d}
# The built-in c and d, unless replaced (above).
own_signal="stress_sources = macro, sessions
service_limits = smtpd=@LIMIT@"
if [ -z "${FLOOD_CONF_C:-}${FLOOD_ADD_C:-}" ]; then
	FLOOD_ADD_C=$own_signal
	FLOOD_LABEL_C="b + its own load signal: sessions of smtpd against its process limit"
fi
if [ -z "${FLOOD_CONF_D:-}${FLOOD_ADD_D:-}" ]; then
	FLOOD_ADD_D="$own_signal
history_store = lmdb:@STATE@/history.lmdb"
	# Rules run in file order, each waiting for its own answers: the
	# strangers' rule goes before b's DNSBL rule, so that it answers at once.
	FLOOD_PRE_D="connect stress name=known history known personality normal
connect stress name=strangers any tempfail 421 4.7.1 \"busy: strangers, try again later\""
	FLOOD_KNOWN_D=${FLOOD_KNOWN_D:-20}
	FLOOD_LABEL_D="c + client history (LMDB): known clients normal under stress, strangers 421"
fi
png=${FLOOD_PNG:-$PWD/flood.png}
out=${FLOOD_OUT:-$T_DIR/out}
clients=$top_srcdir/tests/bench/flood-clients.py

# Per configuration: the run, at most the legitimate timeout for the last
# sessions, a minute to drain the queue, half a minute to start and stop.
n_conf=$(wc -w <<<"$configs")
watchdog "${FLOOD_WATCHDOG:-$(((warm + flood + calm + legit_timeout + 90) * n_conf + 60))}"
pf_need
need python3
need gnuplot
need perl
need unshare
need mount
need /usr/sbin/dnsmasq
need "$MILTER_STRESS_BIN"
mkdir -p "$out" || fail "cannot create $out"
results=$out/results.jsonl
: >"$results"

echo "milter-stress flood benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: make bench-flood FLOOD_CONFIGS=\"$configs\" FLOOD_WARM=$warm FLOOD_SECONDS=$flood FLOOD_CALM=$calm" \
	"FLOOD_BOTS=$bots FLOOD_LEGIT_RATE=$rate FLOOD_SMTPD_LIMIT=$limit FLOOD_DNS_DELAY=$dns_delay" \
	"FLOOD_BOT_DELAY=$bot_delay FLOOD_LEGIT_TIMEOUT=$legit_timeout" \
	"$(for c in $configs; do
		for k in CONF PRE ADD OPTS MAIN KNOWN; do
			v=FLOOD_${k}_${c^^}
			[ -z "${!v:-}" ] || printf '%s="%s" ' "$v" "$([ $k = CONF ] && basename "${!v}" || echo "${!v}")"
		done
	done)"

# ---- the DNSBL: dnsmasq, and the delaying relay on port 53 ------------------
DNS_UP=""
dns_start DNS_UP --local=/bl.test/ --address=/1.127.bl.test/127.0.0.2 \
	--txt-record=bl.test,"bench list" --local=/in-addr.arpa/ --local=/test/ --local=/net/
# A loopback address of this run's own (from a free port's number), so that
# two runs on one machine do not both want port 53 of the same address.
dns_p=$(free_port)
dns_addr=127.53.$((dns_p / 256)).$((dns_p % 256))
perl "$top_srcdir/tests/bench/dns-delay.pl" "$dns_addr:53" "$DNS_UP" "$dns_delay" 2>"$T_DIR/dns-delay.log" &
track_pid $!
sleep 0.3
kill -0 $! 2>/dev/null || { cat "$T_DIR/dns-delay.log"; fail "dns-delay.pl did not start on $dns_addr:53"; }
printf 'nameserver %s\noptions timeout:2 attempts:2\n' "$dns_addr" >"$T_DIR/resolv.conf"
[ -e /etc/resolv.conf ] || fail "/etc/resolv.conf does not exist: nothing to bind the private one onto"
# Postfix in a mount namespace that sees the private resolv.conf.
cat >"$T_DIR/postfix-ns" <<EOF
#!/bin/sh
exec unshare -m --propagation private sh -c 'mount --bind "\$0" /etc/resolv.conf && exec postfix "\$@"' "$T_DIR/resolv.conf" "\$@"
EOF
chmod 755 "$T_DIR/postfix-ns"
PF_POSTFIX=$T_DIR/postfix-ns
echo "DNSBL bl.test (127.1.0.0/16 listed) on $dns_addr:53, answers ${dns_delay} ms late; Postfix resolves through it"

sink_start "$T_DIR/sink"

# ---- helpers ------------------------------------------------------------------
# tree_cpu PID: CPU seconds (user + system, reaped children included) of PID
# and every process below it.
tree_cpu() {
	# cat, not awk, opens the files: a process may end between the glob and
	# the open, and awk would stop there.
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" -v hz="$(getconf CLK_TCK)" '
		{
			pid = $1
			line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
			ppid[pid] = f[2]; ticks[pid] = f[12] + f[13] + f[14] + f[15]
		}
		END {
			in_tree[root] = 1
			do {
				grew = 0
				for (p in ppid) if (!(p in in_tree) && (ppid[p] in in_tree)) { in_tree[p] = 1; grew = 1 }
			} while (grew)
			for (p in in_tree) s += ticks[p]
			printf "%.2f\n", s / hz
		}'
}

# The milter's stderr, each line prefixed with the time (epoch seconds), for
# its "stress on"/"stress off" lines.
cat >"$T_DIR/ts-exec" <<'EOF'
#!/bin/bash
exec "$@" 2> >(exec perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%.3f %s", time, $_' 1>&2)
EOF
chmod 755 "$T_DIR/ts-exec"

# The configuration of b: the shipped flood profile, every loopback client
# no longer accepted (the bots are loopback clients here), and the DNSBL.
conf_b=$T_DIR/flood-b.conf
{
	grep -v '^connect client 127\.0\.0\.0/8' "$top_srcdir/conf/example-flood.conf"
	echo "dns_servers = $dns_addr:53"
	# shellcheck disable=SC2016 # the milter expands these
	echo 'connect stress dnsbl bl.test=127.0.0.2 tempfail 421 4.7.1 "$client_addr blocked using $rbl_domain"'
} >"$conf_b"

printf '%s\n' "bl.test 521 4.7.1 Service unavailable; \$rbl_class [\$rbl_what] blocked using \$rbl_domain\${rbl_reason?; \$rbl_reason}" \
	>"$T_DIR/rbl_reply"
echo "rcpt@example.net OK" >"$T_DIR/recipients"
echo "127.2.0.0/16 permit" >"$T_DIR/legit.cidr"
pf_main_a="mynetworks = 127.0.0.1/32
smtpd_client_restrictions = reject_rbl_client bl.test
rbl_reply_maps = \${stress?{texthash:$T_DIR/rbl_reply}}
relay_recipient_maps = texthash:$T_DIR/recipients
postscreen_access_list = permit_mynetworks, cidr:$T_DIR/legit.cidr
smtpd_banner = \$myhostname ESMTP"

# run_config TAG LABEL [MILTER_CONF [EXTRA_MAIN]]
run_config() {
	rc_tag=$1 rc_label=$2 rc_conf=${3:-} rc_extra=${4:-} # and rc_opts: the milter's options
	rc_dir=$T_DIR/$rc_tag
	mkdir -p "$rc_dir"
	rc_main=$pf_main_a
	rc_mlog=""
	rc_mpid=""
	if [ -n "$rc_conf" ]; then
		rc_port=$(free_port)
		rc_port2=$(free_port)
		mkdir -p "$rc_dir/state"
		sed -e "s/@DNS@/$dns_addr:53/g" -e "s/@PORT2@/$rc_port2/g" -e "s/@LIMIT@/$limit/g" \
			-e "s|@STATE@|$rc_dir/state|g" "$rc_conf" >"$rc_dir/milter.conf"
		chmod 644 "$rc_dir/milter.conf"
		# Known clients: the legitimate senders' first rc_known addresses
		# (flood-clients.py's addr_in()), in the store the milter will open.
		for ((rc_i = 0; rc_i < ${rc_known:-0}; rc_i++)); do
			"$top_builddir/tools/milter-stress-history" -c "$rc_dir/milter.conf" \
				add "127.2.$((1 + rc_i / 250)).$((1 + rc_i % 250))" >/dev/null ||
				fail "$rc_tag: milter-stress-history add failed"
		done
		# The milter runs as nobody when the bench runs as root.
		[ "$(id -u)" != 0 ] || chown -R nobody "$rc_dir/state"
		rc_mlog=$rc_dir/milter.log
		start_listener "$rc_mlog" "inet:$rc_port@127.0.0.1" "$T_DIR/ts-exec" "$MILTER_STRESS" -f \
			-c "$rc_dir/milter.conf" -p "inet:$rc_port@127.0.0.1" "${rc_opts[@]}"
		rc_mpid=$bg_pid
		rc_main="$rc_main
$(pf_shipped_main "$rc_port")" || fail "main.cf snippet"
		[ -z "$rc_extra" ] || rc_main="$rc_main
$(sed -e "s/@PORT@/$rc_port/g" -e "s/@PORT2@/$rc_port2/g" <<<"$rc_extra")"
	fi
	rc_smtp=$(free_port)
	pf_start "$rc_dir/pf" "$rc_main" "127.0.0.1:$rc_smtp inet  n       -       n       -       1       postscreen
smtpd     pass  -       -       n       -       $limit      smtpd
  -o milter_macro_daemon_name=smtpd
  -o { smtpd_banner = \$myhostname ESMTP stress=\${stress?{yes}:{no}} }"
	rc_cpu0=$(tree_cpu "$PF_MASTER_PID")
	rc_mcpu0=""
	[ -z "$rc_mpid" ] || rc_mcpu0=$(tree_cpu "$rc_mpid")
	echo "== $rc_tag: $rc_label (postscreen on 127.0.0.1:$rc_smtp, smtpd pass maxproc $limit)"
	python3 -B "$clients" run --server "127.0.0.1:$rc_smtp" --tag "$rc_tag" --out "$out/$rc_tag.events" \
		--warm "$warm" --flood "$flood" --calm "$calm" --bots "$bots" --bot-delay "$bot_delay" \
		--legit-rate "$rate" --legit-timeout "$legit_timeout" 2>"$rc_dir/clients.err" ||
		{ cat "$rc_dir/clients.err"; fail "$rc_tag: the clients failed"; }
	# Every accepted message must reach the sink: wait for the queue to drain.
	rc_i=0
	while [ -n "$(find "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" -type f 2>/dev/null | head -n 1)" ] &&
		[ $rc_i -lt 600 ]; do
		sleep 0.1
		rc_i=$((rc_i + 1))
	done
	rc_cpu=$(awk -v a="$rc_cpu0" -v b="$(tree_cpu "$PF_MASTER_PID")" 'BEGIN { printf "%.1f", b - a }')
	rc_mcpu=""
	[ -z "$rc_mpid" ] || rc_mcpu=$(awk -v a="$rc_mcpu0" -v b="$(tree_cpu "$rc_mpid")" 'BEGIN { printf "%.1f", b - a }')
	cp "$PF_LOG" "$out/$rc_tag.maillog"
	pf_stop
	if [ -n "$rc_mpid" ]; then
		stop_daemon_status "$rc_mpid" "$rc_mlog" "$rc_tag: milter-stress"
		cp "$rc_mlog" "$out/$rc_tag.milter.log"
	fi
	python3 -B "$clients" report --events "$out/$rc_tag.events" --sink "$SINK_DIR" --label "$rc_label" \
		${rc_mlog:+--milter-log "$rc_mlog"} --cpu-postfix "$rc_cpu" ${rc_mcpu:+--cpu-milter "$rc_mcpu"} \
		>>"$results" || fail "$rc_tag: no report"
	echo "   stressed greetings: $(grep -c "\"stress\": \"yes\"" "$out/$rc_tag.events"), postscreen 'all server ports busy': $(grep -c 'all server ports busy' "$out/$rc_tag.maillog")"
}

for c in $configs; do
	rc_opts=() rc_known=0
	[[ $c =~ ^[a-z][a-z0-9]*$ ]] || fail "FLOOD_CONFIGS: '$c' is not a configuration name (a, b, c, d, or a-z0-9 of your own)"
	case $c in
	a) run_config a "Postfix alone: stress defaults, reject_rbl_client, 521 under stress" ;;
	b) run_config b "+ milter-stress, {stress} macro only, example-flood.conf + stress DNSBL rule" "$conf_b" ;;
	*)
		v=FLOOD_CONF_${c^^}
		add=FLOOD_ADD_${c^^}
		opts=FLOOD_OPTS_${c^^}
		m=FLOOD_MAIN_${c^^}
		known=FLOOD_KNOWN_${c^^}
		rc_known=${!known:-0}
		read -r -a rc_opts <<<"${!opts:-}"
		if [ -n "${!v:-}" ]; then
			[ -r "${!v}" ] || fail "$v=${!v}: cannot read it"
			run_config "$c" "+ milter-stress with $(basename "${!v}")${!opts:+ ${!opts}}" "${!v}" "${!m:-}"
		elif [ -n "${!add:-}${!opts:-}" ]; then # (and FLOOD_PRE_x, if any)
			pre=FLOOD_PRE_${c^^}
			{
				[ -z "${!pre:-}" ] || printf '%s\n' "${!pre}"
				cat "$conf_b"
				[ -z "${!add:-}" ] || printf '%s\n' "${!add}"
			} >"$T_DIR/flood-$c.conf"
			label=FLOOD_LABEL_${c^^}
			run_config "$c" "${!label:-b + $(tr '\n' ';' <<<"${!add:-}" | sed 's/;$//')${!opts:+ ${!opts}}}" \
				"$T_DIR/flood-$c.conf" "${!m:-}"
		else
			fail "FLOOD_CONFIGS: configuration '$c' has none of $v, $add, $opts"
		fi
		;;
	esac
done

if [ ! -s "$results" ]; then
	echo "no configuration ran: no table, no plot"
	exit 0
fi
echo
echo "phases: ${warm} s calm, ${flood} s flood ($bots bots), ${calm} s calm; legitimate: $rate msg/s offered, timeout ${legit_timeout} s"
python3 -B "$clients" table --results "$results" --plot-data "$out/goodput.dat" || fail "no table"
cat >"$out/goodput.gp" <<EOF
set terminal pngcairo size 960,540 font ",10"
set output '$png'
set title "Legitimate goodput through a bot flood ($bots bots, ${flood} s; smtpd limit $limit; $rate msg/s offered)"
set xlabel 'seconds from the start of the flood'
set ylabel 'legitimate messages accepted per second (5 s buckets)'
set xrange [-$warm:$((flood + calm + 5))]
set yrange [0:*]
set key outside right
set grid
set arrow from 0, graph 0 to 0, graph 1 nohead dashtype 2
set arrow from $flood, graph 0 to $flood, graph 1 nohead dashtype 2
set label 'flood' at $((flood / 2)), graph 0.97 center
plot for [i=0:$(($(wc -l <"$results") - 1))] '$out/goodput.dat' index i using (\$1+2.5):2 with linespoints title columnheader(1)
EOF
gnuplot "$out/goodput.gp" 2>"$T_DIR/gnuplot.err" || { cat "$T_DIR/gnuplot.err"; fail "gnuplot failed"; }
echo "plot: $png"
