# shellcheck shell=bash
# Sourced by scripts/infra.sh, whose settings and helpers it uses. Temporal: the CLI's dev server (SQLite, Web UI), built from its Go module.

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
  require_port_free "temporal metrics" "$TEMPORAL_METRICS_PORT"
  mkdir -p "$DATA/temporal"
  local args=(server start-dev
    --ip "$HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" --metrics-port "$TEMPORAL_METRICS_PORT"
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
