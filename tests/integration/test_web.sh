#!/usr/bin/env bash
# momentd's HTTP endpoint against the real broker and Redis: /healthz,
# /readyz (unready while Redis is down, ready again after), /metrics moving
# with the traffic, /api/report, and the report page rendered from live data
# by a real headless Chromium, with a screenshot kept in the test folder.
source "$(dirname "$0")/lib.sh"

N=$(uname_ web)
PORT=19464
URL=http://127.0.0.1:$PORT
# The running models are measured every second, and one decision makes a
# decile, so that two triggers can show a drifting model.
CFG=$(make_config "$N" -e "s/\"listen\": \"\"/\"listen\": \"127.0.0.1:$PORT\"/" -e 's/"ready_max_lag": 100000/"ready_max_lag": 100/' \
    -e 's/"contact_policy": {/"learning": {"drift_check_every": "1s", "calibration_min": 1}, "contact_policy": {/')
start_momentd "$CFG"
metric() { curl -s "$URL/metrics" | grep -v '^#' | { grep -F "$1 " || echo "$1 missing"; } | awk '{print $NF}'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$URL$1"; }
wait_code_at() { # BASE_URL PATH CODE [SECONDS]
    local i
    for i in $(seq 1 $((${4:-30} * 4))); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1$2")" = "$3" ] && return 0
        sleep 0.25
    done
    echo "    $2 never answered $3" >&2
    return 1
}
wait_code() { # PATH CODE [SECONDS]
    local i
    for i in $(seq 1 $((${3:-30} * 4))); do
        [ "$(code "$1")" = "$2" ] && return 0
        sleep 0.25
    done
    echo "    $1 answers $(code "$1"), waited for $2" >&2
    return 1
}

check "/healthz answers 200" eq "$(code /healthz)" 200
check "/readyz turns ready (Redis answers, partitions assigned)" wait_code /readyz 200 30
check "unknown paths are 404" eq "$(code /nope)" 404
check "only GET" eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/metrics")" 405

BEFORE=$(metric momentd_messages_consumed_total)
C1=$(pick_customer "$CFG" w1)
C2=$(pick_customer "$CFG" w2)
for who in "$C1" "$C2"; do
    {
        pay_json "$who" "${who}-1" "$(bj 0 10)" true 80
        pay_json "$who" "${who}-2" "$(bj 30 10)" true 60
        pay_json "$who" "${who}-3" "$(bj 60 10)" true 50
    } | produce "$N.payments"
done
echo "$C1|not json" | produce "$N.payments"
check "both moments reach the dialer" wait_for_count "$N.moments.outbound_call" 2 60
T1=$(consume "$N.moments.outbound_call" | grep "\"customer_id\":\"$C1\"" | grep -o '"trigger_id":"[^"]*"' | cut -d'"' -f4)
echo "$C1|{\"trigger_id\":\"$T1\",\"customer_id\":\"$C1\",\"campaign\":\"prepay_wallet\",\"channel\":\"outbound_call\",\"status\":\"sent\",\"ts\":$(bj 60 11)}" |
    produce "$N.moment-outcomes"
check "the dead letter arrives" wait_for_count "$N.dead-letter" 1 60
# The counters are published as one snapshot per batch: once the scrape
# shows the 8 messages consumed, the rest of that batch's counts are in it.
for i in $(seq 1 120); do
    [ $(($(metric momentd_messages_consumed_total) - BEFORE)) -ge 8 ] && break
    sleep 0.25
