#!/usr/bin/env bash
# A short run of the benchmark (bench/run --smoke: 2,000 customers, their
# 180-day history, 30,000 live events, a 6 s latency run at 1,000 events/s),
# so that the instrument itself stays working: it must complete, find every
# message counted exactly once (bench/run fails otherwise), and fill every row
# of its table. The numbers are not judged here (this machine is shared and
# the run is tiny; BENCHMARKS.md holds the real runs).
source "$(dirname "$0")/lib.sh"

OUT=$("$MOMENTD_SOURCE_DIR/bench/run" --smoke 2>&1) || { fail "bench/run --smoke failed: $(tail -5 <<<"$OUT")"; finish; }
echo "$OUT" | grep '^|'
row() { grep "^| $1" <<<"$OUT" | cut -d'|' -f3 | tr -d ' '; }
number() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v v="$1" 'BEGIN {exit !(v > 0)}'; }
check "a momentd rate" number "$(row 'momentd throughput')"
check "the bare read beside it" number "$(row 'bare read with kcat')"
check "and their ratio" number "$(row 'momentd / bare read')"
check "redis-benchmark beside it" number "$(row 'redis-benchmark HSET')"
check "a latency median" number "$(row 'latency p50')"
check "a latency p99" number "$(row 'latency p99,')"
check "Redis CPU per event" number "$(row 'Redis CPU per event')"
check "Redis memory per customer" number "$(row 'Redis memory per customer')"
check "momentd CPU per event" number "$(row 'momentd CPU per event')"
check "momentd peak RSS" number "$(row 'momentd peak RSS')"
check "every row says whether its target is met" test "$(grep -c '| \(yes\|\*\*no\*\*\) |$' <<<"$OUT")" -eq 7
check "every message counted exactly once" grep -q 'every phase consumed each produced message once' <<<"$OUT"
finish
