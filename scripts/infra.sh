#!/usr/bin/env bash
# The real servers txoutbox runs against, installed on first use, cached, bound to 127.0.0.1.
#
#   scripts/infra.sh up [SERVICE...] [--started-file F]   install (first time), start, wait until each answers
#   scripts/infra.sh down [SERVICE...]                    stop what this script started (and nothing else)
#   scripts/infra.sh status                               what runs, who started it, whether it answers
#   scripts/infra.sh logs [SERVICE] [-n LINES]            tail of a server's log
#   scripts/infra.sh env                                  the connection settings, as shell exports
#
# SERVICE is one of: temporal kafka postgres mongodb (default: all four); with TXOUTBOX_KAFKA=cluster
# also kafka-1, kafka-2, kafka-3 (one broker of the cluster).
#
#   temporal  Temporal CLI dev server, built from its Go module (scripts/infra/temporal-cli/go.mod);
#             SQLite database file under the data folder (WAL, synchronous=off); gRPC 7233, Web UI 8233; the outbox's
#             custom search attributes registered.
#   kafka     Apache Kafka broker jars from Maven Central (scripts/infra/kafka/pom.xml), KRaft mode,
#             broker and controller in one process; 9092 (controller 9093). Topics are not
#             auto-created: an unknown topic is an error, as it should be for an outbox. A second
#             listener, SASL_SSL with SCRAM-SHA-512, on 9094 (TXOUTBOX_KAFKA_SASL_PORT, default the
#             Kafka port + 2): a local CA and broker certificate made with openssl, and a test user.
#             A third, PLAINTEXT on 9096, advertised at 9095, where the slow-broker tests put a
#             delaying TCP proxy (test/support/tcp-proxy.ts).
#   postgres  PostgreSQL from Debian's packages, a cluster of our own on 5432, database `txoutbox`.
#   mongodb   SecantusDB (PyPI `secantusdb`, pinned below), a single-node server speaking the MongoDB
#             wire protocol over WiredTiger, with transactions and change streams; it presents itself
#             as the primary of the one-member replica set `secantus`; 27017. A surrogate for mongod,
#             and GPL-2.0: a server these scripts run, never a dependency of the package. When
#             MONGODB_URI is set (a real replica set of the user's), none is started and everything
#             runs against that one.
#
# Builds are cached in $TXOUTBOX_CACHE (default ~/.cache/txoutbox); state, logs and pid files live in
# $TXOUTBOX_DATA (default <repo>/.data). Ports can be moved with the TXOUTBOX_*_PORT variables below.
# $TXOUTBOX_MAVEN_REPO moves Maven's local repository and $TXOUTBOX_PG_DATADIR the PostgreSQL cluster
# (CI points both at fresh folders). Only `env` settings reach standard output; all else goes to stderr.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INFRA="$REPO/scripts/infra"
CACHE=${TXOUTBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/txoutbox}
DATA=${TXOUTBOX_DATA:-$REPO/.data}
HOST=127.0.0.1
TEMPORAL_UI_PORT=${TXOUTBOX_TEMPORAL_UI_PORT:-8233}
# The dev server is a local and test engine: its SQLite file in WAL mode without fsync per commit ran
# the bare-Temporal benchmark 1.4-1.5x faster than the default pragmas (scripts/bench.ts --engines;
# BENCHMARKS.md). A crash of the machine, not of the server, can lose its last commits. Set
# TXOUTBOX_TEMPORAL_SQLITE_PRAGMAS to "" for SQLite's defaults.
TEMPORAL_SQLITE_PRAGMAS=${TXOUTBOX_TEMPORAL_SQLITE_PRAGMAS-journal_mode=wal synchronous=off}
# TXOUTBOX_TEMPORAL=server: instead of the dev server, the Temporal server as users deploy it, built
# from go.temporal.io/server (scripts/infra/temporal-server/go.mod), on this script's PostgreSQL, in
# its own databases (TXOUTBOX_TEMPORAL_DB, default temporal, and <that>_visibility), with several
# history shards (TXOUTBOX_TEMPORAL_SHARDS, default 4); no Web UI (the UI server is only embedded in
# the CLI's dev server).
# It runs beside the dev server: its own pid file and log (temporal-server) and port (7333 unless
# TXOUTBOX_TEMPORAL_PORT says otherwise; the dev server's is 7233).
TEMPORAL_ENGINE=${TXOUTBOX_TEMPORAL:-dev}
[[ "$TEMPORAL_ENGINE" == dev || "$TEMPORAL_ENGINE" == server ]] || { printf '[infra] error: TXOUTBOX_TEMPORAL must be dev or server, got %s\n' "$TEMPORAL_ENGINE" >&2; exit 2; }
if [[ "$TEMPORAL_ENGINE" == server ]]; then
  TEMPORAL_PROC=temporal-server
  TEMPORAL_PORT=${TXOUTBOX_TEMPORAL_PORT:-7333}
