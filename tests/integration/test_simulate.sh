#!/usr/bin/env bash
# momentd simulate against the real Redis: deterministic for a seed; the
# contact world's accounting holds (every call has exactly one result, no day
# exceeds the call centre's capacity, no customer is called twice within 45
# days by the fixed policy or the old list, app messages only as the follow-up
# of an unanswered call, the JSON's totals are the trace's);
# the old list ignores behaviour (events) entirely, while the engine policies
# follow it; --plot makes PNG charts; a bad scenario is refused.
source "$(dirname "$0")/lib.sh"

SC=$MOMENTD_SOURCE_DIR/tests/integration/sim-small.json
sim() { "$MOMENTD_BIN" simulate --scenario "$@" 2>>"$T_DIR/stderr.log"; }
sim_quiet() { sim "$@" >/dev/null; }

sim "$SC" --seed 7 --json --trace "$T_DIR/trace7.tsv" >"$T_DIR/a.json" && RC=0 || RC=$?
check "a run with seed 7 succeeds" eq "$RC" 0
sim "$SC" --seed 7 --json --trace "$T_DIR/trace7b.tsv" >"$T_DIR/b.json"
sim "$SC" --seed 8 --json >"$T_DIR/c.json"
check "the same seed gives the same table" cmp "$T_DIR/a.json" "$T_DIR/b.json"
check "and the same calls, one by one" cmp "$T_DIR/trace7.tsv" "$T_DIR/trace7b.tsv"
check "another seed gives another table" test "$(cat "$T_DIR/a.json")" != "$(cat "$T_DIR/c.json")"
J=$(cat "$T_DIR/a.json")
num() { grep -o "\"$1\":{[^}]*" <<<"$J" | grep -o "\"$2\":[-0-9.e+]*" | head -1 | cut -d: -f2; }
check "the engine policies drove events through Redis" ge "$(num fixed events | cut -d. -f1)" 10000
T=$T_DIR/trace7.tsv
for p in old fixed adaptive; do
    check "$p: every contact has exactly one known result" \
        eq "$(awk -F'\t' -v p=$p '$1 == p && !(($5 == "call" && $6 ~ /^(no_answer|declined|converted|complaint|opt_out)$/) || ($5 == "app" && $6 ~ /^(not_opened|opened|converted|opt_out)$/))' "$T" | wc -l)" 0
    check "$p: the JSON's calls are the trace's" eq "$(awk -F'\t' -v p=$p '$1 == p && $5 == "call"' "$T" | wc -l)" "$(num "$p" contacts)"
    check "$p: the JSON's app messages are the trace's" eq "$(awk -F'\t' -v p=$p '$1 == p && $5 == "app"' "$T" | wc -l)" "$(num "$p" app_messages)"
    check "$p: the results add up to the contacts" eq "$(grep -o "\"$p\":{.*" <<<"$J" | grep -o '"results":{[^}]*' | head -1 | grep -o ':[0-9][0-9]*' | tr -d : | awk '{s += $1} END {print s + 0}')" "$(($(num "$p" contacts) + $(num "$p" app_messages)))"
    check "$p: conversions in the JSON are the trace's" eq "$(awk -F'\t' -v p=$p '$1 == p && $6 == "converted"' "$T" | wc -l)" "$(num "$p" conversions)"
    check "$p: no day has more calls than the capacity (8)" eq "$(awk -F'\t' -v p=$p '$1 == p && $5 == "call" {n[$2]++} END {m = 0; for (d in n) if (n[d] > m) m = n[d]; print (m <= 8) ? "ok" : m}' "$T")" ok
    check "$p: no contact before the warm-up ends (day 30)" eq "$(awk -F'\t' -v p=$p '$1 == p && $2 < 30' "$T" | wc -l)" 0
    # A day later, or two when that falls in the app's quiet hours (22:00-08:00).
    check "$p: every app message follows an unanswered call a day or two before" \
        eq "$(awk -F'\t' -v p=$p '$1 == p && $5 == "call" && $6 == "no_answer" {na[$3 " " $2 + 1] = 1; na[$3 " " $2 + 2] = 1} $1 == p && $5 == "app" && !(($3 " " $2) in na) {bad++} END {print bad + 0}' "$T")" 0
