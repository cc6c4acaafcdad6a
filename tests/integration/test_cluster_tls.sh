#!/usr/bin/env bash
# A Redis Cluster over TLS (rediss+cluster://): six local nodes with TLS
# only, between themselves too (tls-cluster, tls-replication). momentd finds
# the slot map through a seed, connects to every primary over TLS with the
# configured CA, checks each node's certificate for its address, and works:
# late payers are called, their state is spread over the primaries, explain
# reads it. A CA that did not sign the nodes' certificates is refused with
# the reason.
source "$(dirname "$0")/lib.sh"

N=$(uname_ ctls)
FIRST=$((MOMENTD_IT_REDIS_PORT + 60))
C=$T_DIR/certs
make_certs "$C" # one certificate for every node: they all listen on 127.0.0.1

export REDIS_LOCAL_TLS=$C
trap '"$MOMENTD_SOURCE_DIR/scripts/redis-local" cluster-stop "$T_DIR/cluster" >/dev/null 2>&1 || true; cleanup_test' EXIT
"$MOMENTD_SOURCE_DIR/scripts/redis-local" cluster-start "$FIRST" "$T_DIR/cluster" 2>"$T_DIR/cluster.log" ||
    { fail "the local TLS cluster did not form: $(tail -3 "$T_DIR/cluster.log")"; finish; }
ctls() { redis-cli --tls --cacert "$C/ca.pem" "$@"; }
check "the TLS cluster is up" grep -q '^cluster_state:ok' <<<"$(ctls -p "$FIRST" cluster info | tr -d '\r')"
check "and refuses plain text" test -z "$(redis-cli -p "$FIRST" PING 2>/dev/null)"
PRIMARIES=$(ctls -p "$FIRST" cluster nodes | awk '$3 ~ /master/ && $9 != "" {split($2, a, "[:@]"); print a[2]}' | sort -n)
check "with three primaries" eq "$(grep -c . <<<"$PRIMARIES")" 3

export MOMENTD_REDIS_URL="rediss+cluster://127.0.0.1:$FIRST,127.0.0.1:$((FIRST + 1))"
CFG=$(make_config "$N" -e "s|\"key_prefix\": \"$N\"|\"key_prefix\": \"$N\", \"tls_ca_file\": \"$C/ca.pem\"|")
check "momentd check names the TLS cluster" grep -q "rediss+cluster://127.0.0.1:$FIRST" <<<"$("$MOMENTD_BIN" check -c "$CFG")"
start_momentd "$CFG"
CUSTOMERS=()
for i in $(seq 0 19); do CUSTOMERS+=("$(pick_customer "$CFG" "ct$i")"); done
for c in "${CUSTOMERS[@]}"; do late_payer "$c"; done | produce "$N.payments"
check "every late payer is called through the TLS cluster" wait_for_count "$N.moments.outbound_call" 20 90
wait_settled
for p in $PRIMARIES; do
    check "primary $p holds customers' state" ge "$(ctls -p "$p" --scan --pattern "$N:{ct*" | { grep -vc ':x$' || true; })" 2
done
check "explain reads a customer through the TLS cluster" \
    eq "$(explain_at "$CFG" "${CUSTOMERS[0]}" "$(bj 61 10)" | jq -r .windows.late_payments_180d)" 3
stop_momentd main
check "momentd stopped cleanly" grep -q '"msg":"stopped"' "$T_DIR/main/momentd.log"

# The wrong CA: every node's certificate fails verification, and momentd says so.
BAD=$(make_config "$N-b" -e "s|\"key_prefix\": \"$N-b\"|\"key_prefix\": \"$N-b\", \"tls_ca_file\": \"$C/other-ca.pem\"|")
"$MOMENTD_BIN" explain -c "$BAD" "${CUSTOMERS[0]}" --json >/dev/null 2>"$T_DIR/badca.err" && RC=0 || RC=$?
check "a CA that did not sign the nodes' certificates is refused" test "$RC" -ne 0
check "with the reason" grep -q "TLS handshake with 127.0.0.1:[0-9]* failed: certificate verification: " "$T_DIR/badca.err"
# Plain redis+cluster:// to the TLS nodes fails.
MOMENTD_REDIS_URL="redis+cluster://127.0.0.1:$FIRST" "$MOMENTD_BIN" explain -c "$CFG" "${CUSTOMERS[0]}" >/dev/null 2>&1 && RC=0 || RC=$?
check "plain redis+cluster:// to the TLS nodes fails" test "$RC" -ne 0
finish
