#!/usr/bin/env bash
# apply.lua against the real Redis: a write happens only at the version the
# caller read (so two consumers can never both act on the same state), it
# bumps the version, and a stale caller changes nothing at all.
source "$(dirname "$0")/lib.sh"

K="$(uname_ apply):{c1}"
SHA=$(rcli SCRIPT LOAD "$(cat "$MOMENTD_SOURCE_DIR/src/lua/apply.lua")")
apply() { rcli EVALSHA "$SHA" 2 "$K" "$K:x" 60000 "$@"; }

check "first write at version 0 applies" eq "$(apply 0 S n 100 I s0 5 X m1 "topic
payload")" 1
check "and bumps the version to 1" eq "$(rcli HGET "$K" v)" 1
check "the fields are written" eq "$(rcli HGET "$K" n),$(rcli HGET "$K" s0)" "100,5"
check "the outbox entry goes to the outbox key" eq "$(rcli HGET "$K:x" m1)" "topic
payload"
check "both keys carry the TTL" test "$(rcli PTTL "$K")" -gt 0 -a "$(rcli PTTL "$K:x")" -gt 0

# A second consumer that read version 0 (before the write above) decides on
# stale state: its write must not land, none of it.
check "a write at a stale version is refused" eq "$(apply 0 S n 999 S a:prepay_wallet 0 X m2 "t
p")" 0
check "nothing of it was written" eq "$(rcli HGET "$K" n),$(rcli HEXISTS "$K" a:prepay_wallet),$(rcli HEXISTS "$K:x" m2)" "100,0,0"
check "the version is unchanged" eq "$(rcli HGET "$K" v)" 1

check "the re-read version applies" eq "$(apply 1 D n x I s0 2)" 1
check "HDEL and HINCRBY took effect" eq "$(rcli HEXISTS "$K" n),$(rcli HGET "$K" s0),$(rcli HGET "$K" v)" "0,7,2"

check "\"-\" skips the check (contact-point keys)" eq "$(apply - S k:1:c:x sms)" 1
check "and leaves the version alone" eq "$(rcli HGET "$K" v)" 2

# Consecutive operations of one kind go to Redis as one command: the order
# of the operations still decides (set, deleted, set again; deleted, then
# set), and a run longer than one command takes (600 fields) is all written.
check "mixed runs apply in order" eq "$(apply 2 S f 1 S g 1 D f x S f 3 D g x X m3 o I s0 1 S h 4 D h x)" 1
check "a field set, deleted and set again holds the last value; one set then deleted is gone" \
    eq "$(rcli HGET "$K" f),$(rcli HEXISTS "$K" g),$(rcli HEXISTS "$K" h),$(rcli HGET "$K" s0),$(rcli HGET "$K:x" m3),$(rcli HGET "$K" v)" "3,0,0,8,o,3"
LONG=()
for i in $(seq 1 600); do LONG+=(S "r$i" "$i"); done
check "600 sets in one run apply" eq "$(apply 3 "${LONG[@]}")" 1
check "every one of them written" eq "$(rcli HGET "$K" r1),$(rcli HGET "$K" r300),$(rcli HGET "$K" r600),$(rcli HGET "$K" v)" "1,300,600,4"
LONG=()
for i in $(seq 1 600); do LONG+=(D "r$i" x); done
check "600 deletes in one run apply" eq "$(apply 4 "${LONG[@]}")" 1
check "and every one is gone" eq "$(rcli HEXISTS "$K" r1),$(rcli HEXISTS "$K" r600),$(rcli HGET "$K" v)" "0,0,5"

ERR=$(apply 5 S n 5 Q f v 2>&1 || true)
check "an unknown op is an error, not a silent skip" grep -q "unknown op" <<<"$ERR"
check "and nothing before it was written, the version unchanged" eq "$(rcli HEXISTS "$K" n),$(rcli HGET "$K" v)" "0,5"
ERR=$(apply 5 S n 2>&1 || true)
check "a truncated triple is an error" grep -q "triples" <<<"$ERR"
finish
