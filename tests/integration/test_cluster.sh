#!/usr/bin/env bash
# momentd on a real Redis Cluster: six local nodes (three primaries, a
# replica each) formed with redis-cli --cluster create, and momentd given
# redis+cluster:// with two seeds. Late payers' moments reach the dialer,
# their state is spread over all three primaries (each customer's keys in
# one slot), explain, report, load-profiles, the do-not-contact list and erasure work
# through the cluster, a resharding under momentd is followed (MOVED), the
# simulator wipes its namespace off every primary, and a replay of the input
# under a new consumer group changes no counter.
source "$(dirname "$0")/lib.sh"

N=$(uname_ cluster)
FIRST=$((MOMENTD_IT_REDIS_PORT + 40))
trap '"$MOMENTD_SOURCE_DIR/scripts/redis-local" cluster-stop "$T_DIR/cluster" >/dev/null 2>&1 || true; cleanup_test' EXIT
"$MOMENTD_SOURCE_DIR/scripts/redis-local" cluster-start "$FIRST" "$T_DIR/cluster" 2>"$T_DIR/cluster.log" ||
    { fail "the local cluster did not form: $(tail -3 "$T_DIR/cluster.log")"; finish; }
check "the local cluster is up" grep -q '^cluster_state:ok' <<<"$(redis-cli -p "$FIRST" cluster info | tr -d '\r')"
PRIMARIES=$(redis-cli -p "$FIRST" cluster nodes | awk '$3 ~ /master/ && $9 != "" {split($2, a, "[:@]"); print a[2]}' | sort -n)
check "with three primaries" eq "$(grep -c . <<<"$PRIMARIES")" 3

export MOMENTD_REDIS_URL="redis+cluster://127.0.0.1:$FIRST,127.0.0.1:$((FIRST + 1))"
CFG=$(make_config "$N")
check "momentd check names the cluster" grep -q "redis+cluster://127.0.0.1:$FIRST" <<<"$("$MOMENTD_BIN" check -c "$CFG")"
start_momentd "$CFG"

