#!/usr/bin/env bash
# The flash-sale benchmark: starts N `ordo serve` processes (release build) sharing one fresh
# database and NATS namespace, runs the load generator against all of them, prints the peak
# resident memory of each, stops them.
# Usage: bash scripts/bench-flash-sale.sh [processes] [buyers] [accounts] [seats]
set -euo pipefail
cd "$(dirname "$0")/.."
processes=${1:-1}; buyers=${2:-10000}; accounts=${3:-300}; seats=${4:-100}
target=${CARGO_TARGET_DIR:-target}
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_build_tools
# shellcheck source=scripts/services.sh
. scripts/services.sh
# Its own namespace: on a NATS server without authorization (see scripts/test.sh).
start_scratch_nats "${ORDO_BENCH_NATS_PORT:-$((ORDO_NATS_PORT + 2))}" ORDO_BENCH_NATS_PORT
cargo build --release -q -p ordo-gateway --bin ordo -p ordo-tests --bin flash_sale
db=ordo_flash_$$
server_url=postgres://ordo:ordo@127.0.0.1:$ORDO_PG_PORT/ordo
psql -q "$server_url" -c "CREATE DATABASE $db"
export ORDO_DATABASE_URL=postgres://ordo:ordo@127.0.0.1:$ORDO_PG_PORT/$db
export ORDO_NATS_URL=$ORDO_SCRATCH_NATS_URL
export ORDO_NATS_NAMESPACE=flash$$ ORDO_LOG=warn ORDO_DATABASE_MAX_CONNECTIONS=32
# Secrets of this run only; the load generator logs in as the bootstrap admin.
ORDO_JWT_SECRET=$(random_secret) ORDO_TICKET_SECRET=$(random_secret) ORDO_PAYMENT_SECRET=$(random_secret)
export ORDO_JWT_SECRET ORDO_TICKET_SECRET ORDO_PAYMENT_SECRET
export ORDO_BOOTSTRAP_ADMIN_EMAIL=admin@example.com ORDO_BOOTSTRAP_ADMIN_PASSWORD=admin-password-1
# The load comes from one address: rate limits are configured to let it through.
export ORDO_RATE_LIMIT_PER_IP=0 ORDO_RATE_LIMIT_PER_USER=0
"$target/release/ordo" migrate >/dev/null
pids=(); urls=()
for i in $(seq 1 "$processes"); do
  port=$((18430 + i))
  ORDO_HTTP_ADDR=127.0.0.1:$port "$target/release/ordo" serve >/dev/null 2>&1 &
  pids+=($!); urls+=("http://127.0.0.1:$port")
done
# The peak resident memory (VmHWM) of each `ordo serve`, read just before it is stopped.
print_peak_memory() {
  local pid kib
  for pid in "${pids[@]}"; do
    kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    if [ -n "$kib" ]; then
      awk -v pid="$pid" -v kib="$kib" 'BEGIN { printf "peak resident memory of ordo serve pid %s (VmHWM): %.1f MiB\n", pid, kib / 1024 }'
    else
      echo "peak resident memory of ordo serve pid $pid (VmHWM): unknown (not running)"
    fi
  done
}
cleanup() {
  print_peak_memory
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  psql -q "$server_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  stop_scratch_nats
}
trap cleanup EXIT
for url in "${urls[@]}"; do
  for _ in $(seq 1 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
done
"$target/release/flash_sale" "$(IFS=,; echo "${urls[*]}")" "$buyers" "$accounts" "$seats"
