#!/usr/bin/env bash
# The fault suite (RELIABILITY.md): for each fault, a three-node nats-server cluster on
# localhost (streams with three replicas) and a private PostgreSQL cluster (initdb/pg_ctl on
# a free port, in a scratch directory; the shared server on 5432 is never touched), one
# `ordo serve` under a steady load of checkouts, the fault applied and healed mid-load, and
# the tally of every order placed: completed, lost, doubled, time to recover.
# Usage: bash scripts/fault-suite.sh [nats-node-loss] [postgres-restart] [nats-wiped-store]
# Settings: FAULT_SHOPPERS (concurrent shoppers, 4), FAULT_HOLD (seconds a fault lasts, 10),
# NATS_SERVER (nats-server binary), PG_BIN (directory of initdb and pg_ctl).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_build_tools
command -v "${NATS_SERVER:-nats-server}" >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] ||
  apt_install nats-server
[ -n "${PG_BIN:-}" ] || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || apt_install postgresql
# The same build as the test command's (the suite is a binary of the tests crate).
cargo build -q --workspace --all-targets
ORDO_BIN=$target/debug/ordo "$target/debug/fault_suite" "$@"
