#!/usr/bin/env bash
# Promises of docs/SPEC.md that no other suite shows through the real broker
# and Redis: a bad profile is dead-lettered as bad_profile, with the source
# partition and offset of the original in its headers; a profile over
# limits.max_profile_attrs is refused and one at the limit kept; a profile
# tombstone deletes the profile; customers sharing a contact point are capped
# together (6 contacts in 30 days by default) through the daemon; a moment
# due in the channel's quiet hours is held, one due just before is sent.
source "$(dirname "$0")/lib.sh"

N=$(uname_ promises)
CFG=$(make_config "$N")
start_momentd "$CFG"

# --- Profiles: bad ones, the attribute limit, a tombstone.
attrs() { # attrs N: a flat object of N attributes
    local i out="{"
    for i in $(seq 1 "$1"); do out+="\"a$i\":\"v$i\","; done
    echo "${out%,}}"
}
{
    echo "pr-bad|{\"nested\":{\"not\":\"a scalar\"}}"
    echo "pr-many|$(attrs 33)"
    echo "pr-limit|$(attrs 32)"
    echo "pr-tomb|{\"customer_type\":\"resident\",\"province\":\"Hebei\"}"
} | produce "$N.customer-profiles"
check "momentd read the profiles" wait_settled
DL=$(consume "$N.dead-letter" '%k %h\n')
check "a profile of non-scalars is dead-lettered as bad_profile" grep -q '^pr-bad .*momentd.reason=bad_profile' <<<"$DL"
check "so is one over max_profile_attrs (32)" grep -q '^pr-many .*momentd.reason=bad_profile' <<<"$DL"
check "one at the limit is kept" eq "$(grep -c '^pr-limit ' <<<"$DL")" 0
check "and loaded whole" grep -q '"a32":"v32"' <<<"$("$MOMENTD_BIN" explain -c "$CFG" pr-limit --json)"
# The headers name where the original is: the same partition and offset.
ORIG=$(kcat -b "$BROKER" -C -t "$N.customer-profiles" -o beginning -e -q -f '%k %p %o\n' | grep '^pr-bad ')
check "the dead letter names the original's partition" grep -q "momentd.source_partition=$(cut -d' ' -f2 <<<"$ORIG")," <<<"$(grep '^pr-bad ' <<<"$DL")"
check "and offset" grep -q "momentd.source_offset=$(cut -d' ' -f3 <<<"$ORIG")\$" <<<"$(grep '^pr-bad ' <<<"$DL")"
check "the kept profile is there" grep -q '"province":"Hebei"' <<<"$("$MOMENTD_BIN" explain -c "$CFG" pr-tomb --json)"
echo "pr-tomb|" | kcat -b "$BROKER" -P -t "$N.customer-profiles" -K'|' -Z
echo 1 >>"$T_DIR/produced"
check "momentd read the tombstone" wait_settled
check "a tombstone deletes the profile" grep -q '"profile":{}' <<<"$("$MOMENTD_BIN" explain -c "$CFG" pr-tomb --json)"

# --- Eight accounts behind one phone number, each a clear late payer.
CP=()
for i in $(seq 0 20); do
    c=$(pick_customer "$CFG" "cp$i")
    case " ${CP[*]} " in *" $c "*) ;; *) CP+=("$c") ;; esac
    [ "${#CP[@]}" -ge 8 ] && break
done
check "eight customers outside every holdout group" eq "${#CP[@]}" 8
for c in "${CP[@]}"; do echo "$c|{\"customer_type\":\"resident\",\"contact_point\":\"13900000042\"}"; done | produce "$N.customer-profiles"
wait_settled
for c in "${CP[@]}"; do late_payer "$c"; done | produce "$N.payments"
check "momentd read their payments" wait_settled
# moments_for CUSTOMER: how many moments the channels received for CUSTOMER.
moments_for() {
    for t in outbound_call in_app sms; do consume "$N.moments.$t"; done | { grep -c "\"customer_id\":\"$1\"" || true; }
}
SENT=0
for c in "${CP[@]}"; do SENT=$((SENT + $(moments_for "$c"))); done
check "the shared number is contacted 6 times, not 8" eq "$SENT" 6
CAPPED=0
for c in "${CP[@]}"; do
    explain_at "$CFG" "$c" "$(bj 60 11)" | grep -q '"blocked_by":"cap_contact_point"' && CAPPED=$((CAPPED + 1))
done
check "and explain names the contact-point cap for the other accounts" ge "$CAPPED" 2
check "the contact point's own key holds the contacts" eq "$(rcli HLEN "$N:{cp:13900000042}")" 6

