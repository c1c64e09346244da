#!/usr/bin/env bash
# kinesalite (npm, pure JavaScript) on 127.0.0.1:${RUNNEL_TEST_KINESIS_PORT:-14567}:
# a Kinesis emulator, in memory. Chosen over moto's Kinesis, which reshards
# wrongly (after a split or UpdateShardCount new records still land on the
# closed parent shard, and a closed shard never ends), so resharding could not
# be tested against it. Resharding delays are set to 0 so tests need not wait,
# and the account shard limit is lifted (tests make many small streams).
set -euo pipefail
. "$(dirname "$0")/_env.sh"
VERSION="${RUNNEL_KINESALITE_VERSION:-3.3.3}"
PORT="${RUNNEL_TEST_KINESIS_PORT:-14567}"
HOME_DIR="$RUNNEL_CACHE/kinesalite-$VERSION"
RUN="${RUNNEL_KINESIS_DIR:-/var/tmp/runnel/kinesis-$PORT}"
# Any answer from the port means it listens (an unsigned GET gets an error document).
ready() { curl -s -o /dev/null "http://127.0.0.1:$PORT/"; }

install() {
  [ -f "$HOME_DIR/node_modules/kinesalite/cli.js" ] && return 0
  command -v node >/dev/null || { log "needs Node.js to run kinesalite (apt-get install nodejs npm)"; exit 1; }
  log "installing kinesalite@$VERSION (once, into $HOME_DIR)"
  mkdir -p "$HOME_DIR"
  npm install --prefix "$HOME_DIR" --no-audit --no-fund --silent "kinesalite@$VERSION" >&2 \
    || { log "npm could not install kinesalite@$VERSION; see the lines above"; exit 1; }
}

case "${1:-start}" in
  start)
    install
    if ready; then log "already running on port $PORT"; exit 0; fi
    mkdir -p "$RUN"
    nohup node "$HOME_DIR/node_modules/kinesalite/cli.js" --port "$PORT" --host 127.0.0.1 \
      --createStreamMs 0 --deleteStreamMs 0 --updateStreamMs 0 --shardLimit 100000 >"$RUN/server.log" 2>&1 &
    echo $! >"$RUN/pid"
    wait_for 30 ready || { log "did not answer; see $RUN/server.log"; exit 1; }
    log "running on http://127.0.0.1:$PORT (any access key)"
    ;;
  stop)
    if [ -f "$RUN/pid" ]; then kill "$(cat "$RUN/pid")" 2>/dev/null || true; rm -f "$RUN/pid"; fi
    log "stopped"
    ;;
  status) ready && echo "kinesis: running on $PORT" || { echo "kinesis: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
