# shellcheck shell=bash
# Sourced by scripts/infra.sh, whose settings and helpers it uses. MongoDB: SecantusDB from PyPI (or the replica set MONGODB_URI names).

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