done
check "consumed moved by the 8 messages sent (6 payments, 1 malformed, 1 outcome)" eq "$(($(metric momentd_messages_consumed_total) - BEFORE))" 8
check "accepted events by type (the 6 payments)" eq "$(metric 'momentd_events_accepted_total{type="payment"}')" 6
check "and none of the other types" eq "$(metric 'momentd_events_accepted_total{type="call"}'),$(metric 'momentd_events_accepted_total{type="app_login"}')" 0,0
check "triggers by campaign and channel" eq "$(metric 'momentd_triggers_total{campaign="prepay_wallet",channel="outbound_call"}')" 2
check "dead letters by reason" eq "$(metric 'momentd_dead_letters_total{reason="not_json"}')" 1
check "outcomes by result" eq "$(metric 'momentd_outcomes_total{result="applied"}')" 1
check "suppressions by reason are exported" grep -q 'momentd_suppressions_total{reason="below_threshold"} [1-9]' <<<"$(curl -s "$URL/metrics")"
check "metrics are Prometheus text with HELP and TYPE" grep -q '^# TYPE momentd_triggers_total counter' <<<"$(curl -s "$URL/metrics")"
check "redis_up is 1" eq "$(metric momentd_redis_up)" 1
M=$(curl -s "$URL/metrics")
# The two customers' payments sit in one or two partitions; a partition
# nothing was read from since the assignment has no position, so no series.
check "consumer lag per partition read, 0 once caught up" eq "$(grep "^momentd_consumer_lag{topic=\"$N.payments\"" <<<"$M" | awk '$2 == 0 {z++} $2 != 0 {nz++} END {print (z >= 1 && nz + 0 == 0) ? "ok" : z "/" nz}')" ok
check "a rebalance was seen (the first assignment)" ge "$(metric momentd_rebalances_total)" 1
check "nothing waits in the outbox" eq "$(metric momentd_outbox_pending)" 0
check "no delivery errors" eq "$(metric momentd_delivery_errors_total)" 0
for h in momentd_redis_read_seconds momentd_redis_apply_seconds momentd_kafka_ack_seconds momentd_batch_seconds; do
    check "histogram $h is exported with observations" ge "$(metric "${h}_count")" 1
    check "its +Inf bucket equals its count" eq "$(metric "${h}_bucket{le=\"+Inf\"}")" "$(metric "${h}_count")"
done
check "histogram buckets are cumulative" eq "$(grep '^momentd_batch_seconds_bucket' <<<"$M" | awk '{ if ($2 < prev) bad = 1; prev = $2 } END { print bad + 0 }')" 0

# Readiness follows Redis, and the backlog that builds up behind it: 5,000
# app logins (no trigger) arrive while Redis is down; with one batch (at most
# limits.batch_size, 2,000) in hand the rest is lag, above this test's
# http.ready_max_lag of 100.
"$MOMENTD_SOURCE_DIR/scripts/redis-local" stop "$MOMENTD_IT_DIR/redis"
check "/readyz turns 503 while Redis is down" wait_code /readyz 503 15
check "and says why" grep -q "redis" <<<"$(curl -s "$URL/readyz")"
check "/healthz stays 200" eq "$(code /healthz)" 200
for i in $(seq 1 5000); do view_json "wl-$((i % 200))" "wl-v$i" "$(bj 1 10)" home; done | produce "$N.app-logins"
lag_seen() {
    local i
    for i in $(seq 1 80); do
        curl -s "$URL/readyz" | grep -q "consumer lag [0-9]* is above http.ready_max_lag 100" && return 0
        sleep 0.25
    done
    curl -s "$URL/readyz" >&2
    return 1
}
check "/readyz also names the lag above http.ready_max_lag" lag_seen
check "and the lag metric shows it" ge "$(curl -s "$URL/metrics" | grep "^momentd_consumer_lag{topic=\"$N.app-logins\"" | awk '{s += $2} END {print s + 0}')" 101
"$MOMENTD_SOURCE_DIR/scripts/redis-local" start "$MOMENTD_IT_REDIS_PORT" "$MOMENTD_IT_DIR/redis"
check "/readyz is ready again once Redis is back and the backlog is processed" wait_code /readyz 200 30
# The state cache: the 200 customers of the 5,000 app logins above come
# back in the batches after the first, which read them from Redis once and
# then from memory. Its counters are published every 5 s.
for i in $(seq 1 60); do
    [ "$(metric 'momentd_state_reads_total{from="cache"}')" != 0 ] && break
    sleep 0.25
done
check "states read from Redis are counted" ge "$(metric 'momentd_state_reads_total{from="redis"}')" 1
check "and from the state cache" ge "$(metric 'momentd_state_reads_total{from="cache"}')" 1
check "the state cache holds what it read (entries, bytes)" test "$(metric momentd_state_cache_entries)" -ge 1 -a "$(metric momentd_state_cache_bytes)" -gt 0
# One reading of both, so that neither moves between them.
mem=$(curl -s "$URL/metrics" | awk '$1 == "momentd_resident_memory_bytes" {r = $2} $1 == "momentd_peak_resident_memory_bytes" {p = $2} END {print r + 0, p + 0}')
check "the process's resident memory is published (over 1 MB), at most its peak" test "${mem% *}" -gt 1048576 -a "${mem#* }" -ge "${mem% *}"