done
for p in old fixed adaptive; do
    check "$p: calls by gap add up to its calls" eq "$(jq "[.calls_by_gap.$p[].calls] | add" "$T_DIR/a.json")" "$(num "$p" contacts)"
    check "$p: and their conversions to its call conversions" \
        eq "$(jq "[.calls_by_gap.$p[].conversions] | add" "$T_DIR/a.json")" "$(awk -F'\t' -v p=$p '$1 == p && $5 == "call" && $6 == "converted"' "$T" | wc -l)"
    check "$p: first calls are the customers it called" eq "$(jq ".calls_by_gap.$p.first.calls" "$T_DIR/a.json")" \
        "$(awk -F'\t' -v p=$p '$1 == p && $5 == "call" {print $3}' "$T" | sort -u | wc -l)"
    check "$p: calls 30-44 days after the previous one, as the trace has them" eq "$(jq '.calls_by_gap.'$p'["30-44"].calls' "$T_DIR/a.json")" \
        "$(awk -F'\t' -v p=$p '$1 == p && $5 == "call" { if ($3 in last && $2 - last[$3] >= 30 && $2 - last[$3] < 45) n++; last[$3] = $2 } END { print n + 0 }' "$T")"
done
within45='["0-6", "7-13", "14-20", "21-29", "30-44"]'
check "fixed: no call within 45 days of its previous one, by the gap table" \
    eq "$(jq "[.calls_by_gap.fixed[$within45[]].calls] | add" "$T_DIR/a.json")" 0
# momentd report's timing table, read from the funnel the engine wrote: the
# same calls, seen from the moments (their gap since the campaign's previous
# contact, the releases of the moments the dialer could not call).
for p in fixed adaptive; do
    check "$p: momentd report's timing table counts every call the policy made" \
        eq "$(jq "[.live_timing.$p[].contacts] | add" "$T_DIR/a.json")" "$(num "$p" contacts)"
    check "$p: and its first contacts are the customers called" eq "$(jq ".live_timing.$p.first.contacts" "$T_DIR/a.json")" \
        "$(jq ".calls_by_gap.$p.first.calls" "$T_DIR/a.json")"
    check "$p: its moments less the contacts are the moments not called" \
        eq "$(jq "[.live_timing.$p[] | .moments - .contacts] | add" "$T_DIR/a.json")" "$(num "$p" triggers_not_called)"
done
check "fixed: momentd report's timing table has no contact within 45 days" eq "$(jq "[.live_timing.fixed[$within45[]].moments] | add" "$T_DIR/a.json")" 0
check "adaptive: momentd report's timing table has its contacts sooner than 45 days" ge "$(jq "[.live_timing.adaptive[$within45[]].contacts] | add" "$T_DIR/a.json")" 1
check "the text output has the gap table" grep -q "conversions per call by days since the policy's previous call" <(sim "$SC" --seed 7)
check "the engine policies send app messages" ge "$(num adaptive app_messages)" 1
check "the old list follows unanswered calls with app messages too" ge "$(num old app_messages)" 1
mingap() { awk -F'\t' -v p=$1 '$1 == p && $5 == "call" { if ($3 in last) { g = $2 - last[$3]; if (m == "" || g < m) m = g } last[$3] = $2 } END { print m }' "$T"; }
check "fixed: no customer called twice within 45 days (shortest gap $(mingap fixed))" test "$(mingap fixed)" -ge 45
check "old: no customer called twice within 45 days (shortest gap $(mingap old))" test "$(mingap old)" -ge 45
check "adaptive calls someone again sooner than 45 days at a peak (shortest gap $(mingap adaptive))" test "$(mingap adaptive)" -lt 45
check "the capacity binds the old list every day it calls" eq "$(awk -F'\t' '$1 == "old" && $5 == "call" {n[$2]++} END {for (d in n) if (n[d] != 8) bad++; print bad + 0}' "$T")" 0

