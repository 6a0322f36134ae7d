#!/usr/bin/env bash
# Makes database $1 for the insert benchmarks: Ordo's migrations (those numbered up to $2,
# all when absent) and `plain_events`, a table of the events table's shape without triggers.
# Usage: tests/pgbench/setup.sh DATABASE [LAST_MIGRATION_NUMBER]
set -euo pipefail
db=$1
last=${2:-9999}
migrations="$(dirname "$0")/../../schemas/migrations"
psql() { command psql -q -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for file in "$migrations"/*.sql; do
  number=$(basename "$file" | cut -c1-4)
  [ "$((10#$number))" -le "$((10#$last))" ] || continue
  psql -d "$db" -f "$file" > /dev/null
done
psql -d "$db" -c "CREATE TABLE plain_events (LIKE events INCLUDING ALL)"
