#!/usr/bin/env bash
# Do-not-contact lists, consent and campaign lists against the real broker
# and Redis. Five late payers, each the default prepay_wallet campaign's
# clearest moment (a call), with the call channel needing the profile's
# call_consent: the one with consent and nothing else is called; a phone
# number on the do-not-call list (momentd dnc --contact-points), a customer
# on it (momentd dnc), a customer without consent and one on the campaign's
# exclude list are not, each suppressed for its own reason in explain and in
# /metrics. The lists keep their keys for good, survive an erasure where
# they should, come off again, and a bad id in a list is exit 2 and changes
# nothing.
source "$(dirname "$0")/lib.sh"

N=$(uname_ lists)
PORT=19467
CFG=$(make_config "$N" -e "s/\"listen\": \"\"/\"listen\": \"127.0.0.1:$PORT\"/" \
    -e 's/{"name": "outbound_call", "topic": "\([^"]*\)",/{"name": "outbound_call", "topic": "\1", "consent": "call_consent",/' \
    -e "s/\"contact_policy\": {/\"audit\": {\"topic\": \"$N.decisions\"}, \"contact_policy\": {/")
grep -q '"consent": "call_consent"' "$CFG" || fail "the consent config was not made"
grep -q "\"topic\": \"$N.decisions\"" "$CFG" || fail "the decisions topic was not configured"
start_momentd "$CFG"
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | grep -v '^#' | { grep -F "$1 " || echo "$1 missing"; } | awk '{print $NF}'; }
status() { "$MOMENTD_BIN" explain -c "$CFG" "$1" --json | jq -r ".channels.$2"; }
why_not() { explain_at "$CFG" "$1" "$(bj 60 10)" | jq -r '.campaigns[] | select(.campaign == "prepay_wallet") | .blocked_by'; }

OK=$(pick_customer "$CFG" lok)
PHONE_DNC=$(pick_customer "$CFG" lph)
CUST_DNC=$(pick_customer "$CFG" lcu)
NO_CONSENT=$(pick_customer "$CFG" lnc)
EXCLUDED=$(pick_customer "$CFG" lex)
{
    echo "$OK|{\"customer_type\":\"resident\",\"call_consent\":\"yes\",\"contact_point\":\"13900000101\"}"
    echo "$PHONE_DNC|{\"customer_type\":\"resident\",\"call_consent\":\"yes\",\"contact_point\":\"13900000102\"}"
    echo "$CUST_DNC|{\"customer_type\":\"resident\",\"call_consent\":\"granted\"}"
    echo "$NO_CONSENT|{\"customer_type\":\"resident\",\"call_consent\":\"no\"}"
    echo "$EXCLUDED|{\"customer_type\":\"resident\",\"call_consent\":\"yes\"}"
} | produce "$N.customer-profiles"
wait_settled

# The regulator's list holds phone numbers; one of the bank's own holds a
# customer id.
printf '# do-not-call, 2026-12\n13900000102\n\n13900000999\n' >"$T_DIR/dnc.txt"
OUT=$("$MOMENTD_BIN" dnc -c "$CFG" --channel outbound_call --contact-points --from-file "$T_DIR/dnc.txt")
check "momentd dnc lists the file's 2 phone numbers (comments and blank lines skipped)" grep -q '^2 contact points on the do-not-contact list for outbound_call (0 were so already)$' <<<"$OUT"
check "listed again, nothing changes" grep -q '(2 were so already)' <<<"$("$MOMENTD_BIN" dnc -c "$CFG" --channel outbound_call --contact-points --from-file "$T_DIR/dnc.txt")"
check "momentd dnc lists a customer" eq "$("$MOMENTD_BIN" dnc -c "$CFG" --channel outbound_call "$CUST_DNC" --json | jq -c '[.entry, .action, .changed]')" '["dn:outbound_call","added",1]'
check "momentd list puts a customer on the exclude list" grep -q "^1 customers on prepay_wallet's exclude list" <<<"$("$MOMENTD_BIN" list -c "$CFG" --campaign prepay_wallet --exclude "$EXCLUDED")"
check "a phone number on the list never expires (a number nobody called yet)" eq "$(rcli PTTL "$N:{cp:13900000999}")" -1
# The called customer's number is on the SMS list only: the call goes out,
# and the call's contact written to the number's key must not give it an
# expiry.
"$MOMENTD_BIN" dnc -c "$CFG" --channel sms --contact-points 13900000101 >/dev/null
check "nor does a listed customer's state" eq "$(rcli PTTL "$N:{$CUST_DNC}")" -1

