#!/usr/bin/env bash
# momentd forget against the real broker and Redis: a customer with state,
# a moment and a shared phone number is erased (state, profile, contact log,
# outbox, its contacts on the phone number's key) and a tombstone is left
# for privacy.forget_tombstone; a replay of the customer's old events at new
# offsets and of their old profile brings nothing back; a new event after
# the erasure counts; an opted-out customer keeps only the opt-out flag, for
# good; a bad id in the list is exit 2 and erases nothing; --from-file reads
# ids.
source "$(dirname "$0")/lib.sh"

N=$(uname_ forget)
CFG=$(make_config "$N")
start_momentd "$CFG"
hkeys() { rcli HKEYS "$1" | sort | tr '\n' ' ' | sed 's/ $//'; }
window() { "$MOMENTD_BIN" explain -c "$CFG" "$1" --json | jq -r ".windows.$2"; }
late_payments() { explain_at "$CFG" "$1" "$(bj 60 12)" | jq -r .windows.late_payments_180d; } # at the late payers' last payment

A=$(pick_customer "$CFG" fa)
B=$(pick_customer "$CFG" fb)
PHONE=13900000077
for c in "$A" "$B"; do echo "$c|{\"customer_type\":\"resident\",\"contact_point\":\"$PHONE\"}"; done | produce "$N.customer-profiles"
wait_settled
late_payer "$A" >"$T_DIR/a-events.txt"
{ cat "$T_DIR/a-events.txt"; late_payer "$B"; } | produce "$N.payments"
check "both late payers are called" wait_for_count "$N.moments.outbound_call" 2 60
CPKEY="$N:{cp:$PHONE}"
check "the phone number's key holds a contact of each" eq "$(rcli HKEYS "$CPKEY" | grep -c ":$A:\|:$B:")" 2
check "A has state" ge "$(rcli HLEN "$N:{$A}")" 10

OUT=$("$MOMENTD_BIN" forget -c "$CFG" "$A" --json)
check "forget reports A's state, the contact on the phone number's key and the tombstone" \
    jq -e --arg a "$A" '.customers == 1 and .forgotten[0].customer_id == $a and .forgotten[0].had_state and .forgotten[0].fields >= 10
        and .forgotten[0].contact_point_records == 1 and (.forgotten[0].kept_opt_out | not) and (.forgotten[0].tombstone_until | length) > 0' <<<"$OUT"
check "A's hash holds only the tombstone and the version" eq "$(hkeys "$N:{$A}")" "fg v"
TTL=$(rcli PTTL "$N:{$A}")
check "kept privacy.forget_tombstone (30 days)" test "$TTL" -gt $((29 * 86400000)) -a "$TTL" -le $((30 * 86400000))
check "its outbox key is gone" eq "$(rcli EXISTS "$N:{$A}:x")" 0
check "A's contact left the phone number's key, B's stayed" eq "$(rcli HKEYS "$CPKEY" | grep -c ":$A:"),$(rcli HKEYS "$CPKEY" | grep -c ":$B:")" 0,1
check "B is untouched" eq "$(late_payments "$B")" 3
check "explain shows A as erased, with no windows" eq "$(late_payments "$A"),$("$MOMENTD_BIN" explain -c "$CFG" "$A" --json | jq -r ".forgotten_at | length > 0")" 0,true

# A replay: the same events at new offsets, and the old profile.
FORGOTTEN_BEFORE=$(grep '"msg":"stats"' "$T_DIR/main/momentd.log" | tail -1 | grep -o '"forgotten":"[0-9]*"' | grep -o '[0-9]*')
produce "$N.payments" <"$T_DIR/a-events.txt"
echo "$A|{\"customer_type\":\"resident\",\"contact_point\":\"$PHONE\"}" | produce "$N.customer-profiles"
check "momentd read the replay" wait_settled
check "nothing came back" eq "$(hkeys "$N:{$A}")" "fg v"
check "no second moment for A" eq "$(consume "$N.moments.outbound_call" | grep -c "\"customer_id\":\"$A\"")" 1
forgotten_now() { grep '"msg":"stats"' "$T_DIR/main/momentd.log" | tail -1 | grep -o '"forgotten":"[0-9]*"' | grep -o '[0-9]*'; }
check "the 3 events and the profile are counted as forgotten" eq "$(($(forgotten_now) - ${FORGOTTEN_BEFORE:-0}))" 4

