#!/usr/bin/env bash
# An Iceberg REST catalog on 127.0.0.1:${RUNNEL_TEST_ICEBERG_PORT:-18181} for the
# lakehouse sink tests: pyiceberg's SQL catalog (SQLite) behind the REST
# endpoints a writer uses (scripts/services/iceberg_rest.py). The same venv gets
# the tables' independent readers: deltalake (delta-rs), pyiceberg, and DuckDB
# 1.5.5 with its delta/iceberg/avro/httpfs extensions from PyPI wheels (DuckDB's
# own extension repository is not reachable from every machine).
set -euo pipefail
. "$(dirname "$0")/_env.sh"
. "$(dirname "$0")/_python.sh"
PORT="${RUNNEL_TEST_ICEBERG_PORT:-18181}"
RUN="${RUNNEL_ICEBERG_DIR:-/var/tmp/runnel/iceberg-rest-$PORT}"
S3="${RUNNEL_TEST_S3:-http://127.0.0.1:15000}"
ready() { curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/v1/config"; }

case "${1:-start}" in
  start)
    ensure_python_packages 'pyarrow>=15' 'deltalake>=1.1,<2' 'pyiceberg[sql-sqlite,pyarrow]>=0.10,<0.13' 'duckdb==1.5.5' \
      'duckdb-extension-delta==1.5.5' 'duckdb-extension-iceberg==1.5.5' 'duckdb-extension-avro==1.5.5' 'duckdb-extension-httpfs==1.5.5' \
      || { log "pip install failed"; exit 1; }
    if ready; then log "already running on port $PORT"; exit 0; fi
    mkdir -p "$RUN"
    nohup "$RUNNEL_VENV/bin/python" "$(dirname "$0")/iceberg_rest.py" "$PORT" "$RUN/state" "$S3" >"$RUN/server.log" 2>&1 &
    echo $! >"$RUN/pid"
    wait_for 60 ready || { log "did not answer; see $RUN/server.log"; exit 1; }
    log "running on http://127.0.0.1:$PORT"
    ;;
  stop)
    if [ -f "$RUN/pid" ]; then kill "$(cat "$RUN/pid")" 2>/dev/null || true; rm -f "$RUN/pid"; fi
    log "stopped"
    ;;
  status) ready && echo "iceberg-rest: running on $PORT" || { echo "iceberg-rest: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
