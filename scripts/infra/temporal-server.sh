# shellcheck shell=bash
# Sourced by scripts/infra.sh, whose settings and helpers it uses. Temporal as users deploy it (TXOUTBOX_TEMPORAL=server): the server on this script's PostgreSQL.

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
