#!/usr/bin/env bash
# The README's first command, scripts/demo, end to end on this suite's build:
# its own Kafka broker and Redis (other ports than the suite's), a month of
# history for 300 customers fed in event-time order and answered by the
# demo's dialer and pusher, twenty customers with a need today, three
# malformed messages, and what it prints. Nothing else runs the demo, and it
# once stopped without a word whenever the hour left its history no moment
# to answer, and emitted nothing at night in China (its customers' zone):
# the demo must end with 0 at any hour, show moments emitted now, explain one
# customer and list the dead letters.
source "$(dirname "$0")/lib.sh"

DEMO_DIR=$T_DIR/demo
OUT=$(MOMENTD_DEMO_BUILD=$(dirname "$MOMENTD_BIN") MOMENTD_DEMO_DIR=$DEMO_DIR \
    MOMENTD_DEMO_KAFKA_PORT=$((MOMENTD_IT_KAFKA_PORT + 200)) MOMENTD_DEMO_REDIS_PORT=$((MOMENTD_IT_REDIS_PORT + 200)) \
    "$MOMENTD_SOURCE_DIR/scripts/demo" --days 30 2>&1) && rc=0 || rc=$?
echo "$OUT" | sed 's/\x1b\[[0-9;]*m//g' >"$T_DIR/demo.out"
check "the demo ends with 0 (at $(date -u +%H:%M) UTC)" eq "$rc" 0
# "  N moments emitted now, fresh; ...": today's customers' moments.
NOW_MOMENTS=$(sed -n 's/^  \([0-9]*\) moments emitted now, fresh.*/\1/p' "$T_DIR/demo.out")
check "moments are emitted now, for today's needs" ge "${NOW_MOMENTS:-0}" 1
TOTAL=$(awk '/^== marketing moments emitted/ {on = 1; next} /^== / {on = 0} on {s += $2} END {print s + 0}' "$T_DIR/demo.out")
check "the moment topics hold them" ge "$TOTAL" "${NOW_MOMENTS:-1}"
# How many of the history's moments were still fresh depends on the hour
# (none at some): each answered with "sent" and what followed.
ANSWERED=$(sed -n 's/^  and the dialer and the pusher answered \([0-9]*\) moments with \([0-9]*\) outcomes.*/\1 \2/p' "$T_DIR/demo.out")
check "the history's moments are answered by the dialer and the pusher, two outcomes each" \
    awk -v a="${ANSWERED% *}" -v o="${ANSWERED#* }" 'BEGIN {exit !(a != "" && o == 2 * a)}'
check "one moment is explained" grep -q '^== why was c[0-9]* contacted ([a-z_]*)? (momentd explain' "$T_DIR/demo.out"
check "the three malformed messages are dead letters, with their reasons" \
    test "$(grep -c '^  momentd.reason=' "$T_DIR/demo.out")" -eq 3
check "the report follows" grep -q '^== the funnel and the uplift over the holdout group' "$T_DIR/demo.out"
check "momentd's final counters are printed" grep -q '^  {.*"msg":"stopped"' "$T_DIR/demo.out"
stopped() { ! "$MOMENTD_SOURCE_DIR/scripts/$1" status "$DEMO_DIR/$2" 2>/dev/null; }
check "its own Kafka is stopped" stopped kafka-local kafka
check "and its Redis" stopped redis-local redis
[ "$rc" = 0 ] || log "the demo's last lines: $(tail -15 "$T_DIR/demo.out")"
finish
