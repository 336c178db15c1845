#!/bin/bash
# fuzz.sh [TARGET...]: the libFuzzer targets (tests/fuzz_*.c; default: all),
# one after the other, each through run_fuzzer (lib.sh): its regression inputs
# (fuzz/regress/TARGET/), then FUZZ_SECONDS of fuzzing from its seed corpus
# (fuzz/NAME/). make check runs it as it is (a few seconds per target);
# `make fuzz` runs it with FUZZ_SECONDS=300 and the corpora kept in the build
# tree. fuzz_session_fast_clock is fuzz_session with a clock that jumps 31 s
# a read (tests/fast-clock.c): every budget runs out. A target that fails
# does not stop the others; the script fails when any of them did.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

[ $# -gt 0 ] || set -- fuzz_params fuzz_rules fuzz_session fuzz_bodyscan fuzz_mproto \
	fuzz_session_fast_clock fuzz_control fuzz_mastercf fuzz_history fuzz_rspamd fuzz_clamd fuzz_spamd

failed=""
for t in "$@"; do
	# The longest input of each target, its dictionary, and for a variant
	# the program it runs, its seeds and what it preloads.
	FUZZ_BIN=$t FUZZ_SEEDS=${t#fuzz_} FUZZ_PRELOAD=""
	case $t in
	fuzz_params | fuzz_bodyscan) max=4096 ;;
	fuzz_control) max=2048 ;; # past the daemon's CONTROL_LINE_MAX + 2
	fuzz_mastercf) max=8192 ;;
	fuzz_history) max=1024 ;; # past a record, a Redis hash, an address
	fuzz_rules | fuzz_mproto) max=8192 ;;
	fuzz_rspamd) max=16384 ;; # replies that hit many rules are a few KiB
	fuzz_clamd) max=1024 ;;   # one line
	fuzz_spamd) max=8192 ;;   # headers and a list of rule names
	fuzz_session) max=16384 ;;
	fuzz_session_fast_clock) # every budget runs out: tests/fast-clock.c
		max=16384 FUZZ_BIN=fuzz_session FUZZ_SEEDS=session
		FUZZ_PRELOAD=$top_builddir/tests/fast-clock.so
		;;
	*)
		echo "FAIL: unknown fuzz target $t" >&2
		failed="$failed $t"
		continue
		;;
	esac
	export FUZZ_BIN FUZZ_SEEDS FUZZ_PRELOAD
	# A dictionary made at build time (from the code's tables) comes first.
	dict="$top_builddir/tests/fuzz-$FUZZ_SEEDS.dict"
	[ -f "$dict" ] || dict="$top_srcdir/tests/fuzz/$FUZZ_SEEDS.dict"
	[ -f "$dict" ] || dict=""
	echo "$t: ${FUZZ_SECONDS:-4} s from $(date -u +%H:%M:%S)"
	# A subshell: fail() in run_fuzzer ends this target only.
	if ! (run_fuzzer "$t" "$max" ${dict:+"-dict=$dict"} &&
		pass "$t: $fuzz_regress regression inputs, ${fuzz_execs:-?} inputs in ${FUZZ_SECONDS:-4} s, no crash, leak or sanitizer report"); then
		failed="$failed $t"
	fi
done
[ -z "$failed" ] || fail "fuzz targets that failed:$failed"
