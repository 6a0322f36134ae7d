#!/usr/bin/env bash
# Makes sure PostgreSQL and NATS (with JetStream) listen on localhost, installing the Debian
# packages first when they are missing, and that Postgres has the `ordo` role and database.
# Safe to run any number of times; servers that already listen are left alone.
set -euo pipefail

PG_PORT=${ORDO_PG_PORT:-5432}
NATS_PORT=${ORDO_NATS_PORT:-4222}
STATE_DIR=${ORDO_STATE_DIR:-$HOME/.local/state/ordo}

say() { printf 'ordo-setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_listening() {
  local port=$1 what=$2
  for _ in $(seq 1 100); do
    listening "$port" && return 0
    sleep 0.2
  done
  die "$what did not start listening on 127.0.0.1:$port"
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------
if ! listening "$PG_PORT"; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "installing PostgreSQL (Debian package postgresql)"
    apt_install postgresql
  fi
  if ! listening "$PG_PORT"; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
      say "creating PostgreSQL $version cluster main"
      as_root pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
    fi
    cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
    say "starting PostgreSQL cluster $cluster"
    # shellcheck disable=SC2086
    as_root pg_ctlcluster --skip-systemctl-redirect $cluster start || as_root pg_ctlcluster $cluster start
  fi
  wait_listening "$PG_PORT" PostgreSQL
fi

# Runs SQL as a superuser: over TCP where trust auth allows it, else as the postgres OS user.
pg_super() {
  if psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 </dev/null; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tAq "$@"
  else
    as_root su postgres -c "psql -p $PG_PORT -d postgres -v ON_ERROR_STOP=1 -tAq $(printf '%q ' "$@")"
  fi
}

if ! psql "postgres://ordo:ordo@127.0.0.1:$PG_PORT/ordo" -tAc 'select 1' >/dev/null 2>&1 </dev/null; then
  say "creating PostgreSQL role and database ordo"
  pg_super -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ordo') THEN
        CREATE ROLE ordo LOGIN PASSWORD 'ordo' CREATEDB;
      ELSE
        ALTER ROLE ordo LOGIN PASSWORD 'ordo' CREATEDB;
      END IF;
    END \$\$;"
  if [ -z "$(pg_super -c "SELECT 1 FROM pg_database WHERE datname = 'ordo'")" ]; then
    pg_super -c "CREATE DATABASE ordo OWNER ordo"
  fi
  psql "postgres://ordo:ordo@127.0.0.1:$PG_PORT/ordo" -tAc 'select 1' >/dev/null </dev/null \
    || die "cannot connect as ordo to 127.0.0.1:$PG_PORT (check pg_hba.conf allows password logins)"
fi

# --- NATS with JetStream ----------------------------------------------------------------
if ! listening "$NATS_PORT"; then
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    say "installing NATS (Debian package nats-server)"
    apt_install nats-server
  fi
  server=$(command -v nats-server || echo /usr/sbin/nats-server)
  mkdir -p "$STATE_DIR/nats"
  say "starting nats-server with JetStream on 127.0.0.1:$NATS_PORT (data in $STATE_DIR/nats)"
  nohup "$server" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$STATE_DIR/nats" \
    >>"$STATE_DIR/nats-server.log" 2>&1 </dev/null &
  wait_listening "$NATS_PORT" nats-server
fi

# JetStream must be on: the monitoring port is optional, so ask the server itself.
if command -v nats >/dev/null 2>&1; then
  nats --server "nats://127.0.0.1:$NATS_PORT" account info >/dev/null 2>&1 \
    || say "warning: the NATS server on port $NATS_PORT does not report JetStream"
fi
say "PostgreSQL on 127.0.0.1:$PG_PORT and NATS on 127.0.0.1:$NATS_PORT are ready"
