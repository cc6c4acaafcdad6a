#!/usr/bin/env bash
# What `cmake --install` lays down, checked in a staging directory: the
# binary, the default configuration (which must load), the Redis scripts,
# the man page (clean under groff's warnings, and naming every command and
# signal the binary knows) and the systemd unit (whose paths must be the
# installed ones).
#   test_install.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
CHECKS=0 FAILS=0
check() {
    local what=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then echo "[test_install] ok: $what"; else echo "[test_install] FAIL: $what" >&2; FAILS=$((FAILS + 1)); fi
}
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }

check "cmake --install succeeds" env DESTDIR="$stage" cmake --install "$build"
prefix=$(cache CMAKE_INSTALL_PREFIX)
unit=$stage$prefix/lib/systemd/system/momentd.service
man=$stage$prefix/share/man/man1/momentd.1
check "the binary is installed" test -x "$stage$prefix/bin/momentd"
check "the Redis scripts are installed" test -f "$stage$prefix/share/momentd/lua/apply.lua"
check "the man page is installed" test -f "$man"
check "the systemd unit is installed" test -f "$unit"
start=$(sed -n 's/^ExecStart=//p' "$unit")
read -r bin _ _ conf <<<"$start"
check "the unit starts the installed binary ($bin)" test -x "$stage$bin"
check "with the installed configuration ($conf)" test -f "$stage$conf"
check "which loads" "$stage$bin" check -c "$stage$conf"
check "the unit reloads with SIGHUP" grep -q '^ExecReload=.*kill -HUP \$MAINPID' "$unit"
check "and stops within momentd's own 30 s bound plus margin" grep -q '^TimeoutStopSec=40' "$unit"
check "the man page renders without a groff warning" test -z "$(groff -man -ww -z "$man" 2>&1)"
text=$(groff -man -Tascii -P-cbou "$man" 2>/dev/null)
commands=$(sed -n '/^COMMANDS/,/^SIGNALS/p' <<<"$text")
for c in $("$stage$bin" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p'); do
    check "the man page's COMMANDS has an entry for '$c'" grep -qE "^ +$c( |$)" <<<"$commands"
done
for s in SIGTERM SIGINT SIGHUP; do check "the man page documents $s" grep -q "$s" "$man"; done
# The environment overrides as --help lists them from the configuration table.
envs=$("$stage$bin" --help | sed -n 's/^  \(MOMENTD_[A-Z_]*\) .*/\1/p')
check "--help lists the environment overrides" test "$(wc -w <<<"$envs")" -ge 3
for v in $envs; do
    check "the man page documents $v" grep -q "$v" "$man"
done
# docker-compose.yml: valid for Compose, with the Redis settings the README
# recommends (no Docker needed to check either).
compose=$(cd "$src" && docker-compose config 2>&1)
check "docker-compose.yml passes docker-compose config" test $? -eq 0
check "its Redis persists with AOF everysec and rare rewrites" grep -q 'auto-aof-rewrite-percentage' <<<"$compose"
echo "[test_install] $CHECKS checks, $FAILS failed"
[ "$CHECKS" -gt 0 ] && [ "$FAILS" -eq 0 ]
