#!/bin/bash
# The body scanner under libFuzzer (fuzz_bodyscan.c) for 20 seconds from the
# seed corpus fuzz/bodyscan: a body scanned in chunks the input chooses must
# give the one-chunk result (the target aborts otherwise). See run_fuzzer in
# lib.sh for what else fails the test and where failing inputs are kept.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

run_fuzzer fuzz_bodyscan 4096
pass "fuzz_bodyscan: ${fuzz_execs:-?} inputs in 20 s, every chunking agreed"
