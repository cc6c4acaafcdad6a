#!/usr/bin/env bash
# momentd fit against the real broker and Redis: after 120 days of history
# through the daemon, purchases after five moments and an outcome from the
# dialer, every prepay_wallet
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
# 75 days, then purchases after some of their moments, then 45 more days:
# the purchases' labels are final (an attribution window old) when fitting.
"$GEN" --customers 400 --seed 11 --start "$START" --days 75 >"$T_DIR/events.txt"
"$GEN" --customers 400 --seed 12 --start $((START + 75 * DAY)) --days 45 | grep -v '^customer-profiles|' >"$T_DIR/events-later.txt"
start_momentd "$CFG"
"$MOMENTD_SOURCE_DIR/scripts/feed-history" "$BROKER" "$T_DIR/main/momentd.log" "$T_DIR/events.txt" "$N." 10 >/dev/null
grep -c . "$T_DIR/events.txt" >>"$T_DIR/produced"
check "the first 75 days are consumed" wait_settled main 180

OUTS="$N.moments.outbound_call $N.moments.in_app $N.moments.sms $N.moments.holdout"
moments() { for t in $OUTS; do consume "$t"; done | jq -c 'select(.campaign == "prepay_wallet" and .follow_up_of == null)'; }
# Five of the latest contacted customers buy the wallet an hour after their moment.
moments | jq -r 'select(.holdout == false) | [.event_time, .customer_id] | @tsv' | sort | tail -5 >"$T_DIR/buyers.tsv"
check "the first 75 days fire prepay_wallet" eq "$(grep -c . "$T_DIR/buyers.tsv")" 5
while IFS=$'\t' read -r at who; do
    ms=$(($(date -u -d "$at" +%s) * 1000 + 3600000))
    pay_json "$who" "buy-$who" "$ms" false 600 prepay
done <"$T_DIR/buyers.tsv" | produce "$N.payments"
check "the purchases are consumed" wait_settled main 60
"$MOMENTD_SOURCE_DIR/scripts/feed-history" "$BROKER" "$T_DIR/main/momentd.log" "$T_DIR/events-later.txt" "$N." 10 >/dev/null
grep -c . "$T_DIR/events-later.txt" >>"$T_DIR/produced"
check "the next 45 days are consumed" wait_settled main 180
moments >"$T_DIR/moments.json"
TRIGGERS=$(grep -c . "$T_DIR/moments.json")
log "prepay_wallet triggers: $TRIGGERS"
check "the history fires prepay_wallet" ge "$TRIGGERS" 20

# The dialer did not call one of them.
FIRST=$(jq -r 'select(.holdout == false and .channel == "outbound_call") | [.trigger_id, .customer_id, .emitted_at] | @tsv' "$T_DIR/moments.json" | tail -1)
TID=$(cut -f1 <<<"$FIRST")
CUST=$(cut -f2 <<<"$FIRST")
echo "$CUST|{\"trigger_id\":\"$TID\",\"customer_id\":\"$CUST\",\"campaign\":\"prepay_wallet\",\"channel\":\"outbound_call\",\"status\":\"not_called\",\"ts\":\"$(cut -f3 <<<"$FIRST")\"}" |
    produce "$N.moment-outcomes"
check "the outcome is consumed" wait_settled main 60

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

# The candidate tried live in a policy arm: half of prepay_wallet's
# customers are scored by the fitted model (its version, threshold and
# re-arm level), half by the running one; a reload switches it on, and new
# late payers in each arm get moments under their arm's model.
# The operator adds the two arms; `fit --arm` puts the candidate into one.
CANDIDATE_VERSION=$(jq -r .candidate_version "$T_DIR/fit.json")
jq '.campaigns[0].arms = [{name: "running", share_pct: 50, cooldown: .campaigns[0].cooldown},
    {name: "candidate", share_pct: 50, cooldown: .campaigns[0].cooldown}]' "$CFG" >"$T_DIR/with-arms.json"
RC=0
"$MOMENTD_BIN" fit -c "$T_DIR/with-arms.json" --campaign prepay_wallet --from-trace "$T_DIR/trace.tsv" \
    --arm candidate --out "$T_DIR/arms.json" >"$T_DIR/arm-out.txt" || RC=$?
check "fit --arm succeeds" eq "$RC" 0
check "and says which arm has the candidate" grep -q "candidate written to $T_DIR/arms.json, in policy arm candidate " "$T_DIR/arm-out.txt"
check "the configuration with the candidate in an arm loads" "$MOMENTD_BIN" check -c "$T_DIR/arms.json"
check "the arm carries the candidate's model" eq "$(jq -c '.campaigns[0].arms[1].model' "$T_DIR/arms.json")" \
    "$(jq -c '.campaigns[0].model' "$T_DIR/candidate.json")"
