#!/usr/bin/env bash
# Runs every test of Ordo: installs and starts PostgreSQL and NATS when missing, then runs
# the whole workspace's tests against them (each test makes its own database and streams).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || {
  echo "ordo: cargo (the Rust toolchain) is needed; install it with rustup first" >&2
  exit 1
}
bash scripts/services.sh

# Tests create and drop their own databases, so they connect as a role that may.
export ORDO_TEST_DATABASE_URL=${ORDO_TEST_DATABASE_URL:-postgres://ordo:ordo@127.0.0.1:5432/postgres}
export ORDO_TEST_NATS_URL=${ORDO_TEST_NATS_URL:-nats://127.0.0.1:4222}
cargo build --workspace --all-targets
# Each end-to-end test runs its own `ordo serve` with a pool of Postgres connections; two at
# a time stay well inside a default server's 100 connections.

cargo test --workspace --no-fail-fast -- --test-threads "${ORDO_TEST_THREADS:-2}"
