#!/usr/bin/env bash
# Redis from Debian's packages, on 127.0.0.1:${RUNNEL_TEST_REDIS_PORT:-16379},
# in memory only (no RDB snapshots or AOF), no password (loopback).
set -euo pipefail
. "$(dirname "$0")/_env.sh"
. "$(dirname "$0")/_apt.sh"
PORT="${RUNNEL_TEST_REDIS_PORT:-16379}"
RUN="${RUNNEL_REDIS_DIR:-/var/tmp/runnel/redis-$PORT}"
ready() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }

case "${1:-start}" in
  start)
    command -v redis-server >/dev/null || apt_install redis-server
    if ready; then log "already running on port $PORT"; exit 0; fi
    mkdir -p "$RUN"
    redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --dir "$RUN" \
      --daemonize yes --pidfile "$RUN/pid" --logfile "$RUN/server.log"
    wait_for 20 ready || { log "did not answer; see $RUN/server.log"; exit 1; }
    log "running on redis://127.0.0.1:$PORT"
    ;;
  stop)
    redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    log "stopped"
    ;;
  status) ready && echo "redis: running on $PORT" || { echo "redis: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
