#!/usr/bin/env bash
# Runs Ordo on this machine: installs and starts PostgreSQL and NATS when missing, builds
# the `ordo` binary, migrates, loads the demo catalog and serves HTTP on 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || {
  echo "ordo: cargo (the Rust toolchain) is needed; install it with rustup first" >&2
  exit 1
}
bash scripts/services.sh

export ORDO_DATABASE_URL=${ORDO_DATABASE_URL:-postgres://ordo:ordo@127.0.0.1:5432/ordo}
export ORDO_NATS_URL=${ORDO_NATS_URL:-nats://127.0.0.1:4222}
export ORDO_HTTP_ADDR=${ORDO_HTTP_ADDR:-127.0.0.1:8080}
export ORDO_BOOTSTRAP_ADMIN_EMAIL=${ORDO_BOOTSTRAP_ADMIN_EMAIL:-admin@ordo.local}
export ORDO_BOOTSTRAP_ADMIN_PASSWORD=${ORDO_BOOTSTRAP_ADMIN_PASSWORD:-ordo-admin-2026}
# A fixed key for the demo so that tokens survive restarts; set your own in production.
export ORDO_JWT_SECRET=${ORDO_JWT_SECRET:-demo-only-secret-change-me-0123456789abcdef}
export ORDO_PAYMENT_SECRET=${ORDO_PAYMENT_SECRET:-demo-only-payment-secret-0123456789}
export ORDO_TICKET_SECRET=${ORDO_TICKET_SECRET:-demo-only-ticket-secret-0123456789}



cargo build --release -p ordo-gateway --bin ordo
ordo=${CARGO_TARGET_DIR:-target}/release/ordo
"$ordo" migrate
"$ordo" demo-data
echo "admin login: $ORDO_BOOTSTRAP_ADMIN_EMAIL / $ORDO_BOOTSTRAP_ADMIN_PASSWORD"
exec "$ordo" serve
