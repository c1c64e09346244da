#!/usr/bin/env bash
# PostgreSQL from Debian's packages, on 127.0.0.1:${RUNNEL_TEST_PG_PORT:-15432},
# trust authentication on loopback, data under the cache folder.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
PORT="${RUNNEL_TEST_PG_PORT:-15432}"
# Outside $HOME: the postgres user must be able to reach it when we run as root.
DATA="${RUNNEL_PG_DATA:-/var/tmp/runnel/postgres-$PORT}"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
ready() { "$(bindir)/pg_isready" -h 127.0.0.1 -p "$PORT" -q; }

case "${1:-start}" in
  start)
    if [ -z "$(bindir)" ]; then
      log "installing PostgreSQL from Debian"
      if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
      $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    fi
    if ready; then log "already running on port $PORT"; exit 0; fi
    BIN="$(bindir)"
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA"; chmod 755 "$(dirname "$DATA")"
      [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$DATA" && chmod 700 "$DATA"
      as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$DATA"
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
      -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null
    wait_for 30 ready || { log "did not answer; see $DATA/server.log"; exit 1; }
    log "running on 127.0.0.1:$PORT (user postgres, trust)"
    ;;
  stop)
    [ -f "$DATA/PG_VERSION" ] && as_pg "$(bindir)/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
    log "stopped"
    ;;
  status) ready && echo "postgres: running on $PORT" || { echo "postgres: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
