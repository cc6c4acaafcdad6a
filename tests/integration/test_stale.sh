#!/usr/bin/env bash
# The stale guard against the real broker and Redis, with the shipped
# freshness (calls 4 h, in-app 24 h, SMS 2 h): a 180-day backfill emits no
# moment that had expired when it was emitted, and counts those decisions;
# a live story of today fires; the dialer's not_called releases the contact,
# so the next event fires again.
source "$(dirname "$0")/lib.sh"

N=$(uname_ stale)
CFG=$(MD_FRESH_FOR='\1' make_config "$N")
check "the shipped freshness is kept" grep -q '"fresh_for": "4h"' "$CFG"
DAY=86400000
NOW=$(($(date +%s) * 1000))
START=$(((NOW / DAY - 180) * DAY))
"$GEN" --customers 300 --seed 31 --start "$START" --days 180 >"$T_DIR/events.txt"
feed "$N" "$T_DIR/events.txt"
start_momentd "$CFG"
check "the backfill is consumed" wait_settled main 180

# Every moment emitted: emitted_at no later than expires_at.
OUTS="$N.moments.outbound_call $N.moments.in_app $N.moments.sms $N.moments.holdout"
for t in $OUTS; do consume "$t"; done >"$T_DIR/moments.json"
EXPIRED=$(jq -r 'select(.emitted_at > .expires_at) | .trigger_id' "$T_DIR/moments.json" | grep -c . || true)
log "backfill: $(grep -c . "$T_DIR/moments.json") moments emitted"
check "no moment of the backfill was expired when emitted" eq "$EXPIRED" 0
STALE=$(grep -o '"stale":"[0-9]*"' "$T_DIR/main/momentd.log" | tail -1 | tr -dc 0-9)
check "the backfill's late decisions are counted stale" ge "${STALE:-0}" 1

# A story of today: three late payments a month apart with a falling
# balance, the last one an hour ago; the customer's zone puts now at 13:00,
# outside every channel's quiet hours.
C=$(pick_customer "$CFG" live)
UTC_H=$(date -u +%-H)
OFF=$(( (13 - UTC_H + 36) % 24 - 12 ))
ZONE=$(printf '%+03d:00' "$OFF")
[ "$OFF" -ge 0 ] && ZONE="+$(printf '%02d' "$OFF"):00"
echo "$C|{\"utc_offset\":\"$ZONE\"}" | produce "$N.customer-profiles"
check "the profile is read first" wait_settled main 60
{
    pay_json "$C" "$C-1" $((NOW - 60 * DAY)) true 80
    pay_json "$C" "$C-2" $((NOW - 30 * DAY)) true 60
    pay_json "$C" "$C-3" $((NOW - 3600000)) true 50
} | produce "$N.payments"
check "the live story is consumed" wait_settled main 60
live_moments() { for t in $OUTS; do consume "$t"; done | jq -c --arg c "$C" 'select(.customer_id == $c and .holdout == false)'; }
check "today's story fires" eq "$(live_moments | grep -c . || true)" 1
M=$(live_moments | head -1)
check "its moment is fresh" eq "$(jq -r '.emitted_at <= .expires_at' <<<"$M")" true
check "it carries its priority (expected value)" jq -e '.priority > 0' <<<"$M"
TID=$(jq -r .trigger_id <<<"$M")
CAMP=$(jq -r .campaign <<<"$M")
CH=$(jq -r .channel <<<"$M")

# The dialer could not call it: not_called releases the contact, and the
# next event (still a peak) fires again instead of waiting out a cooldown.
printf '%s|{"trigger_id":"%s","customer_id":"%s","campaign":"%s","channel":"%s","status":"not_called","ts":%s}\n' \
    "$C" "$TID" "$C" "$CAMP" "$CH" $((NOW - 1800000)) | produce "$N.moment-outcomes"
check "the outcome is consumed" wait_settled main 60
check "explain: no contact stands" eq "$("$MOMENTD_BIN" explain -c "$CFG" "$C" --json | jq -r ".campaigns[] | select(.campaign == \"$CAMP\") | .cooldown.last_contact")" ""
pay_json "$C" "$C-4" $((NOW - 600000)) true 40 | produce "$N.payments"
check "the next event is consumed" wait_settled main 60
check "and fires again" eq "$(live_moments | grep -c . || true)" 2
stop_momentd
finish