else
  TEMPORAL_PROC=temporal
  TEMPORAL_PORT=${TXOUTBOX_TEMPORAL_PORT:-7233}
fi
TEMPORAL_DB=${TXOUTBOX_TEMPORAL_DB:-temporal}
TEMPORAL_SHARDS=${TXOUTBOX_TEMPORAL_SHARDS:-4}
KAFKA_PORT=${TXOUTBOX_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${TXOUTBOX_KAFKA_CONTROLLER_PORT:-9093}
# A second listener, SASL_SSL: TLS with a certificate of a local CA this script makes, and a
# SCRAM-SHA-512 user (a local test credential, not a secret), for the tests of a secured broker.
KAFKA_SASL_PORT=${TXOUTBOX_KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}
# A third listener for the tests of a slow broker: PLAINTEXT on the Kafka port + 4, advertised at the
# Kafka port + 3, where a test (or the fault harness) runs a delaying TCP proxy in front of it; a
# client that bootstraps through the proxy is sent back to it by the broker's metadata.
KAFKA_PROXIED_PORT=${TXOUTBOX_KAFKA_PROXIED_PORT:-$((KAFKA_PORT + 4))}
KAFKA_PROXY_PORT=${TXOUTBOX_KAFKA_PROXY_PORT:-$((KAFKA_PORT + 3))}
KAFKA_SCRAM_USER=txoutbox
KAFKA_SCRAM_PASSWORD=txoutbox-local-scram
# TXOUTBOX_KAFKA=cluster: instead of the one broker, three (issue 27), each broker and controller of
# one KRaft quorum, from the same jars, with replication factor 3 and min.insync.replicas=2: brokers on
# TXOUTBOX_KAFKA_CLUSTER_PORT (default 9192) and the next two ports, controllers on the three after.
# Their pid files and logs are kafka-1..kafka-3; they run beside the single broker, which stays the
# default. `up kafka-2` / `down kafka-2` start or stop one broker of the cluster.
KAFKA_MODE=${TXOUTBOX_KAFKA:-single}
[[ "$KAFKA_MODE" == single || "$KAFKA_MODE" == cluster ]] || { printf '[infra] error: TXOUTBOX_KAFKA must be single or cluster, got %s\n' "$KAFKA_MODE" >&2; exit 2; }
KAFKA_CLUSTER_PORT=${TXOUTBOX_KAFKA_CLUSTER_PORT:-9192}
KAFKA_CLUSTER_SIZE=3
PG_PORT=${TXOUTBOX_PG_PORT:-5432}
MONGODB_PORT=${TXOUTBOX_MONGODB_PORT:-27017}
SECANTUS_VERSION=0.7.0b3
# A replica set of the user's, or empty. The settings this script prints name its own server as
# MONGODB_URI too: a caller that evaluated them (tests restarting the server) still means ours.
USER_MONGODB_URI=${MONGODB_URI:-}
[[ "$USER_MONGODB_URI" == "mongodb://$HOST:$MONGODB_PORT/?replicaSet=secantus&directConnection=true" ]] && USER_MONGODB_URI=""
START_TIMEOUT_S=${TXOUTBOX_START_TIMEOUT_S:-180}
SEARCH_ATTRIBUTES=(OutboxStatus OutboxEventType OutboxAggregateId OutboxTopic)
ALL_SERVICES=(temporal kafka postgres mongodb)
RUN="$DATA/run"
STARTED=()
STARTED_FILE=""
LOGS="$DATA/logs"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

probe() { python3 "$INFRA/probe.py" "$@"; }

port_in_use() { probe port-in-use "$HOST" "$1"; }

port_owner() {
  # Best effort: which process listens on the port (ss needs root to name other users' processes).
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)).*/\1/p' | head -1
}

pid_file() { echo "$RUN/$1.pid"; }

# The pid this script recorded for a service, if that process is still alive.
live_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

log_tail() {
  local f="$LOGS/$1.log"
  if [[ -f "$f" ]]; then
    printf '[infra] --- last lines of %s ---\n' "$f" >&2
    tail -n "${2:-30}" "$f" >&2
  fi
}

