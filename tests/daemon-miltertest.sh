#!/bin/bash
# The daemon on a unix socket, driven by Debian's miltertest (OpenDKIM's
# Lua-scripted MTA simulator): stress, no stress, and no macro at all.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
need miltertest

sock="$T_DIR/ms.sock"
start_daemon "$T_DIR/ms.log" "unix:$sock" -c "$top_srcdir/conf/milter-stress.conf"

miltertest -D "sock=unix:$sock" -s "$top_srcdir/tests/daemon-miltertest.lua" \
	>"$T_DIR/mt.out" 2>&1 || { cat "$T_DIR/mt.out" "$T_DIR/ms.log"; fail "miltertest"; }
cat "$T_DIR/mt.out"
expect_line "$T_DIR/ms.log" \
	'MT0001: stress=yes\(macro\) stage=eom action=accept client=client.example\[192.0.2.9\]' \
	"log line of the stressed message"
expect_line "$T_DIR/ms.log" 'MT0001: stress=no\(none\) stage=eom' \
	"log line of the message without a stress macro"
