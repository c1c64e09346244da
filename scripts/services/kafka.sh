#!/usr/bin/env bash
# Apache Kafka 3.9 in KRaft mode (one process as broker and controller) from
# its Maven Central jars, run with the machine's Java 17. Broker on
# 127.0.0.1:${RUNNEL_TEST_KAFKA_PORT:-19092}, controller on the next port, and
# a SASL_PLAINTEXT listener on the one after (PLAIN and SCRAM-SHA-256/512,
# user runnel / runnel-secret), then SSL and SASL_SSL listeners whose
# certificate (for 127.0.0.1) is signed by a CA made here, $DATA/tls/ca.pem.
# Transactions work with one broker (every internal topic at replication 1).
set -euo pipefail
. "$(dirname "$0")/_env.sh"
VERSION="${RUNNEL_KAFKA_VERSION:-3.9.1}"
PORT="${RUNNEL_TEST_KAFKA_PORT:-19092}"
CONTROLLER_PORT=$((PORT + 1))
SASL_PORT=$((PORT + 2))
SSL_PORT=$((PORT + 3))
SASL_SSL_PORT=$((PORT + 4))
SASL_USER=runnel
SASL_PASSWORD=runnel-secret
# Bumped when the storage must be formatted anew (SCRAM users are added at format time).
LAYOUT=3
HOME_DIR="$RUNNEL_CACHE/kafka-$VERSION"
LIBS="$HOME_DIR/libs"
DATA="${RUNNEL_KAFKA_DATA:-/var/tmp/runnel/kafka-$PORT}"
PIDFILE="$DATA/kafka.pid"
LOGDIR="$DATA/logs"

java_bin() { if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME/bin/java"; else command -v java; fi; }
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
# Ready once the server logged its start (the log is fresh per start) and the port answers;
# a JVM-based probe would cost seconds of CPU per try.
ready() { port_open && grep -q "Kafka Server started" "$LOGDIR/server.log" 2>/dev/null; }

install() {
  [ -f "$LIBS/.complete" ] && return 0
  command -v mvn >/dev/null || { log "needs Maven (mvn) to download Kafka's jars; install it (apt-get install maven)"; exit 1; }
  log "downloading org.apache.kafka:kafka_2.13:$VERSION and its runtime dependencies (once, into $HOME_DIR)"
  mkdir -p "$HOME_DIR"
  cat > "$HOME_DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>runnel.services</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIBS"
  (cd "$HOME_DIR" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS") \
    || { log "Maven could not download Kafka $VERSION; see the lines above"; exit 1; }
  cat > "$HOME_DIR/tools-log4j.properties" <<'L4J'
log4j.rootLogger=ERROR, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
L4J
  touch "$LIBS/.complete"
}

# A CA and a certificate for 127.0.0.1 signed by it (test only; the key is not encrypted).
make_certs() {
  local dir="$DATA/tls"
  [ -f "$dir/server.pem" ] && return 0
  command -v openssl >/dev/null || { log "needs openssl to make the test broker's TLS certificate"; exit 1; }
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=runnel test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
    -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$dir/server.key" -out "$dir/server.pk8"
  cat "$dir/server.pk8" "$dir/server.crt" > "$dir/server.pem"
}

write_config() {
  mkdir -p "$DATA" "$LOGDIR"
  make_certs
  cat > "$DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,SASL_SSL://127.0.0.1:$SASL_SSL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,SASL_SSL://127.0.0.1:$SASL_SSL_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$DATA/tls/server.pem
ssl.client.auth=none
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
transaction.max.timeout.ms=900000
log.retention.hours=24
log.segment.bytes=67108864
PROPS
  cat > "$DATA/log4j.properties" <<L4J
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$LOGDIR/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
L4J
}

case "${1:-start}" in
  start)
    install
    if running && ready; then log "already running on 127.0.0.1:$PORT"; exit 0; fi
    if running; then
      # Started but not answering yet (another start in flight): wait for it.
      wait_for 60 ready && { log "running on 127.0.0.1:$PORT"; exit 0; }
      log "a broker process ($(cat "$PIDFILE")) does not answer; stop it with $0 stop and start again"; exit 1
    fi
    if port_open; then log "port $PORT is taken by another process; set RUNNEL_TEST_KAFKA_PORT to another port"; exit 1; fi
    # Test data only: storage formatted for an older layout of this script is formatted anew.
    if [ -d "$DATA/data" ] && [ "$(cat "$DATA/layout" 2>/dev/null)" != "$LAYOUT" ]; then
      log "formatting the test broker's storage anew (layout $LAYOUT)"
      rm -rf "$DATA/data" "$DATA/tls"
    fi
    write_config
    if [ ! -f "$DATA/data/meta.properties" ]; then
      "$(java_bin)" -cp "$LIBS/*" -Dlog4j.configuration="file:$HOME_DIR/tools-log4j.properties" \
        kafka.tools.StorageTool format -t "$("$(java_bin)" -cp "$LIBS/*" -Dlog4j.configuration="file:$HOME_DIR/tools-log4j.properties" kafka.tools.StorageTool random-uuid)" \
        -c "$DATA/server.properties" --ignore-formatted \
        --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" \
        --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]" >/dev/null \
        || { log "formatting the KRaft storage in $DATA/data failed"; exit 1; }
      echo "$LAYOUT" > "$DATA/layout"
    fi
    [ -f "$LOGDIR/server.log" ] && mv -f "$LOGDIR/server.log" "$LOGDIR/server.log.previous"
    nohup "$(java_bin)" -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 \
      -Djava.awt.headless=true -Dlog4j.configuration="file:$DATA/log4j.properties" -Dkafka.logs.dir="$LOGDIR" \
      -cp "$LIBS/*" kafka.Kafka "$DATA/server.properties" >"$LOGDIR/stdout.log" 2>&1 &
    echo $! > "$PIDFILE"
    if ! wait_for 90 ready; then
      log "did not answer within 90 s; see $LOGDIR/server.log and $LOGDIR/stdout.log"
      exit 1
    fi
    log "running on 127.0.0.1:$PORT; SASL $SASL_PORT, SSL $SSL_PORT, SASL_SSL $SASL_SSL_PORT (KRaft, Kafka $VERSION, transactions with replication 1)"
    ;;
  stop)
    if running; then
      pid="$(cat "$PIDFILE")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    log "stopped"
    ;;
  status) running && ready && echo "kafka: running on 127.0.0.1:$PORT" || { echo "kafka: not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
