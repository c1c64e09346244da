#!/usr/bin/env bash
# moto's server (PyPI) on 127.0.0.1:${RUNNEL_TEST_MOTO_PORT:-15000}: an AWS
# emulator for S3 (it enforces S3's multipart rules: parts but the last must be
# at least 5 MiB) and other services. The same venv holds pyarrow, which the
# tests use as an independent Parquet reader.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
. "$(dirname "$0")/_python.sh"
PORT="${RUNNEL_TEST_MOTO_PORT:-15000}"
RUN="${RUNNEL_MOTO_DIR:-/var/tmp/runnel/moto-$PORT}"
# Any HTTP answer means it listens (cheap: not the state dump of /moto-api/data.json).
ready() { curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/"; }

case "${1:-start}" in
  start)
    ensure_python_packages 'moto[server]>=5.1,<6' 'pyarrow>=15' || { log "pip install failed"; exit 1; }
    if ready; then log "already running on port $PORT"; exit 0; fi
    mkdir -p "$RUN"
    nohup "$RUNNEL_VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$RUN/server.log" 2>&1 &
    echo $! >"$RUN/pid"
    wait_for 60 ready || { log "did not answer; see $RUN/server.log"; exit 1; }
    log "running on http://127.0.0.1:$PORT (any access key; python: $RUNNEL_VENV/bin/python)"
    ;;
  stop)
    if [ -f "$RUN/pid" ]; then kill "$(cat "$RUN/pid")" 2>/dev/null || true; rm -f "$RUN/pid"; fi
    log "stopped"
    ;;
  status) ready && echo "moto: running on $PORT" || { echo "moto: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
