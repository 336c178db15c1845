# A private rspamd for the tests (sourced after lib.sh).
#
# rspamd_start [WORKERS [rules]]: Debian's rspamd with a config of its own under
# T_DIR/rspamd (none of /etc/rspamd is read), one normal worker (or
# WORKERS) on 127.0.0.1 and a free port and on the unix socket
# T_DIR/rspamd/rspamd.sock, no controller, proxy or fuzzy worker. It needs
# no network: every plugin that fetches maps or talks to Redis, DNS or
# fuzzy servers is off (rspamd turns off a plugin that has no config
# section, and only the settings plugin has one here), its resolver points
# at a closed loopback port, and its list of top-level domains is a file of
# five lines written here (Debian's full list takes rspamd 13 s to compile
# at every start, this one a few ms). What still works: GTUBE (rspamd's
# core: action reject, symbol GTUBE), the actions reject 15, add header 6,
# greylist 4, and the settings id "milter-stress-light", which adds the
# symbol MS_LIGHT (a test sees that the id arrived). With "rules", also
# Debian's rules (rules/rspamd.lua: regexp, header, MIME and URL checks; no
# plugin among them) so that a scan costs what it costs on a real MX.
#
# With RSPAMD_MILTER=1 in the environment, also rspamd's own milter: a
# proxy worker in milter mode that scans itself (self_scan), on 127.0.0.1
# and a free port, rspamd_milter_port (a milter socket inet:PORT@127.0.0.1:
# Postfix's smtpd_milters, or milter-probe), to compare with milter-stress
# calling the normal worker.
#
# Returns once rspamd answers /ping; sets rspamd_port, rspamd_pid (the main
# process; tracked), rspamd_sock, rspamd_log, rspamd_endpoint
# (inet:127.0.0.1:PORT) and rspamd_start_ms (from exec to the first pong).
#
# rspamd_stop: SIGTERM to the main process, wait until it is gone. At exit
# (also after fail) every process of it is resumed and ended.
# rspamd_workers: the pids of its normal workers, one a line.
# rspamd_sigstop / rspamd_sigcont: stop (hang) or resume the main process
# and every worker: connections are still accepted by the kernel, nothing
# answers.
# rspamd_connections: established TCP connections to its port now.
# rspamd_ping: true when it answers /ping.
# rspamd_expect_offline: fail when its log shows a fetch, a DNS query or a
# Redis connection.

need rspamd
need curl
need ss

rspamd_ping() {
	curl -s -m 1 "http://127.0.0.1:$rspamd_port/ping" 2>/dev/null | grep -q "^pong"
}

rspamd_start() {
	rs_workers=${1:-1}
	rs_rules=""
	[ "${2:-}" = rules ] && rs_rules='lua = "${RULESDIR}/rspamd.lua";'
	rs_dir="$T_DIR/rspamd"
	mkdir -p "$rs_dir/db" "$rs_dir/run" "$rs_dir/local"
	rspamd_port=$(free_port)
	rspamd_sock="$rs_dir/rspamd.sock"
	rspamd_log="$rs_dir/rspamd.log"
	rspamd_endpoint="inet:127.0.0.1:$rspamd_port"
	dead_dns=$(free_port)
	rs_milter=""
	if [ -n "${RSPAMD_MILTER:-}" ]; then
		rspamd_milter_port=$(free_port)
		rs_milter="worker \"rspamd_proxy\" {
	bind_socket = \"127.0.0.1:$rspamd_milter_port\";
	milter = yes;
	timeout = 120s;
	upstream \"local\" { default = yes; self_scan = yes; }
	count = $rs_workers;
}"
	fi
	printf 'com\norg\nnet\nexample\ntest\n' >"$rs_dir/tld.dat"
	cat >"$rs_dir/rspamd.conf" <<EOF