require_port_free() {
  local service=$1 port=$2
  if port_in_use "$port"; then
    local owner
    owner=$(port_owner "$port")
    die "$service cannot start: port $port on $HOST is already taken${owner:+ by $owner}. Stop that process or move $service with the TXOUTBOX_*_PORT variables."
  fi
}

# Remembers what this invocation started, at once, so a caller can stop it even if a later start fails.
mark_started() {
  STARTED+=("$1")
  if [[ -n "$STARTED_FILE" ]]; then echo "$1" >>"$STARTED_FILE"; fi
}

sha8() { cat "$@" | sha256sum | cut -c1-8; }

# Polls CHECK (a command) until it succeeds, while the service's process stays alive.
wait_until() {
  local service=$1 pid=$2 what=$3
  shift 3
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log_tail "$service"
      die "$service exited during start-up before $what answered (log: $LOGS/$service.log)"
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$service"
      die "$service did not answer on $what within ${START_TIMEOUT_S}s (log: $LOGS/$service.log)"
    fi
    sleep 0.3
  done
}

# Starts a long-running server in its own session so it outlives this shell; records its pid.
spawn() {
  local service=$1
  shift
  mkdir -p "$RUN" "$LOGS"
  : >"$LOGS/$service.log"
  setsid "$@" >>"$LOGS/$service.log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$service")"
}

# ---------------------------------------------------------------------------------------------
# Temporal: the CLI's dev server, built from its Go module at the version pinned in go.mod.
# ---------------------------------------------------------------------------------------------

temporal_version() { awk '$1 == "github.com/temporalio/cli" { print $2 }' "$INFRA/temporal-cli/go.mod"; }

temporal_bin() { echo "$CACHE/temporal-cli-$(temporal_version)-$(sha8 "$INFRA/temporal-cli/go.mod" "$INFRA/temporal-cli/go.sum")/temporal"; }

install_temporal() {
  local bin version
  bin=$(temporal_bin)
  [[ -x "$bin" ]] && return 0
  command -v go >/dev/null || die "temporal: Go is needed to build the Temporal CLI and was not found on PATH"
  version=$(temporal_version)
  log "temporal: building the Temporal CLI $version from its Go module (first run only, a few minutes)"
  mkdir -p "$(dirname "$bin")"
  (cd "$INFRA/temporal-cli" &&
    go build -trimpath -ldflags "-X github.com/temporalio/cli/temporalcli.Version=${version#v}" \
      -o "$bin.tmp" github.com/temporalio/cli/cmd/temporal) >"$bin.build.log" 2>&1 ||
    { tail -n 40 "$bin.build.log" >&2; die "temporal: go build of github.com/temporalio/cli $version failed (above: the end of $bin.build.log)"; }
  mv "$bin.tmp" "$bin"
}

temporal_answers() {
  "$(temporal_bin)" operator cluster health --address "$HOST:$TEMPORAL_PORT" --command-timeout 2s >/dev/null 2>&1
}

temporal_ui_answers() { probe http "http://$HOST:$TEMPORAL_UI_PORT/"; }

start_temporal() {
  local pid
  install_temporal # also when running: the health checks use the CLI
  if pid=$(live_pid "$TEMPORAL_PROC"); then
    log "temporal: already running (pid $pid, started by this script)"
    return 0
  fi
  if [[ "$TEMPORAL_ENGINE" == server ]]; then
    start_temporal_server
    return 0
  fi
  require_port_free temporal "$TEMPORAL_PORT"
  require_port_free "temporal web ui" "$TEMPORAL_UI_PORT"
  mkdir -p "$DATA/temporal"
  local args=(server start-dev
    --ip "$HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT"
    --db-filename "$DATA/temporal/temporal.db"
    --log-format json --log-level warn)
  local sa pragma
  for pragma in $TEMPORAL_SQLITE_PRAGMAS; do args+=(--sqlite-pragma "$pragma"); done
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa=Keyword"); done
  spawn "$TEMPORAL_PROC" "$(temporal_bin)" "${args[@]}"
  mark_started temporal
}

wait_temporal() {
  local pid
  pid=$(live_pid "$TEMPORAL_PROC") || { log_tail "$TEMPORAL_PROC"; die "temporal is not running (log: $LOGS/$TEMPORAL_PROC.log)"; }
  wait_until "$TEMPORAL_PROC" "$pid" "gRPC $HOST:$TEMPORAL_PORT" temporal_answers
  if [[ "$TEMPORAL_ENGINE" == server ]]; then
    prepare_temporal_server_namespace "$pid"
    return 0
  fi
  wait_until temporal "$pid" "Web UI http://$HOST:$TEMPORAL_UI_PORT" temporal_ui_answers
  local listed sa
  listed=$("$(temporal_bin)" operator search-attribute list --address "$HOST:$TEMPORAL_PORT" 2>&1) ||
    die "temporal: could not list search attributes: $listed"
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    grep -q "$sa" <<<"$listed" || die "temporal: search attribute $sa is not registered on the server"
  done
  log "temporal: ready on $HOST:$TEMPORAL_PORT, Web UI http://$HOST:$TEMPORAL_UI_PORT (pid $pid)"
}