check "and its threshold and re-arm level" eq "$(jq -c '.campaigns[0].arms[1] | [.threshold, .rearm_below]' "$T_DIR/arms.json")" \
    "$(jq -c '.campaigns[0] | [.threshold, .rearm_below]' "$T_DIR/candidate.json")"
check "the campaign and the other arm keep the running model" \
    eq "$(jq -S -c 'del(.campaigns[0].arms[1])' "$T_DIR/arms.json")" "$(jq -S -c 'del(.campaigns[0].arms[1])' "$T_DIR/with-arms.json")"
check "the arm keeps its own name, share and cooldown" \
    eq "$(jq -S -c '.campaigns[0].arms[1] | del(.model, .threshold, .rearm_below)' "$T_DIR/arms.json")" \
    "$(jq -S -c '.campaigns[0].arms[1]' "$T_DIR/with-arms.json")"
set +e
"$MOMENTD_BIN" fit -c "$T_DIR/with-arms.json" --campaign prepay_wallet --from-trace "$T_DIR/trace.tsv" \
    --arm nosuch --out "$T_DIR/never3.json" 2>"$T_DIR/err6" >/dev/null
RC6=$?
"$MOMENTD_BIN" fit -c "$T_DIR/with-arms.json" --campaign prepay_wallet --from-trace "$T_DIR/trace.tsv" --arm candidate 2>"$T_DIR/err7" >/dev/null
RC7=$?
set -e
check "an arm the campaign does not have: exit 2" eq "$RC6" 2
check "naming the arms it has" grep -q 'no policy arm "nosuch" (its arms: running, candidate)' "$T_DIR/err6"
check "and nothing written" test ! -e "$T_DIR/never3.json"
check "--arm without --out: exit 2" eq "$RC7" 2
# --prior hand (the default): the penalty pulls towards the weights in
# use. With a penalty far above the data, the fitted weights are the hand
# ones; towards 0 (--prior zero) they are 0.
$FIT --from-trace "$T_DIR/trace.tsv" --l2 1e9 --json >"$T_DIR/prior-hand.json"
$FIT --from-trace "$T_DIR/trace.tsv" --prior zero --l2 1e9 --json >"$T_DIR/prior-zero.json"
check "by default the penalty is 10, towards the model in use" jq -e '.penalty == {"l2": 10, "towards": "hand"}' "$T_DIR/fit.json"
$FIT --from-trace "$T_DIR/trace.tsv" --prior zero >"$T_DIR/prior-zero.txt"
check "towards 0 it is 1 by default, and the text says so" \
    grep -qx "L2 penalty 1, pulling the contacted model's weights towards 0 (--prior zero)" "$T_DIR/prior-zero.txt"
check "--l2 sets it" jq -e '.penalty == {"l2": 1e9, "towards": "zero"}' "$T_DIR/prior-zero.json"
check "fitted towards the hand weights under a huge penalty, they are the hand weights" jq -e \
    '.hand.weights as $h | .fitted.weights as $f | ($h | length) > 0 and ([$h | keys[] | ($h[.] - $f[.]) | fabs] | max) < 0.001' \
    "$T_DIR/prior-hand.json"
check "towards 0, they are 0" jq -e '[.fitted.weights[] | fabs] | max < 0.001' "$T_DIR/prior-zero.json"
check "and the hand weights are not 0, so the two differ" jq -e '[.hand.weights[] | fabs] | max > 0.1' "$T_DIR/prior-zero.json"
set +e
$FIT --from-trace "$T_DIR/trace.tsv" --prior some 2>"$T_DIR/err8" >/dev/null
RC8=$?
set -e
check "a prior that is neither hand nor zero: exit 2, saying which are" eq "$RC8,$(grep -c 'hand (the weights are pulled towards the model in use, the default) or zero (towards 0)' "$T_DIR/err8")" "2,1"
cp "$T_DIR/arms.json" "$CFG"
kill -HUP "$(cat "$T_DIR/main/momentd.pid")"
reloaded() {
    local i
    for i in $(seq 1 120); do
        grep -q '"msg":"configuration reloaded".*'"prepay_wallet=prepay_wallet-2026.11.1" "$T_DIR/main/momentd.log" && return 0
        sleep 0.25
    done
    return 1
}
check "and the daemon reloads it" reloaded
# Three new late payers in each arm (explain names a customer's arm).
arm_of() { "$MOMENTD_BIN" explain -c "$CFG" "$1" --json | jq -r '.campaigns[] | select(.campaign == "prepay_wallet") | "\(.cooldown.arm) \(.holdout)"'; }
for arm in running candidate; do
    found=0
    for i in $(seq 0 300); do
        [ "$(arm_of "arm-$arm-$i")" = "$arm false" ] || continue
        echo "arm-$arm-$i" >>"$T_DIR/arm-$arm.txt"
        late_payer "arm-$arm-$i"
        found=$((found + 1))
        [ $found -eq 3 ] && break
    done
