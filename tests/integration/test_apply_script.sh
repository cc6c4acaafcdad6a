#!/usr/bin/env bash
# apply.lua against the real Redis: a write happens only at the version the
# caller read (so two consumers can never both act on the same state), it
# bumps the version, and a stale caller changes nothing at all.
source "$(dirname "$0")/lib.sh"

K="$(uname_ apply):{c1}"
SHA=$(rcli SCRIPT LOAD "$(cat "$MOMENTD_SOURCE_DIR/src/lua/apply.lua")")
# apply VERSION OP FIELD VALUE...: every operation as a triple (no leading runs).
# The version written next is the one read plus one (or "-"), as momentd sends it.
next_of() { if [ "$1" = - ]; then echo -; else echo $(($1 + 1)); fi; }
apply() { local v=$1; shift; rcli EVALSHA "$SHA" 2 "$K" "$K:x" 60000 "$v" "$(next_of "$v")" 0 0 0 "$@"; }
# runs VERSION ND NS NX ARGS...: leading runs of deletes, sets and outbox
# sets as plain arguments, then triples, the way momentd sends them.
runs() { local v=$1; shift; rcli EVALSHA "$SHA" 2 "$K" "$K:x" 60000 "$v" "$(next_of "$v")" "$@"; }

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

# The runs momentd sends: deletes, then sets (the version's +1 with them),
# then outbox sets, then triples for what keeps no such order; a run longer
# than one command takes is split, and none of it is lost.
rcli HSET "$K" d1 1 d2 2 >/dev/null
check "runs and triples apply" eq "$(runs 5 2 2 1 d1 d2 s1 a s2 b m4 "t
q" I s0 3 S s1 c)" 1
check "the deletes, sets, outbox set and triples took effect in order" \
    eq "$(rcli HEXISTS "$K" d1),$(rcli HEXISTS "$K" d2),$(rcli HGET "$K" s1),$(rcli HGET "$K" s2),$(rcli HGET "$K" s0),$(rcli HGET "$K:x" m4 | head -1),$(rcli HGET "$K" v)" "0,0,c,b,11,t,6"
LONG=()
for i in $(seq 1 700); do LONG+=("w$i" "$i"); done
check "a run of 700 sets applies" eq "$(runs 6 0 700 0 "${LONG[@]}")" 1
check "every one written, the version with them" eq "$(rcli HGET "$K" w1),$(rcli HGET "$K" w255),$(rcli HGET "$K" w256),$(rcli HGET "$K" w700),$(rcli HGET "$K" v)" "1,255,256,700,7"
LONG=()
for i in $(seq 1 700); do LONG+=("w$i"); done
check "a run of 700 deletes applies, and no set still bumps the version" eq "$(runs 7 700 0 0 "${LONG[@]}")" 1
check "every one gone" eq "$(rcli HEXISTS "$K" w1),$(rcli HEXISTS "$K" w512),$(rcli HEXISTS "$K" w700),$(rcli HGET "$K" v)" "0,0,0,8"
ERR=$(runs 8 1 0 0 2>&1 || true)
check "runs longer than the arguments are an error" grep -q "triples after the runs" <<<"$ERR"
ERR=$(runs 8 x 0 0 f 2>&1 || true)
check "a count that is no number is an error" grep -q "must count" <<<"$ERR"
check "and neither wrote anything" eq "$(rcli HGET "$K" v)" 8
check "a stale version writes none of the runs" eq "$(runs 7 0 1 1 s1 z m5 o),$(rcli HGET "$K" s1),$(rcli HEXISTS "$K:x" m5)" "0,c,0"

# Without the outbox key (momentd leaves it out when it knows the outbox is
# empty and stays so): the state applies; an outbox write is refused.
rcli SET "$K:x" not-a-hash >/dev/null
check "without the outbox key the state applies (and the outbox is not touched)" \
    eq "$(rcli EVALSHA "$SHA" 1 "$K" 60000 8 9 0 1 0 s3 d),$(rcli HGET "$K" s3),$(rcli HGET "$K" v),$(rcli GET "$K:x")" "1,d,9,not-a-hash"
rcli DEL "$K:x" >/dev/null
ERR=$(rcli EVALSHA "$SHA" 1 "$K" 60000 9 10 0 0 1 m6 o 2>&1 || true)
check "an outbox write without the outbox key is an error" grep -q "without the outbox key" <<<"$ERR"
check "and wrote nothing" eq "$(rcli HGET "$K" v)" 9

# An empty TTL leaves the key's expiry as it is (momentd knows it set one
# recently); never for an outbox or a contact point, which are refused.
rcli PEXPIRE "$K" 5000 >/dev/null
check "an empty TTL applies and leaves the expiry alone" \
    eq "$(rcli EVALSHA "$SHA" 1 "$K" "" 9 10 0 1 0 s4 e),$(rcli HGET "$K" s4),$(rcli HGET "$K" v)" "1,e,10"
check "the key still expires within the 5 s set before" test "$(rcli PTTL "$K")" -gt 0 -a "$(rcli PTTL "$K")" -le 5000
ERR=$(rcli EVALSHA "$SHA" 2 "$K" "$K:x" "" 10 11 0 1 0 s4 f 2>&1 || true)
check "an empty TTL with the outbox key is an error" grep -q "must have its TTL set" <<<"$ERR"
ERR=$(rcli EVALSHA "$SHA" 1 "$K" "" - - 0 1 0 s4 f 2>&1 || true)
check "an empty TTL for a contact point (no version) is an error" grep -q "must have its TTL set" <<<"$ERR"
check "and neither wrote anything" eq "$(rcli HGET "$K" s4),$(rcli HGET "$K" v)" "e,10"
rcli PEXPIRE "$K" 60000 >/dev/null

# The version written is the one the caller sends (its cache holds it).
ERR=$(rcli EVALSHA "$SHA" 1 "$K" 60000 10 "" 0 1 0 s5 g 2>&1 || true)
check "an apply without the version it writes is an error" grep -q "ARGV\[3\] must be the version this apply writes" <<<"$ERR"
check "and wrote nothing" eq "$(rcli HEXISTS "$K" s5),$(rcli HGET "$K" v)" "0,10"
ERR=$(apply 10 S n 5 Q f v 2>&1 || true)
check "an unknown op is an error, not a silent skip" grep -q "unknown op" <<<"$ERR"
check "and nothing before it was written, the version unchanged" eq "$(rcli HEXISTS "$K" n),$(rcli HGET "$K" v)" "0,10"
ERR=$(apply 10 S n 2>&1 || true)
check "a truncated triple is an error" grep -q "triples" <<<"$ERR"
finish