# ---------------------------------------------------------------------------------------------
# Temporal, TXOUTBOX_TEMPORAL=server: the server binary and its SQL tool from go.temporal.io/server.
# Its go.mod pins every dependency it shares with the CLI's at the CLI's version (the CLI embeds this
# very server), so once the CLI is built Go's build cache holds nearly all it compiles: 8 s instead of
# minutes on a cold machine. Keep them alike when either is bumped.
# ---------------------------------------------------------------------------------------------

temporal_server_version() { awk '$1 == "go.temporal.io/server" { print $2 }' "$INFRA/temporal-server/go.mod"; }

temporal_server_dir() { echo "$CACHE/temporal-server-$(temporal_server_version)-$(sha8 "$INFRA/temporal-server/go.mod" "$INFRA/temporal-server/go.sum")"; }

install_temporal_server() {
  local dir
  dir=$(temporal_server_dir)
  [[ -x "$dir/temporal-server" && -x "$dir/temporal-sql-tool" ]] && return 0
  command -v go >/dev/null || die "temporal: Go is needed to build the Temporal server and was not found on PATH"
  log "temporal: building the Temporal server $(temporal_server_version) and its SQL tool from their Go module (first run only, a few minutes)"
  mkdir -p "$dir"
  (cd "$INFRA/temporal-server" &&
    go build -trimpath -o "$dir/temporal-server.tmp" go.temporal.io/server/cmd/server &&
    go build -trimpath -o "$dir/temporal-sql-tool.tmp" go.temporal.io/server/cmd/tools/sql) >"$dir/build.log" 2>&1 ||
    { tail -n 40 "$dir/build.log" >&2; die "temporal: go build of go.temporal.io/server $(temporal_server_version) failed (above: the end of $dir/build.log)"; }
  mv "$dir/temporal-server.tmp" "$dir/temporal-server"
  mv "$dir/temporal-sql-tool.tmp" "$dir/temporal-sql-tool"
}

# The server's two databases on this script's PostgreSQL, created and brought to the schema version
# of the pinned server (the SQL tool's update-schema applies only what is missing).
setup_temporal_server_schema() {
  local tool db schema log="$LOGS/temporal-schema.log"
  mkdir -p "$LOGS"
  tool="$(temporal_server_dir)/temporal-sql-tool"
  for db in "$TEMPORAL_DB" "${TEMPORAL_DB}_visibility"; do
    schema=temporal
    [[ "$db" == *_visibility ]] && schema=visibility
    local sql=("$tool" --plugin postgres12 --ep "$HOST" -p "$PG_PORT" -u txoutbox --pw txoutbox --db "$db")
    if ! PGPASSWORD=txoutbox psql -h "$HOST" -p "$PG_PORT" -U txoutbox -d postgres -tAc "select 1 from pg_database where datname = '$db'" | grep -q 1; then
      "${sql[@]}" create-database >>"$log" 2>&1 || { tail -20 "$log" >&2; die "temporal: could not create database $db (log: $log)"; }
      "${sql[@]}" setup-schema -v 0.0 >>"$log" 2>&1 || { tail -20 "$log" >&2; die "temporal: could not set up schema versioning in $db (log: $log)"; }
    fi
    "${sql[@]}" update-schema --schema-name "postgresql/v12/$schema" >>"$log" 2>&1 || { tail -20 "$log" >&2; die "temporal: could not update the schema of $db (log: $log)"; }
  done
  log "temporal: PostgreSQL databases $TEMPORAL_DB and ${TEMPORAL_DB}_visibility at the server's schema version (log: $log)"
}