done | produce "$N.payments"
check "their payments are consumed" wait_settled main 60
for t in $OUTS; do consume "$t"; done |
    jq -r 'select(.campaign == "prepay_wallet" and .follow_up_of == null and .cooldown.arm != null and .holdout == false) | [.cooldown.arm, .model_version] | @tsv' |
    sort | uniq -c >"$T_DIR/arms.tsv"
log "moments by arm and model: $(tr '\n' ';' <"$T_DIR/arms.tsv")"
check "the running arm's late payers get moments under the running model" grep -qP "^ *3 running\tprepay_wallet-2026.11.1$" "$T_DIR/arms.tsv"
check "no moment carries another arm's model" eq "$(grep -cvP "running\tprepay_wallet-2026.11.1$|candidate\t$CANDIDATE_VERSION$" "$T_DIR/arms.tsv" || true)" 0
# Whether the fitted model calls a late payer is the fit's business; that it
# is the one deciding for the candidate arm is checked here.
CX=$("$MOMENTD_BIN" explain -c "$CFG" "$(head -1 "$T_DIR/arm-candidate.txt")" --json | jq -c '.campaigns[] | select(.campaign == "prepay_wallet")')
check "a candidate-arm customer is scored by the candidate model, at its threshold" \
    jq -e --arg v "$CANDIDATE_VERSION" --slurpfile c "$T_DIR/candidate.json" \
    '.model_version == $v and ((.threshold - $c[0].campaigns[0].threshold) | fabs) <= 1e-6 * $c[0].campaigns[0].threshold' <<<"$CX"
ARMS=$("$MOMENTD_BIN" report -c "$CFG" --from 2026-01-01 --to 2026-12-31 --json | jq -c '.campaigns[] | select(.campaign == "prepay_wallet")')
check "the report puts the arms side by side with their models" \
    jq -e --arg v "$CANDIDATE_VERSION" '.arms[0].model_version == "prepay_wallet-2026.11.1" and .arms[0].contacts == 3 and .arms[1].model_version == $v' <<<"$ARMS"
check "and measures the running model on live outcomes" jq -e '[.models[].version] | index("prepay_wallet-2026.11.1") != null' <<<"$ARMS"

# The trace fits to the same numbers.
RC=0
$FIT --from-trace "$T_DIR/trace.tsv" --json >"$T_DIR/fit2.json" || RC=$?
check "fit from the trace succeeds" eq "$RC" 0
check "and gives the same fit" eq "$(jq -S -c . "$T_DIR/fit2.json")" "$(jq -S -c . "$T_DIR/fit.json")"

# Released decisions: the dialer made all but one of its moments here, so
# the contacted ones are the model's choice. A trace in which it made only
# the oldest of those that did not convert (the rest released: a call
# centre short of agents) is the channel's choice, and the fit says so.
check "the released decisions are counted, at most the released records" \
    jq -e --argjson u "$(cut -f3 "$T_DIR/trace.tsv" | grep -c '^u' || true)" '.decisions.released <= $u and .channel_chose == false' "$T_DIR/fit.json"
check "no warning about the channel's choice" bash -c "! $FIT --from-trace '$T_DIR/trace.tsv' | grep -q 'channel.s choice'"
awk -F'\t' -v OFS='\t' 'NR == FNR { if ($3 ~ /^t0/) { split($2, k, ":"); if (min == "" || k[3] + 0 < min + 0) min = k[3] } next }
    $3 ~ /^t0/ { split($2, k, ":"); if (k[3] != min) $3 = "u" substr($3, 2) } { print }' "$T_DIR/trace.tsv" "$T_DIR/trace.tsv" >"$T_DIR/chosen.tsv"
$FIT --from-trace "$T_DIR/chosen.tsv" --json >"$T_DIR/chosen.json"
log "$(jq -c .decisions "$T_DIR/chosen.json")"
check "a dialer that made fewer than half of its moments: more released than contacted" \
    jq -e '.decisions.released > .decisions.contacted and .channel_chose == true' "$T_DIR/chosen.json"
check "and the fit warns that the contacted ones are the channel's choice" \
    bash -c "$FIT --from-trace '$T_DIR/chosen.tsv' | grep -q '^warning: the channels made [0-9]* of at least [0-9]* moments sent to them'"

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
# One class: nothing to fit, no candidate.
sed -E 's/\t([thnu])1,/\t\10,/' "$T_DIR/trace.tsv" >"$T_DIR/none.tsv"
RC5=0
$FIT --from-trace "$T_DIR/none.tsv" --out "$T_DIR/never2.json" 2>"$T_DIR/err5" || RC5=$?
check "no contacted decision converted: exit 2" eq "$RC5" 2
check "saying there is nothing to fit" grep -q 'none of the [0-9]* contacted decisions with a final label converted: nothing to fit' "$T_DIR/err5"
check "and no candidate written" test ! -e "$T_DIR/never2.json"
finish