# The old list ignores behaviour: different event rates, same hidden demand.
sed -e 's/"calls_per_day": 8/"calls_per_day": 8, "view_rate_full": 3, "call_rate_full": 0.5, "late_prob_full": 0.9, "login_rate": 2/' \
    -e "s|\"../../config|\"$MOMENTD_SOURCE_DIR/config|g" "$SC" >"$T_DIR/noisy.json"
sim "$T_DIR/noisy.json" --seed 7 --json --trace "$T_DIR/trace-noisy.tsv" >/dev/null
check "old: the very same calls whatever customers do" cmp <(grep '^old' "$T") <(grep '^old' "$T_DIR/trace-noisy.tsv")
check "adaptive: other calls when behaviour changes" test "$(grep '^adaptive' "$T" | md5sum)" != "$(grep '^adaptive' "$T_DIR/trace-noisy.tsv" | md5sum)"

# Charts.
check "--plot writes charts" sim_quiet "$SC" --seed 7 --plot "$T_DIR/plots"
for f in policies demand-old demand-fixed demand-adaptive; do
    check "$f.png is a PNG" eq "$(head -c 8 "$T_DIR/plots/$f.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a
done

# The ceiling: a policy that reads the hidden demand, alone, no Redis.
sim "$SC" --seed 7 --ceiling 45 --json --trace "$T_DIR/ceil45.tsv" --redis redis://127.0.0.1:1/0 >"$T_DIR/ceil45.json" && RC=0 || RC=$?
check "--ceiling 45 runs (and needs no Redis)" eq "$RC" 0
sim "$SC" --seed 7 --ceiling 45 --json >"$T_DIR/ceil45b.json"
check "the ceiling is deterministic for a seed" cmp "$T_DIR/ceil45.json" "$T_DIR/ceil45b.json"
C=$T_DIR/ceil45.tsv
cnum() { jq -r ".ceiling.$2" "$1"; }
check "the ceiling's JSON names its gap" eq "$(cnum "$T_DIR/ceil45.json" gap_days)" 45
check "the ceiling calls (the trace has its calls)" ge "$(awk -F'\t' '$1 == "ceiling" && $5 == "call"' "$C" | wc -l)" 100
check "its JSON's calls are the trace's" eq "$(awk -F'\t' '$1 == "ceiling" && $5 == "call"' "$C" | wc -l)" "$(cnum "$T_DIR/ceil45.json" contacts)"
check "no other policy ran" eq "$(awk -F'\t' 'NR > 1 && $1 != "ceiling"' "$C" | wc -l)" 0
# sim-small.json keeps the default trough_demand, 0.15.
check "the ceiling never calls a customer in a trough" eq "$(awk -F'\t' '$1 == "ceiling" && $5 == "call" && $4 < 0.15' "$C" | wc -l)" 0
check "... while the old list, blind to demand, does" ge "$(awk -F'\t' '$1 == "old" && $5 == "call" && $4 < 0.15' "$T" | wc -l)" 1
ceilgap() { awk -F'\t' '$1 == "ceiling" && $5 == "call" { if ($3 in last) { g = $2 - last[$3]; if (m == "" || g < m) m = g } last[$3] = $2 } END { print m }' "$1"; }
check "--ceiling 45: no customer called twice within 45 days (shortest gap $(ceilgap "$C"))" test "$(ceilgap "$C")" -ge 45
check "no day over the capacity (8)" eq "$(awk -F'\t' '$1 == "ceiling" && $5 == "call" {n[$2]++} END {m = 0; for (d in n) if (n[d] > m) m = n[d]; print (m <= 8) ? "ok" : m}' "$C")" ok
sim "$SC" --seed 7 --ceiling 1 --json --trace "$T_DIR/ceil1.tsv" >"$T_DIR/ceil1.json"
check "--ceiling 1 calls someone again within 45 days (shortest gap $(ceilgap "$T_DIR/ceil1.tsv"))" test "$(ceilgap "$T_DIR/ceil1.tsv")" -lt 45
# Agents for half the population a day: far more than are ever in need, so
# a ceiling that did not hold back from troughs would call into them.
sed -e 's/"calls_per_day": 8/"calls_per_day": 300/' -e "s|\"../../config|\"$MOMENTD_SOURCE_DIR/config|g" "$SC" >"$T_DIR/idle.json"
sim "$T_DIR/idle.json" --seed 7 --ceiling 1 --json --trace "$T_DIR/ceil-idle.tsv" >/dev/null
check "with idle agents the ceiling still calls (a customer in need is worth the call)" \
    ge "$(awk -F'\t' '$1 == "ceiling" && $5 == "call"' "$T_DIR/ceil-idle.tsv" | wc -l)" 100
