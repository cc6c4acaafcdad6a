#!/usr/bin/env bash
# services.sh start|stop: the real Kafka broker and Redis shared by the
# integration tests (a ctest fixture: started once before them, stopped after).
set -euo pipefail
root=${MOMENTD_SOURCE_DIR:?}
dir=${MOMENTD_IT_DIR:?}
case "${1:-}" in
    start)
        mkdir -p "$dir"
        # A stale broker or Redis from an interrupted run would hold the ports.
        "$root/scripts/kafka-local" stop "$dir/kafka" || true
        "$root/scripts/redis-local" stop "$dir/redis" || true
        rm -rf "$dir/kafka" "$dir/redis"
        # Messages up to 16 MB, so that test_hostile can send a 10 MB one
        # that the broker accepts and momentd must dead-letter.
        KAFKA_EXTRA_PROPS="message.max.bytes=16777216" "$root/scripts/kafka-local" start "${MOMENTD_IT_KAFKA_PORT:?}" "$dir/kafka"
        "$root/scripts/redis-local" start "${MOMENTD_IT_REDIS_PORT:?}" "$dir/redis"
        ;;
    stop)
        # Any momentd a failed test left behind goes first.
        # (pid files are <dir>/<test>/<instance>/momentd.pid)
        for f in "$dir"/*/*/momentd.pid; do
            [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
        done
        "$root/scripts/kafka-local" stop "$dir/kafka"
        "$root/scripts/redis-local" stop "$dir/redis"
        ;;
    *) echo "usage: services.sh start|stop" >&2; exit 2 ;;
esac
