#!/usr/bin/env bash
# Runs every test of Ordo: installs what building and testing needs when missing (a C
# compiler, procps for the tests that signal processes, schemathesis for the OpenAPI
# contract test, Prometheus and promtool for the tests of the alert rules, kubernetes-validate for the
# manifests, Chromium, chromedriver and axe-core for the browser tests of the web consoles, PostgreSQL,
# NATS), starts the servers, then runs the whole workspace's tests against them (each test makes its own
# database and NATS namespace). Settings: README, "Settings of the scripts".
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_build_tools
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || apt_install procps
ensure_schemathesis
ensure_prometheus
ensure_chromium
ensure_axe_core
ensure_kubernetes_validate
# shellcheck source=scripts/services.sh
. scripts/services.sh

# Tests create and drop their own databases, so they connect as a role that may.
export ORDO_TEST_DATABASE_URL=${ORDO_TEST_DATABASE_URL:-postgres://ordo:ordo@127.0.0.1:$ORDO_PG_PORT/postgres}

# Tests make streams in namespaces of their own, which Ordo's authorized server (its users
# hold namespace `ordo` only) does not grant: they get a server without authorization, the
# one on ORDO_NATS_PORT when it is such a server, else one of their own on
# ORDO_TEST_NATS_PORT, started here and stopped at the end. (The tests of the permissions
# start Ordo's configuration on servers of their own.)
if [ -z "${ORDO_TEST_NATS_URL:-}" ]; then
  start_scratch_nats "${ORDO_TEST_NATS_PORT:-$((ORDO_NATS_PORT + 1))}" ORDO_TEST_NATS_PORT
  export ORDO_TEST_NATS_URL=$ORDO_SCRATCH_NATS_URL
fi

cargo build --workspace --all-targets
# Each end-to-end test runs its own `ordo serve` with a pool of Postgres connections; two at
# a time stay well inside a default server's 100 connections.
cargo test --workspace --no-fail-fast -- --test-threads "${ORDO_TEST_THREADS:-2}"
