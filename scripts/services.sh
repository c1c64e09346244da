#!/usr/bin/env bash
# Starts or stops the services the tests talk to (real PostgreSQL, Kafka, S3 and
# Kinesis emulators, MQTT, NATS, RabbitMQ, Redis...). Each lives in scripts/services/<name>.sh with the verbs
# start|stop|status; start installs what is missing (once, into the cache
# folder), starts the service on loopback, waits until it answers, and is a
# no-op when it already runs.
#   scripts/services.sh start            all services
#   scripts/services.sh stop kafka       one service
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
verb="${1:-start}"
shift || true
if [ "$#" -eq 0 ]; then
  set -- $(ls "$here/services" | grep -v '^_' | sed -n 's/\.sh$//p')
fi
status=0
for name in "$@"; do
  script="$here/services/$name.sh"
  if [ ! -x "$script" ]; then echo "no service '$name' (scripts/services/ has: $(ls "$here/services" | sed 's/\.sh$//' | tr '\n' ' '))" >&2; exit 2; fi
  if ! "$script" "$verb"; then
    echo "service '$name' failed to $verb; see the lines above, or run scripts/services/$name.sh $verb alone" >&2
    status=1
  fi
done
exit $status