check "... and never into a trough" eq "$(awk -F'\t' '$1 == "ceiling" && $5 == "call" && $4 < 0.15' "$T_DIR/ceil-idle.tsv" | wc -l)" 0
sim "$SC" --seed 7 --ceiling 1:1e9 --json >"$T_DIR/ceil-bar.json"
check "a bar no call is worth: no call" eq "$(cnum "$T_DIR/ceil-bar.json" contacts)" 0
sim "$SC" --seed 7 --ceiling 1:2000 --json >"$T_DIR/ceil-2000.json"
check "a bar between: fewer calls than none ($(cnum "$T_DIR/ceil-2000.json" contacts) against $(cnum "$T_DIR/ceil1.json" contacts))" \
    test "$(cnum "$T_DIR/ceil-2000.json" contacts)" -lt "$(cnum "$T_DIR/ceil1.json" contacts)"
for bad in 0 -3 45:x 45:-1 x 45: 4000; do
    "$MOMENTD_BIN" simulate --scenario "$SC" --ceiling "$bad" >/dev/null 2>"$T_DIR/ceil.err" && RC=0 || RC=$?
    check "--ceiling $bad is refused (exit 2)" eq "$RC" 2
    check "... saying what it needs" grep -q 'needs GAP\[:BAR\]' "$T_DIR/ceil.err"
done
# --population-factor K: the scenario's customers and call centre K times
# over (the ceiling: no Redis, quick).
sim "$SC" --seed 7 --ceiling 45 --population-factor 3 --json >"$T_DIR/ceil45x3.json"
check "--population-factor 3: three times the customers and the calls a day" \
    jq -e '.customers == 1800 and .calls_per_day == 24 and .population_factor == 3' "$T_DIR/ceil45x3.json"
check "... against the file's" jq -e '.customers == 600 and .calls_per_day == 8 and .population_factor == 1' "$T_DIR/ceil45.json"
check "... and about three times the calls ($(cnum "$T_DIR/ceil45x3.json" contacts) against $(cnum "$T_DIR/ceil45.json" contacts))" \
    jq -e --argjson one "$(cnum "$T_DIR/ceil45.json" contacts)" '.ceiling.contacts >= 2.4 * $one and .ceiling.contacts <= 3.6 * $one' "$T_DIR/ceil45x3.json"
for bad in 0 101 x 2x; do
    "$MOMENTD_BIN" simulate --scenario "$SC" --ceiling 45 --population-factor "$bad" >/dev/null 2>"$T_DIR/pf.err" && RC=0 || RC=$?
    check "--population-factor $bad is refused (exit 2)" eq "$RC" 2
    check "... saying what it needs" grep -q 'population-factor needs a whole number from 1 to 100' "$T_DIR/pf.err"
done
jq '.customers = 100000' "$SC" | sed 's#"\.\./\.\./config#"'"$MOMENTD_SOURCE_DIR"'/config#' >"$T_DIR/big.json"
"$MOMENTD_BIN" simulate --scenario "$T_DIR/big.json" --ceiling 45 --population-factor 30 >/dev/null 2>"$T_DIR/pf.err" && RC=0 || RC=$?
check "a factor beyond the scenario's limits is refused (exit 2)" eq "$RC" 2
check "... naming the key, what it would make and the limit" grep -q 'customers 100000 times 30 is 3000000, over its limit of 2000000' "$T_DIR/pf.err"
"$MOMENTD_BIN" simulate --scenario "$SC" --ceiling 45 --plot "$T_DIR/cp" >/dev/null 2>"$T_DIR/ceil.err" && RC=0 || RC=$?
check "--ceiling with --plot is refused (exit 2)" eq "$RC" 2
check "... saying why" grep -q 'one policy only' "$T_DIR/ceil.err"

