# shellcheck shell=bash
# Sourced by scripts/infra.sh, whose settings and helpers it uses. What every server shares: probes, pid files, waiting for a server, starting one in its own session.

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
