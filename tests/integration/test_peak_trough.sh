#!/usr/bin/env bash
# Adaptive cooldown through the real pipeline: a customer at peak demand is
# contacted again 10 days after the last contact (before 45), while one in a
# trough (score barely over the threshold) is not contacted 45 days after.
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

# Peak: 12 days after day 2, low balance again and five product views.
{
    pay_json "$P" p7 "$(bj 12 10)" false 50
    for k in 1 2 3 4 5; do view_json "$P" "p7v$k" "$(bj 12 $((10 + k)))" prepay_product; done
} | produce $N.payments
# Trough: 45 days after day 2, low balance again and another bill call.
pay_json "$T" t5 "$(bj 47 10)" false 50 | produce $N.payments
wait_settled
call_json "$T" t6 "$(bj 47 11)" | produce $N.calls

check "peak customer contacted again 10 days after the last contact" wait_for_count $N.moments.in_app 2 60
check "momentd read everything" wait_settled
PT=$(consume $N.moments.in_app | grep "\"customer_id\":\"$P\"" | tail -1)
check "second peak trigger caused by a day-12 view" grep -q '"event_id":"p7v' <<<"$PT"
check "its required gap was the minimum, 7 days" grep -q '"required_gap_days":7,' <<<"$PT"
check "its days since last contact was about 10" grep -Eq '"days_since_last_contact":10\.' <<<"$PT"
check "trough customer not contacted again" eq "$(consume $N.moments.sms | grep -c "\"customer_id\":\"$T\"")" 1
check "and on no other channel" eq "$(consume $N.moments.outbound_call | grep -c "\"customer_id\":\"$T\"")" 0
X=$(explain_at "$CFG" "$T" "$(bj 47 11)")
log "trough explain: $(grep -o '"score":[0-9.]*' <<<"$X" | head -1) $(grep -o '"required_gap_days":[0-9.]*' <<<"$X" | head -1)"
check "trough: blocked by the cooldown" grep -q '"blocked_by":"cooldown"' <<<"$X"
GAP=$(grep -o '"required_gap_days":[0-9.]*' <<<"$X" | head -1 | cut -d: -f2)
check "trough: required gap longer than 45 days" test "${GAP%%.*}" -gt 45
stop_momentd main
finish
