#!/usr/bin/env bash
# momentd on a Redis Cluster through the faults its operators meet, with
# traffic flowing:
#   - three momentd instances in one consumer group, one SIGKILLed: its
#     partitions move to the two others;
#   - a primary SIGKILLed: its replica takes over (cluster-node-timeout
#     1.5 s) and the killed node comes back as a replica. With
#     redis.wait_replicas 1 no apply the dead primary answered is lost with
#     it: each batch waits until a replica holds its applies;
# and the trigger ids and every counter equal those of an undisturbed run on
# the single-node Redis over the same input: nothing lost, duplicates
# reported. Then a slot migrated by hand (CLUSTER SETSLOT IMPORTING and
# MIGRATING, MIGRATE) with a customer's keys already on the target and the
# slot not yet handed over: reads of that customer are answered ASK and sent
# on to the target (ASKING); its apply waits (TRYAGAIN) until the slot is
# handed over, and its payments count once.
source "$(dirname "$0")/lib.sh"

REFN=$(uname_ haref)
N=$(uname_ ha)
FIRST=$((MOMENTD_IT_REDIS_PORT + 50))
"$GEN" --customers 1200 --seed 29 --topics payments | cut -d'|' -f2- >"$T_DIR/payments.txt"
EVENTS=$(grep -c . "$T_DIR/payments.txt")
split -n l/80 "$T_DIR/payments.txt" "$T_DIR/slice."

trap '"$MOMENTD_SOURCE_DIR/scripts/redis-local" cluster-stop "$T_DIR/cluster" >/dev/null 2>&1 || true; cleanup_test' EXIT
"$MOMENTD_SOURCE_DIR/scripts/redis-local" cluster-start "$FIRST" "$T_DIR/cluster" "cluster-node-timeout 1500" 2>"$T_DIR/cluster.log" ||
    { fail "the local cluster did not form: $(tail -3 "$T_DIR/cluster.log")"; finish; }

# A node that answers (the first may be the one killed), the primaries
# serving slots now, and where dump_state finds the cluster run's keys.
live_port() {
    local p
    for p in $(seq "$FIRST" $((FIRST + 5))); do
        redis-cli -p "$p" PING >/dev/null 2>&1 && { echo "$p"; return 0; }
    done
    return 1
}
nodes_now() { redis-cli -p "$(live_port)" CLUSTER NODES; }
primaries() { nodes_now | awk '$3 ~ /master/ && $3 !~ /fail/ && $9 != "" {split($2, a, "[:@]"); print a[2]}' | sort -n; }
state_ports() { if [ "$1" = "$N" ]; then primaries; else echo "$REDIS_PORT"; fi; }

# --- the undisturbed reference, on the single-node Redis ---------------------
reference_run "$REFN" "$T_DIR/payments.txt" "$EVENTS"

# --- the disturbed run, on the cluster ----------------------------------------
export MOMENTD_REDIS_URL="redis+cluster://127.0.0.1:$FIRST,127.0.0.1:$((FIRST + 1)),127.0.0.1:$((FIRST + 2))"
CFG=$(make_config "$N" -e 's/"url": "redis:\/\/127.0.0.1:6379\/0"/"url": "redis:\/\/127.0.0.1:6379\/0", "retry_backoff": "200ms", "timeout": "1s", "wait_replicas": 1, "wait_timeout": "500ms"/')
check "the configuration waits for one replica" grep -q '"wait_replicas": 1' "$CFG"
for m in m1 m2 m3; do start_momentd "$CFG" "$m"; done
(for f in "$T_DIR"/slice.*; do produce "$N.payments" <"$f"; sleep 0.2; done) &
FEEDER=$!
check "the members are consuming" wait_some m1
sleep 1
log "SIGKILL to member m1 after $(last_consumed m1) messages"
stop_momentd m1 KILL

sleep 1
VICTIM=$(primaries | head -1)
VICTIM_ID=$(nodes_now | awk -v p="127.0.0.1:$VICTIM@" 'index($2, p) == 1 {print $1}')
# Its replica, which must take over: the check waits for that node itself to
# be a primary. (Counting three primaries without the victim once passed two
# seconds after the kill, before any election; the victim, restarted then,
# was still the primary, and never came back as a replica.)
HEIR=$(nodes_now | awk -v id="$VICTIM_ID" '$4 == id {split($2, a, "[:@]"); print a[2]}' | head -1)
log "SIGKILL to the primary on port $VICTIM ($(redis-cli -p "$VICTIM" DBSIZE) keys) while the input flows"
kill -KILL "$(cat "$T_DIR/cluster/$VICTIM/pid")"
took_over() {
    local i
    for i in $(seq 1 120); do
        if [ "$(primaries | grep -c .)" -eq 3 ] && ! primaries | grep -qx "$VICTIM" && primaries | grep -qx "$HEIR" &&
            redis-cli -p "$(live_port)" CLUSTER INFO | grep -q '^cluster_state:ok'; then
            return 0
        fi
        sleep 0.25
    done
    return 1
}
check "its replica took over its slots" took_over
# The killed node comes back: it learns of the failover and follows its
# former replica.
setsid redis-server "$T_DIR/cluster/$VICTIM/redis.conf" </dev/null >/dev/null 2>&1 &
echo $! >"$T_DIR/cluster/$VICTIM/pid" # for cluster-stop
back_as_replica() {
    local i
    for i in $(seq 1 160); do
        redis-cli -p "$VICTIM" INFO replication 2>/dev/null | tr -d '\r' | grep -q '^master_link_status:up' && return 0
        sleep 0.25
    done
    return 1
}
check "the killed node is back, as a replica in sync" back_as_replica
check "under the same node id" grep -q "^$VICTIM_ID .*slave" <<<"$(nodes_now)"
wait "$FEEDER"
check "the surviving members are still running" kill -0 "$(cat "$T_DIR/m2/momentd.pid")" "$(cat "$T_DIR/m3/momentd.pid")"
check "a member waited for the cluster meanwhile" grep -qh '"component":"redis"' "$T_DIR/m2/momentd.log" "$T_DIR/m3/momentd.log"
# One member stops cleanly; the last takes every partition and the state
# must come to equal the reference's.
stop_momentd m3
compare_with_reference "$REFN" "$N" m2
log "undisturbed: $EVENTS events, $REF_TRIGGERS triggers; on the cluster: missing $MISSING, unexpected $EXTRA, duplicates $DUPS"
check "the stream produced triggers" ge "$REF_TRIGGERS" 50
echo "cluster-ha: events=$EVENTS triggers=$REF_TRIGGERS missing=$MISSING unexpected=$EXTRA duplicates=$DUPS" >"$MOMENTD_IT_DIR/cluster-ha.result"

