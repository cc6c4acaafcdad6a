#!/usr/bin/env bash
# A short run of the benchmark (bench/run --smoke: 2,000 customers, their
# 180-day history, 30,000 live events, two 6 s latency runs at 1,000 events/s,
# 20,000 events for one hot customer at once (committed in one transaction)
# and again at 10,000/s, and the Kafka Streams peer beside momentd on 30,000
# events of their own),
# so that the instrument itself stays working: it must complete, find every
# message counted exactly once (bench/run fails otherwise), and fill every row
# of its table. The numbers are not judged here (this machine is shared and
# the run is tiny; BENCHMARKS.md holds the real runs).
source "$(dirname "$0")/lib.sh"

OUT=$("$MOMENTD_SOURCE_DIR/bench/run" --smoke 2>&1) || { rc=$?; fail "bench/run --smoke failed (exit $rc): $(tail -20 <<<"$OUT")"; finish; }
echo "$OUT" | grep '^|'
row() { grep "^| $1" <<<"$OUT" | cut -d'|' -f3 | tr -d ' '; }
number() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v v="$1" 'BEGIN {exit !(v > 0)}'; }
check "a momentd rate" number "$(row 'momentd throughput')"
check "the bare read beside it" number "$(row 'bare read with kcat')"
check "and their ratio" number "$(row 'momentd / bare read')"
check "redis-benchmark beside it" number "$(row 'redis-benchmark HSET')"
# Latencies are differences of the broker's millisecond append times, so a
# median of 0 ms is a real result on a quiet box. The smoke runs the latency
# phase twice: each cell holds both runs' whole numbers of milliseconds,
# "a, b", each run's median no higher than its p99, and the row is judged
# "in every run".
latency() { [[ "$1" =~ ^[0-9]+,[0-9]+$ ]]; }
ordered() { latency "$1" && latency "$2" && [ "${1%,*}" -le "${2%,*}" ] && [ "${1#*,}" -le "${2#*,}" ]; }
check "a latency median of each run" latency "$(row 'latency p50')"
check "a latency p99 of each run" latency "$(row 'latency p99,')"
check "each run's median no higher than its p99" ordered "$(row 'latency p50')" "$(row 'latency p99,')"
check "the latency rows are judged in every run" test "$(grep -c '^| latency p[0-9.]*[ ,].* in every run | \(yes\|\*\*no\*\*\) |$' <<<"$OUT")" -eq 3
check "Redis CPU per event" number "$(row 'Redis CPU per event')"
check "Redis memory per customer" number "$(row 'Redis memory per customer')"
check "momentd CPU per event" number "$(row 'momentd CPU per event')"
check "momentd peak RSS" number "$(row 'momentd peak RSS')"
check "the Kafka Streams peer's rate" number "$(row 'Kafka Streams peer, events/s')"
check "momentd's on the same messages" number "$(row 'momentd on the same messages')"
check "and their ratio, against the target" grep -q '^| momentd / the Kafka Streams peer | [0-9.]* | | >= 2 | \(yes\|\*\*no\*\*\) |$' <<<"$OUT"
check "no event too late in the unpaced throughput runs" grep -q '| events dropped as too late in the unpaced throughput runs (all runs) | 0 | | 0 | yes |$' <<<"$OUT"
check "the hot customer's rate, at once" number "$(row 'hot customer, [0-9]* distinct ids at once')"
check "and paced" number "$(row 'hot customer, [0-9]* distinct ids at [0-9]*/s')"
check "the others' latency during the paced flood" grep -q '^| at [0-9]*/s, during: on the other partition numbers, ms ([0-9]* triggers; [0-9]* AOF rewrites; broker GC paused [0-9]* ms in [0-9]* pauses); p99 at most before.s + 5 ms | \([0-9]* / [0-9]*\|- / -\) | | unaffected | \(yes\|\*\*no\*\*\|-\) |$' <<<"$OUT"
check "and during the one written at once" grep -q '^| at once, while it was read: on the other partition numbers, ms ([0-9]* triggers; [0-9]* AOF rewrites; broker GC paused [0-9]* ms in [0-9]* pauses); p99 at most before.s + 5 ms | \([0-9]* / [0-9]*\|- / -\) | | unaffected | \(yes\|\*\*no\*\*\|-\) |$' <<<"$OUT"
check "and while its transaction was written, before it was visible" grep -q '^| at once: others. trigger latency while its transaction was written, before it was visible (the broker taking it in on this box), ms ([0-9]*) | \([0-9]* / [0-9]*\|- / -\) | | | |$' <<<"$OUT"
check "the hot customer's hash stays bounded (256 ids at most)" grep -q '| hot customer.s hash afterwards: fields; bytes ([0-9]* ids forgotten for room) | [0-9]*; [0-9]* | | fields <= 300 | yes |$' <<<"$OUT"
# The smoke's flood is too short to time its quarters: its row says "-".
check "every row says whether its target is met" test "$(grep -c '| \(yes\|\*\*no\*\*\|-\) |$' <<<"$OUT")" -eq 15
check "every message counted exactly once" grep -q 'every phase consumed each produced message once' <<<"$OUT"

# The load generator refuses what it cannot do, with the reason, exit 2.
LG=$MOMENTD_SOURCE_DIR/build-release/loadgen
refused() { # refused PATTERN ARGS...: exit status 2 and PATTERN on stderr
    local pattern=$1 out rc
    shift
    out=$("$LG" "$@" 2>&1 >/dev/null) && rc=0 || rc=$?
    [ "$rc" = 2 ] && grep -q -- "$pattern" <<<"$out"
}
check "loadgen: a mode is required" refused "usage: loadgen history" --brokers x
check "loadgen: live needs an amount" refused "live needs --events or --seconds" live --brokers x
check "loadgen: bad numbers are named" refused "--customers wants an integer from 1" history --brokers x --customers 0
check "loadgen: a replay needs both ends" refused "a replay needs" live --brokers x --events 5 --replay-days 5
check "loadgen: a burst needs its topic and input" refused "burst needs --brokers B --topic T --input FILE" burst --brokers x --topic payments
check "loadgen: options of the other mode are refused" refused "unknown option for history" history --brokers x --rate 5
finish
