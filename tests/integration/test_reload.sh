#!/usr/bin/env bash
# Live reload on SIGHUP against the real broker and Redis: a broken file, and
# a file that changes what only a restart can, leave the running
# configuration in place (error logged, counted in /metrics); a good file
# switches the model version in the next trigger and the log level; SIGHUPs
# in the middle of a stream lose no event.
source "$(dirname "$0")/lib.sh"

N=$(uname_ reload)
PORT=19465
URL=http://127.0.0.1:$PORT
CFG=$(make_config "$N" -e "s/\"listen\": \"\"/\"listen\": \"127.0.0.1:$PORT\"/")
cp "$CFG" "$T_DIR/good.json"
LOG=$T_DIR/main/momentd.log
start_momentd "$CFG"
PID=$(cat "$T_DIR/main/momentd.pid")
metric() { curl -s "$URL/metrics" | grep -v '^#' | { grep -F "$1 " || echo "$1 missing"; } | awk '{print $NF}'; }

OLD=prepay_wallet-2026.11.1
NEW=prepay_wallet-2026.12.0
fire() { late_payer "$1" | produce "$N.payments"; } # a prepay_wallet call
version_of() { consume "$N.moments.outbound_call" | grep "\"customer_id\":\"$1\"" | grep -o '"model_version":"[^"]*"' | cut -d'"' -f4; }
# hup_and_wait MESSAGE: SIGHUP, then until the log has one more MESSAGE line.
hup_and_wait() {
    local before i
    before=$(grep -c "\"msg\":\"$1\"" "$LOG" || true)
    kill -HUP "$PID"
    for i in $(seq 1 100); do
        [ "$(grep -c "\"msg\":\"$1\"" "$LOG" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    echo "    no new \"$1\" line in the log" >&2
    return 1
}

A=$(pick_customer "$CFG" ra)
B=$(pick_customer "$CFG" rb)
C=$(pick_customer "$CFG" rc)
fire "$A"
check "A's moment reaches the dialer" wait_for_count "$N.moments.outbound_call" 1 60
check "with the running model version" eq "$(version_of "$A")" "$OLD"
check "metrics name the running model" eq "$(metric "momentd_model_info{campaign=\"prepay_wallet\",version=\"$OLD\"}")" 1

# 1. A file that does not load.
sed -e 's/"dedupe": {/"dedupe": {"bogus_key": 1, /' -e "s/$OLD/$NEW/" "$T_DIR/good.json" >"$CFG"
check "a broken file: the reload is refused" hup_and_wait "reload refused; the running configuration stays"
check "with the loader's error, naming the key" grep -q '"msg":"reload refused.*bogus_key' "$LOG"
sleep 0.5
check "and counted" eq "$(metric 'momentd_config_reloads_total{result="refused"}')" 1
fire "$B"
check "B's moment reaches the dialer" wait_for_count "$N.moments.outbound_call" 2 60
check "still with the old model version" eq "$(version_of "$B")" "$OLD"

# 2. A file that loads but changes what the connections were made with.
sed -e 's/"group_id": "[^"]*"/"group_id": "another-group"/' -e "s/$OLD/$NEW/" "$T_DIR/good.json" >"$CFG"
check "a changed kafka.group_id: refused, a restart is needed" hup_and_wait "reload refused; the running configuration stays"
check "and the log says which setting" grep -q 'kafka.group_id changed; that takes a restart' "$LOG"

# 3. A good file: new model version, debug logging.
sed -e "s/$OLD/$NEW/" -e 's/"level": "info"/"level": "debug"/' "$T_DIR/good.json" >"$CFG"
check "batch lines are not logged at the info level" eq "$(grep -c '"msg":"batch committed"' "$LOG" || true)" 0
check "a good file is applied" hup_and_wait "configuration reloaded"
check "the log names the new model" grep -q "\"msg\":\"configuration reloaded\".*prepay_wallet=$NEW" "$LOG"
fire "$C"
check "C's moment reaches the dialer" wait_for_count "$N.moments.outbound_call" 3 60
check "with the new model version" eq "$(version_of "$C")" "$NEW"
sleep 0.5
check "metrics: one reload applied" eq "$(metric 'momentd_config_reloads_total{result="applied"}')" 1
check "metrics name the new model" eq "$(metric "momentd_model_info{campaign=\"prepay_wallet\",version=\"$NEW\"}")" 1
check "trigger counts carry over the reload" eq "$(metric 'momentd_triggers_total{campaign="prepay_wallet",channel="outbound_call"}')" 3
check "the log level switched to debug at run time" grep -q '"level":"debug".*"msg":"batch committed"' "$LOG"

# 4. Reloads in the middle of a stream lose nothing: 3,000 app logins for
# 300 customers while SIGHUP arrives five times.
for i in $(seq 1 3000); do
    c=rs-$((i % 300))
    view_json "$c" "$c-v$i" "$(bj 1 $((i % 10)))" home
done >"$T_DIR/stream.txt"
produce "$N.app-logins" <"$T_DIR/stream.txt" &
PRODUCER=$!
for k in 1 2 3 4 5; do
    sleep 0.3
    kill -HUP "$PID"
done
wait "$PRODUCER"
check "momentd survives reloads under load" kill -0 "$PID"
stop_momentd main
STOPPED=$(grep '"msg":"stopped"' "$LOG")
# 9 payments + 3,000 app logins, none lost or dead-lettered.
check "every event of the stream was accepted" grep -q '"accepted":"3009"' <<<"$STOPPED"
check "none dead-lettered" grep -q '"dead_lettered":"0"' <<<"$STOPPED"
check "at least one more reload applied during the stream" test "$(grep -c '"msg":"configuration reloaded"' "$LOG")" -ge 2
finish
