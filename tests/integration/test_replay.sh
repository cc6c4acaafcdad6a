#!/usr/bin/env bash
# Replaying the whole input topic from offset 0 (a new consumer group over the
# same state) changes no counter and produces no new trigger id.
source "$(dirname "$0")/lib.sh"

N=$(uname_ replay)
CFG=$(make_config $N)
"$GEN" --customers 400 --seed 7 --topics payments >"$T_DIR/events.txt"
EVENTS=$(grep -c . "$T_DIR/events.txt")
feed $N "$T_DIR/events.txt"
start_momentd "$CFG" first
check "the first run consumes every event" wait_consumed first "$EVENTS" 60
stop_momentd first
check "first run consumed all $EVENTS events" grep -q "\"consumed\":\"$EVENTS\"" "$T_DIR/first/momentd.log"
ALL_TOPICS="$N.moments.outbound_call $N.moments.in_app $N.moments.sms $N.moments.holdout"
for t in $ALL_TOPICS; do trigger_ids "$t"; done | sort >"$T_DIR/ids.before"
dump_state $N >"$T_DIR/state.before"
TRIGGERS=$(grep -c . "$T_DIR/ids.before")
log "first run: $EVENTS events, $TRIGGERS triggers, $(grep -c . "$T_DIR/state.before") state fields"
check "the stream produced triggers" ge "$TRIGGERS" 10
check "no trigger id twice" eq "$(sort -u "$T_DIR/ids.before" | grep -c .)" "$TRIGGERS"

# Replay: a new consumer group starts at offset 0 of the same topic.
CFG2=$T_DIR/replay2.json
sed "s/\"group_id\": \"$N\"/\"group_id\": \"$N-again\"/" "$CFG" >"$CFG2"
start_momentd "$CFG2" second
for i in $(seq 1 240); do
    grep -q "\"consumed\":\"$EVENTS\"" "$T_DIR/second/momentd.log" 2>/dev/null && break
    sleep 0.25
    if [ $((i % 40)) -eq 0 ] && ! kill -0 "$(cat "$T_DIR/second/momentd.pid")" 2>/dev/null; then
        fail "the replaying momentd died"
        break
    fi
done
stop_momentd second
check "the replay consumed all $EVENTS events again" grep -q "\"consumed\":\"$EVENTS\"" "$T_DIR/second/momentd.log"
check "every replayed event was recognised as a duplicate" grep -q "\"duplicates\":\"$EVENTS\"" "$T_DIR/second/momentd.log"
for t in $ALL_TOPICS; do trigger_ids "$t"; done | sort >"$T_DIR/ids.after"
check "no new trigger produced" eq "$(grep -c . "$T_DIR/ids.after")" "$TRIGGERS"
dump_state $N >"$T_DIR/state.after"
check "no counter changed" cmp -s "$T_DIR/state.before" "$T_DIR/state.after"

# Regression: an event re-published (same event_id, a new offset) while 3-7
# days behind the customer's newest event passed the lateness check (7 d)
# but had left the event-id guard (72 h), and counted twice.
R=replay-republished
start_momentd "$CFG" third
{
    pay_json "$R" r1 "$(bj 0 10)" false 100
    pay_json "$R" r2 "$(bj 4 10)" false 100
} | produce "$N.payments"
check "the two events are read" wait_consumed third 2 60
pay_json "$R" r1 "$(bj 0 10)" false 100 | produce "$N.payments"
check "and the re-published one" wait_consumed third 3 60
stop_momentd third
check "a re-publication 4 days behind is recognised" grep -q '"duplicates":"1"' <<<"$(grep '"msg":"stopped"' "$T_DIR/third/momentd.log")"
check "and counted once" grep -q '"payments_180d":2' <<<"$(explain_at "$CFG" "$R" "$(bj 4 12)")"

# The guard's key is the namespace's, not the process's: after a restart a
# re-publication of an event the previous process counted is recognised.
KEY=$(rcli HGET "$N:meta" dedupe_key)
check "the namespace holds the guard's key (32 hex digits)" grep -qE '^[0-9a-f]{32}$' <<<"$KEY"
start_momentd "$CFG" fourth
pay_json "$R" r2 "$(bj 4 10)" false 100 | produce "$N.payments"
check "the re-publication after a restart is read" wait_consumed fourth 1 60
stop_momentd fourth
check "and recognised by the restarted process" grep -q '"duplicates":"1"' <<<"$(grep '"msg":"stopped"' "$T_DIR/fourth/momentd.log")"
check "the key is the same after the restart" eq "$(rcli HGET "$N:meta" dedupe_key)" "$KEY"
check "still counted once" grep -q '"payments_180d":2' <<<"$(explain_at "$CFG" "$R" "$(bj 4 12)")"
finish