# --- a slot migrating: ASK ------------------------------------------------------
A=$(uname_ ask)
ACFG=$(make_config "$A")
start_momentd "$ACFG" ask
C=$(pick_customer "$ACFG" as)
pay_json "$C" "$C-1" "$(bj 0 10)" true 80 | produce "$A.payments"
check "the first payment is read" wait_consumed ask 1 60
SLOT=$(redis-cli -p "$(live_port)" CLUSTER KEYSLOT "$A:{$C}")
serving() { nodes_now | awk -v s="$SLOT" '$3 ~ /master/ && $3 !~ /fail/ {for (i = 9; i <= NF; i++) {split($i, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) print $1, $2}}' | sed 's/[:@]/ /g'; }
read -r SRC_ID _ SRC _ < <(serving)
read -r DST_ID _ DST _ < <(nodes_now | awk -v src="$SRC_ID" '$3 ~ /master/ && $3 !~ /fail/ && $9 != "" && $1 != src {print $1, $2; exit}' | sed 's/[:@]/ /g')
check "C's key is on the primary serving its slot" eq "$(redis-cli -p "$SRC" EXISTS "$A:{$C}")" 1
redis-cli -p "$DST" CLUSTER SETSLOT "$SLOT" IMPORTING "$SRC_ID" >/dev/null
redis-cli -p "$SRC" CLUSTER SETSLOT "$SLOT" MIGRATING "$DST_ID" >/dev/null
KEYS=("$A:{$C}")
[ "$(redis-cli -p "$SRC" EXISTS "$A:{$C}:x")" = 1 ] && KEYS+=("$A:{$C}:x")
check "C's keys move to the target" eq "$(redis-cli -p "$SRC" MIGRATE 127.0.0.1 "$DST" "" 0 5000 KEYS "${KEYS[@]}")" OK
check "while the slot is still the source's, migrating" eq "$(serving | cut -d' ' -f1)" "$SRC_ID"
check "explain, answered ASK by the source, reads C on the target" \
    eq "$(explain_at "$ACFG" "$C" "$(bj 1 10)" | jq -r .windows.late_payments_180d)" 1
pay_json "$C" "$C-2" "$(bj 30 10)" true 60 | produce "$A.payments"
pay_json "$C" "$C-3" "$(bj 60 10)" true 50 | produce "$A.payments"
# The read is answered ASK and sent on; the apply (two keys: C's hash and its
# outbox, which does not exist yet) is answered ASK by the source and
# TRYAGAIN by the target, Redis's rule for a multi-key command while a slot
# is half-moved: the batch waits for the migration to end.
held() {
    local i
    for i in $(seq 1 120); do
        grep -q 'a slot is being migrated' "$T_DIR/ask/momentd.log" && return 0
        sleep 0.25
    done
    return 1
}
check "momentd holds C's payments while the slot is half-moved (TRYAGAIN)" held
check "without a moment yet" eq "$(count "$A.moments.outbound_call")" 0
for p in $(primaries); do redis-cli -p "$p" CLUSTER SETSLOT "$SLOT" NODE "$DST_ID" >/dev/null; done
check "the slot is handed over to the target" eq "$(serving | cut -d' ' -f1)" "$DST_ID"
check "momentd goes on: C is called" wait_for_count "$A.moments.outbound_call" 1 60

check "C's payments are counted once, on the target" eq "$(explain_at "$ACFG" "$C" "$(bj 61 10)" | jq -r .windows.late_payments_180d)" 3
check "C's state is on the target" eq "$(redis-cli -p "$DST" EXISTS "$A:{$C}")" 1
check "and the source sends it there (MOVED)" grep -q "MOVED $SLOT 127.0.0.1:$DST" <<<"$(redis-cli -p "$SRC" EXISTS "$A:{$C}" 2>&1)"
stop_momentd ask
STOPPED=$(grep '"msg":"stopped"' "$T_DIR/ask/momentd.log")
check "the commands answered ASK and MOVED were sent on (redis_redirects)" ge "$(grep -o '"redis_redirects":"[0-9]*"' <<<"$STOPPED" | tr -dc 0-9)" 2
finish