write_temporal_server_config() {
  local root=$1
  mkdir -p "$root/config"
  cat >"$root/config/dynamicconfig.yaml" <<EOF
# New search attributes are visible at once (the scripts register them right after start).
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
frontend.enableUpdateWorkflowExecution:
  - value: true
EOF
  cat >"$root/config/development.yaml" <<EOF
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: $TEMPORAL_SHARDS
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: $TEMPORAL_DB
        connectAddr: "$HOST:$PG_PORT"
        connectProtocol: tcp
        user: txoutbox
        password: txoutbox
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: ${TEMPORAL_DB}_visibility
        connectAddr: "$HOST:$PG_PORT"
        connectProtocol: tcp
        user: txoutbox
        password: txoutbox
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "$HOST"
services:
  frontend:
    rpc: { grpcPort: $TEMPORAL_PORT, membershipPort: $((TEMPORAL_PORT + 100)), bindOnIP: "$HOST", httpPort: $((TEMPORAL_PORT + 10)) }
  history:
    rpc: { grpcPort: $((TEMPORAL_PORT + 1)), membershipPort: $((TEMPORAL_PORT + 101)), bindOnIP: "$HOST" }
  matching:
    rpc: { grpcPort: $((TEMPORAL_PORT + 2)), membershipPort: $((TEMPORAL_PORT + 102)), bindOnIP: "$HOST" }
  worker:
    rpc: { grpcPort: $((TEMPORAL_PORT + 6)), membershipPort: $((TEMPORAL_PORT + 106)), bindOnIP: "$HOST" }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "$HOST:$TEMPORAL_PORT"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: "$root/config/dynamicconfig.yaml"
  pollInterval: 10s
EOF
}

start_temporal_server() {
  install_temporal_server
  # The server keeps everything in PostgreSQL: that comes first.
  start_postgres
  wait_postgres
  require_port_free temporal "$TEMPORAL_PORT"
  setup_temporal_server_schema
  local root="$DATA/temporal-server"
  write_temporal_server_config "$root"
  spawn "$TEMPORAL_PROC" "$(temporal_server_dir)/temporal-server" --root "$root" --config config --env development --allow-no-auth start
  mark_started temporal
}

temporal_server_namespace_ready() {
  "$(temporal_bin)" operator search-attribute list --namespace default --address "$HOST:$TEMPORAL_PORT" >/dev/null 2>&1
}

# The full server starts with no namespace: the scripts create 'default' and its search attributes.
prepare_temporal_server_namespace() {
  local pid=$1 cli address="$HOST:$TEMPORAL_PORT" sa listed
  cli=$(temporal_bin)
  if ! "$cli" operator namespace describe --namespace default --address "$address" >/dev/null 2>&1; then
    "$cli" operator namespace create --namespace default --retention 24h --address "$address" >&2 ||
      die "temporal: could not create namespace default"
  fi
  # The frontend sees a new namespace once its namespace registry refreshes (every 10 s).
  wait_until "$TEMPORAL_PROC" "$pid" "namespace default" temporal_server_namespace_ready
  listed=$("$cli" operator search-attribute list --namespace default --address "$address" 2>&1) || die "temporal: could not list search attributes: $listed"
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do
    grep -q "$sa" <<<"$listed" && continue
    "$cli" operator search-attribute create --namespace default --name "$sa" --type Keyword --address "$address" >&2 ||
      die "temporal: could not register search attribute $sa"
  done
  log "temporal: ready on $address (Temporal server $(temporal_server_version) on PostgreSQL databases $TEMPORAL_DB and ${TEMPORAL_DB}_visibility, $TEMPORAL_SHARDS history shards, pid $pid; no Web UI)"
}

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

# ---------------------------------------------------------------------------------------------
# PostgreSQL: Debian's packages, a cluster of our own.
# ---------------------------------------------------------------------------------------------

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
  done
  return 1
}

install_postgres() {
  pg_bindir >/dev/null && return 0
  [[ $EUID -eq 0 ]] || die "postgres: PostgreSQL is not installed; run 'sudo apt-get install postgresql' once"
  log "postgres: installing PostgreSQL from Debian's packages (first run only)"
  # Our cluster is our own: keep the package from creating and starting its 'main' cluster on 5432.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
    echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null ||
    die "postgres: apt-get install postgresql failed"
  pg_bindir >/dev/null || die "postgres: installed, but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
}

# PostgreSQL refuses to run as root: as root the cluster belongs to the 'postgres' user and lives
# where that user can reach it; otherwise it is the caller's own, under the data folder.
pg_datadir() {
  if [[ -n "${TXOUTBOX_PG_DATADIR:-}" ]]; then echo "$TXOUTBOX_PG_DATADIR"; return; fi
  if [[ $EUID -eq 0 ]]; then echo "/var/lib/txoutbox/postgres-$PG_PORT"; else echo "$DATA/postgres"; fi
}

as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_answers() {
  "$(pg_bindir)/pg_isready" -q -h "$HOST" -p "$PG_PORT" &&
    PGPASSWORD=txoutbox psql -h "$HOST" -p "$PG_PORT" -U txoutbox -d txoutbox -tAc 'select 1' >/dev/null 2>&1
}

