# lib.sh: helpers for the integration tests, sourced by each test_*.sh.
#
# Every test gets its own topics ("<name>.payments", ...), consumer group and
# Redis key prefix, derived from the default configuration, so tests share
# one broker and one Redis without seeing each other's data. kcat plays the
# upstream systems and the channel subscribers; redis-cli reads state.
set -euo pipefail

: "${MOMENTD_BIN:?}" "${MOMENTD_SOURCE_DIR:?}" "${MOMENTD_IT_DIR:?}" "${MOMENTD_IT_KAFKA_PORT:?}" "${MOMENTD_IT_REDIS_PORT:?}"
BROKER=127.0.0.1:$MOMENTD_IT_KAFKA_PORT
REDIS_PORT=$MOMENTD_IT_REDIS_PORT
export MOMENTD_KAFKA_BROKERS=$BROKER
export MOMENTD_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
GEN=$(dirname "$MOMENTD_BIN")/gen_events

T_NAME=$(basename "$0" .sh)
T_DIR=$MOMENTD_IT_DIR/$T_NAME
rm -rf "$T_DIR"
mkdir -p "$T_DIR"
FAILS=0
CHECKS=0
# Topics and Redis keys outlive a test on the shared broker and Redis; a
# suffix unique to this run keeps a re-run from reading an earlier run's data.
RUN=$(date +%s%N | tail -c 9)
uname_() { echo "$1-$RUN"; }

log() { echo "[$T_NAME] $*"; }

