#!/usr/bin/env bash
# Runs a command with PKI_TEST_DATABASE_URL pointing at a real PostgreSQL server.
# If the variable is already set, that server is used; otherwise a private, throwaway
# cluster is started on 127.0.0.1 for the duration of the command and removed after.
set -euo pipefail

if [[ -n "${PKI_TEST_DATABASE_URL:-}" ]]; then exec "$@"; fi

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
if [[ ! -x "$PG_BIN/initdb" ]]; then
  echo "PostgreSQL server binaries not found; install them (apt-get install postgresql) or set PKI_TEST_DATABASE_URL" >&2
  exit 1
fi
PORT="${PKI_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
DIR="$(mktemp -d /tmp/pki-test-pg.XXXXXX)"
as_pg=()
if [[ "$(id -u)" == 0 ]]; then
  # initdb refuses to run as root: run the cluster as the postgres system user.
  chown postgres "$DIR"
  as_pg=(runuser -u postgres --)
fi
cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
  -o "-h 127.0.0.1 -p $PORT -k $DIR -c max_connections=200 -c fsync=off -c synchronous_commit=off" start >/dev/null
export PKI_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
echo "test PostgreSQL on 127.0.0.1:$PORT" >&2
"$@"
