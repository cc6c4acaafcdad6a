#!/usr/bin/env bash
# momentd load-profiles against the real Redis: profiles from a file land in
# the customers' state (explain shows them, the static model uses them), bad
# lines are reported with their number and skipped, and a later event
# decides with the loaded profile.
source "$(dirname "$0")/lib.sh"

N=$(uname_ lp)
CFG=$(make_config "$N")
cat >"$T_DIR/profiles.txt" <<'P'
lp-1|{"customer_type":"resident","segment":"revolver","age_band":"25-34"}
lp-2|{"customer_type":"business","province":"Beijing"}
not a profile line
lp-3|[1,2]
lp-4|{"customer_type":"resident","contact_point":"+8613900000000"}
P
"$MOMENTD_BIN" load-profiles -c "$CFG" "$T_DIR/profiles.txt" >"$T_DIR/out.txt" 2>"$T_DIR/err.txt" && RC=0 || RC=$?
check "refused lines make the exit status 2" eq "$RC" 2
check "the good ones are loaded" grep -q "loaded 3 profiles, 2 lines refused" "$T_DIR/out.txt"
check "line 3 is named" grep -q "profiles.txt:3: expected CUSTOMER_ID|{...}" "$T_DIR/err.txt"
check "line 4 is named" grep -q "profiles.txt:4: profile is not a JSON object" "$T_DIR/err.txt"
X=$("$MOMENTD_BIN" explain -c "$CFG" lp-1 --json)
check "explain shows the loaded profile's tag" grep -q '"customer_type:resident"' <<<"$X"
check "with the attributes the static model reads" eq "$(jq -r '.profile | "\(.segment),\(.age_band)"' <<<"$X")" "revolver,25-34"
check "lp-2's profile is there" eq "$("$MOMENTD_BIN" explain -c "$CFG" lp-2 --json | jq -r .profile.province)" Beijing
check "lp-4's contact point too" eq "$("$MOMENTD_BIN" explain -c "$CFG" lp-4 --json | jq -r .profile.contact_point)" +8613900000000
check "nothing written for the refused lines" eq "$(rcli EXISTS "$N:{lp-3}")" 0
# As stored: the attributes the rules read packed under the letters the
# namespace gave their long codes (segment vlye, age_band icbu,
# customer_type 41r6), contact_point a field.
code() { rcli HGET "$N:meta" "code:a$1"; }
check "each attribute the rules read has a letter" eq "$(code 41r6)$(code vlye)$(code icbu)" "$(code 41r6 | grep -E '^[A-Y]$')$(code vlye | grep -E '^[A-Y]$')$(code icbu | grep -E '^[A-Y]$')"
check "the attributes the rules read are packed" eq "$(rcli HGET "$N:{lp-1}" P | tr '\037' '|')" "$(code 41r6)resident|$(code vlye)revolver|$(code icbu)25-34"
check "none of them is a field of its own" eq "$(rcli HKEYS "$N:{lp-1}" | grep -c '^p:' || true)" 0
check "contact_point is" eq "$(rcli HGET "$N:{lp-4}" p:contact_point)" +8613900000000
echo 'lp-1|{"customer_type":"business"}' | "$MOMENTD_BIN" load-profiles -c "$CFG" - >/dev/null
check "loading again replaces the profile" eq "$("$MOMENTD_BIN" explain -c "$CFG" lp-1 --json | jq -c .profile)" '{"customer_type":"business"}'
check "in one piece" eq "$(rcli HGET "$N:{lp-1}" P)" "$(code 41r6)business"
finish
