#!/usr/bin/env bash
# Secrets stay secret, against a real Redis that requires a password: the
# password is read from a file (${file:PATH}), a Kafka SASL password from the
# environment (${env:NAME}, passed through kafka.common), momentd works with
# them, and neither appears in its log, in `momentd check` or in `explain`,
# not even when Redis refuses a wrong password or librdkafka rejects a value.
source "$(dirname "$0")/lib.sh"

N=$(uname_ secrets)
RPORT=$((MOMENTD_IT_REDIS_PORT + 17))
RPASS=rp-$RANDOM-s3cret-$RUN
KPASS=kp-$RANDOM-s3cret-$RUN
trap '"$MOMENTD_SOURCE_DIR/scripts/redis-local" stop "$T_DIR/redis" >/dev/null 2>&1 || true; cleanup_test' EXIT
"$MOMENTD_SOURCE_DIR/scripts/redis-local" start "$RPORT" "$T_DIR/redis" "requirepass $RPASS" 2>/dev/null
printf '%s\n' "$RPASS" >"$T_DIR/redis.pass"
chmod 600 "$T_DIR/redis.pass"
export MOMENTD_REDIS_URL=redis://127.0.0.1:$RPORT/0
export MD_TEST_SASL_PASSWORD=$KPASS
CFG=$(make_config "$N" \
    -e "s|\"key_prefix\": \"$N\"|\"key_prefix\": \"$N\", \"password\": \"\${file:$T_DIR/redis.pass}\"|" \
    -e 's|"consumer": {|"common": {"sasl.username": "momentd", "sasl.password": "${env:MD_TEST_SASL_PASSWORD}"}, "consumer": {|')

check "the password reaches Redis: momentd connects" start_momentd "$CFG"
C=$(pick_customer "$CFG" sc)
late_payer "$C" | produce "$N.payments"
check "and works: the moment reaches the dialer" wait_for_count "$N.moments.outbound_call" 1 60
check "its state is in the password-protected Redis" eq "$(redis-cli -p "$RPORT" --no-auth-warning -a "$RPASS" EXISTS "$N:{$C}")" 1
X=$("$MOMENTD_BIN" explain -c "$CFG" "$C" --json 2>&1)
check "explain reads it too" grep -q '"customer_id"' <<<"$X"
S=$("$MOMENTD_BIN" check -c "$CFG" 2>&1)
check "check says a password is set" grep -q "(password set)" <<<"$S"
stop_momentd main
check "scripts/redis-local's Redis keeps momentd's hashes compact: no listpack warning" \
    bash -c "! grep -q hash-max-listpack-value '$T_DIR/main/momentd.log'"

# A Redis at its default listpack limit (64 bytes) is warned about at start:
# a trigger record longer than that turns a customer's hash into a table
# about three times its size.
redis-cli -p "$RPORT" --no-auth-warning -a "$RPASS" CONFIG SET hash-max-listpack-value 64 >/dev/null
start_momentd "$CFG" listpack
check "a Redis whose hash-max-listpack-value is 64 is warned about, with the value to set" \
    grep -q '"msg":"hash-max-listpack-value is below.*"hash_max_listpack_value":"64","recommended":"128"' "$T_DIR/listpack/momentd.log"
stop_momentd listpack
redis-cli -p "$RPORT" --no-auth-warning -a "$RPASS" CONFIG SET hash-max-listpack-value 128 >/dev/null

# A wrong password: refused by Redis, reported without the password.
printf 'wrong-%s\n' "$RPASS" >"$T_DIR/redis.pass"
start_momentd "$CFG" wrong "AUTH failed"
check "a wrong password is reported as an AUTH failure, and momentd waits" grep -q '"msg":"waiting for redis".*redis AUTH failed' "$T_DIR/wrong/momentd.log"
stop_momentd wrong

# A property librdkafka rejects stops momentd with librdkafka's own reason.
BAD=$(make_config "$N-bad" -e 's|"consumer": {|"common": {"fetch.wait.max.msx": "1"}, "consumer": {|')
"$MOMENTD_BIN" run -c "$BAD" 2>"$T_DIR/bad.log" && RC=0 || RC=$?
check "a rejected property stops momentd (exit 1)" eq "$RC" 1
check "with librdkafka's reason" grep -q '"msg":"rejected property","where":"kafka.common","property":"fetch.wait.max.msx","error":"No such configuration property' "$T_DIR/bad.log"

# A Redis ACL user: AUTH USER PASSWORD (the user was dropped before, which
# ruled out least-privilege users). Its password holds '@' and '/', which
# the URL parser and the redaction must take whole (they cut at the first
# '@', or stopped at a '/').
APASS="ap/$RANDOM@s3cret"
redis-cli -p "$RPORT" --no-auth-warning -a "$RPASS" ACL SETUSER "md-$N" on ">$APASS" '~*' '+@all' >/dev/null
ACFG=$(make_config "$N-acl")
X2=$(MOMENTD_REDIS_URL="redis://md-$N:$APASS@127.0.0.1:$RPORT/0" "$MOMENTD_BIN" explain -c "$ACFG" "$C" --json 2>&1)
check "an ACL user with '@' and '/' in its password authenticates" grep -q '"customer_id"' <<<"$X2"
X3=$(MOMENTD_REDIS_URL="redis://nobody-$N:$APASS@127.0.0.1:$RPORT/0" "$MOMENTD_BIN" explain -c "$ACFG" "$C" --json 2>&1 || true)
check "another user with that password is refused" grep -q "AUTH failed" <<<"$X3"
S2=$(MOMENTD_REDIS_URL="redis://md-$N:$APASS@127.0.0.1:$RPORT/0" "$MOMENTD_BIN" check -c "$ACFG" 2>&1)
check "check shows the URL redacted whole" grep -q "redis://\*\*\*@127.0.0.1:$RPORT/0" <<<"$S2"
check "and no part of that password" eq "$(grep -c -e "s3cret" -e "ap/" <<<"$S2$X2$X3" || true)" 0

# A reference outside a secret setting is refused, not resolved: a brokers
# list read from /etc/shadow would be printed by check and by errors.
REF=$T_DIR/ref.json
sed "s|\"brokers\": \"[^\"]*\"|\"brokers\": \"\${file:$T_DIR/redis.pass}\"|" "$ACFG" >"$REF"
grep -q 'brokers": "${file:' "$REF" || fail "the reference config was not made"
"$MOMENTD_BIN" check -c "$REF" >"$T_DIR/ref.out" 2>&1 && RC=0 || RC=$?
check "a \${file:} reference in kafka.brokers is refused (exit 2)" eq "$RC" 2
check "saying where references are allowed" grep -q 'kafka.brokers: .*allowed only in secret settings' "$T_DIR/ref.out"
check "without reading the file" eq "$(grep -c -- "$RPASS" "$T_DIR/ref.out" || true)" 0

LOGS=$(cat "$T_DIR"/*/momentd.log "$T_DIR/bad.log")
for s in "$RPASS" "$KPASS"; do
    check "no secret in any log (${s:0:3}...)" eq "$(grep -c -- "$s" <<<"$LOGS" || true)" 0
    check "nor in check or explain (${s:0:3}...)" eq "$(grep -c -- "$s" <<<"$S$X" || true)" 0
done
finish
