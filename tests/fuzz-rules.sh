#!/bin/bash
# The config loader and the rule evaluator under libFuzzer (fuzz_rules.c) for
# 20 seconds, starting from a copy of the seed corpus fuzz/rules. A crash, a
# leak, a sanitizer report, an input slower than 10 s or more than 2 GiB of
# memory fails the test; the input that did it is kept in the build tree's
# tests/fuzz-rules-crashes/ (add it to the corpus once fixed).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

fuzzer="$top_builddir/tests/fuzz_rules"
[ -x "$fuzzer" ] || fail "$fuzzer is not built (make -C tests fuzz_rules)"

# The corpus directory is also where include and file: in the inputs look.
mkdir "$T_DIR/corpus" "$T_DIR/artifacts" || fail "mkdir"
cp "$top_srcdir"/tests/fuzz/rules/* "$T_DIR/corpus/" || fail "copying the corpus"
chmod -R u+w "$T_DIR/corpus"
cd "$T_DIR/corpus" || fail "cd"

UBSAN_OPTIONS=print_stacktrace=1 "$fuzzer" -max_total_time=20 -rss_limit_mb=2048 \
	-timeout=10 -max_len=8192 -print_final_stats=1 \
	-dict="$top_srcdir/tests/fuzz/rules.dict" \
	-artifact_prefix="$T_DIR/artifacts/" . >"$T_DIR/fuzz.log" 2>&1
rc=$?
if [ $rc -ne 0 ] || ls "$T_DIR"/artifacts/* >/dev/null 2>&1; then
	tail -n 60 "$T_DIR/fuzz.log"
	mkdir -p "$top_builddir/tests/fuzz-rules-crashes"
	cp "$T_DIR"/artifacts/* "$top_builddir/tests/fuzz-rules-crashes/" 2>/dev/null
	fail "fuzz_rules exited $rc; inputs kept in $top_builddir/tests/fuzz-rules-crashes"
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T_DIR/fuzz.log")
pass "fuzz_rules: ${execs:-?} inputs in 20 s, no crash, leak or sanitizer report"
