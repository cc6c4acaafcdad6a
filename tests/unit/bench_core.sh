#!/usr/bin/env bash
# bench_core (bench/core) on a small population: it runs the per-event path
# end to end, every generated message parses (none rejected), the customers'
# decisions fire moments, --ab and --ab-pool report both halves, --no-pool
# decides the same, and --decoded-size measures the heap of decoded states. Not a timing test: the
# numbers are only checked to be there.
set -euo pipefail
bin=${1:?usage: bench_core.sh BENCH_CORE CONFIG}
config=${2:?usage: bench_core.sh BENCH_CORE CONFIG}
out=$("$bin" "$config" --customers 300 --days 40 --events 3000 --runs 1 --batch 100 --ab --decoded-size 50)
echo "$out"
fail() { echo "bench_core.sh: $*" >&2; exit 1; }
grep -Eq '^history: [0-9]+ messages of 300 customers over 40 days .*; 300 hashes' <<<"$out" || fail "the history did not leave 300 cached hashes"
line=$(grep -E '^run 1: ' <<<"$out" | head -1)
[[ $line =~ ^run\ 1:\ 3000\ events,\ [0-9]+\ ns\ of\ CPU\ an\ event.*\;\ ([0-9]+)\ moments,\ 0\ rejected$ ]] || fail "run 1 is not 3000 events with none rejected: $line"
[ "${BASH_REMATCH[1]}" -gt 0 ] || fail "no moment fired: the decisions were not made"
grep -Eq '^decoded: 50 states \(50 from the cache\) take [1-9][0-9]+ B of heap each; a hash takes [1-9][0-9]+ B in the cache$' <<<"$out" ||
    fail "--decoded-size did not measure 50 decoded states"
grep -Eq '^median of 1 runs: with the prefetches / without, [0-9]+\.[0-9]{3}$' <<<"$out" || fail "--ab did not report both halves"
# The stack of states changes where a customer is decoded, not what is
# decided: the same moments with it, without it, and in turns.
moments() { grep -E '^run 1: ' <<<"$1" | sed -E 's/.*; ([0-9]+) moments.*/\1/'; }
with=$(moments "$out")
without_out=$("$bin" "$config" --customers 300 --days 40 --events 3000 --runs 1 --batch 100 --no-pool)
turns_out=$("$bin" "$config" --customers 300 --days 40 --events 3000 --runs 1 --batch 100 --ab-pool)
[ "$(moments "$without_out")" = "$with" ] || fail "--no-pool: $(moments "$without_out") moments, $with with the stack"
[ "$(moments "$turns_out")" = "$with" ] || fail "--ab-pool: $(moments "$turns_out") moments, $with with the stack"
grep -Eq '^median of 1 runs: with the stack of states / without, [0-9]+\.[0-9]{3}$' <<<"$turns_out" || fail "--ab-pool did not report both halves"
for bad in "--batch 0" "--decoded-size -1" "--decoded-size 100001" "--ab --ab-pool" "--no-pool --ab-pool"; do
    rc=0
    # shellcheck disable=SC2086 # two words each
    usage=$("$bin" "$config" $bad 2>&1) || rc=$?
    [ "$rc" = 2 ] || fail "$bad: exit status $rc, not 2"
    grep -q '^usage: bench_core' <<<"$usage" || fail "$bad does not print the usage"
done
echo "bench_core.sh: ok"
