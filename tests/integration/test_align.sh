#!/usr/bin/env bash
# Event-time alignment across the input topics: 60 days of payments, calls
# and app logins written unpaced (every payment first, then every call, then
# every login) and read as one backlog count every event, and the customers'
# windows equal those of a run fed in event-time order, five days at a time.
# Read independently (kafka.align_slack 0), the same backlog loses events as
# too late: the sparse topics run ahead of the dense one in event time.
source "$(dirname "$0")/lib.sh"

START=$((($(date +%s) - 62 * 86400) * 1000))
"$GEN" --customers 1000 --seed 11 --days 60 --start "$START" >"$T_DIR/events.txt"
TOTAL=$(grep -c . "$T_DIR/events.txt")
log "$TOTAL messages: $(cut -d'|' -f1 "$T_DIR/events.txt" | sort | uniq -c | tr -s ' \n' ' ')"

too_late() { last_stat "$1" too_late; }
# windows PREFIX: the customers' window buckets (pieces and fields), newest event times, balance
# and profile attributes, keys written as X.
windows() { dump_state "$1" | sed "s/^$1:/X:/" | grep -E $' (S[0-9a-z]+|H[0-9]*|T|bal|p:[^\t]*|P[0-9]*)\t'; }

# The reference: the file is in event-time order; fed in twelve slices, each
# read before the next is written, no topic gets more than a slice ahead.
R=$(uname_ alignref)
CFG_R=$(make_config "$R")
start_momentd "$CFG_R" ref
lines=$(((TOTAL + 11) / 12))
split -l "$lines" -d "$T_DIR/events.txt" "$T_DIR/slice."
fed=0
for s in "$T_DIR"/slice.*; do
    feed "$R" "$s"
    fed=$((fed + $(grep -c . "$s")))
    wait_consumed ref "$fed" 120 || break
done
check "the paced run read all $TOTAL messages" wait_consumed ref "$TOTAL" 10
sleep 1
stop_momentd ref
check "the paced run dropped no event as too late" eq "$(too_late ref)" 0
windows "$R" >"$T_DIR/windows.ref"
check "the paced run's state has windows" ge "$(grep -c . "$T_DIR/windows.ref")" 1000

# The backlog: everything written before momentd starts, topic by topic.
B=$(uname_ align)
CFG_B=$(make_config "$B")
feed "$B" "$T_DIR/events.txt"
start_momentd "$CFG_B" backlog
check "the backlog is read to the end" wait_consumed backlog "$TOTAL" 120
sleep 1
stop_momentd backlog
check "no event of the backlog is too late" eq "$(too_late backlog)" 0
# Every partition reached its end or had messages in time: none held the
# others until kafka.align_wait ran out (a caught-up partition holds nothing).
check "no partition was waited out" eq "$(last_stat backlog align_gave_up)" 0
windows "$B" >"$T_DIR/windows.backlog"
check "every window equals the paced run's" cmp -s "$T_DIR/windows.ref" "$T_DIR/windows.backlog"
cmp -s "$T_DIR/windows.ref" "$T_DIR/windows.backlog" || diff "$T_DIR/windows.ref" "$T_DIR/windows.backlog" | head -10 >&2

# The same backlog read without the alignment (another group and namespace):
# the check above is one that fails without it.
O=$(uname_ alignoff)
CFG_O=$(make_config "$O" -e "s/\"$O\.\(payments\|calls\|app-logins\|customer-profiles\|moment-outcomes\)\"/\"$B.\1\"/g" \
    -e 's/"group_id":/"align_slack": "0", "group_id":/')
start_momentd "$CFG_O" off
check "without the alignment the backlog is read too" wait_consumed off "$TOTAL" 120
sleep 1
stop_momentd off
OFF_LATE=$(too_late off)
log "read independently: $OFF_LATE of $TOTAL too late"
check "without the alignment events are lost as too late" ge "$OFF_LATE" 1