# The customer comes back: an event after the erasure counts.
NOW=$(($(date +%s) * 1000))
pay_json "$A" "$A-new" "$NOW" false 500 | produce "$N.payments"
check "momentd read the new payment" wait_settled
check "it is counted" eq "$(window "$A" payments_180d)" 1
echo "$A|{\"customer_type\":\"resident\"}" | produce "$N.customer-profiles"
check "momentd read A's new profile" wait_settled
check "and once active again, A's profile is taken" eq "$("$MOMENTD_BIN" explain -c "$CFG" "$A" --json | jq -r .profile.customer_type)" resident

# An opted-out customer keeps the opt-out flag, for good, and nothing else.
C=$(pick_customer "$CFG" fc)
late_payer "$C" | produce "$N.payments"
check "C is called" wait_for_count "$N.moments.outbound_call" 3 60
TC=$(consume "$N.moments.outbound_call" | grep "\"customer_id\":\"$C\"" | grep -o '"trigger_id":"[^"]*"' | cut -d'"' -f4)
echo "$C|{\"trigger_id\":\"$TC\",\"customer_id\":\"$C\",\"campaign\":\"prepay_wallet\",\"channel\":\"outbound_call\",\"status\":\"opt_out\",\"ts\":$(bj 60 12)}" |
    produce "$N.moment-outcomes"
check "C's opt-out is applied" wait_settled
check "C is opted out" eq "$(rcli HGET "$N:{$C}" oo)" 1
OUTC=$("$MOMENTD_BIN" forget -c "$CFG" "$C")
check "forget says the opt-out flag is kept" grep -q "^$C: erased .*the opt-out flag is kept for good" <<<"$OUTC"
check "C's hash holds the tombstone, the opt-out flag and the version" eq "$(hkeys "$N:{$C}")" "fg oo v"
check "for good (no TTL)" eq "$(rcli PTTL "$N:{$C}")" -1

# Bad input: a clear error, exit 2, nothing erased.
set +e
"$MOMENTD_BIN" forget -c "$CFG" "$B" 'bad{id' 2>"$T_DIR/err1"
RC1=$?
printf '%s\ncp:13900000077\n' "$B" >"$T_DIR/ids.txt"
"$MOMENTD_BIN" forget -c "$CFG" --from-file "$T_DIR/ids.txt" 2>"$T_DIR/err2"
RC2=$?
"$MOMENTD_BIN" forget -c "$CFG" 2>"$T_DIR/err3"
RC3=$?
set -e
check "a bad id: exit 2" eq "$RC1" 2
check "naming it" grep -q "argument 2: customer id \"bad{id\" contains '{' at byte 3.*nothing was erased" "$T_DIR/err1"
check "a bad line in the file: exit 2, naming the line" eq "$RC2,$(grep -c "ids.txt line 2: customer id \"cp:13900000077\" begins with \"cp:\"" "$T_DIR/err2")" 2,1
check "no id at all: exit 2" eq "$RC3" 2
check "B was not erased by either" eq "$(late_payments "$B")" 3
echo "$B" >"$T_DIR/ids.txt"
check "--from-file erases B" grep -q "^$B: erased " <<<"$("$MOMENTD_BIN" forget -c "$CFG" --from-file - <"$T_DIR/ids.txt")"
check "B's hash holds only the tombstone and the version" eq "$(hkeys "$N:{$B}")" "fg v"
check "and the phone number's key holds no contact of either" eq "$(rcli HKEYS "$CPKEY" | grep -c ":$A:\|:$B:")" 0
stop_momentd main
finish
