# shellcheck shell=bash
# Sourced by scripts/infra.sh, whose settings and helpers it uses. Kafka: one broker in KRaft mode, with its SASL_SSL and proxied listeners.

# ---------------------------------------------------------------------------------------------
# Kafka: the broker's jars from Maven Central, run in KRaft mode with the machine's Java.
# ---------------------------------------------------------------------------------------------

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$INFRA/kafka/pom.xml"; }

kafka_libs() { echo "$CACHE/kafka-$(kafka_version)-$(sha8 "$INFRA/kafka/pom.xml")/libs"; }

java_bin() {
  local candidate major
  for candidate in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    major=$("$candidate" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [[ -n "$major" && "$major" -ge 17 ]]; then
      echo "$candidate"
      return 0
    fi
  done
  die "kafka: Java 17 or newer is needed for the Kafka $(kafka_version) broker and none was found"
}

install_kafka() {
  local libs
  libs=$(kafka_libs)
  [[ -d "$libs" ]] && return 0
  command -v mvn >/dev/null || die "kafka: Maven (mvn) is needed to fetch the broker's jars and was not found on PATH"
  log "kafka: resolving the Kafka $(kafka_version) broker jars from Maven Central (first run only)"
  rm -rf "$libs.tmp"
  local mvn_args=(-q -B)
  # TXOUTBOX_MAVEN_REPO moves Maven's local repository (CI points it at a fresh, empty folder).
  [[ -n "${TXOUTBOX_MAVEN_REPO:-}" ]] && mvn_args+=("-Dmaven.repo.local=$TXOUTBOX_MAVEN_REPO")
  mvn "${mvn_args[@]}" -f "$INFRA/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.tmp" ||
    die "kafka: mvn dependency:copy-dependencies failed (see above)"
  mv "$libs.tmp" "$libs"
}

kafka_tls_dir() { echo "$DATA/kafka/tls"; }

# A local CA and the broker's certificate (127.0.0.1, localhost), once per data folder: PEM for the
# clients (ca.pem), PKCS#12 for the broker.
make_kafka_tls() {
  local dir
  dir=$(kafka_tls_dir)
  [[ -f "$dir/broker.p12" ]] && return 0
  command -v openssl >/dev/null || die "kafka: openssl is needed to make the SASL_SSL listener's certificates and was not found on PATH"
  mkdir -p "$dir"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=txoutbox local test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" -keyout "$dir/broker.key" -out "$dir/broker.csr" &&
      printf 'subjectAltName=IP:%s,DNS:localhost\nextendedKeyUsage=serverAuth\n' "$HOST" >"$dir/broker.ext" &&
      openssl x509 -req -in "$dir/broker.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 3650 \
        -extfile "$dir/broker.ext" -out "$dir/broker.pem" &&
      openssl pkcs12 -export -in "$dir/broker.pem" -inkey "$dir/broker.key" -certfile "$dir/ca.pem" \
        -passout pass:txoutbox -out "$dir/broker.p12.tmp" &&
      mv "$dir/broker.p12.tmp" "$dir/broker.p12"
  } >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; die "kafka: making the SASL_SSL certificates failed"; }
}

# The SCRAM user, through the Admin API (the broker jars have no kafka-configs tool); once per data folder.
add_kafka_scram_user() {
  local marker="$DATA/kafka/scram-user.done" java libs
  [[ -f "$marker" ]] && return 0
  java=$(java_bin)
  libs=$(kafka_libs)
  "$java" -Dlog4j2.configurationFile="$INFRA/kafka/log4j2.properties" -cp "$libs/*" "$INFRA/kafka/AddScramUser.java" \
    "$HOST:$KAFKA_PORT" "$KAFKA_SCRAM_USER" "$KAFKA_SCRAM_PASSWORD" >"$DATA/kafka/scram-user.log" 2>&1 ||
    { cat "$DATA/kafka/scram-user.log" >&2; die "kafka: creating the SCRAM user failed"; }
  touch "$marker"
}

write_kafka_config() {
  local dir="$DATA/kafka" tls
  tls=$(kafka_tls_dir)
  mkdir -p "$dir/log-dirs"
  cat >"$dir/server.properties" <<EOF
# Written by scripts/infra.sh: one broker that is also its own KRaft controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_SSL://$HOST:$KAFKA_SASL_PORT,PROXIED://$HOST:$KAFKA_PROXIED_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_SSL://$HOST:$KAFKA_SASL_PORT,PROXIED://$HOST:$KAFKA_PROXY_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,PROXIED:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=txoutbox
ssl.key.password=txoutbox
ssl.client.auth=none
EOF
  kafka_storage_config "$dir" 1 1 >>"$dir/server.properties"
}

# What a single broker and a cluster's brokers share: where the log lives, topics only as asked, and
# the replication of Kafka's own topics ($2 copies, $3 of them in sync to accept a write).
kafka_storage_config() {
  cat <<EOF
log.dirs=$1/log-dirs
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=$2
transaction.state.log.replication.factor=$2
transaction.state.log.min.isr=$3
share.coordinator.state.topic.replication.factor=$2
share.coordinator.state.topic.min.isr=$3
group.initial.rebalance.delay.ms=0
EOF
}

start_kafka() {
  local pid
  if [[ "$KAFKA_MODE" == cluster ]]; then
    start_kafka_cluster
    return 0
  fi
  if pid=$(live_pid kafka); then
    log "kafka: already running (pid $pid, started by this script)"
    return 0
  fi
  install_kafka
  require_port_free kafka "$KAFKA_PORT"
  require_port_free "kafka controller" "$KAFKA_CONTROLLER_PORT"
  require_port_free "kafka SASL_SSL" "$KAFKA_SASL_PORT"
  require_port_free "kafka proxied listener" "$KAFKA_PROXIED_PORT"
  local java libs dir="$DATA/kafka"
  make_kafka_tls
  java=$(java_bin)
  libs=$(kafka_libs)
  write_kafka_config
  if [[ ! -f "$dir/log-dirs/meta.properties" ]]; then
    log "kafka: formatting the KRaft storage in $dir/log-dirs (once)"
    local cluster_id
    cluster_id=$("$java" -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    "$java" -cp "$libs/*" -Dlog4j2.configurationFile="$INFRA/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
      { cat "$dir/format.log" >&2; die "kafka: formatting the storage failed"; }
  fi
  spawn kafka "$java" -Xms256m -Xmx${TXOUTBOX_KAFKA_HEAP:-1g} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$INFRA/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties"
  mark_started kafka
}

kafka_answers() { probe kafka "$HOST" "$KAFKA_PORT"; }

wait_kafka() {
  local pid
  if [[ "$KAFKA_MODE" == cluster ]]; then
    wait_kafka_cluster
    return 0
  fi
  pid=$(live_pid kafka) || { log_tail kafka; die "kafka is not running (log: $LOGS/kafka.log)"; }
  wait_until kafka "$pid" "$HOST:$KAFKA_PORT (ApiVersions)" kafka_answers
  add_kafka_scram_user
  log "kafka: ready on $HOST:$KAFKA_PORT, and SASL_SSL (SCRAM-SHA-512) on $HOST:$KAFKA_SASL_PORT, Kafka $(kafka_version) in KRaft mode (pid $pid)"
}
