#!/usr/bin/env bash
# Hostile input in the middle of good traffic, through the real broker: every
# bad event and outcome lands in the dead-letter topic with the right reason,
# the good events around them are counted, momentd never stops, and its
# memory stays flat while the same corpus is sent 30 times over.
source "$(dirname "$0")/lib.sh"
# Under AddressSanitizer freed memory waits in a quarantine (256 MB by
# default) and would read as growth; a small one keeps the RSS check
# meaningful there too, with leak detection unchanged.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"

N=$(uname_ hostile)
CFG=$(make_config "$N")
start_momentd "$CFG"
C=$(pick_customer "$CFG" hc)
T=$(bj 0 10)
RS=$'\x1e' # message separator: messages may contain newlines
US=$'\x1f' # key separator
big=$(head -c 200000 /dev/zero | tr '\0' 'x')
deep=$(printf '[%.0s' $(seq 1 100))$(printf ']%.0s' $(seq 1 100))
ev() { printf '{"event_id":"%s","type":"payment","customer_id":"%s","ts":%s,"amount":%s,"kind":"bill"%s}' "$1" "$C" "${3:-$T}" "${2:-10}" "${4:-}"; }

# expected reason <TAB> key <US> message, one per corpus entry
{
    printf 'not_json\t%s%s{"event_id":"h1","type":"payment"\n' "$C" "$US"
    printf 'too_deep\t%s%s{"event_id":"h2","x":%s}\n' "$C" "$US" "$deep"
    printf 'string_too_long\t%s%s%s\n' "$C" "$US" "$(ev "$(head -c 200 /dev/zero | tr '\0' 'i')")"
    printf 'too_large\t%s%s{"event_id":"h4","pad":"%s"}\n' "$C" "$US" "$big"
    printf 'not_json\t%s%s{"event_id":"\xff\xfe","type":"payment"}\n' "$C" "$US"
    printf 'not_json\t%s%s%s\n' "$C" "$US" "$(ev h6 NaN)"
    printf 'bad_number\t%s%s%s\n' "$C" "$US" "$(ev h7 1e999)"
    printf 'bad_number\t%s%s%s\n' "$C" "$US" "$(ev h8 -5)"
    printf 'bad_number\t%s%s%s\n' "$C" "$US" "$(ev h9 1e12)"
    printf 'wrong_type\t%s%s%s\n' "$C" "$US" "$(ev h10 '"5"')"
    printf 'duplicate_field\t%s%s%s\n' "$C" "$US" "$(ev h11 1 "$T" ',"amount":2')"
    printf 'bad_timestamp\t%s%s%s\n' "$C" "$US" "$(ev h12 1 0)"
    printf 'future_timestamp\t%s%s%s\n' "$C" "$US" "$(ev h13 1 '"2100-01-01T00:00:00Z"')"
    printf 'unknown_type\t%s%s{"event_id":"h14","type":"teleport","customer_id":"%s","ts":%s}\n' "$C" "$US" "$C" "$T"
    printf 'key_mismatch\t%s%s\n' "$US" "$(ev h15)"
    printf 'key_mismatch\tsomeone-else%s%s\n' "$US" "$(ev h16)"
    printf 'empty_string\t%s{"event_id":"h17","type":"payment","customer_id":"","ts":%s,"amount":1,"kind":"bill"}\n' "$US" "$T"
    printf 'missing_field\t%s%s{"event_id":"h18","type":"payment","customer_id":"%s","ts":%s}\n' "$C" "$US" "$C" "$T"
    printf 'not_object\t%s%s42\n' "$C" "$US"
} >"$T_DIR/corpus.tsv"
BAD_EVENTS=$(grep -c . "$T_DIR/corpus.tsv")
# Outcomes have their own checks; these go to the outcomes topic.
{
    printf 'unknown_status\t%s%s{"trigger_id":"m1","customer_id":"%s","campaign":"prepay_wallet","channel":"sms","status":"teleported","ts":%s}\n' "$C" "$US" "$C" "$T"
    printf 'missing_field\t%s%s{"customer_id":"%s","campaign":"prepay_wallet","channel":"sms","status":"sent","ts":%s}\n' "$C" "$US" "$C" "$T"
} >"$T_DIR/outcomes.tsv"
BAD_OUTCOMES=$(grep -c . "$T_DIR/outcomes.tsv")

# produce_corpus TSV TOPIC: the messages of a corpus file, RS-separated.
produce_corpus() {
    cut -f2- "$1" | tr '\n' "$RS" | kcat -b "$BROKER" -P -t "$2" -K"$US" -D"$RS" -X message.max.bytes=1000000
}
good() { pay_json "$C" "good-$1" "$(bj "$1" 10)" false 300 | produce "$N.payments"; }

good 1
produce_corpus "$T_DIR/corpus.tsv" "$N.payments"
produce_corpus "$T_DIR/outcomes.tsv" "$N.moment-outcomes"
good 2
TOTAL=$((BAD_EVENTS + BAD_OUTCOMES))
check "every bad message lands in the dead-letter topic" wait_for_count "$N.dead-letter" "$TOTAL" 60
REASONS=$(consume "$N.dead-letter" '%h\n' | grep -o 'momentd.reason=[a-z_]*' | cut -d= -f2)
WANT=$(cut -f1 "$T_DIR/corpus.tsv" "$T_DIR/outcomes.tsv")
for r in $(echo "$WANT" | sort -u); do
    check "reason $r for each of its $(grep -cx "$r" <<<"$WANT") messages" eq "$(grep -cx "$r" <<<"$REASONS")" "$(grep -cx "$r" <<<"$WANT")"
done
check "the original bytes are kept (the truncated one)" grep -q '^{"event_id":"h1","type":"payment"$' <<<"$(consume "$N.dead-letter")"

