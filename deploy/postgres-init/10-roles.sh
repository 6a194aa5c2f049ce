#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d):
# vagoth and Temporal each get a role of their own, neither a superuser.
set -euo pipefail
: "${VAGOTH_DB_PASSWORD:?set VAGOTH_DB_PASSWORD}"
: "${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v vagoth_pw="$VAGOTH_DB_PASSWORD" -v temporal_pw="$TEMPORAL_DB_PASSWORD" <<'SQL'
-- vagoth owns its registry and nothing else.
CREATE ROLE vagoth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'vagoth_pw';
CREATE DATABASE vagoth OWNER vagoth;
REVOKE ALL ON DATABASE vagoth FROM PUBLIC;
-- Temporal's auto-setup creates its `temporal` and `temporal_visibility` databases itself.
CREATE ROLE temporal LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD :'temporal_pw';
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname vagoth \
  -c 'REVOKE CREATE ON SCHEMA public FROM PUBLIC' -c 'ALTER SCHEMA public OWNER TO vagoth'
