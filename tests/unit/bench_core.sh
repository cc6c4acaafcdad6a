#!/usr/bin/env bash
# bench_core (bench/core) on a small population: it runs the per-event path
# end to end, every generated message parses (none rejected), the customers'
# decisions fire moments, and --ab reports both halves. Not a timing test: the
# numbers are only checked to be there.
set -euo pipefail
bin=${1:?usage: bench_core.sh BENCH_CORE CONFIG}
config=${2:?usage: bench_core.sh BENCH_CORE CONFIG}
out=$("$bin" "$config" --customers 300 --days 40 --events 3000 --runs 1 --batch 100 --ab)
echo "$out"
fail() { echo "bench_core.sh: $*" >&2; exit 1; }
grep -Eq '^history: [0-9]+ messages of 300 customers over 40 days .*; 300 hashes' <<<"$out" || fail "the history did not leave 300 cached hashes"
line=$(grep -E '^run 1: ' <<<"$out" | head -1)
[[ $line =~ ^run\ 1:\ 3000\ events,\ [0-9]+\ ns\ of\ CPU\ an\ event.*\;\ ([0-9]+)\ moments,\ 0\ rejected$ ]] || fail "run 1 is not 3000 events with none rejected: $line"
[ "${BASH_REMATCH[1]}" -gt 0 ] || fail "no moment fired: the decisions were not made"
grep -Eq '^median of 1 runs: with the prefetches / without, [0-9]+\.[0-9]{3}$' <<<"$out" || fail "--ab did not report both halves"
rc=0
usage=$("$bin" "$config" --batch 0 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "a batch of 0: exit status $rc, not 2"
grep -q '^usage: bench_core' <<<"$usage" || fail "a bad option does not print the usage"
echo "bench_core.sh: ok"
