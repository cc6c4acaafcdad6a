#!/usr/bin/env bash
# Follow-ups chained on outcomes, through the real broker and Redis with kcat
# as the dialer: an unanswered call is followed in-app, a connected call by
# an SMS, each not before the configured gap (24 h in the default config,
# which the one-contact-per-24-hours cap requires); a call hung up within
# seconds is followed by nothing.
source "$(dirname "$0")/lib.sh"

N=$(uname_ followup)
CFG=$(make_config "$N")
start_momentd "$CFG"
E=$(pick_customer "$CFG" fe)
F=$(pick_customer "$CFG" ff)
G=$(pick_customer "$CFG" fg)
printf '%s|{"customer_type":"resident"}\n' "$E" "$F" "$G" | produce "$N.customer-profiles"
wait_settled # the profiles are in place before any event
for who in "$E" "$F" "$G"; do
    {
        pay_json "$who" "${who}-1" "$(bj 0 10)" true 80
        pay_json "$who" "${who}-2" "$(bj 30 10)" true 60
        pay_json "$who" "${who}-3" "$(bj 60 10)" true 50
    } | produce "$N.payments"
done
check "three calls reach the dialer" wait_for_count "$N.moments.outbound_call" 3 60
tid() { consume "$N.moments.outbound_call" | grep "\"customer_id\":\"$1\"" | grep -o '"trigger_id":"[^"]*"' | cut -d'"' -f4; }
outcome() { # CUSTOMER STATUS TS [EXTRA]
    echo "$1|{\"trigger_id\":\"$(tid "$1")\",\"customer_id\":\"$1\",\"campaign\":\"prepay_wallet\",\"channel\":\"outbound_call\",\"status\":\"$2\",\"ts\":$3${4:-}}" |
        produce "$N.moment-outcomes"
}
outcome "$E" no_answer "$(bj 60 11)"
outcome "$F" reached "$(bj 60 11)" ',"duration_s":240'
outcome "$G" reached "$(bj 60 11)" ',"duration_s":2'
check "E's unanswered call is followed in-app" wait_for_count "$N.moments.in_app" 1 60
check "F's connected call is followed by an SMS" wait_for_count "$N.moments.sms" 1 60
check "momentd read every outcome" wait_settled
FE=$(consume "$N.moments.in_app")
FF=$(consume "$N.moments.sms")
check "the in-app follow-up is E's" grep -q "\"customer_id\":\"$E\"" <<<"$FE"
check "and names the call it follows" grep -q "\"follow_up_of\":\"$(tid "$E")\"" <<<"$FE"
NB=$(date -u -d "@$(( ($(bj 60 11) + 86400000) / 1000 ))" +%Y-%m-%dT%H:%M:%S)
check "not before 24 hours after the outcome" grep -q "\"not_before\":\"$NB" <<<"$FE"
check "the SMS follow-up is F's" grep -q "\"customer_id\":\"$F\".*\"follow_up_of\":\"$(tid "$F")\"" <<<"$FF"
check "G hung up within seconds: nothing follows" eq "$(for t in in_app sms; do consume "$N.moments.$t"; done | grep -c "\"customer_id\":\"$G\"")" 0
# The follow-up counts as a contact: E's next contact waits for its cooldown from it.
X=$(explain_at "$CFG" "$E" "$(bj 62 10)")
check "explain: E's last contact is the follow-up's time" grep -q "\"last_contact\":\"$NB" <<<"$X"
follow_ups_valid() { for t in in_app sms; do consume "$N.moments.$t"; done | grep '"follow_up_of"' | valid_moments; }
check "the follow-ups validate against docs/schemas/moment.schema.json" follow_ups_valid
stop_momentd main
check "two follow-ups counted in the daemon's totals" grep -q '"follow_ups":"2"' <<<"$(grep '"msg":"stopped"' "$T_DIR/main/momentd.log")"
finish