sleep 1
check "the good events around them were counted" grep -q '"payments_180d":2' <<<"$(explain_at "$CFG" "$C" "$(bj 3 10)")"

# A 10 MB message the broker accepts (it allows 16 MB here) is larger than
# momentd's producer may send: its dead letter carries the first bytes and
# the original size, and the events behind it are still processed.
head -c 10485760 /dev/zero | tr '\0' 'x' | sed "s/^/$C|/" |
    kcat -b "$BROKER" -P -t "$N.payments" -K'|' -X message.max.bytes=16000000 -X topic.partitioner=murmur2_random
{ pay_json "$C" "$C-after-big" "$(bj 2 10)" false 500; } | produce "$N.payments"
check "the 10 MB message is dead-lettered" wait_for_count "$N.dead-letter" $((TOTAL + 1)) 60
# Found by its size, not its place: the topic's partitions are read one
# after the other, so the newest dead letter need not come last.
BIGDL=$(consume "$N.dead-letter" '%h %S\n' | { grep 'momentd.truncated_from=10485760' || true; } | tail -1)
check "as too_large" grep -q 'momentd.reason=too_large' <<<"$BIGDL"
check "cut, saying the original size" grep -q 'momentd.truncated_from=10485760' <<<"$BIGDL"
check "and the original's SHA-256" grep -q "momentd.sha256=$(head -c 10485760 /dev/zero | tr '\0' 'x' | sha256sum | cut -d' ' -f1)" <<<"$BIGDL"
check "the dead letter holds the first limits.dead_letter_max_bytes (65,536)" eq "$(awk '{print $NF}' <<<"$BIGDL")" 65536
sleep 1
check "the event behind it was counted" grep -q '"payments_180d":3' <<<"$(explain_at "$CFG" "$C" "$(bj 3 10)")"

# Memory stays flat: the same corpus 30 times more.
PID=$(cat "$T_DIR/main/momentd.pid")
RSS0=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
for i in $(seq 1 30); do produce_corpus "$T_DIR/corpus.tsv" "$N.payments"; done
check "all $((31 * BAD_EVENTS + BAD_OUTCOMES + 1)) bad messages dead-lettered" wait_for_count "$N.dead-letter" $((31 * BAD_EVENTS + BAD_OUTCOMES + 1)) 120
RSS1=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
log "RSS before ${RSS0} kB, after 30 more rounds (${BAD_EVENTS} bad messages each, one of 200 KB) ${RSS1} kB"
check "memory flat: RSS grew by less than 8 MB" test $((RSS1 - RSS0)) -lt 8192
check "momentd is still running" kill -0 "$PID"

# A customer whose key Redis refuses (a string where its hash belongs: a
# foreign write, a bad restore; CROSSSLOT on a cluster) costs that customer's
# messages and nothing else: they become dead letters saying what Redis
# said, and the good events beside them are counted. Before, the
# batch failed and momentd stopped (and under systemd, restarted into the
# same message for ever).
V=$(pick_customer "$CFG" hv)
rcli SET "$N:{$V}" not-a-hash >/dev/null
DL_BEFORE=$(count "$N.dead-letter")
{
    pay_json "$V" v-1 "$(bj 3 9)" false 300
    pay_json "$C" good-3 "$(bj 3 10)" false 300
    pay_json "$V" v-2 "$(bj 3 11)" false 300
} | produce "$N.payments"
check "the refused customer's two messages are dead-lettered" wait_for_count "$N.dead-letter" $((DL_BEFORE + 2)) 60
REFUSED=$(consume "$N.dead-letter" '%h\n' | grep 'momentd.reason=redis_refused' || true)
check "as redis_refused, both" eq "$(grep -c . <<<"$REFUSED")" 2
check "saying what Redis said" grep -q 'momentd.detail=redis HGETALL.*WRONGTYPE' <<<"$REFUSED"
check "the good event produced between them was counted" grep -q '"payments_180d":4' <<<"$(explain_at "$CFG" "$C" "$(bj 3 12)")"
check "the refused key is left as it was" eq "$(rcli GET "$N:{$V}")" not-a-hash
check "momentd is still running" kill -0 "$(cat "$T_DIR/main/momentd.pid")"
stop_momentd main
check "and stops cleanly" grep -q '"msg":"stopped"' "$T_DIR/main/momentd.log"
check "counting the two refused messages" grep -q '"refused":"2"' <<<"$(grep '"msg":"stopped"' "$T_DIR/main/momentd.log")"

# A flood of bad messages is bounded by limits.dead_letters_per_second: 400
# bad messages at once, 20 dead letters a second allowed; every message is
# still consumed, and what was not dead-lettered is counted.
RCFG=$(make_config "$N-rate" -e 's/"batch_size": 2000/"batch_size": 2000, "dead_letters_per_second": 20/')
grep -q '"dead_letters_per_second": 20' "$RCFG" || fail "the rate config was not made"
start_momentd "$RCFG" rate
for i in $(seq 1 400); do echo "flood-$i|not json $i"; done | produce "$N-rate.payments"
check "momentd consumed the flood" wait_consumed rate 400 60
stop_momentd rate
STATS=$(grep '"msg":"stopped"' "$T_DIR/rate/momentd.log")
DROPPED=$(grep -o '"dead_letters_dropped":"[0-9]*"' <<<"$STATS" | tr -dc 0-9)
PRODUCED_DL=$(count "$N-rate.dead-letter")
log "flood: $PRODUCED_DL dead letters, ${DROPPED:-?} dropped"
check "far fewer dead letters than bad messages" test "$PRODUCED_DL" -lt 200
check "and every one either dead-lettered or counted as dropped" eq "$((PRODUCED_DL + ${DROPPED:-0}))" 400
finish
