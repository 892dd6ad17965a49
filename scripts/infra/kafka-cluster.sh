# shellcheck shell=bash
# Sourced by scripts/infra.sh, whose settings and helpers it uses. Kafka, TXOUTBOX_KAFKA=cluster: three brokers in one KRaft quorum.

# ---------------------------------------------------------------------------------------------
# Kafka, TXOUTBOX_KAFKA=cluster: three brokers, each also a voter of the one KRaft controller quorum.
# ---------------------------------------------------------------------------------------------

cluster_broker_port() { echo $((KAFKA_CLUSTER_PORT + $1 - 1)); }
cluster_controller_port() { echo $((KAFKA_CLUSTER_PORT + KAFKA_CLUSTER_SIZE + $1 - 1)); }
cluster_brokers() {
  local i out=""
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do out+="${out:+,}$HOST:$(cluster_broker_port "$i")"; done
  echo "$out"
}

write_kafka_broker_config() {
  local n=$1 dir="$DATA/kafka-cluster/$1" voters="" i
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do voters+="${voters:+,}$i@$HOST:$(cluster_controller_port "$i")"; done
  mkdir -p "$dir/log-dirs"
  cat >"$dir/server.properties" <<EOF
# Written by scripts/infra.sh: broker $n of $KAFKA_CLUSTER_SIZE, each a broker and a voter of one KRaft quorum.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$(cluster_broker_port "$n"),CONTROLLER://$HOST:$(cluster_controller_port "$n")
advertised.listeners=PLAINTEXT://$HOST:$(cluster_broker_port "$n")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
# What txoutbox needs of a cluster (README, "Running against a Kafka cluster"): three copies, a
# write acknowledged by acks=all is on at least two, and no out-of-sync replica ever becomes leader.
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
# A follower that has not caught up for 10 s leaves the in-sync set (default 30 s): the fault
# harness's frozen followers shrink it within its faults.
replica.lag.time.max.ms=10000
EOF
  kafka_storage_config "$dir" 3 2 >>"$dir/server.properties"
}

start_kafka_broker() {
  local n=$1 service="kafka-$1" pid java libs dir="$DATA/kafka-cluster/$1"
  if pid=$(live_pid "$service"); then
    log "$service: already running (pid $pid, started by this script)"
    return 0
  fi
  install_kafka
  require_port_free "$service" "$(cluster_broker_port "$n")"
  require_port_free "$service controller" "$(cluster_controller_port "$n")"
  java=$(java_bin)
  libs=$(kafka_libs)
  write_kafka_broker_config "$n"
  if [[ ! -f "$dir/log-dirs/meta.properties" ]]; then
    # One cluster id for the three, made by whichever is formatted first.
    local id_file="$DATA/kafka-cluster/cluster-id"
    [[ -s "$id_file" ]] || "$java" -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 >"$id_file"
    log "$service: formatting the KRaft storage in $dir/log-dirs (once)"
    "$java" -cp "$libs/*" -Dlog4j2.configurationFile="$INFRA/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "$(cat "$id_file")" -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
      { cat "$dir/format.log" >&2; die "$service: formatting the storage failed"; }
  fi
  spawn "$service" "$java" -Xms128m -Xmx${TXOUTBOX_KAFKA_CLUSTER_HEAP:-512m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$INFRA/kafka/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties"
  mark_started "$service"
}

wait_kafka_broker() {
  local n=$1 service="kafka-$1" pid
  pid=$(live_pid "$service") || { log_tail "$service"; die "$service is not running (log: $LOGS/$service.log)"; }
  wait_until "$service" "$pid" "$HOST:$(cluster_broker_port "$n") (ApiVersions)" probe kafka "$HOST" "$(cluster_broker_port "$n")"
}

# The brokers registered and the controller quorum's leader, as the Admin API sees them.
kafka_cluster_status() {
  "$(java_bin)" -Dlog4j2.configurationFile="$INFRA/kafka/log4j2.properties" -cp "$(kafka_libs)/*" \
    "$INFRA/kafka/ClusterStatus.java" "$(cluster_brokers)" "$KAFKA_CLUSTER_SIZE" 2>/dev/null |
    grep -E '^(brokers registered|controller leader|the cluster did not answer)'
  return "${PIPESTATUS[0]}"
}

start_kafka_cluster() {
  local i
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do start_kafka_broker "$i"; done
}

wait_kafka_cluster() {
  local i status deadline=$((SECONDS + START_TIMEOUT_S))
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do wait_kafka_broker "$i"; done
  until status=$(kafka_cluster_status); do
    ((SECONDS < deadline)) || { log "$status"; die "kafka: the cluster did not register its $KAFKA_CLUSTER_SIZE brokers with a quorum leader within ${START_TIMEOUT_S}s"; }
    sleep 1
  done
  log "kafka: a cluster of $KAFKA_CLUSTER_SIZE brokers ready on $(cluster_brokers), Kafka $(kafka_version) in KRaft mode, replication factor 3, min.insync.replicas=2; $(grep '^controller leader' <<<"$status" | cut -d';' -f1)"
}