# --fit-after: each engine policy fits its model on its own decisions of
# the first 100 days and runs the rest with it, by default pulled towards
# the hand weights with a penalty of 10 (momentd fit's defaults).
sim "$SC" --seed 7 --fit-after 100 --json >"$T_DIR/fit.json"
check "--fit-after: fitted with momentd fit's default penalty" jq -e '.fit.after_day == 100 and .fit.penalty == {"l2": 10, "towards": "hand"}' "$T_DIR/fit.json"
for p in fixed adaptive; do
    check "$p: fitted on its contacted decisions, measured on those after the fit" \
        jq -e ".fit.$p.trained_on > 0 and .fit.$p.fitted.decisions > 0 and .fit.$p.fitted.decisions == .fit.$p.hand.decisions" "$T_DIR/fit.json"
    # The diagnostic map: the fit's p onto its training decisions' outcomes,
    # monotone; the decisions after the fit through it.
    check "$p: the recalibration map rises with p, on the fit's own outcomes" \
        jq -e ".fit.$p.recalibration as \$m | (\$m | length) >= 1 and (\$m | length) <= 10 and
               ([range(1; \$m | length) | \$m[.].p > \$m[. - 1].p and \$m[.].rate >= \$m[. - 1].rate] | all) and
               ([\$m[].rate | . >= 0 and . <= 1] | all)" "$T_DIR/fit.json"
    check "$p: the decisions after the fit, recalibrated: the same decisions, predicted within the map's rates, not as fitted" \
        jq -e ".fit.$p.recalibration as \$m | .fit.$p.recalibrated as \$r |
               \$r.decisions == .fit.$p.fitted.decisions and \$r.conversions == .fit.$p.fitted.conversions and
               ([\$r.reliability[] | select(.decisions > 0) | .predicted >= \$m[0].rate - 1e-6 and .predicted <= \$m[-1].rate + 1e-6] | all) and
               ([\$r.reliability[].predicted] != [.fit.$p.fitted.reliability[].predicted])" "$T_DIR/fit.json"
    check "$p: the fitted model then decided live, under a version of its own" \
        jq -e "[.live_models.$p[].version] as \$v | (\$v | length) == 2 and (\$v[1] | test(\"^bill_instalment-fit-\"))" "$T_DIR/fit.json"
done
# The small scenario's call centre (8 calls a day) makes about half of the
# moments (the rest go back not_called): the fit says its decisions were
# the channel's choice, in the JSON and in the text.
check "a call centre short of agents: the fit learnt from the channel's choice" \
    jq -e '.fit.fixed.channel_chose == true and .fit.adaptive.channel_chose == true' "$T_DIR/fit.json"
# The decisions are measured in one order whatever order Redis's scan
# hands them over in: tied predictions (the recalibrated p, held at the
# map's ends) fall into the same deciles in every run.
sim "$SC" --seed 7 --fit-after 100 --json >"$T_DIR/fit-again.json"
check "a second run measures the fit the same" jq -e --slurpfile one "$T_DIR/fit.json" '.fit == $one[0].fit' "$T_DIR/fit-again.json"
sim "$SC" --seed 7 --fit-after 100 >"$T_DIR/fit.txt"
check "... which the text says" grep -q 'call centre made fewer than half of the moments the last fit learnt from' "$T_DIR/fit.txt"
check "and the text gives the recalibrated error" grep -q "^momentd adaptive: the same decisions, each fit's p through a monotone map" "$T_DIR/fit.txt"
check "the hand model decided less of the run than without the fit" \
    test "$(jq '.live_models.fixed[0].quality.decisions' "$T_DIR/fit.json")" -lt "$(jq '.live_models.fixed[0].quality.decisions' "$T_DIR/a.json")"