# A test that stops half-way (a failed command under set -e) must not leave
# its momentd instances or background feeders running.
cleanup_test() {
    local f
    for f in "$T_DIR"/*/momentd.pid; do
        [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
    done
    local j
    for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
}
trap cleanup_test EXIT

fail() {
    echo "[$T_NAME] FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}

check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then log "ok: $what"; else fail "$what"; fi
}

eq() { [ "$1" = "$2" ] || { echo "    expected '$2', got '$1'" >&2; return 1; }; }
ge() { [ "$1" -ge "$2" ] || { echo "    expected >= $2, got $1" >&2; return 1; }; }

# make_config NAME [sed expressions...]: a config for NAME with its own topics,
# group and Redis prefix; extra sed expressions adjust it further.
# The suites replay fixed dates of 2026 (bj, gen_events): their moments
# would be stale when emitted today, so their channels keep moments fresh
# for ten years, and the schedule, which decides at today's wall clock,
# is off (a cooldown that ended months ago would fire today). test_stale.sh
# runs with the shipped freshness (MD_FRESH_FOR='\1' keeps each channel's
# own) and the schedule on (MD_SCHEDULE_EVERY=1s), and checks both.
make_config() {
    local out
    out=$(make_config_unchecked "$@")
    "$MOMENTD_BIN" check -c "$out" >/dev/null || { fail "config $1 does not load"; exit 1; }
    echo "$out"
}

# make_config_unchecked NAME [SED ARGS...]: make_config's file, not loaded
# (for a configuration the test expects momentd to refuse).
make_config_unchecked() {
    local name=$1
    shift
    local out=$T_DIR/$name.json
    sed -e "s/\"group_id\": \"momentd\"/\"group_id\": \"$name\", \"topic_payments\": \"$name.payments\", \"topic_calls\": \"$name.calls\", \"topic_app_logins\": \"$name.app-logins\", \"topic_profiles\": \"$name.customer-profiles\", \"topic_outcomes\": \"$name.moment-outcomes\", \"topic_dead_letter\": \"$name.dead-letter\", \"topic_holdout\": \"$name.moments.holdout\", \"poll_timeout\": \"50ms\"/" \
        -e "s/\"key_prefix\": \"md\"/\"key_prefix\": \"$name\"/" \
        -e "s/\"topic\": \"moments\\./\"topic\": \"$name.moments./g" \
        -e 's/"level": "info"/"level": "info", "stats_interval": "100ms"/' \
        -e 's/"listen": "127.0.0.1:9464"/"listen": ""/' \
        -e 's/"consumer": {"fetch.wait.max.ms": "50"}/"consumer": {"fetch.wait.max.ms": "50", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}/' \
        -e "s/\"fresh_for\": \"\([0-9]*[hd]\)\"/\"fresh_for\": \"${MD_FRESH_FOR:-3650d}\"/g" \
        -e "s/\"limits\": {/\"limits\": {\"schedule_every\": \"${MD_SCHEDULE_EVERY:-0}\", /" \
        "$@" "$MOMENTD_SOURCE_DIR/config/momentd.json" >"$out"
    echo "$out"
}

# start_momentd CONFIG [INSTANCE [PATTERN]]: runs momentd in the background
# and waits until its log matches PATTERN (default: it has joined its group
# and subscribed; a test of a refused start passes the refusal it expects).
start_momentd() {
    local cfg=$1 inst=${2:-main} pattern=${3:-'"msg":"started"'}
    mkdir -p "$T_DIR/$inst"
    "$MOMENTD_BIN" run -c "$cfg" 2>>"$T_DIR/$inst/momentd.log" &
    echo $! >"$T_DIR/$inst/momentd.pid"
    local i
    for i in $(seq 1 100); do
        grep -q "$pattern" "$T_DIR/$inst/momentd.log" 2>/dev/null && return 0
        kill -0 "$(cat "$T_DIR/$inst/momentd.pid")" 2>/dev/null || { fail "momentd exited at start: $(tail -5 "$T_DIR/$inst/momentd.log")"; exit 1; }
        sleep 0.1
    done
    fail "momentd's log never showed $pattern: $(tail -3 "$T_DIR/$inst/momentd.log")"
    exit 1
}

# stop_momentd INSTANCE [SIGNAL]: TERM by default (clean shutdown), waits.
stop_momentd() {
    local inst=${1:-main} sig=${2:-TERM}
    local pidf=$T_DIR/$inst/momentd.pid
    [ -f "$pidf" ] || return 0
    local pid
    pid=$(cat "$pidf")
    kill "-$sig" "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        fail "momentd $inst ignored SIG$sig for 30 s"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$pidf"
}

# produce TOPIC: "key|value" lines on stdin to TOPIC.
# produce TOPIC: stdin's KEY|VALUE lines into TOPIC; the number produced is
# added to the suite's tally, which wait_settled waits for.
produce() {
    local f rc=0
    f=$(mktemp)
    tee "$f" | kcat -b "$BROKER" -P -t "$1" -K'|' -X topic.partitioner=murmur2_random || rc=$?
    [ "$rc" -eq 0 ] && grep -c . "$f" >>"$T_DIR/produced"
    rm -f "$f"
    return "$rc"
}

# produced: how many messages this suite has produced so far.
produced() { awk '{ n += $1 } END { print n + 0 }' "$T_DIR/produced" 2>/dev/null || echo 0; }

# consume TOPIC [FORMAT]: every message of TOPIC. A topic kcat cannot read is
# not an empty one: the failure is recorded (it runs in $(...), where a check
# cannot count) and fails the suite in finish, so that "count == 0" never
# passes on an unreadable topic.
consume() {
    local err rc=0
    err=$(mktemp)
    kcat -b "$BROKER" -C -t "$1" -o beginning -e -q -f "${2:-%s\\n}" 2>"$err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "kcat could not read $1 (exit $rc): $(head -c 300 "$err")" >>"$T_DIR/kcat-failures"
    fi
    rm -f "$err"
}

count() { consume "$1" | grep -c . || true; }

# wait_for_count TOPIC N [SECONDS]: until TOPIC holds at least N messages.
wait_for_count() {
    local topic=$1 n=$2 secs=${3:-60} i c
    for i in $(seq 1 $((secs * 4))); do
        c=$(count "$topic")
        [ "$c" -ge "$n" ] && return 0
        sleep 0.25
    done
    echo "    $topic holds $(count "$topic") messages, waited for $n" >&2
    return 1
}

# last_consumed INSTANCE: messages consumed so far by momentd INSTANCE, from
# its latest stats line ("" before the first one).
last_consumed() { last_stat "$1" consumed; }

# last_stat INSTANCE NAME: counter NAME of momentd INSTANCE's latest stats
# (or stop) line ("" before the first one).
last_stat() {
    { grep -o "\"$2\":\"[0-9]*\"" "$T_DIR/$1/momentd.log" 2>/dev/null || true; } | tail -1 | tr -dc 0-9
}

# wait_some INSTANCE: until it has consumed something (up to 20 s).
wait_some() {
    local i c
    for i in $(seq 1 400); do
        c=$(last_consumed "$1")
        [ -n "$c" ] && [ "$c" -gt 0 ] && return 0
        sleep 0.05
    done
    return 1
}

# wait_settled [INSTANCE] [SECONDS]: until momentd INSTANCE (default main)
# has consumed everything this suite produced. Its stats line is written
# after a batch is done, so the moments of that input are out by then: the
# condition to assert "nothing more fired" or to order input across topics
# on, where a sleep would pass before momentd even read the input.
wait_settled() {
    local want
    want=$(produced)
    wait_consumed "${1:-main}" "$want" "${2:-90}" || {
        echo "    momentd ${1:-main} consumed $(last_consumed "${1:-main}") of $want messages" >&2
        return 1
    }
}

# wait_consumed INSTANCE N [SECONDS]: until momentd INSTANCE has consumed at
# least N messages.
wait_consumed() {
    local inst=$1 n=$2 secs=${3:-90} i got
    for i in $(seq 1 $((secs * 4))); do
        got=$(last_consumed "$inst")
        [ -n "$got" ] && [ "$got" -ge "$n" ] && return 0
        sleep 0.25
    done
    return 1
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# Beijing daytime instants: day D after 2026-03-01 at HH:00 +08:00, in epoch ms.
bj() { echo $((1772294400000 + $1 * 86400000 + $2 * 3600000)); } # 1772294400000 = 2026-03-01T00:00:00+08:00

pay_json() { # pay_json CUSTOMER EVENT_ID TS LATE BALANCE [KIND]
    echo "$1|{\"event_id\":\"$2\",\"type\":\"payment\",\"customer_id\":\"$1\",\"ts\":$3,\"amount\":100,\"channel\":\"bank\",\"kind\":\"${6:-bill}\",\"late\":$4,\"balance_after\":$5}"
}
# late_payer CUSTOMER: three late payments 30 days apart with a falling
# balance, the default prepay_wallet campaign's clearest moment (one call).
late_payer() {
    pay_json "$1" "$1-1" "$(bj 0 10)" true 80
    pay_json "$1" "$1-2" "$(bj 30 10)" true 60
    pay_json "$1" "$1-3" "$(bj 60 10)" true 50
}
view_json() { # view_json CUSTOMER EVENT_ID TS PAGE
    echo "$1|{\"event_id\":\"$2\",\"type\":\"app_login\",\"customer_id\":\"$1\",\"ts\":$3,\"pages\":[\"$4\"],\"session_s\":60}"
}

# momentd's stderr goes to per-instance logs, which ctest never sees: a
# sanitizer report there must fail the test all the same.
check_sanitizer_reports() {
    local f
    for f in "$T_DIR"/*/momentd.log; do
        [ -f "$f" ] || continue
        if grep -Eq 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$f"; then
            fail "sanitizer report in $f:"
            grep -E -A30 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$f" | head -60 >&2
        fi
    done
}

