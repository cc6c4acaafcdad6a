#!/usr/bin/env bash
# A short run of the throughput benchmark (bench/throughput), so that the
# instrument itself stays working: it must complete, count every event
# exactly once, and report a rate. The numbers are not judged here (this
# machine is shared; BENCHMARKS.md holds the real runs).
source "$(dirname "$0")/lib.sh"

OUT=$("$MOMENTD_SOURCE_DIR/bench/throughput" --customers 3000 --runs 1 2>&1) || { fail "bench/throughput failed: $(tail -5 <<<"$OUT")"; finish; }
echo "$OUT" | tail -12
RATE=$(grep -o '^| momentd, events/s[^|]*| [0-9]*' <<<"$OUT" | grep -o '[0-9]*$')
check "the benchmark reports a momentd rate" test "${RATE:-0}" -gt 0
check "and the bare read beside it" grep -q '^| bare read with kcat, messages/s' <<<"$OUT"
check "every event counted exactly once" grep -q 'exactly once, no duplicate' <<<"$OUT"
finish
