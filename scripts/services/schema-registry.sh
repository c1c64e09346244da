#!/usr/bin/env bash
# A schema registry with the Confluent REST API on
# 127.0.0.1:${RUNNEL_TEST_SCHEMA_REGISTRY_PORT:-18081}, requiring HTTP basic
# auth (user runnel / runnel-registry-secret). It is franz-go's srfake
# (github.com/twmb/franz-go/pkg/sr, from the Go module proxy): an in-memory
# implementation of the Confluent API (subjects, versions, ids, references,
# compatibility config) written independently of Runnel, built once into the
# cache folder and served by a 20-line main. Starts in milliseconds in ~10 MB.
# The shared venv gets confluent-kafka with its Avro (fastavro) and Protobuf
# serializers: the independent client the format tests check Runnel against.
# Not chosen: Karapace (not on PyPI), Apicurio Registry (its jars are not all on
# Maven Central: only its POMs), Confluent's own (not on Maven Central).
# State is in memory: a restart empties it (tests use fresh subjects).
set -euo pipefail
. "$(dirname "$0")/_env.sh"
. "$(dirname "$0")/_python.sh"
PORT="${RUNNEL_TEST_SCHEMA_REGISTRY_PORT:-18081}"
USER_NAME=runnel
PASSWORD=runnel-registry-secret
SR_VERSION=v1.8.0
HOME_DIR="$RUNNEL_CACHE/schema-registry-srfake-$SR_VERSION"
BIN="$HOME_DIR/schema-registry"
RUN="${RUNNEL_SCHEMA_REGISTRY_DIR:-/var/tmp/runnel/schema-registry-$PORT}"
PIDFILE="$RUN/pid"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
ready() { curl -sf -o /dev/null --max-time 2 -u "$USER_NAME:$PASSWORD" "http://127.0.0.1:$PORT/subjects"; }

install() {
  [ -x "$BIN" ] && return 0
  command -v go >/dev/null || { log "needs Go to build the registry (apt-get install golang, or a Go toolchain on PATH)"; exit 1; }
  log "building github.com/twmb/franz-go/pkg/sr/srfake $SR_VERSION (once, into $HOME_DIR)"
  mkdir -p "$HOME_DIR/src"
  cat > "$HOME_DIR/src/go.mod" <<MOD
module runnel.local/schema-registry

go 1.22

require github.com/twmb/franz-go/pkg/sr $SR_VERSION
MOD
  cat > "$HOME_DIR/src/main.go" <<'GO'
// Serves franz-go's in-memory Confluent schema registry on a loopback port, with basic auth.
package main

import (
	"encoding/base64"
	"flag"
	"log"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address to serve on")
	user := flag.String("user", "", "basic auth user (empty: no auth)")
	password := flag.String("password", "", "basic auth password")
	flag.Parse()
	var opts []srfake.Option
	if *user != "" {
		opts = append(opts, srfake.WithAuth("Basic "+base64.StdEncoding.EncodeToString([]byte(*user+":"+*password))))
	}
	registry := srfake.NewRegistry(opts...)
	log.Printf("schema registry on http://%s", *listen)
	log.Fatal(http.ListenAndServe(*listen, registry.Handler()))
}
GO
  (cd "$HOME_DIR/src" && GOFLAGS=-mod=mod go mod tidy >&2 && CGO_ENABLED=0 go build -o "$BIN" .) \
    || { log "building the registry failed; see the lines above"; exit 1; }
}

case "${1:-start}" in
  start)
    install
    # The tests' independent client: Confluent's Python serializers with fastavro and protobuf.
    ensure_python_packages 'confluent-kafka[avro,protobuf,schemaregistry]>=2.6,<3' || { log "pip install failed"; exit 1; }
    if running && ready; then log "already running on 127.0.0.1:$PORT"; exit 0; fi
    if ready; then log "port $PORT already serves a registry (not started by this script)"; exit 0; fi
    mkdir -p "$RUN"
    nohup "$BIN" -listen "127.0.0.1:$PORT" -user "$USER_NAME" -password "$PASSWORD" >"$RUN/server.log" 2>&1 &
    echo $! >"$PIDFILE"
    wait_for 30 ready || { log "did not answer; see $RUN/server.log"; exit 1; }
    log "running on http://127.0.0.1:$PORT (basic auth $USER_NAME / $PASSWORD)"
    ;;
  stop)
    if running; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; fi
    rm -f "$PIDFILE"
    log "stopped"
    ;;
  status) ready && echo "schema-registry: running on $PORT" || { echo "schema-registry: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
