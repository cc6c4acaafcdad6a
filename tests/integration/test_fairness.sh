#!/usr/bin/env bash
# A backlog on one partition does not hold up the others: 100,000 payments
# of one hot customer wait on partition 0 when momentd starts, and a late
# payer's three payments arrive on partition 1 while momentd reads them. The late payer's
# moment is emitted while the hot backlog is still being read (momentd reads
# each partition's queue in turn, a fair share per batch), not after it, as
# when one queue served every partition in the order they were fetched.
# The late payer's payments are months ahead of the backlog in event time;
# the event-time alignment holds back only partitions of the same number
# (a customer's events all share one), so partition 0's backlog holds
# nothing on partition 1.
source "$(dirname "$0")/lib.sh"

N=$(uname_ fair)
# librdkafka's own prefetch bounds (64 MB, 100,000 messages a partition),
# which kafka.consumer may set: with them one queue for every partition
# would hold the whole backlog ahead of the late payer's payments. momentd's
# defaults (1 MB a partition) would hide that, so the test would pass
# without the fair share too.
CFG=$(make_config "$N" -e 's/"consumer": {/"consumer": {"queued.max.messages.kbytes": "65536", "queued.min.messages": "100000", /')
HOT=$(pick_customer "$CFG" hot)
P=$(pick_customer "$CFG" fp)
HOT_EVENTS=100000
# The topics first (momentd creates them with 4 partitions at start), then
# the backlog, written before momentd reads anything.
start_momentd "$CFG" setup
stop_momentd setup
T0=$(bj 0 10)
awk -v n="$HOT_EVENTS" -v c="$HOT" -v t0="$T0" 'BEGIN {
    for (i = 1; i <= n; i++)
        printf "%s|{\"event_id\":\"%s-%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%.0f,\"amount\":1,\"kind\":\"bill\"}\n", c, c, i, c, t0 + i * 1000
}' | kcat -b "$BROKER" -P -t "$N.payments" -p 0 -K'|'
start_momentd "$CFG"
# Once momentd is into the backlog, Redis is paused: momentd waits in the
# middle of it while librdkafka fetches the rest, and the late payer's
# payments arrive on another partition behind all of that; then Redis goes
# on. (Without the pause a fast build could finish the backlog first.)
REDIS_PID=$(cat "$MOMENTD_IT_DIR/redis/pid")
trap 'kill -CONT "$REDIS_PID" 2>/dev/null || true; cleanup_test' EXIT # never leave the shared Redis paused
check "momentd is reading the backlog" wait_consumed main 2000 120
kill -STOP "$REDIS_PID"
late_payer "$P" | kcat -b "$BROKER" -P -t "$N.payments" -p 1 -K'|'
sleep 2 # librdkafka fetches them behind the backlog
kill -CONT "$REDIS_PID"
check "the late payer is called" wait_for_count "$N.moments.outbound_call" 1 120
MOMENT_MS=$(kcat -b "$BROKER" -C -t "$N.moments.outbound_call" -o beginning -e -q -f '%T\n' | head -1)
check "momentd reads the whole backlog" wait_consumed main $((HOT_EVENTS + 3)) 180
# How far into the backlog momentd was when the moment went out: the
# consumed count of the last stats line (every 100 ms) before it.
MOMENT_ISO=$(date -u -d "@$((MOMENT_MS / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((MOMENT_MS % 1000)))Z
AT_MOMENT=$(grep '"msg":"stats"' "$T_DIR/main/momentd.log" | sed -n 's/.*"time":"\([^"]*\)".*"consumed":"\([0-9]*\)".*/\1 \2/p' |
    awk -v at="$MOMENT_ISO" '$1 < at {n = $2} END {print n}')
log "when the late payer's moment went out, momentd had read ${AT_MOMENT:-?} of the $((HOT_EVENTS + 3)) messages"
check "it went out before momentd was halfway through the backlog" test "${AT_MOMENT:-$HOT_EVENTS}" -lt $((HOT_EVENTS / 2))
stop_momentd main
finish