CUSTOMERS=()
for i in $(seq 0 29); do CUSTOMERS+=("$(pick_customer "$CFG" "cl$i")"); done
for c in "${CUSTOMERS[@]}"; do late_payer "$c"; done | produce "$N.payments"
check "every late payer is called" wait_for_count "$N.moments.outbound_call" 30 90
wait_settled
for p in $PRIMARIES; do
    check "primary $p holds customers' state" ge "$(redis-cli -p "$p" --scan --pattern "$N:{cl*" | { grep -vc ':x$' || true; })" 3
done
C=${CUSTOMERS[0]}
check "explain reads a customer through the cluster" eq "$(explain_at "$CFG" "$C" "$(bj 61 10)" | jq -r .windows.late_payments_180d)" 3
REPORT=$("$MOMENTD_BIN" report -c "$CFG" --from 2026-03-01 --to 2026-06-01 --json)
check "the report counts the 30 calls" eq "$(jq '[.campaigns[] | select(.campaign == "prepay_wallet") | .channels[] | select(.channel == "outbound_call") | .counts.triggered] | add' <<<"$REPORT")" 30
check "momentd dnc writes through the cluster" grep -q '^1 customers on the do-not-contact list for outbound_call' \
    <<<"$("$MOMENTD_BIN" dnc -c "$CFG" --channel outbound_call "${CUSTOMERS[1]}")"
check "and explain sees it" eq "$("$MOMENTD_BIN" explain -c "$CFG" "${CUSTOMERS[1]}" --json | jq -r .channels.outbound_call)" "do_not_contact (customer)"
# load-profiles: each profile goes to its customer's primary.
for i in $(seq 0 19); do echo "lpc$i|{\"customer_type\":\"resident\",\"segment\":\"s$i\"}"; done >"$T_DIR/profiles.txt"
check "momentd load-profiles writes through the cluster" grep -q "loaded 20 profiles" <<<"$("$MOMENTD_BIN" load-profiles -c "$CFG" "$T_DIR/profiles.txt")"
check "onto every primary" eq "$(for p in $PRIMARIES; do redis-cli -p "$p" --scan --pattern "$N:{lpc*" | grep -c . || true; done | awk '$1 > 0 {n++} END {print n + 0}')" 3
check "and explain reads one back" grep -q '"customer_type:resident"' <<<"$("$MOMENTD_BIN" explain -c "$CFG" lpc7 --json)"
check "momentd forget erases through the cluster" jq -e '.customers == 1 and .forgotten[0].had_state' <<<"$("$MOMENTD_BIN" forget -c "$CFG" "${CUSTOMERS[2]}" --json)"
# Resharding under momentd: every slot of the primary that holds C moves to
# another primary. momentd's slot map is stale: the first command answered
# MOVED makes it follow to the new primary, and C's next payment counts once.
SLOT=$(redis-cli -p "$FIRST" CLUSTER KEYSLOT "$N:{$C}")
nodes_now() { redis-cli -p "$FIRST" cluster nodes; }
SRC=$(nodes_now | awk -v s="$SLOT" '$3 ~ /master/ {for (i = 9; i <= NF; i++) {split($i, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) print $1}}')
DST=$(nodes_now | awk -v src="$SRC" '$3 ~ /master/ && $9 != "" && $1 != src {print $1; exit}')
redis-cli --cluster reshard "127.0.0.1:$FIRST" --cluster-from "$SRC" --cluster-to "$DST" --cluster-slots 16384 --cluster-yes >"$T_DIR/reshard.log" 2>&1
check "C's slot moved to another primary" eq "$(nodes_now | awk -v s="$SLOT" '$3 ~ /master/ {for (i = 9; i <= NF; i++) {split($i, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) print $1}}')" "$DST"
pay_json "$C" "$C-after-move" "$(bj 62 10)" true 40 | produce "$N.payments"
check "momentd read the payment after the move" wait_consumed main 91 60
wait_settled
check "and counted it once, on the new primary" eq "$(explain_at "$CFG" "$C" "$(bj 62 11)" | jq -r .windows.late_payments_180d)" 4
stop_momentd main
check "momentd stopped cleanly" grep -q '"msg":"stopped"' "$T_DIR/main/momentd.log"
# (Whether C's own commands were answered MOVED depends on timing: another
# command answered MOVED first, the daemon's read of its pause flags, makes
# libvalkey fetch the whole new slot map. test_cluster_ha.sh counts the
# redirects of a migration, where no other key moves.)

# The simulator's private namespace is wiped from every primary: a SCAN
# page's keys lie in many slots, which one multi-key UNLINK cannot take.
check "momentd simulate runs on the cluster" "$MOMENTD_BIN" simulate --scenario "$MOMENTD_SOURCE_DIR/tests/integration/sim-small.json" \
    --redis "$MOMENTD_REDIS_URL" --json >"$T_DIR/sim.json"
# The primaries as they are now: the resharding above may have turned one of
# the first ones into a replica, whose SCAN shows what its primary held a
# moment ago (replication lags the UNLINKs).
check "and leaves nothing of its namespace on any primary" \
    eq "$(for p in $(redis-cli -p "$FIRST" cluster nodes | awk '$3 ~ /master/ && $9 != "" {split($2, a, "[:@]"); print a[2]}'); do
        redis-cli -p "$p" --scan --pattern 'momentd-sim:*' | wc -l; done | awk '{n += $1} END {print n}')" 0

# A replay under a new consumer group: every event is recognised, nothing changes.
# The primaries now: the one the resharding emptied of slots turns itself
# into a replica of the node that took them (Redis's replica migration), and
# a SCAN there lists that node's keys, which a replica answers with MOVED.
dump_cluster() {
    local p
    for p in $(redis-cli -p "$FIRST" cluster nodes | awk '$3 ~ /master/ && $9 != "" {split($2, a, "[:@]"); print a[2]}'); do
        redis-cli -p "$p" --scan --pattern "$N:{cl*" | { grep -v ':x$' || true; } | sort | while read -r k; do
            redis-cli -p "$p" HGETALL "$k" | paste - - | { grep -v -e '^w:' -e $'^v\t' -e $'^x0\t' || true; } | sed "s|^|$k |"
        done
    done | sort
}
dump_cluster >"$T_DIR/state.before"
sed "s/\"group_id\": \"$N\"/\"group_id\": \"$N-again\"/" "$CFG" >"$T_DIR/again.json"
start_momentd "$T_DIR/again.json" again
check "the replay is read" wait_consumed again 91 60
stop_momentd again
STOPPED=$(grep '"msg":"stopped"' "$T_DIR/again/momentd.log")
check "every replayed event is a duplicate, but the erased customer's, which stay forgotten" \
    eq "$(grep -o '"duplicates":"[0-9]*"' <<<"$STOPPED"),$(grep -o '"forgotten":"[0-9]*"' <<<"$STOPPED")" '"duplicates":"88","forgotten":"3"'
dump_cluster >"$T_DIR/state.after"
check "no counter changed" cmp -s "$T_DIR/state.before" "$T_DIR/state.after"
check "no new moment" eq "$(count "$N.moments.outbound_call")" 30
finish
