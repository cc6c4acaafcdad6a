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
# The sandbox: no capabilities, no core dumps, a syscall allow list, private
# everything; scored by systemd's own analysis (offline: nothing is started).
for d in 'CapabilityBoundingSet=$' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' \
    'ProtectKernelLogs=yes' 'ProtectProc=invisible' 'RestrictNamespaces=yes' 'SystemCallFilter=@system-service' \
    'MemoryDenyWriteExecute=yes' 'LockPersonality=yes' 'UMask=0077' 'LimitCORE=0' 'PrivateDevices=yes' 'RestrictSUIDSGID=yes'; do
    check "the unit sets ${d%\$}" grep -q "^$d" "$unit"
done
score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
check "systemd-analyze security scores the unit at most 2.0 (got ${score:-nothing})" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'
# The Release binary (what the Dockerfile and the benchmarks ship), read with
# readelf: position-independent, full RELRO with immediate binding, stack
# protector, fortified libc calls, and CET branch targets in momentd's own
# code (Debian 12's C runtime objects carry no CET property, so the linker
# cannot mark the whole binary).
rel=${MOMENTD_RELEASE_BIN:-}
if [ -z "$rel" ] || [ ! -x "$rel" ]; then
    check "the Release binary is there to check (scripts/test sets MOMENTD_RELEASE_BIN)" false
else
    check "the Release binary is a PIE" grep -q 'DYN (Position-Independent' <<<"$(readelf -hW "$rel")"
    check "with full RELRO" grep -q GNU_RELRO <<<"$(readelf -lW "$rel")"
    check "and immediate binding (BIND_NOW)" grep -q BIND_NOW <<<"$(readelf -dW "$rel")"
    check "built with the stack protector" grep -q __stack_chk_fail <<<"$(readelf -sW --dyn-syms "$rel")"
    check "and FORTIFY_SOURCE" grep -q '__snprintf_chk' <<<"$(readelf -sW --dyn-syms "$rel")"
    check "and CET branch targets (endbr64)" test "$(objdump -d "$rel" | grep -c endbr64)" -gt 100
    check "with a non-executable stack" grep -q 'GNU_STACK.*RW ' <<<"$(readelf -lW "$rel")"
fi
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
# The Dockerfile's build stage sees only what it COPYs: CMake must
# configure from exactly that (a source it lacks broke the image once).
ctx=$(mktemp -d)
for d in $(sed -n 's/^COPY \([^ -][^ ]*\) .*/\1/p' "$src/Dockerfile"); do
    mkdir -p "$ctx/$(dirname "$d")" && cp -r "$src/$d" "$ctx/$d"
done
check "the Dockerfile's build context configures" cmake -S "$ctx" -B "$ctx/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOMENTD_BUILD_TESTS=OFF
rm -rf "$ctx"
# docker-compose.yml: valid for Compose, with the Redis settings the README
# recommends (no Docker needed to check either).
compose=$(cd "$src" && docker-compose config 2>&1)
check "docker-compose.yml passes docker-compose config" test $? -eq 0
check "its Redis persists with AOF everysec and rare rewrites" grep -q 'auto-aof-rewrite-percentage' <<<"$compose"
check "and keeps fields up to 128 bytes in compact hashes" grep -q 'hash-max-listpack-value' <<<"$compose"
cluster=$(cd "$src" && docker-compose --profile cluster config 2>&1)
check "its cluster profile passes docker-compose config" test $? -eq 0
check "with six cluster nodes" test "$(grep -c "cluster-enabled" <<<"$cluster")" -eq 6
check "and a momentd given the cluster's seeds" grep -q 'MOMENTD_REDIS_URL: redis+cluster://redis-node-1:6379' <<<"$cluster"
echo "[test_install] $CHECKS checks, $FAILS failed"
[ "$CHECKS" -gt 0 ] && [ "$FAILS" -eq 0 ]