start_postgres() {
  install_postgres
  local bin pgdata pid
  bin=$(pg_bindir)
  pgdata=$(pg_datadir)
  if [[ -f "$pgdata/postmaster.pid" ]] && pid=$(head -1 "$pgdata/postmaster.pid") && kill -0 "$pid" 2>/dev/null; then
    mkdir -p "$RUN"
    echo "$pid" >"$(pid_file postgres)"
    log "postgres: already running (pid $pid, cluster $pgdata)"
    return 0
  fi
  require_port_free postgres "$PG_PORT"
  mkdir -p "$RUN" "$LOGS"
  if [[ ! -f "$pgdata/PG_VERSION" ]]; then
    log "postgres: creating a cluster in $pgdata (once)"
    mkdir -p "$pgdata"
    [[ $EUID -eq 0 ]] && chown postgres:postgres "$pgdata" && chmod 700 "$pgdata"
    local pwfile
    pwfile=$(mktemp)
    echo txoutbox >"$pwfile"
    chmod 644 "$pwfile"
    as_pg "$bin/initdb" -D "$pgdata" -U txoutbox --pwfile="$pwfile" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 \
      >"$LOGS/postgres-initdb.log" 2>&1 || { rm -f "$pwfile"; cat "$LOGS/postgres-initdb.log" >&2; die "postgres: initdb failed"; }
    rm -f "$pwfile"
  fi
  : >"$LOGS/postgres.log"
  [[ $EUID -eq 0 ]] && chown postgres "$LOGS/postgres.log"
  # Settings for a test server: logical decoding available, fsync kept (restarts must lose nothing).
  as_pg "$bin/pg_ctl" -D "$pgdata" -l "$LOGS/postgres.log" -w -t 60 start -o \
    "-c listen_addresses=$HOST -c port=$PG_PORT -c unix_socket_directories=/tmp -c max_connections=300 -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20" \
    >/dev/null || { log_tail postgres; die "postgres failed to start on $HOST:$PG_PORT (log: $LOGS/postgres.log)"; }
  head -1 "$pgdata/postmaster.pid" >"$(pid_file postgres)"
  mark_started postgres
}

wait_postgres() {
  local pid
  pid=$(live_pid postgres) || { log_tail postgres; die "postgres is not running (log: $LOGS/postgres.log)"; }
  wait_until postgres "$pid" "$HOST:$PG_PORT" pg_answers_or_create
  log "postgres: ready on $HOST:$PG_PORT, database txoutbox (pid $pid)"
}

# The bootstrap superuser is 'txoutbox'; its database is created on first start.
pg_answers_or_create() {
  pg_answers && return 0
  "$(pg_bindir)/pg_isready" -q -h "$HOST" -p "$PG_PORT" || return 1
  PGPASSWORD=txoutbox psql -h "$HOST" -p "$PG_PORT" -U txoutbox -d postgres -tAc 'create database txoutbox' >/dev/null 2>&1 || true
  pg_answers
}

stop_postgres() {
  local pgdata
  pgdata=$(pg_datadir)
  as_pg "$(pg_bindir)/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null
}

# ---------------------------------------------------------------------------------------------
# MongoDB: SecantusDB from PyPI, in a virtual environment under the cache.
# ---------------------------------------------------------------------------------------------

mongodb_venv() { echo "$CACHE/secantusdb-$SECANTUS_VERSION"; }

# directConnection: the one node is the whole topology. With discovery, a Node driver that met
# SecantusDB's answers while it restarted dropped the node from its replica-set view for good (every
# later operation: "Server selection timed out", no server left to monitor); found by the fault
# harness. A real replica set (MONGODB_URI) is used as its URI says.
mongodb_uri() {
  if [[ -n "$USER_MONGODB_URI" ]]; then echo "$USER_MONGODB_URI"; else echo "mongodb://$HOST:$MONGODB_PORT/?replicaSet=secantus&directConnection=true"; fi
}

