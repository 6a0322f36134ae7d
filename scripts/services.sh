#!/usr/bin/env bash
# Makes sure PostgreSQL and NATS (with JetStream) listen on 127.0.0.1 at ORDO_PG_PORT and
# ORDO_NATS_PORT, installing the Debian packages first when they are missing, and that
# Postgres has the `ordo` role and database. Safe to run any number of times; servers that
# already listen are left alone.
#
# PostgreSQL: when nothing listens on ORDO_PG_PORT, the cluster configured for that port is
# started; when there is none (Debian's package made `main` on another port), a cluster
# `ordo` is created on it.
#
# NATS: when nothing listens on ORDO_NATS_PORT, nats-server starts from Ordo's configuration
# (nats/server/ordo.conf: users and permissions, anonymous connections refused) with the
# passwords of $ORDO_STATE_DIR/secrets.env. A server already listening that these scripts
# did not start is used as it is: without authorization when it accepts anonymous
# connections, with the caller's ORDO_NATS_* credentials when it asks for them.
#
# Run it, or source it from another script: then ORDO_NATS_AUTH tells what was found
# (`ordo`: Ordo's own server with its users; `off`: anonymous; `given`: the caller's
# credentials).
set -euo pipefail
ordo_scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$ordo_scripts/lib.sh"
ordo_repo=$(dirname "$ordo_scripts")

# --- PostgreSQL -------------------------------------------------------------------------

# The psql client talks to the server below, whoever started it.
command -v psql >/dev/null 2>&1 || apt_install postgresql-client

# "<version> <name>" of the cluster configured for port $1, if any.
pg_cluster_on_port() {
  pg_lsclusters -h 2>/dev/null | awk -v port="$1" '$3 == port { print $1" "$2; exit }'
}

pg_start_cluster() {
  local version=$1 name=$2
  say "starting PostgreSQL cluster $version/$name on port $ORDO_PG_PORT"
  local started=0
  if [ -d /run/systemd/system ]; then
    as_root pg_ctlcluster "$version" "$name" start && started=1
  else
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start && started=1
  fi
  if [ "$started" -eq 0 ]; then
    tail -n 20 "/var/log/postgresql/postgresql-$version-$name.log" >&2 2>/dev/null || true
    die "PostgreSQL cluster $version/$name did not start (its log is above)"
  fi
}

if ! listening "$ORDO_PG_PORT"; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql
  fi
fi
if ! listening "$ORDO_PG_PORT"; then
  cluster=$(pg_cluster_on_port "$ORDO_PG_PORT")
  if [ -z "$cluster" ]; then
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    existing=$(pg_lsclusters -h 2>/dev/null | awk '{ print $1"/"$2" on port "$3 }' | paste -sd, - | sed 's/,/, /g')
    name=main
    if pg_lsclusters -h 2>/dev/null | awk '{ print $2 }' | grep -qx main; then
      name=ordo
      pg_lsclusters -h | awk -v v="$version" '$1 == v { print $2 }' | grep -qx ordo && name=ordo-$ORDO_PG_PORT
    fi
    if [ -n "$existing" ]; then
      say "no PostgreSQL cluster uses port $ORDO_PG_PORT (ORDO_PG_PORT); there is $existing, left as it is"
    fi
    say "creating PostgreSQL $version cluster $name on port $ORDO_PG_PORT"
    as_root pg_createcluster "$version" "$name" --port "$ORDO_PG_PORT" >/dev/null
    cluster="$version $name"
  fi
  read -r version name <<<"$cluster"
  status=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n { print $4 }')
  case $status in
    online*)
      die "PostgreSQL cluster $version/$name is running on port $ORDO_PG_PORT but 127.0.0.1:$ORDO_PG_PORT refuses connections: check listen_addresses in /etc/postgresql/$version/$name/postgresql.conf"
      ;;
  esac
  pg_start_cluster "$version" "$name"
  wait_listening "$ORDO_PG_PORT" PostgreSQL
fi

# Runs SQL as a superuser: over TCP where trust auth allows it, else as the postgres OS user.
pg_super() {
  if psql -h 127.0.0.1 -p "$ORDO_PG_PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 </dev/null; then
    psql -h 127.0.0.1 -p "$ORDO_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tAq "$@"
  else
    as_root su postgres -c "psql -p $ORDO_PG_PORT -d postgres -v ON_ERROR_STOP=1 -tAq $(printf '%q ' "$@")"
  fi
}

# The role and database of the local machine. Its password is no secret: Postgres listens on
# 127.0.0.1 only; a real deployment sets ORDO_DATABASE_URL to its own.
if ! psql "postgres://ordo:ordo@127.0.0.1:$ORDO_PG_PORT/ordo" -tAc 'select 1' >/dev/null 2>&1 </dev/null; then
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
  psql "postgres://ordo:ordo@127.0.0.1:$ORDO_PG_PORT/ordo" -tAc 'select 1' >/dev/null </dev/null \
    || die "cannot connect as ordo to 127.0.0.1:$ORDO_PG_PORT (check pg_hba.conf allows password logins)"
fi

# --- NATS with JetStream ----------------------------------------------------------------

ordo_nats_pid_file=$ORDO_STATE_DIR/nats-server.pid

# The INFO line a NATS server sends first to every client.
nats_info() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    IFS= read -r -t 3 line <&3 || true
    printf '%s' "${line:-}"
  ) 2>/dev/null
}

