#!/bin/sh
# The PostgreSQL login users of the per-role deployment (README "Database users per role"),
# each with its password from a secret file; pki_migrate becomes the owner of the database.
# The postgres image runs this once, as its superuser, when it initialises an empty data
# volume (/docker-entrypoint-initdb.d). On an existing server, run it yourself with
# POSTGRES_USER/POSTGRES_DB and PG* variables set, or create the users by hand.
# Grants are not set here: `pki migrate --grant-roles` sets them once the tables exist.
# Re-running only resets the passwords.
set -eu
secrets="${PKI_SECRETS_DIR:-/run/secrets}"
for role in migrate api ocsp crl scheduler validator; do
  # The names travel as settings, so the SQL below is fixed text (no quoting by hand).
  psql -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v user="pki_$role" -v password="$(cat "$secrets/db_password_$role")" >/dev/null <<'SQL'
SELECT set_config('pki.role_user', :'user', false), set_config('pki.role_password', :'password', false);
DO $$
BEGIN
  EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', current_setting('pki.role_user'), current_setting('pki.role_password'));
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', current_setting('pki.role_user'), current_setting('pki.role_password'));
END
$$;
SQL
done
# The owner runs migrations (DDL) and grants the others; in PostgreSQL 15 the owner of a
# database also owns its public schema (pg_database_owner).
psql -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v db="$POSTGRES_DB" <<'SQL'
ALTER DATABASE :"db" OWNER TO pki_migrate;
SQL