# Redis filling up: with maxmemory just above what Redis uses (and
# noeviction, momentd's required policy), /readyz warns before writes fail.
USED=$(rcli INFO memory | tr -d '\r' | sed -n 's/^used_memory://p')
trap 'rcli CONFIG SET maxmemory 0 >/dev/null 2>&1 || true; cleanup_test' EXIT
rcli CONFIG SET maxmemory $((USED * 105 / 100)) >/dev/null
check "/readyz turns 503 when Redis nears its maxmemory" wait_code /readyz 503 15
check "and says so" grep -q "redis uses [0-9]* of its maxmemory [0-9]* bytes, above http.ready_max_redis_memory 0.9" <<<"$(curl -s "$URL/readyz")"
check "/metrics shows Redis's memory and its limit" eq "$(metric momentd_redis_maxmemory_bytes)" "$((USED * 105 / 100))"
rcli CONFIG SET maxmemory 0 >/dev/null
check "/readyz is ready again without the limit" wait_code /readyz 200 15

# The report as JSON and as a page, from the same live data.
RANGE="from=2026-03-01&to=2026-05-31"
API=$(curl -s "$URL/api/report?$RANGE")
OC=$(grep -o '"channel":"outbound_call","counts":{[^}]*}' <<<"$API" | head -1)
check "/api/report counts the 2 triggers of the range and the 1 sent" eq "$(grep -o '"triggered":[0-9]*' <<<"$OC"),$(grep -o '"sent":[0-9]*' <<<"$OC")" '"triggered":2,"sent":1'
# Hardening of the endpoint: every response forbids sniffing and framing
# and allows the page nothing but its own script; a report covers at most
# 366 days; reports share one Redis connection; health checks are answered
# while reports run.
HDR=$(curl -sI "$URL/")
check "responses say nosniff" grep -qi '^X-Content-Type-Options: nosniff' <<<"$HDR"
check "and carry a Content-Security-Policy that forbids framing" grep -qi "^Content-Security-Policy: default-src 'self';.*frame-ancestors 'none'" <<<"$HDR"
LONG=$(curl -s -w '\n%{http_code}' "$URL/api/report?from=2016-01-01&to=2026-01-01")
check "a ten-year report is refused (400)" eq "$(tail -1 <<<"$LONG")" 400
check "saying the limit" grep -q 'a report covers at most 366 days' <<<"$LONG"
C0=$(rcli INFO stats | tr -d '\r' | sed -n 's/^total_connections_received://p')
for i in $(seq 1 10); do curl -s -o /dev/null "$URL/api/report?$RANGE"; done
C1=$(rcli INFO stats | tr -d '\r' | sed -n 's/^total_connections_received://p')
check "ten reports open at most one Redis connection (they opened one each)" test $((C1 - C0)) -le 2
REPORTS=()
for i in $(seq 1 8); do
    curl -s -o /dev/null --max-time 30 "$URL/api/report?$RANGE" &
    REPORTS+=($!)
done
check "/healthz answers while reports run" eq "$(code /healthz)" 200
wait "${REPORTS[@]}" # only these: momentd runs in the background too
BAD=$(curl -s -w '\n%{http_code}' "$URL/api/report?from=yesterday")
check "a bad range is a 400" eq "$(tail -1 <<<"$BAD")" 400
check "with the reason as valid JSON (the quoted input escaped)" eq "$(head -1 <<<"$BAD")" '{"error":"from: expected a day as YYYY-MM-DD, got \"yesterday\""}'
command -v chromium >/dev/null || { fail "chromium is not installed (scripts/install-deps installs it)"; finish; }
BROWSER=(chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars
         --user-data-dir="$T_DIR/chromium" --virtual-time-budget=15000 --window-size=1400,1800)
