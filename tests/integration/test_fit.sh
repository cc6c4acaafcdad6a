#!/usr/bin/env bash
# momentd fit against the real broker and Redis: after 120 days of history
# through the daemon and an outcome from the dialer, every prepay_wallet
# trigger has its decision record in Redis (holdout ones too, the one the
# dialer did not call marked released), conversions in the stream labelled
# them, and `momentd fit --from-redis` fits the model, measures it out of
# sample and writes a candidate that loads, changes only the fitted
# campaign's model and thresholds, and is the same when fitted again from
# the trace it wrote. Bad input gets a clear error and exit 2.
source "$(dirname "$0")/lib.sh"

N=$(uname_ fit)
CFG=$(make_config "$N")
DAY=86400000
START=$(bj 0 0)
"$GEN" --customers 400 --seed 11 --start "$START" --days 120 >"$T_DIR/events.txt"
start_momentd "$CFG"
"$MOMENTD_SOURCE_DIR/scripts/feed-history" "$BROKER" "$T_DIR/main/momentd.log" "$T_DIR/events.txt" "$N." 10 >/dev/null
grep -c . "$T_DIR/events.txt" >>"$T_DIR/produced"
check "the history is consumed" wait_settled main 180

OUTS="$N.moments.outbound_call $N.moments.in_app $N.moments.sms $N.moments.holdout"
for t in $OUTS; do consume "$t"; done | jq -c 'select(.campaign == "prepay_wallet" and .follow_up_of == null)' >"$T_DIR/moments.json"
TRIGGERS=$(grep -c . "$T_DIR/moments.json")
log "prepay_wallet triggers: $TRIGGERS"
check "the history fires prepay_wallet" ge "$TRIGGERS" 20

# The dialer did not call one of them.
FIRST=$(jq -r 'select(.holdout == false and .channel == "outbound_call") | [.trigger_id, .customer_id, .emitted_at] | @tsv' "$T_DIR/moments.json" | tail -1)
TID=$(cut -f1 <<<"$FIRST")
CUST=$(cut -f2 <<<"$FIRST")
echo "$CUST|{\"trigger_id\":\"$TID\",\"customer_id\":\"$CUST\",\"campaign\":\"prepay_wallet\",\"channel\":\"outbound_call\",\"status\":\"not_called\",\"ts\":\"$(cut -f3 <<<"$FIRST")\"}" |
    produce "$N.moment-outcomes"
# Three of the latest contacted customers buy the wallet an hour after their moment.
jq -r 'select(.holdout == false) | [.event_time, .customer_id] | @tsv' "$T_DIR/moments.json" | sort | tail -3 >"$T_DIR/buyers.tsv"
while IFS=$'\t' read -r at who; do
    ms=$(($(date -u -d "$at" +%s) * 1000 + 3600000))
    pay_json "$who" "buy-$who" "$ms" false 600 prepay
done <"$T_DIR/buyers.tsv" | produce "$N.payments"
check "the outcome and the purchases are consumed" wait_settled main 60

FIT="$MOMENTD_BIN fit -c $CFG --campaign prepay_wallet"
RC=0
$FIT --from-redis --json --out "$T_DIR/candidate.json" --trace-out "$T_DIR/trace.tsv" >"$T_DIR/fit.json" || RC=$?
check "fit from Redis succeeds" eq "$RC" 0
check "the trace holds only decision records" eq "$(grep -vc $'\tq:prepay_wallet:' "$T_DIR/trace.tsv" || true)" 0
# Every trigger has its record: contacted, holdout or released.
RECORDED=$(cut -f3 "$T_DIR/trace.tsv" | grep -c '^[thu]' || true)
check "one decision record per trigger" eq "$RECORDED" "$TRIGGERS"
HOLDOUTS=$(jq -r 'select(.holdout) | .trigger_id' "$T_DIR/moments.json" | grep -c . || true)
check "holdout decisions are recorded as such" eq "$(cut -f3 "$T_DIR/trace.tsv" | grep -c '^h' || true)" "$HOLDOUTS"
CUST_TS=$(jq -r --arg t "$TID" 'select(.trigger_id == $t) | .customer_id' "$T_DIR/moments.json")
check "the trigger the dialer did not call is recorded released" \
    bash -c "grep -P '^$CUST_TS\tq:prepay_wallet:' '$T_DIR/trace.tsv' | cut -f3 | grep -q '^u'"
