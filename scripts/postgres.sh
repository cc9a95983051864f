#!/usr/bin/env bash
# Makes a PostgreSQL server available for tests (the server's PostgreSQL storage).
#   scripts/postgres.sh up    start a private cluster unless one is reachable, print the env
#   scripts/postgres.sh env   print the env (export lines) for what is running
#   scripts/postgres.sh down  stop only what `up` started
# Uses $BOSUN_TEST_DATABASE_URL, else $BOSUN_DATABASE_URL, when a PostgreSQL answers there. Otherwise
# installs Debian's postgresql and runs a private test cluster as the postgres OS user in
# $BOSUN_PG_DIR/data, on 127.0.0.1:$BOSUN_PG_PORT and a unix socket in $BOSUN_PG_DIR/run, with fsync off:
# test data only. Role bosun (CREATEDB: tests make their own bosun_t_* databases) owns database bosun_test.
set -euo pipefail

DIR=$(realpath -m "${BOSUN_PG_DIR:-/tmp/bosun-pg}")
PORT=${BOSUN_PG_PORT:-5433}
ROLE=bosun
PASS=bosun-test-password
DB=bosun_test
DATA=$DIR/data
RUN=$DIR/run
PRIVATE_URL="postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
EXTERNAL_URL=${BOSUN_TEST_DATABASE_URL:-${BOSUN_DATABASE_URL:-}}
case "$EXTERNAL_URL" in postgres://* | postgresql://*) ;; *) EXTERNAL_URL= ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR" && chmod go+x "$DIR"   # the postgres user reaches data/ and run/ through it

log() { echo "[postgres] $*" >&2; }

pg_bin() { { ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true; } | sort -V | tail -1; }

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$@" >&2
}
need_pkgs() {
  local bin; bin=$(pg_bin)
  if [ -n "$bin" ] && [ -x "$bin/initdb" ] && command -v psql >/dev/null; then return; fi
  [ "$(id -u)" = 0 ] || { log "PostgreSQL is not installed and we are not root: install postgresql or set BOSUN_TEST_DATABASE_URL"; exit 1; }
  log "installing postgresql"
  # fresh package lists each time (lists an earlier run fetched may name versions the mirror no longer has)
  apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  apt_install postgresql
}

# Commands on the private cluster run as the postgres OS user (the server refuses to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd "$DIR" && runuser -u postgres -- "$@"); else "$@"; fi
}
owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

