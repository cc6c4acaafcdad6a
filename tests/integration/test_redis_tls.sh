#!/usr/bin/env bash
# TLS to Redis (rediss://) against a real Redis with TLS only: momentd works
# through it with the CA from the configuration; a CA that did not sign the
# server's certificate, or a name the certificate does not carry, is refused
# with the reason and momentd waits; plain redis:// to the TLS port fails.
source "$(dirname "$0")/lib.sh"

N=$(uname_ tls)
TPORT=$((MOMENTD_IT_REDIS_PORT + 23))
C=$T_DIR/certs
make_certs "$C"
# A Redis of its own with TLS only (port 0: no plain listener).
mkdir -p "$T_DIR/redis"
printf '%s\n' "bind 127.0.0.1" "port 0" "tls-port $TPORT" "tls-cert-file $C/server.pem" "tls-key-file $C/server.key" \
    "tls-ca-cert-file $C/ca.pem" "tls-auth-clients no" "dir $T_DIR/redis" "save \"\"" "logfile $T_DIR/redis/redis.log" \
    "pidfile $T_DIR/redis/redis.pid" "daemonize yes" >"$T_DIR/redis/redis.conf"
trap 'kill "$(cat "$T_DIR/redis/redis.pid" 2>/dev/null)" 2>/dev/null || true; cleanup_test' EXIT
redis-server "$T_DIR/redis/redis.conf"
for i in $(seq 1 50); do redis-cli --tls --cacert "$C/ca.pem" -p "$TPORT" PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
check "the test Redis answers over TLS only" eq "$(redis-cli --tls --cacert "$C/ca.pem" -p "$TPORT" PING 2>/dev/null)" PONG
rtls() { redis-cli --tls --cacert "$C/ca.pem" -p "$TPORT" "$@"; }

export MOMENTD_REDIS_URL=rediss://127.0.0.1:$TPORT/0
CFG=$(make_config "$N" -e "s|\"key_prefix\": \"$N\"|\"key_prefix\": \"$N\", \"tls_ca_file\": \"$C/ca.pem\"|")
check "momentd connects through TLS" start_momentd "$CFG"
P=$(pick_customer "$CFG" tc)
late_payer "$P" | produce "$N.payments"
check "and works: the moment reaches the dialer" wait_for_count "$N.moments.outbound_call" 1 60
check "its state is in the TLS Redis" eq "$(rtls EXISTS "$N:{$P}")" 1
check "explain reads it over TLS too" grep -q '"late_payments_180d":3' <<<"$(explain_at "$CFG" "$P" "$(bj 61 10)")"
# Redis restarts under momentd: the TLS connection goes down with it, momentd
# reconnects through a new one and carries on.
Q=$(pick_customer "$CFG" td)
RPID=$(cat "$T_DIR/redis/redis.pid")
kill "$RPID"
for i in $(seq 1 100); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.1; done
late_payer "$Q" | produce "$N.payments"
sleep 2
redis-server "$T_DIR/redis/redis.conf"
for i in $(seq 1 50); do rtls PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
check "after a Redis restart momentd reconnects over TLS and goes on" wait_for_count "$N.moments.outbound_call" 2 60
stop_momentd main
check "it said it was retrying meanwhile" grep -q '"component":"redis".*retrying\|redoing' "$T_DIR/main/momentd.log"

# The wrong CA: verification fails, momentd says why and waits.
BAD=$(make_config "$N-b" -e "s|\"key_prefix\": \"$N-b\"|\"key_prefix\": \"$N-b\", \"tls_ca_file\": \"$C/other-ca.pem\"|")
start_momentd "$BAD" badca "certificate verification"
check "a CA that did not sign the certificate is refused" grep -q '"msg":"waiting for redis".*TLS handshake with 127.0.0.1:[0-9]* failed: certificate verification: ' "$T_DIR/badca/momentd.log"
stop_momentd badca

# A name the certificate does not carry.
NAME=$(make_config "$N-n" -e "s|\"key_prefix\": \"$N-n\"|\"key_prefix\": \"$N-n\", \"tls_ca_file\": \"$C/ca.pem\", \"tls_server_name\": \"elsewhere.test\"|")
"$MOMENTD_BIN" explain -c "$NAME" "$P" --json >/dev/null 2>"$T_DIR/name.err" && RC=0 || RC=$?
check "a server name the certificate does not carry is refused" grep -q "certificate verification: " "$T_DIR/name.err"
GOODNAME=$T_DIR/goodname.json
sed "s|\"tls_ca_file\"|\"tls_server_name\": \"redis.test\", \"tls_ca_file\"|" "$CFG" >"$GOODNAME"
# (Q: this Redis keeps no data across its restart, so P's state is gone.)
check "the DNS name it carries is accepted" grep -q '"late_payments_180d":3' <<<"$(explain_at "$GOODNAME" "$Q" "$(bj 61 10)")"

# Plain text to the TLS port fails.
MOMENTD_REDIS_URL=redis://127.0.0.1:$TPORT/0 "$MOMENTD_BIN" explain -c "$CFG" "$P" >/dev/null 2>"$T_DIR/plain.err" && RC=0 || RC=$?
check "plain redis:// to the TLS port fails" test "$RC" -ne 0
finish