options {
	pidfile = "$rs_dir/run/rspamd.pid";
	dns { nameserver = ["127.0.0.1:$dead_dns"]; }
	url_tld = "$rs_dir/tld.dat";
}
logging {
	type = "file";
	filename = "$rspamd_log";
	level = "info";
}
worker "normal" {
	bind_socket = "127.0.0.1:$rspamd_port";
	bind_socket = "$rspamd_sock mode=0666";
	count = $rs_workers;
}
actions {
	reject = 15;
	add_header = 6;
	greylist = 4;
}
settings {
	milter-stress-light {
		id = "milter-stress-light";
		apply { symbols = ["MS_LIGHT"]; }
	}
}
modules {
	path = "\${PLUGINSDIR}";
}
$rs_rules
$rs_milter
EOF
	# Run as root (CI), rspamd wants -i to let its workers keep root.
	rs_root=""
	[ "$(id -u)" = 0 ] && rs_root=-i
	rs_t0=$(date +%s%N)
	rspamd -f $rs_root -c "$rs_dir/rspamd.conf" --var=DBDIR="$rs_dir/db" \
		--var=RUNDIR="$rs_dir/run" --var=LOGDIR="$rs_dir" \
		--var=LOCAL_CONFDIR="$rs_dir/local" >"$rs_dir/stdout" 2>&1 &
	rspamd_pid=$!
	track_pid "$rspamd_pid"
	# At exit, before lib.sh's SIGTERM: a stopped rspamd would not see it,
	# and its workers would outlive a main process killed with SIGKILL.
	at_exit rspamd_end
	(wait_until "rspamd does not answer /ping on 127.0.0.1:$rspamd_port" 300 "$rspamd_pid" rspamd_ping) ||
		{ tail -n 30 "$rs_dir/stdout" "$rspamd_log"; exit 1; }
	rspamd_start_ms=$((($(date +%s%N) - rs_t0) / 1000000))
	wait_for_unix_socket "$rspamd_sock" 50 "$rspamd_pid"
	[ -z "$rs_milter" ] || wait_for_tcp "$rspamd_milter_port" 50 "$rspamd_pid"
}

rspamd_workers() {
	ps -o pid=,args= --ppid "$rspamd_pid" 2>/dev/null | awk '/normal/ { print $1 }'
}

rspamd_all_pids() { echo "$rspamd_pid"; ps -o pid= --ppid "$rspamd_pid" 2>/dev/null; }

rspamd_sigstop() { for p in $(rspamd_all_pids); do kill -STOP "$p"; done; }
rspamd_sigcont() { for p in $(rspamd_all_pids); do kill -CONT "$p"; done; }

# Every process resumed and ended, the workers too.
rspamd_end() {
	re_pids=$(rspamd_all_pids)
	kill -CONT $re_pids 2>/dev/null
	kill -TERM "$rspamd_pid" 2>/dev/null
	re_i=0
	while ! gone "$rspamd_pid" && [ $re_i -lt 50 ]; do sleep 0.1; re_i=$((re_i + 1)); done
	kill -KILL $re_pids 2>/dev/null
	return 0
}

rspamd_stop() {
	kill -CONT "$rspamd_pid" 2>/dev/null
	kill -TERM "$rspamd_pid" 2>/dev/null
	wait_until "rspamd $rspamd_pid does not stop" 100 "" gone "$rspamd_pid"
}

rspamd_connections() {
	ss -Htn state established "( sport = :$rspamd_port )" 2>/dev/null | wc -l
}

rspamd_expect_offline() {
	# Lines naming a plugin that rspamd turned off at start do not count.
	if grep -va 'rspamd_config_is_module_enabled' "$rspamd_log" |
		grep -Eia 'rspamd_map|http_map|map_helper|redis|fuzzy_check|rdns|dns_request|resolve failed|upstream'; then
		fail "rspamd's log shows network access beyond its own sockets"
	fi
	pass "rspamd fetched nothing and asked no DNS, Redis or fuzzy server"
}
