#!/bin/sh
# Recreates database $DB (default ecto_size) from migrations/postgres and fills it:
#   scripts/pgsize/run.sh [psql -v options, e.g. -v scale=0.1]
set -eu
cd "$(dirname "$0")/../.."
DB=${DB:-ecto_size}
PSQL="psql -h ${PGHOST:-127.0.0.1} -U ${PGUSER:-postgres} -X -q -v ON_ERROR_STOP=1"
$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
for f in migrations/postgres/*/up.sql; do
  $PSQL -d "$DB" -f "$f" >/dev/null
done
time psql -h ${PGHOST:-127.0.0.1} -U ${PGUSER:-postgres} -X -v ON_ERROR_STOP=1 -d "$DB" "$@" -f scripts/pgsize/fill.sql