finish() {
    check_sanitizer_reports
    if [ -s "$T_DIR/kcat-failures" ]; then
        fail "a topic could not be read:"
        sed 's/^/    /' "$T_DIR/kcat-failures" >&2
    fi
    if [ "$CHECKS" -eq 0 ]; then
        echo "[$T_NAME] FAIL: no check ran" >&2
        exit 1
    fi
    log "$CHECKS checks, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}

# not_holdout CONFIG ID: true when ID is outside every campaign's holdout group.
not_holdout() {
    ! "$MOMENTD_BIN" explain -c "$1" "$2" --json | grep -q '"holdout":true'
}

# pick_customer CONFIG PREFIX: the first PREFIX-N outside every holdout group.
pick_customer() {
    local i
    for i in $(seq 0 200); do
        if not_holdout "$1" "$2-$i"; then echo "$2-$i"; return 0; fi
    done
    return 1
}

# explain_at CONFIG CUSTOMER TIME_MS: explain --json at that instant.
explain_at() {
    local iso
    iso=$(date -u -d "@$(($3 / 1000))" +%Y-%m-%dT%H:%M:%SZ)
    "$MOMENTD_BIN" explain -c "$1" "$2" --json --at "$iso"
}

# dump_state PREFIX: every customer hash under PREFIX, fields sorted, without
# the offset watermarks (per consumer group; pieces "W<k>" and fields), the version (it counts
# applies, which depend on how messages happened to be batched) and the
# empty-outbox mark (T's leading '.', the field x0 before it: whether an
# apply came after the outbox emptied also depends on the batching), and
# with the event-id guard written one line an
# id, "J<event id>" and its time in hours: two namespaces hash the same ids
# apart (SipHash under each one's own key), and which of its packed fields
# ("G<k>" = base hour + ten digits of hash and two of hours an id, base 36)
# an id went to depends on the order its customer's events came in from
# the topics; the guard's event times still compare.
dump_state() {
    # One redis-cli session per node for all its keys; "@@key" lines delimit the replies.
    local port
    for port in $(state_ports "$1"); do
        redis-cli -p "$port" --scan --pattern "$1:{*}" | grep -v ':x$' | sort | awk '{print "ECHO @@" $0; print "HGETALL " $0}' |
            redis-cli -p "$port" | awk '
                function b36(s,   i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 36 + index("0123456789abcdefghijklmnopqrstuvwxyz", substr(s, i, 1)) - 1; return v }
                /^@@/ {key = substr($0, 3); n = 0; next}
                {
                    if (n++ % 2 == 0) { f = $0; next }
                    if (f == "T") sub(/^\./, "")
                    if (f !~ /^G[0-9a-z]?[0-9a-z]?$/) { print key " " f "\t" $0; next }
                    bl = length($0) % 12
                    for (i = bl + 1; i < length($0); i += 12) print key " J<event id>\t" (b36(substr($0, 1, bl)) + b36(substr($0, i + 10, 2)))
                }'
    done | grep -v -E -e ' w:' -e $' W[0-9a-z]{5}[0-9]+\t' -e $' W[0-9]{0,2}\t' -e $' v\t' -e $' x0\t' | sed -E $'s/ [jJ][0-9a-z]{1,13}\t/ J<event id>\t/' | sort
}

# make_certs DIR: a test CA (ca.pem), a server certificate for 127.0.0.1
# and "redis.test" signed by it (server.pem, server.key), and another CA
# that signed nothing here (other-ca.pem).
make_certs() {
    local c=$1
    mkdir -p "$c"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$c/ca.key" -out "$c/ca.pem" -days 2 -subj "/CN=momentd test CA" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$c/other-ca.key" -out "$c/other-ca.pem" -days 2 -subj "/CN=other CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$c/server.key" -out "$c/server.csr" -subj "/CN=redis.test" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:redis.test\n' >"$c/san.ext"
    openssl x509 -req -in "$c/server.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial -out "$c/server.pem" -days 2 \
        -extfile "$c/san.ext" 2>/dev/null
}

# state_ports PREFIX: the Redis ports dump_state reads PREFIX's keys from:
# the suites' Redis; a suite on a cluster redefines it (every primary).
state_ports() { echo "$REDIS_PORT"; }

# feed TOPIC_PREFIX FILE: produce a gen_events file ("topic|key|json" lines)
# to TOPIC_PREFIX.<topic>.
feed() {
    local t
    for t in customer-profiles payments calls app-logins; do
        grep "^$t|" "$2" | cut -d'|' -f2- | produce "$1.$t" || true
    done
}

# trigger_ids TOPIC: the trigger ids in TOPIC, one per line, in topic order.
trigger_ids() { consume "$1" | { grep -o '"trigger_id":"[^"]*"' || true; } | cut -d'"' -f4; }

# reference_run NAME PAYMENTS EVENTS: the undisturbed run a disturbed one is
# compared with (compare_with_reference): the payments file (key|json lines)
# on NAME's own topic, read to the end by one momentd on the suites' Redis.
reference_run() {
    make_config "$1" >/dev/null
    produce "$1.payments" <"$2"
    start_momentd "$T_DIR/$1.json" ref
    check "undisturbed run consumed all $3 events" wait_consumed ref "$3" 120
    sleep 1
    stop_momentd ref
}

# compare_with_reference REF PREFIX INSTANCE: for a disturbed run (PREFIX,
# still running as INSTANCE) against an undisturbed one (REF, finished) over
# the same input: waits up to 2 minutes for PREFIX's state to equal REF's,
# stops INSTANCE, checks that every counter is equal and that no trigger id
# is missing or unexpected, and sets REF_TRIGGERS, MISSING, EXTRA and DUPS
# (the same id delivered more than once: allowed, reported).
compare_with_reference() {
    local ref=$1 pre=$2 inst=$3 i t outs="moments.outbound_call moments.in_app moments.sms moments.holdout"
    for t in $outs; do trigger_ids "$ref.$t"; done | sort >"$T_DIR/ids.ref"
    dump_state "$ref" | sed "s/^$ref:/X:/" >"$T_DIR/state.ref"
    for i in $(seq 1 240); do
        dump_state "$pre" | sed "s/^$pre:/X:/" >"$T_DIR/state.run"
        cmp -s "$T_DIR/state.ref" "$T_DIR/state.run" && break
        sleep 0.5
    done
    sleep 2
    stop_momentd "$inst"
    check "every counter equals the undisturbed run's" cmp -s "$T_DIR/state.ref" "$T_DIR/state.run"
    for t in $outs; do trigger_ids "$pre.$t"; done | sort >"$T_DIR/ids.run"
    sort -u "$T_DIR/ids.run" >"$T_DIR/ids.run.unique"
    REF_TRIGGERS=$(grep -c . "$T_DIR/ids.ref")
    MISSING=$(comm -23 "$T_DIR/ids.ref" "$T_DIR/ids.run.unique" | grep -c . || true)
    EXTRA=$(comm -13 "$T_DIR/ids.ref" "$T_DIR/ids.run.unique" | grep -c . || true)
    DUPS=$(($(grep -c . "$T_DIR/ids.run") - $(grep -c . "$T_DIR/ids.run.unique")))
    check "no trigger lost" eq "$MISSING" 0
    check "no trigger that should not exist" eq "$EXTRA" 0
}

# valid_moments: the moments on stdin (JSON lines) validate against
# docs/schemas/moment.schema.json; prints how many and any that do not.
valid_moments() { "$MOMENTD_SOURCE_DIR/tests/schemas/check" --validate moment; }
