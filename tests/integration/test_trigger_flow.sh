#!/usr/bin/env bash
# A scripted customer fires exactly one trigger on the right channel with the
# right reasons; a second burst inside the cooldown fires nothing; malformed
# events land in the dead-letter topic and the rest of the stream is processed.
source "$(dirname "$0")/lib.sh"

N=$(uname_ flow)
CFG=$(make_config $N)
start_momentd "$CFG"

A=$(pick_customer "$CFG" late)
log "customer A = $A"
{
    echo "$A|{\"customer_type\":\"resident\"}"
} | produce $N.customer-profiles
wait_settled # the profile is in place before any event
{
    pay_json "$A" a1 "$(bj 0 10)" true 80
    pay_json "$A" a2 "$(bj 30 10)" true 60
    pay_json "$A" a3 "$(bj 60 10)" true 50
} | produce $N.payments

check "one trigger reaches the dialer topic" wait_for_count $N.moments.outbound_call 1 60
check "momentd read everything" wait_settled
T=$(consume $N.moments.outbound_call)
check "exactly one trigger" eq "$(echo "$T" | grep -c .)" 1
check "for customer A" eq "$(echo "$T" | grep -o '"customer_id":"[^"]*"')" "\"customer_id\":\"$A\""
check "campaign prepay_wallet" eq "$(echo "$T" | grep -o '"campaign":"[^"]*"')" '"campaign":"prepay_wallet"'
check "caused by the third late payment" eq "$(echo "$T" | grep -o '"caused_by":{"event_id":"[^"]*"')" '"caused_by":{"event_id":"a3"'
check "top reason is late_payments_180d = 3" eq "$(echo "$T" | grep -o '"reasons":\[{"feature":"[a-z_0-9]*","value":[0-9]*')" \
    '"reasons":[{"feature":"late_payments_180d","value":3'
check "low_balance among the reasons" grep -q '"feature":"low_balance","value":1' <<<"$T"
check "tags low_balance and late_payer" grep -q '"tags":\["customer_type:resident","low_balance","late_payer"\]' <<<"$T"
check "nothing on in_app, sms or holdout" eq "$(count $N.moments.in_app)$(count $N.moments.sms)$(count $N.moments.holdout)" 000
check "outbox emptied after Kafka acknowledged" eq "$(rcli exists "$N:{$A}:x")" 0

# Second burst inside the cooldown. B: two late payments and a low balance sit
# just under the threshold; product views push it over (in-app, the customer
# uses the app). A payment that restores the balance re-arms the campaign;
# a new burst 12 days after the contact is still inside the required gap.
B=$(pick_customer "$CFG" burst)
log "customer B = $B"
echo "$B|{\"customer_type\":\"resident\"}" | produce $N.customer-profiles
wait_settled
{
    pay_json "$B" b1 "$(bj 0 10)" true 50
    pay_json "$B" b2 "$(bj 1 10)" true 50
    view_json "$B" b3 "$(bj 2 10)" prepay_product
    view_json "$B" b4 "$(bj 2 11)" prepay_product
    view_json "$B" b5 "$(bj 2 12)" prepay_product
} | produce $N.payments
check "the first burst reaches the app" wait_for_count $N.moments.in_app 1 60
{
    pay_json "$B" b6 "$(bj 10 10)" false 800
    pay_json "$B" b7 "$(bj 14 10)" false 50
    view_json "$B" b8 "$(bj 14 11)" prepay_product
} | produce $N.payments
check "momentd read the second burst" wait_settled
check "the second burst fires nothing" eq "$(count $N.moments.in_app)" 1
X=$(explain_at "$CFG" "$B" "$(bj 14 11)")
check "the campaign was re-armed in between" eq "$(grep -o '"armed":[a-z]*' <<<"$X" | head -1)" '"armed":true'
check "explain: blocked by the cooldown" grep -q '"would_fire":false,"blocked_by":"cooldown"' <<<"$X"
check "explain at B's last event: no later state" grep -q '"state_after_at":false' <<<"$X"
# Regression: explaining an earlier moment showed today's balance and last
# events as if they were that moment's, unlabelled.
XE=$(explain_at "$CFG" "$B" "$(bj 2 12)")
check "explain at an earlier time says the state holds later events" grep -q '"state_after_at":true' <<<"$XE"
check "and when the balance it shows was set" grep -q "\"balance_at\":\"$(date -u -d "@$(($(bj 14 10) / 1000))" +%Y-%m-%dT%H:%M:%S)" <<<"$XE"
check "explain: eligible again after the gap" grep -q '"decided_by":"cooldown"' <<<"$X"
# The decision record of B's trigger: what the model saw then, by feature
# name (2 late payments; the views were not a feature of this model).
DEC=$(grep -o '"campaign":"prepay_wallet".*' <<<"$X" | grep -o '"decisions":\[{[^]]*' | head -1)
check "explain shows the trigger's decision record with the model's inputs then" \
    grep -q '"decisions":\[{"at":"[^"]*","kind":"contacted","converted":false,"current_model_shape":true,"features":{"late_payments_180d":2,' <<<"$DEC"
check "and its static attribute by level" grep -q '"profile.customer_type":"resident"' <<<"$DEC"
check "explain's text names it too" grep -q "contacted .*no conversion (yet)" <<<"$("$MOMENTD_BIN" explain -c "$CFG" "$B")"
# Why (not) contacted, day by day: the decision audit.
HIST=$("$MOMENTD_BIN" explain -c "$CFG" "$B" --history --json | jq -c '[.history[] | select(.campaign == "prepay_wallet")]')
log "prepay_wallet history: $HIST"
check "explain --history shows B's call, and what blocked the burst after it" \
    jq -e 'any(.outcome == "fired" and (.from | startswith("2026-03-03T02:00"))) and any(.outcome == "cooldown")' <<<"$HIST"
SINCE=$("$MOMENTD_BIN" explain -c "$CFG" "$B" --since 2026-03-10 --json | jq -c '[.history[] | select(.campaign == "prepay_wallet") | .outcome]')
check "--since leaves out the runs that ended before that day" jq -e 'index("fired") == null and index("cooldown") != null' <<<"$SINCE"
check "and in the text form" grep -q "prepay_wallet .* cooldown" <<<"$("$MOMENTD_BIN" explain -c "$CFG" "$B" --history)"
set +e
"$MOMENTD_BIN" explain -c "$CFG" "$B" --since yesterday >/dev/null 2>"$T_DIR/since.err"
RC=$?
set -e
check "a bad --since: exit 2, saying so" eq "$RC,$(grep -c 'since expects a day as YYYY-MM-DD' "$T_DIR/since.err")" 2,1
all_moments_valid() { for t in outbound_call in_app sms holdout; do consume "$N.moments.$t"; done | valid_moments; }
check "every moment so far validates against docs/schemas/moment.schema.json" all_moments_valid

# Malformed events in the middle of good traffic.
C=$(pick_customer "$CFG" good)
{
    pay_json "$C" c1 "$(bj 0 10)" false 300
    echo "$C|not json at all"
    echo "$C|[1,2,3]"
    echo "$C|{\"event_id\":\"x\",\"type\":\"refund\",\"customer_id\":\"$C\",\"ts\":$(bj 0 10)}"
    echo "$C|{\"event_id\":\"x2\",\"type\":\"payment\",\"customer_id\":\"$C\",\"ts\":$(bj 0 10),\"amount\":1e999,\"kind\":\"bill\"}"
    echo "$C|{\"event_id\":\"x3\",\"type\":\"payment\",\"customer_id\":\"$C\",\"ts\":\"2100-01-01T00:00:00Z\",\"amount\":1,\"kind\":\"bill\"}"
    echo "someone-else|{\"event_id\":\"x4\",\"type\":\"payment\",\"customer_id\":\"$C\",\"ts\":$(bj 0 10),\"amount\":1,\"kind\":\"bill\"}"
    pay_json "$C" c2 "$(bj 1 10)" false 300
    pay_json "$C" c3 "$(bj 2 10)" false 300
} | produce $N.payments
check "six dead letters" wait_for_count $N.dead-letter 6 60
DL=$(consume $N.dead-letter '%h\n')
for r in not_json not_object unknown_type bad_number future_timestamp key_mismatch; do
    check "dead letter with reason $r" grep -q "momentd.reason=$r," <<<"$DL"
done
check "dead letters carry the source topic" eq "$(grep -c "momentd.source_topic=$N.payments" <<<"$DL")" 6
check "dead letters keep the original bytes" grep -qx "not json at all" <<<"$(consume $N.dead-letter)"
wait_settled
check "the good events around them were counted" grep -q '"payments_180d":3' <<<"$(explain_at "$CFG" "$C" "$(bj 2 12)")"

stop_momentd main
check "clean shutdown logged" grep -q '"msg":"stopped"' "$T_DIR/main/momentd.log"
check "stats count the dead letters" grep -q '"dead_lettered":"6"' "$T_DIR/main/momentd.log"
finish