# Labels: every conversion the funnel counted labelled its trigger's record.
CONVERTED=$(cut -f3 "$T_DIR/trace.tsv" | grep -c '^[thu]1' || true)
FUNNEL=$("$MOMENTD_BIN" report -c "$CFG" --from 2026-01-01 --to 2026-12-31 --json |
    jq '[.. | objects | select(.campaign? == "prepay_wallet") | (.uplift.treated_conversions // 0) + (.uplift.holdout_conversions // 0)] | add // 0')
log "records labelled converted: $CONVERTED; funnel conversions: $FUNNEL"
check "conversions in the stream labelled the decisions" ge "$CONVERTED" 1
check "at least every attributed conversion is a label" ge "$CONVERTED" "$FUNNEL"

# What the fit says.
check "the fit read every record" eq "$(jq .decisions.read "$T_DIR/fit.json")" "$(grep -c . "$T_DIR/trace.tsv")"
check "it trained on contacted decisions" ge "$(jq .decisions.contacted "$T_DIR/fit.json")" 1
check "decisions of the last 30 days wait for their label" ge "$(jq .decisions.label_not_final "$T_DIR/fit.json")" 1
check "the out-of-sample measures are numbers" \
    jq -e '.out_of_sample.fitted.brier >= 0 and .out_of_sample.fitted.log_loss > 0 and (.out_of_sample.fitted.reliability | length) == 10' "$T_DIR/fit.json"

# The candidate.
check "the candidate loads" "$MOMENTD_BIN" check -c "$T_DIR/candidate.json"
check "it carries the new model version" eq "$(jq -r '.campaigns[0].model.version' "$T_DIR/candidate.json")" "$(jq -r .candidate_version "$T_DIR/fit.json")"
check "with the fitted intercept" jq -e --slurpfile f "$T_DIR/fit.json" \
    '((.campaigns[0].model.intercept - $f[0].fitted.intercept) | fabs) < 0.001' "$T_DIR/candidate.json"
check "and threshold" jq -e --slurpfile f "$T_DIR/fit.json" '((.campaigns[0].threshold - $f[0].threshold) | fabs) < 0.001' "$T_DIR/candidate.json"
check "the other campaign is unchanged" eq "$(jq -S -c '.campaigns[1]' "$T_DIR/candidate.json")" "$(jq -S -c '.campaigns[1]' "$CFG")"
check "everything else is unchanged" eq "$(jq -S -c 'del(.campaigns)' "$T_DIR/candidate.json")" "$(jq -S -c 'del(.campaigns)' "$CFG")"
check "the model's notes and features are kept" eq "$(jq -c '[.campaigns[0].model.features[] | [.name, .expr, .cap, .note]]' "$T_DIR/candidate.json")" \
    "$(jq -c '[.campaigns[0].model.features[] | [.name, .expr, .cap, .note]]' "$CFG")"

# The trace fits to the same numbers.
RC=0
$FIT --from-trace "$T_DIR/trace.tsv" --json >"$T_DIR/fit2.json" || RC=$?
check "fit from the trace succeeds" eq "$RC" 0
check "and gives the same fit" eq "$(jq -S -c . "$T_DIR/fit2.json")" "$(jq -S -c . "$T_DIR/fit.json")"

# Bad input: a clear error, exit 2, nothing written.
printf 'c1\tq:prepay_wallet:1\tzz\n' >"$T_DIR/bad.tsv"
set +e
$FIT --from-trace "$T_DIR/bad.tsv" --out "$T_DIR/never.json" 2>"$T_DIR/err1"
RC1=$?
"$MOMENTD_BIN" fit -c "$CFG" --campaign nope --from-redis 2>"$T_DIR/err2"
RC2=$?
$FIT --from-redis --from-trace "$T_DIR/trace.tsv" 2>"$T_DIR/err3"
RC3=$?
$FIT --from-redis --since 2026-13-45 2>"$T_DIR/err4"
RC4=$?
set -e
check "a malformed trace line: exit 2" eq "$RC1" 2
check "naming its line" grep -q 'line 1:' "$T_DIR/err1"
check "and no candidate written" test ! -e "$T_DIR/never.json"
check "an unknown campaign: exit 2" eq "$RC2" 2
check "naming it" grep -q 'no campaign "nope"' "$T_DIR/err2"
check "two sources: exit 2" eq "$RC3" 2
check "a bad --since: exit 2" eq "$RC4" 2
finish
