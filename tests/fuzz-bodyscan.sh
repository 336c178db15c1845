#!/bin/bash
# The body scanner under libFuzzer (fuzz_bodyscan.c) for 20 seconds, starting
# from a copy of the seed corpus fuzz/bodyscan: a body scanned in chunks the
# input chooses must give the one-chunk result. A disagreement (abort), a
# crash, a leak, a sanitizer report, an input slower than 10 s or more than
# 2 GiB of memory fails the test; the input that did it is kept in the build
# tree's tests/fuzz-bodyscan-crashes/ (add it to the corpus once fixed).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

fuzzer="$top_builddir/tests/fuzz_bodyscan"
[ -x "$fuzzer" ] || fail "$fuzzer is not built (make -C tests fuzz_bodyscan)"

mkdir "$T_DIR/corpus" "$T_DIR/artifacts" || fail "mkdir"
cp "$top_srcdir"/tests/fuzz/bodyscan/* "$T_DIR/corpus/" || fail "copying the corpus"
chmod -R u+w "$T_DIR/corpus"
cd "$T_DIR/corpus" || fail "cd"

UBSAN_OPTIONS=print_stacktrace=1 "$fuzzer" -max_total_time=20 -rss_limit_mb=2048 \
	-timeout=10 -max_len=4096 -print_final_stats=1 \
	-artifact_prefix="$T_DIR/artifacts/" . >"$T_DIR/fuzz.log" 2>&1
rc=$?
if [ $rc -ne 0 ] || ls "$T_DIR"/artifacts/* >/dev/null 2>&1; then
	tail -n 60 "$T_DIR/fuzz.log"
	mkdir -p "$top_builddir/tests/fuzz-bodyscan-crashes"
	cp "$T_DIR"/artifacts/* "$top_builddir/tests/fuzz-bodyscan-crashes/" 2>/dev/null
	fail "fuzz_bodyscan exited $rc; inputs kept in $top_builddir/tests/fuzz-bodyscan-crashes"
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T_DIR/fuzz.log")
pass "fuzz_bodyscan: ${execs:-?} inputs in 20 s, every chunking agreed"
