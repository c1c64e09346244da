#!/usr/bin/env bash
# nats-server with JetStream, built once from the Go module proxy into the
# cache folder (go install), on 127.0.0.1:${RUNNEL_TEST_NATS_PORT:-14222};
# JetStream's files under /var/tmp/runnel, monitoring on port+4000.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
VERSION="${RUNNEL_NATS_VERSION:-v2.15.3}"
PORT="${RUNNEL_TEST_NATS_PORT:-14222}"
MONITOR=$((PORT + 4000))
BIN_DIR="$RUNNEL_CACHE/nats-server-$VERSION"
RUN="${RUNNEL_NATS_DIR:-/var/tmp/runnel/nats-$PORT}"
ready() { curl -sf "http://127.0.0.1:$MONITOR/healthz?js-enabled-only=true" >/dev/null; }

install() {
  [ -x "$BIN_DIR/nats-server" ] && return 0
  command -v go >/dev/null || { log "needs Go to build nats-server (apt-get install golang, or a Go toolchain)"; exit 1; }
  log "building nats-server@$VERSION from the Go module proxy (once, into $BIN_DIR)"
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "github.com/nats-io/nats-server/v2@$VERSION" >&2 \
    || { log "go install of nats-server@$VERSION failed; see the lines above"; exit 1; }
}

case "${1:-start}" in
  start)
    install
    if ready; then log "already running on port $PORT"; exit 0; fi
    mkdir -p "$RUN"
    nohup "$BIN_DIR/nats-server" -a 127.0.0.1 -p "$PORT" -m "$MONITOR" -js -sd "$RUN/jetstream" >"$RUN/server.log" 2>&1 &
    echo $! >"$RUN/pid"
    wait_for 30 ready || { log "did not answer; see $RUN/server.log"; exit 1; }
    log "running on nats://127.0.0.1:$PORT with JetStream"
    ;;
  stop)
    if [ -f "$RUN/pid" ]; then kill "$(cat "$RUN/pid")" 2>/dev/null || true; rm -f "$RUN/pid"; fi
    log "stopped"
    ;;
  status) ready && echo "nats: running on $PORT" || { echo "nats: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
