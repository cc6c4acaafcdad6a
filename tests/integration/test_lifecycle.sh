#!/usr/bin/env bash
# A campaign paused and resumed at run time against the real broker and
# Redis: `momentd pause` reaches the running daemon (no restart, no reload)
# before its next batch, a late payer then gets no moment and explain and the
# report say the campaign is paused; `momentd resume` lets the next one fire.
# An unknown campaign is exit 2.
source "$(dirname "$0")/lib.sh"

N=$(uname_ lifecycle)
CFG=$(make_config "$N")
start_momentd "$CFG"
LOG=$T_DIR/main/momentd.log
logged() { # PATTERN: the daemon logged it (it reads the control once a second)
    local i
    for i in $(seq 1 40); do
        grep -q "$1" "$LOG" && return 0
        sleep 0.25
    done
    return 1
}
moments_for() { consume "$N.moments.outbound_call" | { grep -c "\"customer_id\":\"$1\"" || true; }; }

OUT=$("$MOMENTD_BIN" pause -c "$CFG" prepay_wallet)
check "pause says what it did" grep -q "^campaign prepay_wallet paused at .*: every momentd instance on $N applies it from its next batch" <<<"$OUT"
check "the running daemon takes it" logged '"msg":"campaign paused: it fires nothing until resumed","campaign":"prepay_wallet"'
A=$(pick_customer "$CFG" la)
late_payer "$A" | produce "$N.payments"
check "momentd read A's payments" wait_settled
check "a paused campaign calls nobody" eq "$(moments_for "$A")" 0
check "explain says why" grep -q '"campaign":"prepay_wallet".*"blocked_by":"paused"' <<<"$(explain_at "$CFG" "$A" "$(bj 60 10)")"
REPORT=$("$MOMENTD_BIN" report -c "$CFG" --json)
check "the report shows it paused" jq -e '.campaigns[] | select(.campaign == "prepay_wallet") | .lifecycle.paused and (.lifecycle.paused_since | length) > 0' <<<"$REPORT"
check "and the other campaign running" jq -e '.campaigns[] | select(.campaign == "bill_instalment") | .lifecycle.paused | not' <<<"$REPORT"

check "resume says so" grep -q "^campaign prepay_wallet resumed at " <<<"$("$MOMENTD_BIN" resume -c "$CFG" prepay_wallet)"
check "the running daemon takes it" logged '"msg":"campaign resumed","campaign":"prepay_wallet"'
B=$(pick_customer "$CFG" lb)
late_payer "$B" | produce "$N.payments"
check "a late payer is called again" wait_for_count "$N.moments.outbound_call" 1 60
check "it is B" eq "$(moments_for "$B")" 1
check "the report shows it running" jq -e '.campaigns[] | select(.campaign == "prepay_wallet") | .lifecycle.paused | not' <<<"$("$MOMENTD_BIN" report -c "$CFG" --json)"

set +e
"$MOMENTD_BIN" pause -c "$CFG" nope 2>"$T_DIR/err"
RC=$?
set -e
check "an unknown campaign: exit 2" eq "$RC" 2
check "naming it" grep -q 'pause: no campaign "nope"' "$T_DIR/err"
stop_momentd main
finish