# --- Quiet hours: outbound calls are quiet from 21:00 to 09:00 (Beijing).
Q=$(pick_customer "$CFG" quiet)
D=$(pick_customer "$CFG" day)
printf '%s|{"customer_type":"resident"}\n' "$Q" "$D" | produce "$N.customer-profiles"
wait_settled
{
    pay_json "$Q" "$Q-1" "$(bj 0 10)" true 80
    pay_json "$Q" "$Q-2" "$(bj 30 10)" true 60
    pay_json "$Q" "$Q-3" "$(bj 60 21)" true 50 # 21:00 sharp: quiet
    pay_json "$D" "$D-1" "$(bj 0 10)" true 80
    pay_json "$D" "$D-2" "$(bj 30 10)" true 60
    echo "$D|{\"event_id\":\"$D-3\",\"type\":\"payment\",\"customer_id\":\"$D\",\"ts\":$(($(bj 60 21) - 60000)),\"amount\":100,\"channel\":\"bank\",\"kind\":\"bill\",\"late\":true,\"balance_after\":50}"
} | produce "$N.payments"
check "momentd read the evening payments" wait_settled
check "at 20:59 the call is made" eq "$(moments_for "$D")" 1
check "at 21:00 it is held" eq "$(moments_for "$Q")" 0
check "and explain says why" grep -q '"blocked_by":"quiet_hours"' <<<"$(explain_at "$CFG" "$Q" "$(bj 60 21)")"

# --- Ids that would break keys: a customer in the contact points' namespace,
# a contact point with a brace (it names "<prefix>:{cp:<value>}").
pay_json "cp:13900000042" x1 "$(bj 60 10)" true 50 | produce "$N.payments"
echo "pr-brace|{\"contact_point\":\"139}00\"}" | produce "$N.customer-profiles"
check "momentd read them" wait_settled
DL=$(consume "$N.dead-letter" '%k %h\n')
check "a customer id in the contact points' namespace is dead-lettered (bad_value)" grep -q '^cp:13900000042 .*momentd.reason=bad_value' <<<"$DL"
check "a contact point with a brace is refused (bad_profile)" grep -q '^pr-brace .*momentd.reason=bad_profile' <<<"$DL"
check "and the shared number's contact-point key still holds only its 6 contacts" eq "$(rcli HLEN "$N:{cp:13900000042}")" 6

# --- A hot customer: 5,000 distinct event ids within the dedupe horizon.
# The guard keeps at most 256 ids (it kept every one, without limit), so the
# customer's hash stays bounded; others are unaffected.
for i in $(seq 1 5000); do
    echo "hot-1|{\"event_id\":\"hot-$i\",\"type\":\"app_login\",\"customer_id\":\"hot-1\",\"ts\":$(($(bj 60 10) + i * 60000)),\"pages\":[\"home\"],\"session_s\":10}"
done | produce "$N.app-logins"
pay_json cool-1 cool-1a "$(bj 60 10)" false 500 | produce "$N.payments"
check "momentd read the hot customer's 5,000 events" wait_settled main 120
check "its hash stays bounded: at most 256 ids and its other fields" test "$(rcli HLEN "$N:{hot-1}")" -lt 300
check "and under 64 KB (5,000 ids would be over 200 KB)" test "$(rcli MEMORY USAGE "$N:{hot-1}")" -lt 65536
check "a customer beside it was counted" grep -q '"payments_180d":1' <<<"$(explain_at "$CFG" cool-1 "$(bj 60 11)")"

# --- Outcomes for triggers momentd never emitted change nothing and create
# no state (before: each created a state hash that lived about a year).
for i in $(seq 1 50); do
    echo "ghost-$i|{\"trigger_id\":\"m00000000000000000000000000000$((i + 10))\",\"customer_id\":\"ghost-$i\",\"campaign\":\"prepay_wallet\",\"channel\":\"outbound_call\",\"status\":\"complaint\",\"ts\":$(bj 60 12)}"
done | produce "$N.moment-outcomes"
check "momentd read the bogus outcomes" wait_settled
check "and wrote no state for them" eq "$(rcli --scan --pattern "$N:{ghost-*" | grep -c . || true)" 0

stop_momentd main
STOPPED=$(grep '"msg":"stopped"' "$T_DIR/main/momentd.log")
check "the bogus outcomes were counted as unknown" grep -q '"outcomes_unknown_trigger":"50"' <<<"$STOPPED"
check "the hot customer's forgotten ids were counted" grep -q "\"dedupe_evictions\":\"$((5000 - 256))\"" <<<"$STOPPED"
finish