for c in "$OK" "$PHONE_DNC" "$CUST_DNC" "$NO_CONSENT" "$EXCLUDED"; do late_payer "$c"; done | produce "$N.payments"
check "the customer with consent and no list is called" wait_for_count "$N.moments.outbound_call" 1 60
wait_settled
CALLED=$(consume "$N.moments.outbound_call" | jq -r .customer_id | sort | tr '\n' ' ')
check "and no one else (nothing came by another channel either)" eq "$CALLED,$(count "$N.moments.sms"),$(count "$N.moments.in_app")" "$OK ,0,0"
check "the phone number's listing: do_not_contact" eq "$(why_not "$PHONE_DNC")" do_not_contact
check "the customer's listing: do_not_contact" eq "$(why_not "$CUST_DNC")" do_not_contact
check "no consent: no_consent" eq "$(why_not "$NO_CONSENT")" no_consent
check "the exclude list: excluded" eq "$(why_not "$EXCLUDED")" excluded
check "explain says which list holds the phone number" eq "$(status "$PHONE_DNC" outbound_call)" "do_not_contact (contact point)"
check "and the customer's own" eq "$(status "$CUST_DNC" outbound_call)" "do_not_contact (customer)"
check "and the consent" eq "$(status "$NO_CONSENT" outbound_call)" 'no_consent (call_consent is "no")'
check "and that SMS is still open to them" eq "$(status "$CUST_DNC" sms)" ok
check "explain names the campaign list" eq "$("$MOMENTD_BIN" explain -c "$CFG" "$EXCLUDED" --json | jq -r '.campaigns[] | select(.campaign == "prepay_wallet") | .list')" exclude
check "a listed number that was called stays listed, for good" eq "$(rcli PTTL "$N:{cp:13900000101}"),$(rcli HEXISTS "$N:{cp:13900000101}" dn:sms)" -1,1
# The decision feed (audit.topic): one record per campaign for each of the
# 15 payments, each valid against docs/schemas/decision.schema.json.
check "the decision feed has 2 campaigns x 15 payments" wait_for_count "$N.decisions" 30 60
DEC=$(consume "$N.decisions")
check "every decision is valid against its schema" bash -c "'$MOMENTD_SOURCE_DIR/tests/schemas/check' --validate decision >/dev/null" <<<"$DEC"
last_decision() { jq -rc --arg c "$1" 'select(.customer_id == $c and .campaign == "prepay_wallet" and .caused_by.event_id == ($c + "-3")) | .outcome' <<<"$DEC"; }
check "the called customer's: fired, with the moment's trigger id" eq "$(jq -r --arg c "$OK" 'select(.customer_id == $c and .outcome == "fired") | .trigger_id' <<<"$DEC")" "$(consume "$N.moments.outbound_call" | jq -r .trigger_id)"
check "the others': why not" eq "$(last_decision "$PHONE_DNC"),$(last_decision "$CUST_DNC"),$(last_decision "$NO_CONSENT"),$(last_decision "$EXCLUDED")" do_not_contact,do_not_contact,no_consent,excluded
check "an earlier payment: below the threshold" eq "$(jq -rc --arg c "$OK" 'select(.customer_id == $c and .campaign == "prepay_wallet" and .caused_by.event_id == ($c + "-1")) | .outcome' <<<"$DEC")" below_threshold
for r in do_not_contact no_consent excluded; do
    check "/metrics counts $r" ge "$(metric "momentd_suppressions_total{reason=\"$r\"}")" 1
done

# Erasure keeps the do-not-contact entry (it is how the customer is left
# alone), not the campaign list.
"$MOMENTD_BIN" forget -c "$CFG" "$CUST_DNC" "$EXCLUDED" >/dev/null
check "an erased customer keeps its do-not-contact entry" eq "$(rcli HGET "$N:{$CUST_DNC}" dn:outbound_call | grep -c '^[0-9]*$')" 1
check "for good" eq "$(rcli PTTL "$N:{$CUST_DNC}")" -1
check "an erased customer's campaign list goes" eq "$(rcli HEXISTS "$N:{$EXCLUDED}" ls:prepay_wallet)" 0

# Off the list again: the key gets its expiry back, and the customer can be
# decided again (explain shows the channel open).
check "momentd dnc --remove takes the phone number off" grep -q '^1 contact points off the do-not-contact list for outbound_call (0 were so already)$' \
    <<<"$("$MOMENTD_BIN" dnc -c "$CFG" --channel outbound_call --contact-points --remove 13900000102)"
check "the channel is open again" eq "$(status "$PHONE_DNC" outbound_call)" ok
check "a number taken off that nobody called is deleted" bash -c "'$MOMENTD_BIN' dnc -c '$CFG' --channel outbound_call --contact-points --remove 13900000999 >/dev/null && [ \"\$(redis-cli -p $REDIS_PORT EXISTS '$N:{cp:13900000999}')\" = 0 ]"
"$MOMENTD_BIN" dnc -c "$CFG" --channel sms --contact-points --remove 13900000101 >/dev/null
check "a phone number that was called keeps its contact log when taken off, with an expiry again" \
    test "$(rcli PTTL "$N:{cp:13900000101}")" -gt 0 -a "$(rcli HLEN "$N:{cp:13900000101}")" -ge 1

# Bad input changes nothing.
printf 'good-1\nbad{id}\n' >"$T_DIR/bad.txt"
check "a list with a bad id is exit 2" bash -c "'$MOMENTD_BIN' list -c '$CFG' --campaign prepay_wallet --include --from-file '$T_DIR/bad.txt' 2>'$T_DIR/bad.err'; [ \$? = 2 ]"
check "naming the line and why" grep -q "bad.txt line 2: customer id \"bad{id}\" contains '{'" "$T_DIR/bad.err"
check "and nothing was changed" eq "$(rcli EXISTS "$N:{good-1}")" 0
check "an unknown channel is exit 2" bash -c "'$MOMENTD_BIN' dnc -c '$CFG' --channel fax x 2>&1; [ \$? = 2 ]"
check "an unknown campaign is exit 2" bash -c "'$MOMENTD_BIN' list -c '$CFG' --campaign nope --exclude x 2>&1; [ \$? = 2 ]"
check "dnc without a channel is exit 2" bash -c "'$MOMENTD_BIN' dnc -c '$CFG' x 2>&1 | grep -q 'needs one of --channel NAME or --all-channels'"
check "a list option on dnc is exit 2" bash -c "'$MOMENTD_BIN' dnc -c '$CFG' --all-channels --campaign prepay_wallet x 2>&1 | grep -q \"are momentd list's\""
stop_momentd main
finish
