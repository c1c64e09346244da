#!/usr/bin/env bash
# Eclipse Mosquitto (MQTT 3.1.1 and 5) from Debian's packages, on
# 127.0.0.1:${RUNNEL_TEST_MQTT_PORT:-11883}, anonymous clients allowed, sessions
# and queued messages in memory (persistence off: tests make fresh sessions).
# QoS 1/2 messages in flight per client are not capped at mosquitto's 20, so a
# source that acknowledges at checkpoints is bounded by MQTT 5's receive maximum.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
. "$(dirname "$0")/_apt.sh"
PORT="${RUNNEL_TEST_MQTT_PORT:-11883}"
RUN="${RUNNEL_MQTT_DIR:-/var/tmp/runnel/mosquitto-$PORT}"
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

case "${1:-start}" in
  start)
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
    if ready; then log "already running on port $PORT"; exit 0; fi
    mkdir -p "$RUN"
    cat >"$RUN/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 1000000
max_packet_size 1048576
log_dest file $RUN/server.log
log_type error
log_type warning
CONF
    # mosquitto drops root for the 'mosquitto' user, which must be able to write the log.
    [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1 && chown -R mosquitto "$RUN"
    nohup /usr/sbin/mosquitto -c "$RUN/mosquitto.conf" >"$RUN/stdout.log" 2>&1 &
    echo $! >"$RUN/pid"
    wait_for 20 ready || { log "did not answer; see $RUN/server.log and $RUN/stdout.log"; exit 1; }
    log "running on mqtt://127.0.0.1:$PORT (anonymous)"
    ;;
  stop)
    if [ -f "$RUN/pid" ]; then kill "$(cat "$RUN/pid")" 2>/dev/null || true; rm -f "$RUN/pid"; fi
    log "stopped"
    ;;
  status) ready && echo "mosquitto: running on $PORT" || { echo "mosquitto: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
