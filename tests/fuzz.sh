#!/bin/bash
# fuzz.sh [TARGET...]: the libFuzzer targets (tests/fuzz_*.c; default: all),
# one after the other, each through run_fuzzer (lib.sh): its regression inputs
# (fuzz/regress/TARGET/), then FUZZ_SECONDS of fuzzing from its seed corpus
# (fuzz/NAME/). make check runs it as it is (a few seconds per target);
# `make fuzz` runs it with FUZZ_SECONDS=300 and the corpora kept in the build
# tree. A target that fails does not stop the others; the script fails when
# any of them did.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

[ $# -gt 0 ] || set -- fuzz_params fuzz_rules fuzz_session fuzz_bodyscan fuzz_mproto

failed=""
for t in "$@"; do
	# The longest input of each target, and its dictionary.
	dict="$top_srcdir/tests/fuzz/${t#fuzz_}.dict"
	case $t in
	fuzz_params | fuzz_bodyscan) max=4096 ;;
	fuzz_rules | fuzz_mproto) max=8192 ;;
	fuzz_session) max=16384 ;;
	*)
		echo "FAIL: unknown fuzz target $t" >&2
		failed="$failed $t"
		continue
		;;
	esac
	[ -f "$dict" ] || dict=""
	echo "$t: ${FUZZ_SECONDS:-4} s from $(date -u +%H:%M:%S)"
	# A subshell: fail() in run_fuzzer ends this target only.
	if ! (run_fuzzer "$t" "$max" ${dict:+"-dict=$dict"} &&
		pass "$t: $fuzz_regress regression inputs, ${fuzz_execs:-?} inputs in ${FUZZ_SECONDS:-4} s, no crash, leak or sanitizer report"); then
		failed="$failed $t"
	fi
done
[ -z "$failed" ] || fail "fuzz targets that failed:$failed"
