#!/usr/bin/env bash
# momentd backtest against the real broker and Redis: replaying a file under
# the live configuration and under the same file as candidate changes
# nothing; a lower threshold shows more triggers; over a topic, the live
# side's triggers are exactly those the daemon produced from it; no key is
# left in Redis and the live namespace is never touched.
source "$(dirname "$0")/lib.sh"

N=$(uname_ bt)
CFG=$(make_config "$N")
"$GEN" --customers 400 --seed 21 >"$T_DIR/events.txt"
LINES=$(grep -c . "$T_DIR/events.txt")
sed 's/"threshold": 0.6,/"threshold": 0.45,/' "$CFG" >"$T_DIR/lower.json"
check "the candidate differs in one threshold" eq "$(diff "$CFG" "$T_DIR/lower.json" | grep -c '^>')" 1
bt() { "$MOMENTD_BIN" backtest "$@" 2>>"$T_DIR/stderr.log"; }
field() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }

SAME=$(bt -c "$CFG" --live "$CFG" --from-file "$T_DIR/events.txt" --json)
check "every line of the file is read" eq "$(field records <<<"$SAME")" "$LINES"
check "none rejected" eq "$(field rejected <<<"$SAME")" 0
check "the file triggers something" ge "$(field live <<<"$SAME")" 10
check "a candidate equal to the live configuration triggers the same" eq "$(field candidate <<<"$SAME")" "$(field live <<<"$SAME")"
check "day by day" eq "$(grep -o '"live":[0-9]*,"candidate":[0-9]*' <<<"$SAME" | awk -F'[:,]' '$2 != $4' | wc -l)" 0
# Value: what each side's triggers are worth, expected by its model and
# observed in the history after them; equal sides, equal value.
value_of() { grep -o "\"campaign\":\"$2\",\"live\":{[^}]*},\"candidate\":{[^}]*}" <<<"$1"; }
PV=$(value_of "$SAME" prepay_wallet)
check "the value of prepay_wallet's triggers is reported for both sides" grep -q '"live":{"model_version":"prepay_wallet-2026.11.1","triggers":[1-9]' <<<"$PV"
check "and is the same for a candidate equal to the live configuration" \
    eq "$(grep -o '"live":{[^}]*}' <<<"$PV" | cut -d'{' -f2)" "$(grep -o '"candidate":{[^}]*}' <<<"$PV" | cut -d'{' -f2)"
LOWER=$(bt -c "$T_DIR/lower.json" --live "$CFG" --from-file "$T_DIR/events.txt" --json)
check "a lower prepay_wallet threshold triggers more" test "$(field candidate <<<"$LOWER")" -gt "$(field live <<<"$LOWER")"
TXT=$(bt -c "$T_DIR/lower.json" --live "$CFG" --from-file "$T_DIR/events.txt")
check "the text form has a row per campaign, channel and day" grep -qE '^prepay_wallet +(sms|in_app|outbound_call) +20[0-9-]{8} +[0-9]+ +[0-9]+ +[-+][0-9]+$' <<<"$TXT"
check "no backtest keys are left in Redis" eq "$(rcli --scan --pattern 'momentd-backtest:*' | wc -l)" 0
check "the live namespace was never written" eq "$(rcli --scan --pattern "$N:*" | wc -l)" 0

# Over a topic: the daemon's own triggers, and the backtest's live side.
"$GEN" --customers 600 --seed 22 --topics payments | cut -d'|' -f2- | produce "$N.payments"
start_momentd "$CFG"
EV=$(kcat -b "$BROKER" -C -t "$N.payments" -o beginning -e -q | grep -c .)
check "the daemon consumed the $EV payments" wait_consumed main "$EV" 60
sleep 1
stop_momentd main
DAEMON=0
for t in outbound_call in_app sms; do DAEMON=$((DAEMON + $(count "$N.moments.$t"))); done
TOPIC=$(bt -c "$CFG" --live "$CFG" --from-topic "$N.payments" --json)
check "the topic is read to its end" eq "$(field records <<<"$TOPIC")" "$EV"
check "the live side triggers what the daemon triggered ($DAEMON)" eq "$(field live <<<"$TOPIC")" "$DAEMON"
check "holdout decisions too" eq "$(grep -o '"live_holdout":[0-9]*' <<<"$TOPIC" | cut -d: -f2)" "$(count "$N.moments.holdout")"
# The live side's expected conversions are the p_contact of the moments the
# daemon produced, summed; what followed them is what momentd report counts
# from the daemon's own funnel.
SUMP=$(for t in outbound_call in_app sms; do consume "$N.moments.$t"; done | grep -o '"p_contact":[0-9.e-]*' | cut -d: -f2 | awk '{s += $1} END {printf "%.4f", s}')
LIVE_EXP=$(for c in prepay_wallet bill_instalment; do value_of "$TOPIC" "$c" | grep -o '"live":{[^}]*}' | grep -o '"expected_conversions":[0-9.e+-]*' | cut -d: -f2; done | awk '{s += $1} END {printf "%.4f", s}')
check "expected conversions of the live side = the daemon's moments' p_contact summed ($SUMP)" \
    awk -v a="$LIVE_EXP" -v b="$SUMP" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 0.001 * b + 0.01) }'
REPORT=$("$MOMENTD_BIN" report -c "$CFG" --from 2025-06-01 --to 2027-06-01 --json)
RCONV=$(grep -o '"campaign":"prepay_wallet".*' <<<"$REPORT" | grep -o '"treated_conversions":[0-9]*' | head -1 | cut -d: -f2)
check "conversions after the live side's triggers = what the daemon's report counts ($RCONV)" \
    eq "$(value_of "$TOPIC" prepay_wallet | grep -o '"live":{[^}]*}' | grep -o '"conversions_after":[0-9]*' | cut -d: -f2)" "$RCONV"
"$MOMENTD_BIN" backtest -c "$CFG" --live "$CFG" --from-topic "nope-$N" >/dev/null 2>"$T_DIR/nope.err" && RC=0 || RC=$?
check "an unknown topic is an error (exit 2)" eq "$RC" 2
check "naming it" grep -q "topic nope-$N: not found" "$T_DIR/nope.err"
check "no sanitizer report from the command-line runs" eq "$(grep -cE 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$T_DIR/stderr.log" || true)" 0
finish