DOM=$("${BROWSER[@]}" --dump-dom "$URL/?$RANGE" 2>"$T_DIR/chromium.log")
echo "$DOM" >"$T_DIR/page.html"
check "the page rendered 10 charts (4 per campaign, bill_instalment's policy arms, prepay_wallet's timing)" grep -q 'data-rendered="10"' <<<"$DOM"
TIMING=$(grep -o '<canvas[^>]*id="timing-0"[^>]*>' <<<"$DOM")
check "the timing chart plots prepay_wallet's 2 first contacts" eq "$(grep -o 'data-gaps="[^"]*"' <<<"$TIMING") $(grep -o 'data-contacts="[^"]*"' <<<"$TIMING")" 'data-gaps="first" data-contacts="2"'
check "/api/report has them in its timing table" eq "$(jq -c '.campaigns[0].timing[0] | [.gap_days, .moments, .contacts]' <<<"$API")" '["first",2,2]'
check "bill_instalment contacted nobody: no timing chart" eq "$(grep -c 'id="timing-1"' <<<"$DOM")" 0
check "the arms chart names both arms" grep -q 'data-arms="adaptive,fixed45"' <<<"$(grep -o '<canvas[^>]*id="arms-1"[^>]*>' <<<"$DOM")"
check "/api/report has the arms" grep -q '"arms":\[{"arm":"adaptive","mode":"adaptive","share_pct":50,"contacts":0' <<<"$API"
FUNNEL=$(grep -o '<canvas[^>]*id="funnel-0"[^>]*>' <<<"$DOM")
check "the funnel chart plots outbound_call" grep -q 'data-channels="outbound_call"' <<<"$FUNNEL"
check "with the 2 triggers the API reports" grep -q 'data-triggered="2"' <<<"$FUNNEL"
DAILY=$(grep -o '<canvas[^>]*id="daily-0"[^>]*>' <<<"$DOM")
check "the daily chart covers the 92 days of the range" grep -q 'data-days="92"' <<<"$DAILY"
check "and plots the same 2 triggers" grep -q 'data-triggered="2"' <<<"$DAILY"
check "the uplift chart is drawn" grep -q 'id="uplift-0"[^>]*data-kind="uplift"\|data-kind="uplift"[^>]*id="uplift-0"' <<<"$DOM"
# Model quality from live outcomes: the 2 triggers' attribution windows have
# closed (months ago), neither converted.
MODELS=$(grep -o '"campaign":"prepay_wallet".*' <<<"$API" | grep -o '"models":\[[^]]*' | head -1)
check "/api/report measures the running model on the 2 decisions" \
    grep -q '"models":\[{"version":"prepay_wallet-2026.11.1","running":true,"labels_final_through":"2026-05-31","decisions":2,"conversions":0,"pending":0' <<<"$MODELS"
RELIABILITY=$(grep -o '<canvas[^>]*id="reliability-0"[^>]*>' <<<"$DOM")
check "the reliability chart plots the running model" grep -q 'data-versions="prepay_wallet-2026.11.1"' <<<"$RELIABILITY"
check "over the same 2 decisions" grep -q 'data-decisions="2"' <<<"$RELIABILITY"
check "as at least one decile point" grep -q 'data-points="[1-9]' <<<"$RELIABILITY"
check "and flags it drifting (predicted about 0.7, observed 0)" grep -q 'data-drifting="prepay_wallet-2026.11.1"' <<<"$RELIABILITY"
check "bill_instalment made no decision: an empty chart, not an error" \
    grep -q 'data-decisions="0"' <<<"$(grep -o '<canvas[^>]*id="reliability-1"[^>]*>' <<<"$DOM")"
"${BROWSER[@]}" --screenshot="$T_DIR/report.png" "$URL/?$RANGE" 2>>"$T_DIR/chromium.log" >/dev/null
check "a screenshot of the page was taken" test -s "$T_DIR/report.png"
log "screenshot: $T_DIR/report.png"

# The daemon measures its running model on the last 30 days of triggers whose
# window has closed: a trigger 45 days ago (10:00 Beijing), never converted,
# is a model that promised about 0.7 and got 0.
D45=$(( ($(date +%s) / 86400 - 45) * 86400000 + 2 * 3600000 ))
C3=$(pick_customer "$CFG" w3)
{
    pay_json "$C3" "${C3}-1" $((D45 - 60 * 86400000)) true 80
    pay_json "$C3" "${C3}-2" $((D45 - 30 * 86400000)) true 60
    pay_json "$C3" "${C3}-3" "$D45" true 50
} | produce "$N.payments"
check "the third moment reaches the dialer" wait_for_count "$N.moments.outbound_call" 3 60
VERSION='campaign="prepay_wallet",version="prepay_wallet-2026.11.1"'
model_metric_is() { # NAME VALUE: waits for the next checks (every second)
    local i
    for i in $(seq 1 40); do
        [ "$(metric "$1{$VERSION}")" = "$2" ] && return 0
        sleep 0.25
    done
    echo "    $1 is $(metric "$1{$VERSION}"), waited for $2" >&2
    return 1
}
check "momentd_model_labelled_decisions counts the 1 decision of the last 30 final days" model_metric_is momentd_model_labelled_decisions 1
check "momentd_model_drifting is 1" model_metric_is momentd_model_drifting 1
CAL=$(metric "momentd_model_calibration_error{$VERSION}")
check "momentd_model_calibration_error is the whole promise (over 0.5, nothing converted)" awk -v e="$CAL" 'BEGIN { exit !(e > 0.5 && e <= 1) }'
check "bill_instalment decided nothing: 0 decisions, not drifting, no error" \
    eq "$(metric 'momentd_model_labelled_decisions{campaign="bill_instalment",version="bill_instalment-2026.11.1"}'),$(metric 'momentd_model_drifting{campaign="bill_instalment",version="bill_instalment-2026.11.1"}'),$(curl -s "$URL/metrics" | grep -c '^momentd_model_calibration_error{campaign="bill_instalment"')" 0,0,0
