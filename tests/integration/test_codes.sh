#!/usr/bin/env bash
# The namespace's short codes against the real Redis: the first process on a
# namespace draws a letter for each topic, series and profile attribute its
# configuration names ("<prefix>:meta", codes.lua), every customer's pieces
# use them, a restart draws none again, a state still under the long codes
# reads the same and is rewritten by the customer's next event, and a meta
# key that is not momentd's is refused with the reason.
source "$(dirname "$0")/lib.sh"

N=$(uname_ codes)
CFG=$(make_config "$N")
START=$((($(date +%s) - 32 * 86400) * 1000))
"$GEN" --customers 50 --seed 5 --days 30 --start "$START" >"$T_DIR/events.txt"
TOTAL=$(grep -c . "$T_DIR/events.txt")
feed "$N" "$T_DIR/events.txt"
start_momentd "$CFG" first
check "all $TOTAL messages are read" wait_consumed first "$TOTAL" 120
sleep 1
stop_momentd first

# The registry: "code:<kind><long code>" = a short code, "codes" the count given.
rcli HGETALL "$N:meta" | paste - - | grep '^code:' | sort >"$T_DIR/codes.1"
GIVEN=$(rcli HGET "$N:meta" codes)
check "the registry gave codes" ge "${GIVEN:-0}" 10
check "one for each name it holds" eq "$(grep -c . "$T_DIR/codes.1")" "$GIVEN"
check "each a letter A-Y, or Z and two" eq "$(cut -f2 "$T_DIR/codes.1" | grep -cvE '^([A-Y]|Z[A-Z]{2})$' || true)" 0
check "none given twice" eq "$(cut -f2 "$T_DIR/codes.1" | sort | uniq -d | grep -c . || true)" 0
check "topics, series and attributes among them" eq "$(cut -f1 "$T_DIR/codes.1" | cut -c6 | sort -u | tr -d '\n')" ast

# short_to_long PREFIX: "<short>\t<kind><long>" for each code of PREFIX's registry.
short_to_long() { rcli HGETALL "$1:meta" | paste - - | awk -F'\t' '$1 ~ /^code:/ && $2 != "" {print $2 "\t" substr($1, 6)}'; }
short_to_long "$N" >"$T_DIR/short"
# Every customer's pieces name what they hold by a letter.
entries() { # entries PREFIX FIELD_RE SEP: each entry of those fields of every customer hash
    rcli --scan --pattern "$1:{*}" | grep -v ':x$' | awk '{print "ECHO @@" $0; print "HGETALL " $0}' | rcli |
        awk -v re="$2" -v sep="$3" '/^@@/ {n = 0; next} {if (n++ % 2 == 0) f = $0; else if (f ~ re) {m = split($0, e, sep); for (i = 1; i <= m; i++) print e[i]}}'
}
entries "$N" '^H[0-9]*$' ';' >"$T_DIR/h.entries"
entries "$N" '^W[0-9]*$' ';' >"$T_DIR/w.entries"
check "customers have series pieces" ge "$(grep -c . "$T_DIR/h.entries")" 50
check "every series under its letter" eq "$(grep -cvE '^([A-Y]|Z[A-Z]{2})[0-9a-z]' "$T_DIR/h.entries" || true)" 0
check "every watermark under its topic's letter" eq "$(grep -cvE '^([A-Y]|Z[A-Z]{2})[0-9a-z]+:[0-9a-z]+$' "$T_DIR/w.entries" || true)" 0
PAY=$(awk -F'\t' '$2 ~ /^t/' "$T_DIR/short" | head -1 | cut -f1)
check "the payments topic's letter is the first given" eq "$PAY" A