sim "$SC" --seed 7 --fit-after 100 --prior zero --l2 10 --json >"$T_DIR/fit-zero.json"
check "--prior zero: the penalty pulls towards 0" jq -e '.fit.penalty == {"l2": 10, "towards": "zero"}' "$T_DIR/fit-zero.json"
check "and the fit is another (the days after it differ)" test "$(jq -c .adaptive_vs_fixed_pct "$T_DIR/fit-zero.json")" != "$(jq -c .adaptive_vs_fixed_pct "$T_DIR/fit.json")"
# --refit-every: fitted again every 15 days after the first fit (days 75,
# 90, 105, 120 and 135 of 150), each fit going live under a version of its
# own, and every decision after the first fit measured by the fit that made
# it (those of three fits have final labels by the end).
sim "$SC" --seed 7 --fit-after 75 --refit-every 15 --json >"$T_DIR/refit.json"
sim "$SC" --seed 7 --fit-after 75 --json >"$T_DIR/fit75.json"
check "--refit-every 15: the interval in the JSON" jq -e '.fit.after_day == 75 and .fit.refit_every_days == 15' "$T_DIR/refit.json"
check "without it, one fit and no interval" jq -e '.fit.refit_every_days == 0 and .fit.fixed.fits == 1 and .fit.adaptive.fits == 1' "$T_DIR/fit.json"
for p in fixed adaptive; do
    check "$p: five fits" jq -e ".fit.$p.fits == 5" "$T_DIR/refit.json"
    check "$p: each decided live under a version of its own, after the hand model" \
        jq -e "[.live_models.$p[].version] as \$v | (\$v | length) == 6 and (\$v | unique | length) == 6 and ([\$v[] | select(test(\"^bill_instalment-fit-\"))] | length) == 5" "$T_DIR/refit.json"
    check "$p: three of them with decisions whose labels are final" \
        jq -e "[.live_models.$p[] | select(.version | test(\"-fit-\")) | select(.quality.decisions > 0)] | length == 3" "$T_DIR/refit.json"
    check "$p: the decisions after the first fit, measured as without refits (the same days)" \
        jq -e ".fit.$p.fitted.decisions > 0 and .fit.$p.fitted.decisions == .fit.$p.hand.decisions" "$T_DIR/refit.json"
    # Each by the fit that made it: the p momentd report reads of each
    # fitted version from its moments (to the thousandth, so at most half a
    # thousandth apart a decision). Its labels differ (it credits the
    # latest trigger), so the p's are compared, summed over the deciles.
    check "$p: measured by the fit in use, as the live report measures each version" \
        jq -e "[.live_models.$p[] | select(.version | test(\"-fit-\")) | .quality | select(.decisions > 0)] as \$l |
               ([\$l[].reliability[] | .decisions * .predicted] | add) as \$live |
               ([.fit.$p.fitted.reliability[] | .decisions * .predicted] | add) as \$pooled |
               (\$l | map(.decisions) | add) == .fit.$p.fitted.decisions and ((\$live - \$pooled) | fabs) <= 0.0005 * .fit.$p.fitted.decisions" \
        "$T_DIR/refit.json"
done
check "the refits changed the days after them" test "$(jq -c .adaptive_vs_fixed_pct "$T_DIR/refit.json")" != "$(jq -c .adaptive_vs_fixed_pct "$T_DIR/fit75.json")"
check "and the first fit is the same as without them" jq -e --slurpfile one "$T_DIR/fit75.json" \
    '.live_models.fixed[1].version == $one[0].live_models.fixed[1].version and .live_models.adaptive[1].version == $one[0].live_models.adaptive[1].version' \
    "$T_DIR/refit.json"
for bad in 0 -5 x 3651; do
    "$MOMENTD_BIN" simulate --scenario "$SC" --fit-after 100 --refit-every "$bad" >/dev/null 2>"$T_DIR/refit.err" && RC=0 || RC=$?
    check "--refit-every $bad is refused (exit 2)" eq "$RC" 2
    check "... saying what it needs" grep -q 'refit-every needs a whole number of days from 1 to 3650' "$T_DIR/refit.err"
