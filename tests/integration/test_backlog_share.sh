#!/usr/bin/env bash
# A flood on one partition while another is live (kafka.backlog_share): the
# partition with the backlog takes at most 4 % of a batch (80 messages)
# while the live one has messages, so batches stay short and the live
# partition's events never wait behind 2,000 of the flood's. With backlog_share 1 (no
# limit) the same input is read in full batches: the check is one that
# fails without it. And it takes at most half of momentd's time
# (kafka.backlog_time_share 0.5) while the live partition is receiving:
# after each batch with the flood's messages it waits its turn, counted in
# backlog_held; with both at 1 it never waits.
source "$(dirname "$0")/lib.sh"

HOT_EVENTS=40000
# run_flood NAME SHARE TIME_SHARE OUT: a hot customer's backlog on
# partition 0, a live trickle on partition 1 while momentd reads it; prints
# the sizes of the batches it was read in, one per line, into OUT, and sets
# HELD to the times the backlog waited its turn.
run_flood() {
    local name=$1 share=$2 time_share=$3 out=$4 cfg hot t0 i
    cfg=$(make_config "$name" -e 's/"level": "info"/"level": "debug"/' \
        -e "s/\"group_id\":/\"backlog_share\": $share, \"backlog_time_share\": $time_share, \"group_id\":/")
    start_momentd "$cfg" "$name-setup" # the topics, 4 partitions each
    stop_momentd "$name-setup"
    hot=$(pick_customer "$cfg" hot)
    t0=$(($(date +%s) * 1000 - HOT_EVENTS * 1000))
    awk -v n="$HOT_EVENTS" -v c="$hot" -v t0="$t0" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "%s|{\"event_id\":\"%s-%d\",\"type\":\"payment\",\"customer_id\":\"%s\",\"ts\":%.0f,\"amount\":1,\"kind\":\"bill\"}\n", c, c, i, c, t0 + i * 1000
    }' | kcat -b "$BROKER" -P -t "$name.payments" -p 0 -K'|'
    start_momentd "$cfg" "$name"
    # The trickle: a payment of another customer every 100 ms on partition 1,
    # with the time of now, until the flood is read.
    for i in $(seq 1 600); do
        pay_json "live-$i" "live-$i" "$(($(date +%s%3N)))" false 100 | kcat -b "$BROKER" -P -t "$name.payments" -p 1 -K'|'
        [ "$(last_consumed "$name")" -ge "$HOT_EVENTS" ] 2>/dev/null && break
        sleep 0.1
    done
    check "$name: the flood is read while the trickle runs" wait_consumed "$name" "$HOT_EVENTS" 60
    stop_momentd "$name"
    HELD=$(last_stat "$name" backlog_held)
    grep '"msg":"batch committed"' "$T_DIR/$name/momentd.log" | grep -o '"messages":"[0-9]*"' | tr -dc '0-9\n' >"$out"
}

run_flood "$(uname_ share)" 0.04 0.5 "$T_DIR/batches.share"
HELD_SHARE=$HELD
run_flood "$(uname_ noshare)" 1 1 "$T_DIR/batches.noshare"
HELD_NOSHARE=$HELD
big() { awk '$1 > 100' "$1" | grep -c . || true; }
log "batches over 100 messages: $(big "$T_DIR/batches.share") of $(grep -c . "$T_DIR/batches.share") with backlog_share 0.04, $(big "$T_DIR/batches.noshare") of $(grep -c . "$T_DIR/batches.noshare") without"
# The first batches may come before the live partition's first message and
# its end are fetched: a few full ones are allowed.
check "with a live partition, the flood is read in batches of at most 4 %" test "$(big "$T_DIR/batches.share")" -le 3
check "without the share, the same flood fills batches" test "$(big "$T_DIR/batches.noshare")" -ge 10
log "the flood waited its turn $HELD_SHARE times with backlog_time_share 0.5, $HELD_NOSHARE without"
check "with the time share, the flood waits its turn while the trickle is received" test "${HELD_SHARE:-0}" -gt 10
check "without, it never waits" test "${HELD_NOSHARE:-x}" = 0
finish