# A restart draws nothing again, and reads what it wrote.
C=$(grep '^payments|' "$T_DIR/events.txt" | tail -1 | cut -d'|' -f2)
AT=$(($(date +%s) * 1000))
explain_at "$CFG" "$C" "$AT" | jq -S '{windows, profile, balance, balance_at, tags}' >"$T_DIR/explain.short"
check "explain reads the customer's windows" ge "$(jq '[.windows[] | select(. > 0)] | length' "$T_DIR/explain.short")" 1
check "and its profile" ge "$(jq '.profile | length' "$T_DIR/explain.short")" 1
check "a reader draws nothing new" eq "$(rcli HGET "$N:meta" codes)" "$GIVEN"

# The customer's pieces put back under the long codes, as an earlier
# version wrote them: read the same.
K="$N:{$C}"
for f in $(rcli HKEYS "$K" | grep -E '^(H[0-9]*|W[0-9]*|P[0-9]*)$'); do
    v=$(rcli HGET "$K" "$f")
    sep=';'
    [ "${f:0:1}" = P ] && sep=$'\037'
    long=$(awk -v sep="$sep" -v v="$v" -F'\t' '{map[$1] = substr($2, 2)}
        END {m = split(v, e, sep); out = ""
             for (i = 1; i <= m; i++) { c = substr(e[i], 1, 1) == "Z" ? substr(e[i], 1, 3) : substr(e[i], 1, 1)
                                        out = out (i > 1 ? sep : "") map[c] substr(e[i], length(c) + 1) }
             printf "%s", out}' "$T_DIR/short")
    rcli HSET "$K" "$f" "$long" >/dev/null
done
check "the customer is under long codes now" eq "$(rcli HGET "$K" H | cut -c1 | grep -c '[A-Z]' || true)" 0
explain_at "$CFG" "$C" "$AT" | jq -S '{windows, profile, balance, balance_at, tags}' >"$T_DIR/explain.long"
check "and reads the same" cmp -s "$T_DIR/explain.short" "$T_DIR/explain.long"
diff "$T_DIR/explain.short" "$T_DIR/explain.long" | head -5 >&2 || true
# Its next event writes its pieces under the letters again.
grep "^payments|$C|" "$T_DIR/events.txt" | tail -1 | cut -d'|' -f2- |
    sed -E "s/\"event_id\":\"[^\"]*\"/\"event_id\":\"$C-again\"/; s/\"ts\":[0-9]+/\"ts\":$((AT - 60000))/" | produce "$N.payments"
start_momentd "$CFG" second
check "the new payment is read" wait_consumed second 1 60
sleep 1
stop_momentd second
check "a restart draws nothing again" eq "$(rcli HGET "$N:meta" codes)" "$GIVEN"
check "the customer's series are under letters again" eq "$(rcli HGET "$K" H | tr ';' '\n' | grep -cvE '^([A-Y]|Z[A-Z]{2})' || true)" 0
check "and its watermarks" eq "$(rcli HGET "$K" W | tr ';' '\n' | grep -cvE '^([A-Y]|Z[A-Z]{2})' || true)" 0

# A meta key that is not momentd's hash, or holds a code that is not one:
# refused with the reason, nothing written.
B=$(uname_ codesbad)
CFG_B=$(make_config "$B")
rcli SET "$B:meta" "not a hash" >/dev/null
OUT=$("$MOMENTD_BIN" explain -c "$CFG_B" someone 2>&1 || true)
check "a meta key of another type is refused" grep -q "WRONGTYPE $B:meta is a string, not momentd's hash" <<<"$OUT"
rcli DEL "$B:meta" >/dev/null
"$MOMENTD_BIN" explain -c "$CFG_B" someone >/dev/null
first=$(rcli HKEYS "$B:meta" | grep '^code:' | head -1)
rcli HSET "$B:meta" "$first" "aa" >/dev/null
OUT=$("$MOMENTD_BIN" explain -c "$CFG_B" someone 2>&1 || true)
check "a code that is not a letter is refused" grep -q "not a short code" <<<"$OUT"
check "nothing was written for the customer" eq "$(rcli EXISTS "$B:{someone}")" 0
finish