done
"$MOMENTD_BIN" simulate --scenario "$SC" --refit-every 20 >/dev/null 2>"$T_DIR/refit.err" && RC=0 || RC=$?
check "--refit-every without --fit-after is refused (exit 2)" eq "$RC" 2
check "... saying so" grep -q 'give --fit-after DAYS too' "$T_DIR/refit.err"

for bad in "--l2 0" "--l2 x" "--prior some"; do
    # shellcheck disable=SC2086 # two words each
    "$MOMENTD_BIN" simulate --scenario "$SC" --fit-after 100 $bad >/dev/null 2>"$T_DIR/fit.err" && RC=0 || RC=$?
    check "--fit-after 100 $bad is refused (exit 2)" eq "$RC" 2
    check "... saying what it needs" grep -Eq -- '--l2 must be a positive number|--prior is hand' "$T_DIR/fit.err"
done

# --keep-state: the engine policies' state stays, for momentd fit to read.
"$MOMENTD_BIN" simulate --scenario "$SC" --seed 7 --keep-state --json >"$T_DIR/keep.json" 2>"$T_DIR/keep.err"
cat "$T_DIR/keep.err" >>"$T_DIR/stderr.log"
prefix=$(sed -n "s/^momentd simulate: fixed policy's state kept under the key prefix //p" "$T_DIR/keep.err")
check "--keep-state names each engine policy's key prefix" eq "$(grep -c "state kept under the key prefix momentd-sim:" "$T_DIR/keep.err")" 2
check "... and the fixed policy's customers are there" ge "$(rcli --scan --pattern "$prefix:{*}" | wc -l)" 100
jq --arg p "$prefix" '.redis.key_prefix = $p' "$MOMENTD_SOURCE_DIR/config/sim/fixed45.json" >"$T_DIR/kept.json"
"$MOMENTD_BIN" fit -c "$T_DIR/kept.json" --campaign bill_instalment --from-redis >"$T_DIR/kept-fit.txt" 2>>"$T_DIR/stderr.log"
check "momentd fit reads the kept decisions" grep -Eq '^training sets: [1-9][0-9]* contacted' "$T_DIR/kept-fit.txt"
# start_ms in --json is what the decision records' times count from
# (scripts/sim-backlog turns them into the run's days with it).
"$MOMENTD_BIN" fit -c "$T_DIR/kept.json" --campaign bill_instalment --from-redis --trace-out "$T_DIR/kept.tsv" >/dev/null 2>>"$T_DIR/stderr.log" || true
check "--json's start_ms and days bound every kept decision's time" awk -F'\t' -v start="$(jq .start_ms "$T_DIR/keep.json")" -v days="$(jq .days "$T_DIR/keep.json")" '
    $2 ~ /^q:bill_instalment:[0-9]+$/ { n++; t = substr($2, 19) + 0; if (t < start || t >= start + days * 86400000) bad++ }
    END { exit !(n > 0 && bad == 0) }' "$T_DIR/kept.tsv"
rcli --scan --pattern 'momentd-sim:*' | xargs -r -n 100 redis-cli -p "$REDIS_PORT" del >/dev/null

# Bad input.
echo '{"customers": 5, "bogus": 1}' >"$T_DIR/bad.json"
"$MOMENTD_BIN" simulate --scenario "$T_DIR/bad.json" >/dev/null 2>"$T_DIR/bad.err" && RC=0 || RC=$?
check "a bad scenario exits 2" eq "$RC" 2
check "naming the file, the key and what is wrong" grep -q 'bad.json: \$.bogus: unknown key in scenario' "$T_DIR/bad.err"
check "docs/SCENARIOS.md is the loader's own reference" diff <("$MOMENTD_BIN" scenario-doc) <(tail -n +5 "$MOMENTD_SOURCE_DIR/docs/SCENARIOS.md")
check "no Redis keys left behind" eq "$(rcli --scan --pattern 'momentd-sim:*' | wc -l)" 0
check "no sanitizer report from the command-line runs" eq "$(grep -cE 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$T_DIR/stderr.log" || true)" 0
finish