check "the drift is logged once, with the version and the bound" \
    eq "$(grep -c '"msg":"model calibration drifted beyond learning.calibration_bound".*"campaign":"prepay_wallet","version":"prepay_wallet-2026.11.1".*"bound_points":"5.0"' "$T_DIR/main/momentd.log")" 1
stop_momentd main

# http.token: the data (/metrics, /api/report) needs "Authorization: Bearer
# TOKEN"; probes and the page itself do not, and the page sends the token it
# was opened with (/#token=TOKEN). The token comes from the environment and
# is never printed.
TOKEN=tok-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
export MD_TEST_HTTP_TOKEN=$TOKEN
APORT=19465
AURL=http://127.0.0.1:$APORT
ACFG=$(make_config "$N-auth" -e "s/\"listen\": \"\"/\"listen\": \"127.0.0.1:$APORT\", \"token\": \"\${env:MD_TEST_HTTP_TOKEN}\"/")
grep -q '"token": "${env:MD_TEST_HTTP_TOKEN}"' "$ACFG" || fail "the token config was not made"
check "momentd check does not print the token" bash -c "! '$MOMENTD_BIN' check -c '$ACFG' 2>&1 | grep -qF '$TOKEN'"
start_momentd "$ACFG" auth
acode() { curl -s -o /dev/null -w '%{http_code}' "${@:2}" "$AURL$1"; }
check "/healthz needs no token" eq "$(acode /healthz)" 200
check "/metrics without the token is 401" eq "$(acode /metrics)" 401
check "saying how to authenticate" grep -qi '^WWW-Authenticate: Bearer realm="momentd"' <<<"$(curl -sI "$AURL/metrics")"
WRONG=$(tr 'a-zA-Z0-9' 'b-zaB-ZA1-90' <<<"$TOKEN")
check "a wrong token of the same length is 401" eq "$(acode /metrics -H "Authorization: Bearer $WRONG")" 401
check "the token as Basic credentials is 401" eq "$(acode /metrics -H "Authorization: Basic $TOKEN")" 401
check "the token with one character more is 401" eq "$(acode /metrics -H "Authorization: Bearer ${TOKEN}x")" 401
check "/metrics with the token is 200" eq "$(acode /metrics -H "Authorization: Bearer $TOKEN")" 200
check "and the metrics are there" grep -q '^momentd_messages_consumed_total ' <<<"$(curl -s -H "Authorization: Bearer $TOKEN" "$AURL/metrics")"
check "/api/report without the token is 401" eq "$(acode "/api/report?$RANGE")" 401
check "/api/report with it is 200" eq "$(acode "/api/report?$RANGE" -H "Authorization: Bearer $TOKEN")" 200
check "the page itself needs no token (it holds no data)" eq "$(acode /)" 200
check "/readyz needs no token" wait_code_at "$AURL" /readyz 200 30
ADOM=$("${BROWSER[@]}" --dump-dom "$AURL/?$RANGE#token=$TOKEN" 2>>"$T_DIR/chromium.log")
check "the page opened with #token renders its charts" grep -q 'data-rendered="9"' <<<"$ADOM"
NDOM=$("${BROWSER[@]}" --dump-dom "$AURL/?$RANGE" 2>>"$T_DIR/chromium.log")
check "without it the page says the data needs http.token" grep -q 'data-rendered="error"' <<<"$NDOM"
check "in words" grep -q 'needs http.token' <<<"$NDOM"
stop_momentd auth
check "the token is in no log line" bash -c "! grep -qF '$TOKEN' '$T_DIR/auth/momentd.log'"
SHORT=$(make_config_unchecked "$N-short" -e 's/"listen": ""/"listen": "127.0.0.1:19466", "token": "short"/')
check "a token under 16 characters is refused at load" bash -c "! '$MOMENTD_BIN' check -c '$SHORT' >'$T_DIR/short.out' 2>&1"
check "saying why" grep -q 'http.token: must be 16-256 characters' "$T_DIR/short.out"
finish
