#!/usr/bin/env bash
# RabbitMQ from Debian's packages, on 127.0.0.1:${RUNNEL_TEST_RABBITMQ_PORT:-15673}
# (AMQP 0-9-1, user guest/guest), kept lean for a 2-core machine: no plugins
# (no management UI), one Erlang scheduler without busy-waiting, its own node
# name, folders and Erlang cookie under /var/tmp/runnel so it never meets a
# system RabbitMQ. The node's distribution port is the AMQP port + 20000.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
. "$(dirname "$0")/_apt.sh"
PORT="${RUNNEL_TEST_RABBITMQ_PORT:-15673}"
RUN="${RUNNEL_RABBITMQ_DIR:-/var/tmp/runnel/rabbitmq-$PORT}"
NODE="runnel$PORT@localhost"
ready() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && ctl await_startup --timeout 1 >/dev/null 2>&1; }
ctl() { HOME="$RUN" RABBITMQ_NODENAME="$NODE" /usr/lib/rabbitmq/bin/rabbitmqctl -n "$NODE" "$@"; }

case "${1:-start}" in
  start)
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt_install rabbitmq-server
    if ready; then log "already running on port $PORT"; exit 0; fi
    mkdir -p "$RUN/mnesia" "$RUN/log"
    : >"$RUN/enabled_plugins"
    cat >"$RUN/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$PORT
loopback_users = none
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 50MB
log.file.level = warning
CONF
    [ -f "$RUN/.erlang.cookie" ] || { head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$RUN/.erlang.cookie"; chmod 400 "$RUN/.erlang.cookie"; }
    HOME="$RUN" RABBITMQ_NODENAME="$NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$PORT" \
      RABBITMQ_DIST_PORT=$((PORT + 20000)) RABBITMQ_CONFIG_FILE="$RUN/rabbitmq.conf" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$RUN/enabled_plugins" RABBITMQ_MNESIA_BASE="$RUN/mnesia" \
      RABBITMQ_LOG_BASE="$RUN/log" RABBITMQ_PID_FILE="$RUN/pid" \
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none" \
      nohup /usr/lib/rabbitmq/bin/rabbitmq-server >"$RUN/stdout.log" 2>&1 &
    wait_for 90 ready || { log "did not answer; see $RUN/stdout.log and $RUN/log"; exit 1; }
    log "running on amqp://guest:guest@127.0.0.1:$PORT"
    ;;
  stop)
    ctl stop >/dev/null 2>&1 || true
    log "stopped"
    ;;
  status) ready && echo "rabbitmq: running on $PORT" || { echo "rabbitmq: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