python311() {
  local candidate
  for candidate in python3.11 python3; do
    command -v "$candidate" >/dev/null || continue
    [[ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" == 3.11 ]] && { command -v "$candidate"; return 0; }
  done
  die "mongodb: SecantusDB $SECANTUS_VERSION ships a wheel for Python 3.11, and no python3.11 was found on PATH"
}

install_mongodb() {
  local venv
  venv=$(mongodb_venv)
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import secantus' 2>/dev/null && return 0
  log "mongodb: installing SecantusDB $SECANTUS_VERSION from PyPI into $venv (first run only)"
  # Built in place (a venv's scripts name their interpreter by path); a failed install is removed.
  rm -rf "$venv"
  { "$(python311)" -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check "secantusdb==$SECANTUS_VERSION"; } ||
    { rm -rf "$venv"; die "mongodb: pip install secantusdb==$SECANTUS_VERSION failed (see above)"; }
}

mongodb_answers() {
  "$(mongodb_venv)/bin/python" - "$(mongodb_uri)" <<'PY' >/dev/null 2>&1
import sys, pymongo
client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=2000, connectTimeoutMS=2000)
hello = client.admin.command("hello")
sys.exit(0 if hello.get("isWritablePrimary") and hello.get("setName") else 1)
PY
}

start_mongodb() {
  local pid
  if [[ -n "$USER_MONGODB_URI" ]]; then
    log "mongodb: MONGODB_URI is set: using that replica set, starting none"
    return 0
  fi
  install_mongodb
  if pid=$(live_pid mongodb); then
    log "mongodb: already running (pid $pid, started by this script)"
    return 0
  fi
  require_port_free mongodb "$MONGODB_PORT"
  mkdir -p "$DATA/mongodb"
  spawn mongodb "$(mongodb_venv)/bin/python" -m secantus --host "$HOST" --port "$MONGODB_PORT" \
    --storage-path "$DATA/mongodb" --log-level WARNING --sync-on-commit
  mark_started mongodb
}

wait_mongodb() {
  if [[ -n "$USER_MONGODB_URI" ]]; then
    install_mongodb # the probe uses its pymongo
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until mongodb_answers; do
      ((SECONDS < deadline)) || die "mongodb: MONGODB_URI does not answer as the primary of a replica set within ${START_TIMEOUT_S}s"
      sleep 1
    done
    log "mongodb: using MONGODB_URI (a replica set's primary answers)"
    return 0
  fi
  local pid
  pid=$(live_pid mongodb) || { log_tail mongodb; die "mongodb is not running (log: $LOGS/mongodb.log)"; }
  wait_until mongodb "$pid" "$HOST:$MONGODB_PORT (hello)" mongodb_answers
  log "mongodb: ready on $HOST:$MONGODB_PORT, SecantusDB $SECANTUS_VERSION, replica set secantus (pid $pid)"
}

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

services_from_args() {
  local s
  SERVICES=()
  for s in "$@"; do
    case "$s" in
      temporal | kafka | postgres | mongodb) SERVICES+=("$s") ;;
      kafka-[1-9])
        [[ "$KAFKA_MODE" == cluster && ${s#kafka-} -le $KAFKA_CLUSTER_SIZE ]] || die "'$s' is a broker of the cluster: set TXOUTBOX_KAFKA=cluster (brokers kafka-1..kafka-$KAFKA_CLUSTER_SIZE)"
        SERVICES+=("$s") ;;
      *) die "unknown service '$s' (expected: ${ALL_SERVICES[*]})" ;;
    esac
  done
  ((${#SERVICES[@]})) || SERVICES=("${ALL_SERVICES[@]}")
}

# kafka-N is one broker of the cluster; the others are functions of their own name.
start_service() { if [[ "$1" == kafka-* ]]; then start_kafka_broker "${1#kafka-}"; else "start_$1"; fi; }
wait_service() {
  if [[ "$1" == kafka-* ]]; then
    wait_kafka_broker "${1#kafka-}"
    log "$1: ready on $HOST:$(cluster_broker_port "${1#kafka-}") (pid $(live_pid "$1"))"
  else
    "wait_$1"
  fi
}

# What the processes of a service are called in the run folder: the cluster's brokers for kafka.
process_names() {
  local i
  if [[ "$1" == kafka && "$KAFKA_MODE" == cluster ]]; then
    for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do echo "kafka-$i"; done
  elif [[ "$1" == temporal ]]; then
    echo "$TEMPORAL_PROC"
  else
    echo "$1"
  fi
}

cmd_up() {
  local args=()
  while (($#)); do
    case "$1" in
      --started-file) STARTED_FILE=$2; : >"$STARTED_FILE"; shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  services_from_args "${args[@]+"${args[@]}"}"
  command -v python3 >/dev/null || die "python3 is needed for the health checks and was not found"
  local s t0=$SECONDS
  # Callers evaluate this command's standard output as settings, so only cmd_env writes there: every
  # tool run in between (Go, Maven, apt, pip, initdb...) writes to standard error, whatever it prints
  # and whether or not this is a first run (Maven's quiet mode, for one, prints ANSI resets on stdout).
  # No copy of stdout is kept open meanwhile: a server started here must not hold the caller's pipe.
  {
    # Start everything first, then wait: the servers boot in parallel.
    for s in "${SERVICES[@]}"; do start_service "$s"; done
    for s in "${SERVICES[@]}"; do wait_service "$s"; done
    log "up in $((SECONDS - t0))s (started now: ${STARTED[*]:-none})"
  } >&2
  cmd_env
}

cmd_down() {
  services_from_args "$@"
  local s pid names=()
  for s in "${SERVICES[@]}"; do mapfile -t -O "${#names[@]}" names < <(process_names "$s"); done
  for s in "${names[@]}"; do
    if ! pid=$(live_pid "$s"); then
      rm -f "$(pid_file "$s")"
      log "$s: not running (nothing of ours to stop)"
      continue
    fi
    if [[ $s == postgres ]]; then
      stop_postgres
    else
      kill -TERM "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 60))
      while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$(pid_file "$s")"
    log "$s: stopped (pid $pid)"
  done
}

cmd_status() {
  local s pid answers
  for s in "${ALL_SERVICES[@]}"; do
    case "$s" in
      temporal) answers=temporal_answers ;;
      kafka) answers=kafka_answers ;;
      postgres) answers=pg_answers ;;
      mongodb) answers=mongodb_answers ;;
    esac
    if [[ "$s" == kafka && "$KAFKA_MODE" == cluster ]]; then
      kafka_cluster_status_lines
      continue
    fi
    if pid=$(live_pid "$(process_names "$s")"); then
      if "$answers" 2>/dev/null; then echo "$s: running (pid $pid), answering"; else echo "$s: running (pid $pid), NOT answering"; fi
    else
      echo "$s: not started by this script"
    fi
  done
}

kafka_cluster_status_lines() {
  local i pid port
  for ((i = 1; i <= KAFKA_CLUSTER_SIZE; i++)); do
    port=$(cluster_broker_port "$i")
    if pid=$(live_pid "kafka-$i"); then
      if probe kafka "$HOST" "$port"; then echo "kafka-$i: broker $i on $HOST:$port running (pid $pid), answering"; else echo "kafka-$i: broker $i on $HOST:$port running (pid $pid), NOT answering"; fi
    else
      echo "kafka-$i: broker $i on $HOST:$port not started by this script"
    fi
  done
  kafka_cluster_status | sed 's/^/kafka cluster: /' || true
}

cmd_logs() {
  local service="" lines=50
  while (($#)); do
    case "$1" in
      -n) lines=$2; shift 2 ;;
      *) service=$1; shift ;;
    esac
  done
  if [[ -n "$service" ]]; then
    services_from_args "$service"
    tail -n "$lines" "$LOGS/$service.log"
  else
    for s in "${ALL_SERVICES[@]}"; do [[ -f "$LOGS/$s.log" ]] && log_tail "$s" "$lines"; done
  fi
}

cmd_env() {
  cat <<EOF
export TXOUTBOX_TEMPORAL_ADDRESS=$HOST:$TEMPORAL_PORT
export TXOUTBOX_TEMPORAL_UI_URL=http://$HOST:$TEMPORAL_UI_PORT
export TXOUTBOX_KAFKA_BROKERS=$([[ "$KAFKA_MODE" == cluster ]] && cluster_brokers || echo "$HOST:$KAFKA_PORT")
export TXOUTBOX_TEST_KAFKA_SASL_SSL_BROKERS=$HOST:$KAFKA_SASL_PORT
export TXOUTBOX_TEST_KAFKA_CA_FILE=$(kafka_tls_dir)/ca.pem
export TXOUTBOX_TEST_KAFKA_SCRAM_USER=$KAFKA_SCRAM_USER
export TXOUTBOX_TEST_KAFKA_SCRAM_PASSWORD=$KAFKA_SCRAM_PASSWORD
export TXOUTBOX_TEST_KAFKA_PROXIED_LISTENER=$HOST:$KAFKA_PROXIED_PORT
export TXOUTBOX_TEST_KAFKA_PROXY_ADDRESS=$HOST:$KAFKA_PROXY_PORT
export TXOUTBOX_PG_URL=postgres://txoutbox:txoutbox@$HOST:$PG_PORT/txoutbox
export TXOUTBOX_MONGODB_URI='$(mongodb_uri)'
export MONGODB_URI='$(mongodb_uri)'
EOF
}

main() {
  local cmd=${1:-}
  shift || true
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    env) cmd_env ;;
    *) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
