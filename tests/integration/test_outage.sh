#!/usr/bin/env bash
# Redis and Kafka outages pause momentd and it resumes without skipping: the
# stream goes through one instance that loses Redis (stopped for 3 s) and
# then the Kafka broker (stopped and restarted), with input arriving during
# each outage; its trigger ids and counters must equal an undisturbed run's.
source "$(dirname "$0")/lib.sh"

IN=$(uname_ outage)
REFN=$(uname_ outref)
DN=$(uname_ outdist)
REF=$(make_config "$REFN" -e "s/\"topic_payments\": \"$REFN.payments\"/\"topic_payments\": \"$IN.payments\"/")
CFG=$(make_config "$DN" -e "s/\"topic_payments\": \"$DN.payments\"/\"topic_payments\": \"$IN.payments\"/" \
    -e 's/"url": "redis:\/\/127.0.0.1:6379\/0"/"url": "redis:\/\/127.0.0.1:6379\/0", "retry_backoff": "200ms", "timeout": "1s"/')
# MOMENTD_REDIS_URL overrides the url; the sed above only shortens the backoff.

"$GEN" --customers 1500 --seed 13 --topics payments | cut -d'|' -f2- >"$T_DIR/payments.txt"
EVENTS=$(grep -c . "$T_DIR/payments.txt")
split -n l/3 "$T_DIR/payments.txt" "$T_DIR/part."
P1=$(grep -c . "$T_DIR/part.aa")
P2=$(grep -c . "$T_DIR/part.ab")

start_momentd "$CFG" dist
produce "$IN.payments" <"$T_DIR/part.aa"
check "first third consumed and applied before the outage" wait_consumed dist "$P1" 60

log "stopping Redis"
"$MOMENTD_SOURCE_DIR/scripts/redis-local" stop "$MOMENTD_IT_DIR/redis"
produce "$IN.payments" <"$T_DIR/part.ab"
sleep 3
check "momentd waits while Redis is down" kill -0 "$(cat "$T_DIR/dist/momentd.pid")"
"$MOMENTD_SOURCE_DIR/scripts/redis-local" start "$MOMENTD_IT_REDIS_PORT" "$MOMENTD_IT_DIR/redis"
check "second third consumed after Redis came back" wait_consumed dist $((P1 + P2)) 60
sleep 1

log "stopping the Kafka broker"
"$MOMENTD_SOURCE_DIR/scripts/kafka-local" stop "$MOMENTD_IT_DIR/kafka"
sleep 3
check "momentd waits while Kafka is down" kill -0 "$(cat "$T_DIR/dist/momentd.pid")"
"$MOMENTD_SOURCE_DIR/scripts/kafka-local" start "$MOMENTD_IT_KAFKA_PORT" "$MOMENTD_IT_DIR/kafka"
produce "$IN.payments" <"$T_DIR/part.ac"

# The undisturbed reference over the same input.
start_momentd "$REF" ref
check "undisturbed run consumed all $EVENTS events" wait_consumed ref "$EVENTS" 120
sleep 1
stop_momentd ref
compare_with_reference "$REFN" "$DN" dist
RETRIES=$({ grep -o '"redis_retries":"[0-9]*"' "$T_DIR/dist/momentd.log" || true; } | tail -1 | tr -dc 0-9)
log "outages: $EVENTS events, $REF_TRIGGERS triggers, missing $MISSING, unexpected $EXTRA, duplicates $DUPS, redis retries ${RETRIES:-0}"
check "the stream produced triggers" ge "$REF_TRIGGERS" 30
check "the Redis outage was felt (retries logged)" ge "${RETRIES:-0}" 1
finish