# Is a PostgreSQL answering at this URL? psql where installed, else the project's pg module.
url_ok() {
  if command -v psql >/dev/null; then
    PGCONNECT_TIMEOUT=5 timeout 10 psql "$1" -XAtqc 'select 1' >/dev/null 2>&1
  else
    (cd "$ROOT" && timeout 10 node -e 'const c = new (require("pg").Client)({ connectionString: process.argv[1], connectionTimeoutMillis: 5000 });
      c.connect().then(() => c.query("select 1")).then(() => process.exit(0), () => process.exit(1));' "$1") >/dev/null 2>&1
  fi
}
external_ok() { [ -n "$EXTERNAL_URL" ] && url_ok "$EXTERNAL_URL"; }

psql_admin() { as_pg psql -XAtq -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U postgres -d postgres "$@"; }
private_ok() { [ -S "$RUN/.s.PGSQL.$PORT" ] && command -v psql >/dev/null && psql_admin -c 'select 1' >/dev/null 2>&1; }

# The postmaster of our data dir, if one is alive (postmaster.pid's first line; a pid reused after a
# crash or reboot by another process does not count).
live_postmaster() {
  local pid
  pid=$(head -1 "$DATA/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-D $DATA " || return 1
  echo "$pid"
}

init_cluster() {
  local bin=$1
  log "creating a test cluster in $DATA"
  rm -rf "$DATA"
  install -d -m 700 -o "$(owner)" "$DATA"
  as_pg "$bin/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust \
    --auth-host=scram-sha-256 --no-sync >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; log "initdb failed"; exit 1; }
  echo "include 'bosun.conf'" >>"$DATA/postgresql.conf"
}

write_conf() {
  # rewritten at each start, so a changed BOSUN_PG_PORT or BOSUN_PG_DIR takes effect
  cat >"$DATA/bosun.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
# test databases live seconds: an autovacuum worker on one only races its forced drop (which may not
# terminate it: "must be a member of the role whose process is being terminated")
autovacuum = off
CONF
  chown "$(owner)" "$DATA/bosun.conf"
}

start_private() {
  need_pkgs
  local bin; bin=$(pg_bin)
  # the unix socket dir is private to the postgres user: local connections are trusted
  install -d -m 700 -o "$(owner)" "$RUN"
  as_pg test -w "$RUN" || { log "the $(owner) user cannot reach $RUN: choose a BOSUN_PG_DIR it can (default /tmp/bosun-pg)"; exit 1; }
  if [ ! -s "$DATA/PG_VERSION" ] || [ ! -f "$DATA/bosun.conf" ]; then
    init_cluster "$bin"
  elif [ "$(cat "$DATA/PG_VERSION")" != "$(basename "$(dirname "$bin")")" ]; then
    log "the test cluster is of PostgreSQL $(cat "$DATA/PG_VERSION"), the server is $(basename "$(dirname "$bin")"): recreating it"
    init_cluster "$bin"
  fi
  write_conf
  local pid
  if pid=$(live_postmaster); then
    # starting up, shutting down or on another port: let it settle, else tell
    for _ in $(seq 1 40); do private_ok && return; live_postmaster >/dev/null || break; sleep 0.25; done
    if live_postmaster >/dev/null; then
      log "a postmaster (pid $pid) runs on $DATA but does not answer on port $PORT; stop it with: scripts/postgres.sh down"
      exit 1
    fi
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "127.0.0.1:$PORT is taken by another server; set BOSUN_PG_PORT to a free port (or BOSUN_TEST_DATABASE_URL)"
    exit 1
  fi
  # left by a crash: a pid file whose process is gone, or now belongs to someone else
  rm -f "$DATA/postmaster.pid" "$RUN/.s.PGSQL.$PORT" "$RUN/.s.PGSQL.$PORT.lock"
  log "starting a private PostgreSQL on 127.0.0.1:$PORT ($DATA)"
  [ ! -f "$RUN/postgres.log" ] || mv -f "$RUN/postgres.log" "$RUN/postgres.log.1"
  touch "$DIR/postgres.started"
  # the postmaster must not inherit the lock (fd 9) nor our stdout (read by `eval "$(… up)"`)
  if ! as_pg "$bin/pg_ctl" -D "$DATA" -l "$RUN/postgres.log" -w -t 60 -s start >&2 9>&-; then
    tail -20 "$RUN/postgres.log" >&2 || true
    if [ -z "${REINIT:-}" ] && ! live_postmaster >/dev/null; then
      # a test cluster with fsync off may not survive a machine crash: start over with a new one
      log "PostgreSQL did not start; recreating the test cluster (the old one is kept in $DIR/data.broken)"
      rm -rf "$DIR/data.broken" && mv "$DATA" "$DIR/data.broken"
      REINIT=1 start_private
      return
    fi
    log "PostgreSQL did not come up"
    exit 1
  fi
  # a fresh server has no test running on it: drop test databases that crashed runs left behind
  psql_admin >/dev/null <<'SQL'
SELECT format('DROP DATABASE %I', datname) FROM pg_database WHERE datname LIKE 'bosun\_t\_%' \gexec
SQL
}

ensure_role_db() {
  psql_admin >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASS';
  ELSE
    ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASS';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $DB OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB') \gexec
SQL
}

stop_private() {
  [ -f "$DIR/postgres.started" ] || return 0
  local pid bin; bin=$(pg_bin)
  if pid=$(live_postmaster); then
    log "stopping the private PostgreSQL"
    as_pg "$bin/pg_ctl" -D "$DATA" -m fast -w -t 30 -s stop >&2 || {
      kill -QUIT "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    }
  fi
  rm -f "$DIR/postgres.started"
}

print_env() { echo "export BOSUN_TEST_DATABASE_URL=$1"; }

lock() { exec 9>"$DIR/.lock"; flock 9; }

case "${1:-up}" in
  up)
    if external_ok; then print_env "$EXTERNAL_URL"; exit 0; fi
    [ -z "$EXTERNAL_URL" ] || [ "$EXTERNAL_URL" = "$PRIVATE_URL" ] ||
      log "no PostgreSQL answers at \$BOSUN_TEST_DATABASE_URL/\$BOSUN_DATABASE_URL; using a private one"
    lock
    private_ok || start_private
    ensure_role_db
    print_env "$PRIVATE_URL"
    ;;
  env)
    if external_ok; then print_env "$EXTERNAL_URL"; else print_env "$PRIVATE_URL"; fi
    ;;
  down)
    lock
    stop_private
    ;;
  *) echo "usage: $0 up|env|down" >&2; exit 2 ;;
esac
