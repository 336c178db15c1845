#!/bin/bash
# The config loader and the rule evaluator under libFuzzer (fuzz_rules.c) for
# 20 seconds from the seed corpus fuzz/rules; see run_fuzzer in lib.sh for
# what fails the test and where failing inputs are kept.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

run_fuzzer fuzz_rules 8192 -dict="$top_srcdir/tests/fuzz/rules.dict"
pass "fuzz_rules: ${fuzz_execs:-?} inputs in 20 s, no crash, leak or sanitizer report"