# Whether the server on the port is the one these scripts started from nats/server/ordo.conf.
nats_is_ordos() {
  local pid
  pid=$(cat "$ordo_nats_pid_file" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "ordo.conf .*-p $ORDO_NATS_PORT "
}

if listening "$ORDO_NATS_PORT"; then
  info=$(nats_info "$ORDO_NATS_PORT")
  case $info in
    INFO*) ;;
    *) die "something listens on 127.0.0.1:$ORDO_NATS_PORT but it is not a NATS server; choose another ORDO_NATS_PORT" ;;
  esac
  case $info in
    *'"auth_required":true'*)
      if nats_is_ordos; then
        ensure_secrets
        ORDO_NATS_AUTH=ordo
      elif [ -n "${ORDO_NATS_USER:-}${ORDO_NATS_CREDENTIALS:-}${ORDO_NATS_NKEY_SEED_FILE:-}" ]; then
        ORDO_NATS_AUTH=given
      else
        die "the NATS server on 127.0.0.1:$ORDO_NATS_PORT asks for credentials and was not started by these scripts: set ORDO_NATS_USER and ORDO_NATS_PASSWORD (or ORDO_NATS_CREDENTIALS, or ORDO_NATS_NKEY_SEED_FILE), or choose a free ORDO_NATS_PORT where Ordo starts its own server"
      fi
      ;;
    *)
      ORDO_NATS_AUTH=off
      say "NATS on 127.0.0.1:$ORDO_NATS_PORT accepts anonymous connections and was not started by these scripts: using it as it is, with authorization OFF (for Ordo's users and permissions, stop it or choose a free ORDO_NATS_PORT)"
      ;;
  esac
  case $info in
    *'"jetstream":true'*) ;;
    *) say "warning: the NATS server on 127.0.0.1:$ORDO_NATS_PORT does not report JetStream (start it with -js)" ;;
  esac
else
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    apt_install nats-server
  fi
  server=$(command -v nats-server || echo /usr/sbin/nats-server)
  ensure_secrets
  mkdir -p "$ORDO_STATE_DIR/nats"
  say "starting nats-server with JetStream and Ordo's users on 127.0.0.1:$ORDO_NATS_PORT (data in $ORDO_STATE_DIR/nats, log $ORDO_STATE_DIR/nats-server.log)"
  # The passwords reach the server through its environment, quoted: nats-server parses a
  # variable as a configuration value, and a password with a leading digit would be a number.
  quoted=()
  for name in $(compgen -e | grep '^ORDO_NATS_.*_PASSWORD$'); do
    quoted+=("$name=\"${!name}\"")
  done
  nohup env "${quoted[@]}" "$server" -c "$ordo_repo/nats/server/ordo.conf" -p "$ORDO_NATS_PORT" -a 127.0.0.1 \
    -js -sd "$ORDO_STATE_DIR/nats" -P "$ordo_nats_pid_file" \
    >>"$ORDO_STATE_DIR/nats-server.log" 2>&1 </dev/null &
  wait_listening "$ORDO_NATS_PORT" nats-server "$ORDO_STATE_DIR/nats-server.log"
  ORDO_NATS_AUTH=ordo
fi
export ORDO_NATS_AUTH

case $ORDO_NATS_AUTH in
  ordo) nats_auth="users and passwords of $ORDO_SECRETS_FILE" ;;
  given) nats_auth="the credentials given in ORDO_NATS_*" ;;
  *) nats_auth="no authorization" ;;
esac
# A NATS server where any namespace may be used, for tests and benchmarks: the one on
# ORDO_NATS_PORT when it has no authorization, else a server without authorization on port
# $1 (the setting named $2), started for the calling script and stopped when it exits.
# Sets ORDO_SCRATCH_NATS_URL.
start_scratch_nats() {
  local port=$1 setting=$2
  if [ "$ORDO_NATS_AUTH" = off ]; then
    ORDO_SCRATCH_NATS_URL=nats://127.0.0.1:$ORDO_NATS_PORT
    return
  fi
  listening "$port" && die "port $port ($setting) is taken; choose a free one for a NATS server without authorization"
  local server
  server=$(command -v nats-server || echo /usr/sbin/nats-server)
  [ -x "$server" ] || apt_install nats-server
  ordo_scratch_store=$(mktemp -d "${TMPDIR:-/tmp}/ordo-nats.XXXXXX")
  say "starting a NATS server without authorization on 127.0.0.1:$port for this run (data in $ordo_scratch_store)"
  "$server" -a 127.0.0.1 -p "$port" -js -sd "$ordo_scratch_store" \
    >"$ordo_scratch_store/nats-server.log" 2>&1 </dev/null &
  ordo_scratch_pid=$!
  trap stop_scratch_nats EXIT
  wait_listening "$port" "nats-server" "$ordo_scratch_store/nats-server.log"
  ORDO_SCRATCH_NATS_URL=nats://127.0.0.1:$port
}

# Stops the server start_scratch_nats started, if any, and removes its data.
stop_scratch_nats() {
  if [ -n "${ordo_scratch_pid:-}" ]; then
    kill "$ordo_scratch_pid" 2>/dev/null || true
    wait "$ordo_scratch_pid" 2>/dev/null || true
    rm -rf "$ordo_scratch_store"
    ordo_scratch_pid=
  fi
}

say "PostgreSQL on 127.0.0.1:$ORDO_PG_PORT and NATS on 127.0.0.1:$ORDO_NATS_PORT ($nats_auth) are ready"
