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
# The dev server's Prometheus /metrics (the RPCs it served, by operation: the benchmark counts them per
# event). The Temporal server engine does not serve one yet.
TEMPORAL_METRICS_PORT=${TXOUTBOX_TEMPORAL_METRICS_PORT:-$((TEMPORAL_PORT + 9))}
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

# shellcheck source=scripts/infra/common.sh
source "$INFRA/common.sh"
# shellcheck source=scripts/infra/temporal.sh
source "$INFRA/temporal.sh"
# shellcheck source=scripts/infra/temporal-server.sh
source "$INFRA/temporal-server.sh"
# shellcheck source=scripts/infra/kafka.sh
source "$INFRA/kafka.sh"
# shellcheck source=scripts/infra/kafka-cluster.sh
source "$INFRA/kafka-cluster.sh"
# shellcheck source=scripts/infra/postgres.sh
source "$INFRA/postgres.sh"
# shellcheck source=scripts/infra/mongodb.sh
source "$INFRA/mongodb.sh"

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
export TXOUTBOX_TEMPORAL_METRICS_URL=http://$HOST:$TEMPORAL_METRICS_PORT/metrics
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
