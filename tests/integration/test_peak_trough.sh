#!/usr/bin/env bash
# The value rule through the real pipeline: a customer at peak demand is
# contacted again 14 days after the last contact (before 45), while one
# barely over the threshold is not contacted 28 days after, but is again
# after 45 days (the gap is never longer than the rule it replaces).
source "$(dirname "$0")/lib.sh"

N=$(uname_ peak)
CFG=$(make_config $N)
start_momentd "$CFG"
P=$(pick_customer "$CFG" peak)
T=$(pick_customer "$CFG" trough)
log "peak customer $P, trough customer $T"
printf '%s|{"customer_type":"resident"}\n%s|{"customer_type":"resident"}\n' "$P" "$T" | produce $N.customer-profiles
wait_settled

call_json() { echo "$1|{\"event_id\":\"$2\",\"type\":\"call\",\"customer_id\":\"$1\",\"ts\":$3,\"reason\":\"bill_inquiry\",\"direction\":\"inbound\",\"duration_s\":120}"; }

# Both: first contact on day 2, then a payment that restores the balance re-arms.
{
    pay_json "$P" p1 "$(bj 0 10)" true 50
    pay_json "$P" p2 "$(bj 1 10)" true 50
    view_json "$P" p3 "$(bj 2 10)" prepay_product
    view_json "$P" p4 "$(bj 2 11)" prepay_product
    view_json "$P" p5 "$(bj 2 12)" prepay_product
    pay_json "$P" p6 "$(bj 10 10)" false 800
    pay_json "$T" t1 "$(bj 0 10)" true 50
    pay_json "$T" t2 "$(bj 1 10)" true 50
} | produce $N.payments
# Calls are their own topic; each is produced once momentd has read what
# comes before it, so the order per customer is the story's order.
wait_settled
call_json "$T" t3 "$(bj 2 10)" | produce $N.calls
wait_settled
pay_json "$T" t4 "$(bj 10 10)" false 800 | produce $N.payments
check "both first contacts made" wait_for_count $N.moments.in_app 1 60
check "trough's first contact by SMS after the call" wait_for_count $N.moments.sms 1 60
wait_settled

# Peak: 14 days after day 2, low balance again and five product views.
{
    pay_json "$P" p7 "$(bj 16 10)" false 50
    for k in 1 2 3 4 5; do view_json "$P" "p7v$k" "$(bj 16 $((10 + k)))" prepay_product; done
} | produce $N.payments
# Near the threshold: 28 days after day 2, low balance again and another bill call.
pay_json "$T" t5 "$(bj 30 10)" false 50 | produce $N.payments
wait_settled
call_json "$T" t6 "$(bj 30 11)" | produce $N.calls

check "peak customer contacted again 14 days after the last contact" wait_for_count $N.moments.in_app 2 20
check "momentd read everything" wait_settled
PT=$(consume $N.moments.in_app | grep "\"customer_id\":\"$P\"" | tail -1)
check "second peak trigger caused by a day-16 view" grep -q '"event_id":"p7v' <<<"$PT"
GAP_P=$(jq -r .cooldown.required_gap_days <<<"$PT")
check "its required gap was under 14 days ($GAP_P)" awk -v g="$GAP_P" 'BEGIN { exit !(g >= 7 && g < 14) }'
check "its days since last contact was about 14" grep -Eq '"days_since_last_contact":14\.' <<<"$PT"
check "the customer near the threshold is not contacted again" eq "$(consume $N.moments.sms | grep -c "\"customer_id\":\"$T\"")" 1
check "and on no other channel" eq "$(consume $N.moments.outbound_call | grep -c "\"customer_id\":\"$T\"")" 0
X=$(explain_at "$CFG" "$T" "$(bj 30 11)" | jq -c '.campaigns[] | select(.campaign == "prepay_wallet")')
log "near the threshold: $(jq -c '{score, cooldown}' <<<"$X")"
check "near the threshold: blocked by the cooldown" eq "$(jq -r .blocked_by <<<"$X")" cooldown
check "explain names the recovery's shape (prepay_wallet: exponential)" eq "$(jq -r .cooldown.recovery <<<"$X")" exponential
B=$(explain_at "$CFG" "$T" "$(bj 30 11)" | jq -c '.campaigns[] | select(.campaign == "bill_instalment")')
check "and bill_instalment's ($(jq -r .cooldown.mode <<<"$B") arm): window, or none in the fixed arm" \
    eq "$(jq -r '.cooldown.recovery // "none"' <<<"$B")" "$(jq -r 'if .cooldown.mode == "fixed" then "none" else "window" end' <<<"$B")"
GAP=$(jq -r .cooldown.required_gap_days <<<"$X")
check "near the threshold: a gap of more than 28 days, at most 45 ($GAP)" awk -v g="$GAP" 'BEGIN { exit !(g > 28 && g <= 45) }'
# 46 days after day 2: the gap has passed whatever the score.
pay_json "$T" t7 "$(bj 48 10)" false 50 | produce $N.payments
wait_settled
call_json "$T" t8 "$(bj 48 11)" | produce $N.calls
t_moments() { for t in sms outbound_call in_app; do consume "$N.moments.$t"; done | grep -c "\"customer_id\":\"$T\"" || true; }
wait_t2() { local i; for i in $(seq 1 40); do [ "$(t_moments)" -ge 2 ] && return 0; sleep 0.5; done; return 1; }
check "momentd read the day-48 story" wait_settled
check "after 46 days the customer near the threshold is contacted again" wait_t2 || log "explain: $(explain_at "$CFG" "$T" "$(bj 48 12)" | jq -c '.campaigns[] | select(.campaign == "prepay_wallet")')"
stop_momentd main
finish
