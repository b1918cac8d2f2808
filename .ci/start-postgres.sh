#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1:55432 for the tests (Debian's postgresql package).
# Prints the URL to use as TEST_POSTGRES_URL.
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=${PGDATA_DIR:-/tmp/dashboard-pg}
PORT=${PGPORT_TEST:-55432}
if ! pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  rm -rf "$PGDATA" && mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA"
  su postgres -c "$PGBIN/initdb -D $PGDATA -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8" >/dev/null
  su postgres -c "$PGBIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' -w start" >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