# A slack the lateness limit would defeat is refused at load, with the reason.
BAD=$(make_config_unchecked "$(uname_ alignbad)" -e 's/"max_lateness": "7d"/"max_lateness": "1h"/')
check "an align_slack not below max_lateness is refused" grep -q 'kafka.align_slack: 3600 s is not below limits.max_lateness (3600 s)' \
    <<<"$("$MOMENTD_BIN" check -c "$BAD" 2>&1 || true)"

# An upgrade from an earlier version: the backlog namespace's series put back
# under the names of earlier versions, "S<whole hash>" packed (every other
# field) and "s<whole hash>" in decimal with every value written, read as they
# were; a customer's next apply renames its own to the current "S<code>".
# b36 N [WIDTH]: N in base 36, zero-padded to WIDTH.
b36() {
    local n=$1 out= d=0123456789abcdefghijklmnopqrstuvwxyz
    while :; do out=${d:n % 36:1}$out; n=$((n / 36)); [ "$n" -gt 0 ] || break; done
    while [ "${#out}" -lt "${2:-0}" ]; do out=0$out; done
    echo "$out"
}
# series_hashes CONFIG: "<code> <whole hash>" for each series of CONFIG: FNV-1a
# 32 over "<signal>|<granularity ms>|<sum>" (sum 0 none, 1 amount, 2
# duration_s, 3 session_s), as docs/ARCHITECTURE.md states the layout.
series_hashes() {
    local sig gran sum ms k key h i c
    jq -r '.windows[] | [.signal, .granularity, (.sum // "")] | @tsv' "$1" | sort -u |
        while IFS=$'\t' read -r sig gran sum; do
            case $gran in *d) ms=$((${gran%d} * 86400000)) ;; *h) ms=$((${gran%h} * 3600000)) ;; *m) ms=$((${gran%m} * 60000)) ;; esac
            case $sum in "") k=0 ;; amount) k=1 ;; duration_s) k=2 ;; *) k=3 ;; esac
            key="$sig|$ms|$k" h=2166136261
            for ((i = 0; i < ${#key}; i++)); do
                printf -v c '%d' "'${key:i:1}"
                h=$((((h ^ c) * 16777619) & 0xffffffff))
            done
            echo "$(b36 $((h % 1679616)) 4) $(b36 "$h")"
        done
}
# older_form HASHES: "KEY FIELD VALUE" lines of current series in, redis-cli commands out.
older_form() {
    awk -F'\t' -v hashes="$1" 'function b36(s,  n, i, neg) {
            neg = substr(s, 1, 1) == "-"; if (neg) s = substr(s, 2); n = 0
            for (i = 1; i <= length(s); i++) n = n * 36 + index("0123456789abcdefghijklmnopqrstuvwxyz", substr(s, i, 1)) - 1
            return neg ? -n : n }
        BEGIN { while ((getline line < hashes) > 0) { split(line, h, " "); whole[h[1]] = h[2] } }
        { split($1, kf, " "); code = substr(kf[2], 2)
          if (!(kf[1] in cleared)) { cleared[kf[1]] = 1; print "HDEL " kf[1] " H H1 H2 H3 H4 H5 H6 H7" }
          if (!(code in whole)) { print "ECHO no hash for " kf[2] > "/dev/stderr"; exit 1 }
          print "HDEL " kf[1] " " kf[2]
          if (NR % 2) { print "HSET " kf[1] " S" whole[code] " " $2; next }
          nt = split($2, tok, ","); out = ""
          for (i = 1; i <= nt; i++) { v = 1; if (index(tok[i], ":")) { v = b36(substr(tok[i], index(tok[i], ":") + 1)); sub(/:.*/, "", tok[i]) }
                                      out = out (i > 1 ? "," : "") sprintf("%d:%d", b36(tok[i]), v) }
          print "HSET " kf[1] " s" whole[code] " " out }'
}
# dump_series PREFIX: "KEY S<code>\tBUCKETS" for each series of each customer, the
# entries of its pieces (H<k>, "<code><buckets>" joined by ";", the code a
# letter the namespace gave, "code:s<long code>" in "<prefix>:meta", or the
# long code) as if fields of their own.
dump_series() { { redis-cli -p "$REDIS_PORT" HGETALL "$1:meta" | paste - - | awk -F'\t' '$1 ~ /^code:s/ {print "CODE " $2 " " substr($1, 7)}'
    redis-cli -p "$REDIS_PORT" --scan --pattern "$1:{*}" | grep -v ':x$' | sort | awk '{print "ECHO @@" $0; print "HGETALL " $0}' |
    redis-cli -p "$REDIS_PORT"; } | awk '/^CODE / {long[$2] = $3; next} /^@@/ {key = substr($0, 3); n = 0; next}
        {if (n % 2 == 0) f = $0
         else if (f ~ /^[sS][0-9a-z]+$/) print key " " f "\t" $0
         else if (f ~ /^H[0-9]*$/) { m = split($0, e, ";")
             for (i = 1; i <= m; i++) { c = e[i] ~ /^Z[A-Z][A-Z]/ ? substr(e[i], 1, 3) : e[i] ~ /^[A-Y]/ ? substr(e[i], 1, 1) : substr(e[i], 1, 4)
                                        print key " S" (c in long ? long[c] : c) "\t" substr(e[i], length(c) + 1) } }
         n++}'; }
dump_series "$B" >"$T_DIR/series.current"
C=$(awk 'NR == 1 {sub(/^[^{]*\{/, ""); sub(/\}.*/, ""); print}' "$T_DIR/series.current")
AT=$(($(date +%s) * 1000))
explain_at "$CFG_B" "$C" "$AT" >"$T_DIR/explain.current"
explain_at "$CFG_B" c0000001 "$AT" >"$T_DIR/explain1.current"
series_hashes "$CFG_B" >"$T_DIR/series.hashes"
check "the layout's hash is worked out (payment by day: 13f6cvd)" grep -q '^6cvd 13f6cvd$' "$T_DIR/series.hashes"
older_form "$T_DIR/series.hashes" <"$T_DIR/series.current" | redis-cli -p "$REDIS_PORT" >/dev/null
check "the series are under older names now" eq "$(dump_series "$B" | grep -cE $' S[0-9a-z]{4}\t')" 0
check "both older names among them" eq "$(dump_series "$B" | grep -cE $' s[0-9a-z]+\t' | awk '{print ($1 > 0)}')$(dump_series "$B" | grep -cE $' S[0-9a-z]{5,}\t' | awk '{print ($1 > 0)}')" 11
check "in as many fields" eq "$(dump_series "$B" | grep -c .)" "$(grep -c . "$T_DIR/series.current")"
check "a customer's windows read from the older form are the same" cmp -s "$T_DIR/explain.current" <(explain_at "$CFG_B" "$C" "$AT")
check "another's too" cmp -s "$T_DIR/explain1.current" <(explain_at "$CFG_B" c0000001 "$AT")
grep -q '"windows"' "$T_DIR/explain.current" || fail "explain shows no windows"
# One more app login for customer C: its apply writes the current form back.
grep "^app-logins|$C|" "$T_DIR/events.txt" | tail -1 | cut -d'|' -f2- |
    sed -E "s/\"event_id\":\"[^\"]*\"/\"event_id\":\"$C-upgrade\"/; s/\"ts\":[0-9]+/\"ts\":$((AT - 60000))/" | produce "$B.app-logins"
start_momentd "$CFG_B" upgrade
check "the new login is read" wait_consumed upgrade 1 60
sleep 1
stop_momentd upgrade
after=$(dump_series "$B" | grep "^$B:{$C} ")
check "its older series fields are gone" eq "$(grep -cE $' (s[0-9a-z]+|S[0-9a-z]{5,})\t' <<<"$after")" 0
check "each is back under its current name" eq "$(grep -cE $' S[0-9a-z]{4}\t' <<<"$after")" "$(grep -c "^$B:{$C} " "$T_DIR/series.current")"
check "the others keep the older names until their next event" ge "$(dump_series "$B" | grep -cE $' (s[0-9a-z]+|S[0-9a-z]{5,})\t')" 1

finish
