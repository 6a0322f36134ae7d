#!/usr/bin/env bash
# Runs Ordo on this machine: installs what building and running it needs when missing (a C
# compiler, PostgreSQL, NATS), starts the servers, generates this machine's secrets on first
# run (into $ORDO_STATE_DIR/secrets.env, readable by this user only, reused afterwards),
# builds the `ordo` binary, migrates, loads the demo catalog and serves HTTP on
# 127.0.0.1:8080. Settings: README, "Settings of the scripts".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_build_tools
# shellcheck source=scripts/services.sh
. scripts/services.sh
ensure_secrets

export ORDO_DATABASE_URL=${ORDO_DATABASE_URL:-postgres://ordo:ordo@127.0.0.1:$ORDO_PG_PORT/ordo}
export ORDO_NATS_URL=${ORDO_NATS_URL:-nats://127.0.0.1:$ORDO_NATS_PORT}
if [ "$ORDO_NATS_AUTH" = ordo ]; then
  # Ordo's own server: this process runs every role, as user `ordo`.
  [ "${ORDO_NATS_NAMESPACE:-ordo}" = ordo ] \
    || die "nats/server/ordo.conf grants namespace ordo only; unset ORDO_NATS_NAMESPACE or edit its subjects"
  export ORDO_NATS_USER=${ORDO_NATS_USER:-ordo}
  export ORDO_NATS_PASSWORD=${ORDO_NATS_PASSWORD:-$ORDO_NATS_ORDO_PASSWORD}
fi
# Ordo needs its own password only; the other users' stay out of its environment.
for name in $(compgen -e | grep '^ORDO_NATS_.*_PASSWORD$'); do unset "$name"; done
export ORDO_HTTP_ADDR=${ORDO_HTTP_ADDR:-127.0.0.1:8080}
export ORDO_BOOTSTRAP_ADMIN_EMAIL=${ORDO_BOOTSTRAP_ADMIN_EMAIL:-admin@ordo.local}
# The demo pays with the sandbox provider Ordo serves itself; it signs with Ordo's
# callback secret. A deployment with a real provider leaves it off.
export ORDO_SANDBOX_PROVIDER=${ORDO_SANDBOX_PROVIDER:-true}

cargo build --release -p ordo-gateway --bin ordo
ordo=${CARGO_TARGET_DIR:-target}/release/ordo
"$ordo" migrate
"$ordo" demo-data
echo "admin login: $ORDO_BOOTSTRAP_ADMIN_EMAIL / \$ORDO_BOOTSTRAP_ADMIN_PASSWORD of $ORDO_SECRETS_FILE"
exec "$ordo" serve
