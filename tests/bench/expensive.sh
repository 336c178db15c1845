#!/bin/bash
# Expensive checks, normal against stress, side by side in one run.
#
# A DNSBL served by dnsmasq behind a relay that answers 50 ms late, and a
# body rule over a 64 KiB body. milter-probe --bench plays the load (every
# transaction from a new IPv6 client, so every lookup misses the cache) at 16
# and 128 concurrent sessions; the same rules run in the normal personality
# ({stress}=no: the lookup and the body scan run) and the stress one
# ({stress}=yes: both are skipped and listed in the header).
#
#   tests/bench/expensive.sh [COUNT]      (from a build tree: make bench-expensive)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
count=${1:-2000}

dns_start dns_port --local=/bl.test/
relay_port=$(free_port)
perl "$top_srcdir/tests/bench/dns-delay.pl" "$relay_port" "$dns_port" 50 &
track_pid $!
sleep 0.3

body="$T_DIR/body"
for i in $(seq 1 840); do echo "line $i of an ordinary message body, nothing to see here ....."; done >"$body"
truncate -s 65536 "$body"

sock="$T_DIR/ms.sock"
cat >"$T_DIR/ms.conf" <<CONF
dns_servers = 127.0.0.1:$relay_port
connect dnsbl bl.test=127.0.0.[2..11] reject 554 5.7.1 "\$client_addr blocked using \$rbl_domain"
eom body /lottery winner/i reject 550 5.7.1 "Content rejected"
CONF
"$MILTER_STRESS" -f -c "$T_DIR/ms.conf" -p "unix:$sock" 2>/dev/null &
track_pid $!
wait_for_unix_socket "$sock"

declare -A mps p99
for conc in 16 128; do
	for mode in no yes; do
		# A client range of its own per run: no run finds another's answers cached.
		base="2001:db8:$conc:$([ $mode = yes ] && echo 1 || echo 0)::"
		cmd=("$MILTER_PROBE" -p "unix:$sock" --client-addr "$base" --bench-vary-client
			--body "$body" -m "{stress}=$mode" --bench "$conc,$count")
		line=$("${cmd[@]}" | tail -n 1)
		echo "stress=$mode conc=$conc: $line"
		mps[$mode$conc]=$(sed -n 's/.* mps=\([0-9.]*\).*/\1/p' <<<"$line")
		p99[$mode$conc]=$(sed -n 's/.* p99=\([0-9.]*\).*/\1/p' <<<"$line")
	done
done
echo
echo "command: milter-probe -p unix:SOCK --client-addr 2001:db8:C:M:: --bench-vary-client --body 64KiB -m '{stress}=MODE' --bench C,$count"
for conc in 16 128; do
	awk -v c="$conc" -v n="${mps[no$conc]}" -v s="${mps[yes$conc]}" \
		-v pn="${p99[no$conc]}" -v ps="${p99[yes$conc]}" 'BEGIN {
		printf "conc=%d: normal %.1f msg/s p99 %.1f ms; stress %.1f msg/s p99 %.1f ms; stress/normal %.1fx msg/s, p99 %.1fx lower\n",
			c, n, pn, s, ps, s / n, pn / ps }'
done
