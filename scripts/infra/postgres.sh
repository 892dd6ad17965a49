# shellcheck shell=bash
# Sourced by scripts/infra.sh, whose settings and helpers it uses. PostgreSQL: Debian's packages, a cluster of our own.

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
