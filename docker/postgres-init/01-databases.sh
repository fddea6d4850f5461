#!/usr/bin/env bash
# Runs once, when the postgres service starts on an empty data volume
# (/docker-entrypoint-initdb.d). Creates:
#   airflow    Airflow's metadata database, owned by $POSTGRES_USER
#   warehouse  the recommendations warehouse, owned by $WAREHOUSE_USER (a login role
#              created here with $WAREHOUSE_PASSWORD); `reco init` creates the schema
# To re-run it, remove the volume: docker compose down -v
set -eo pipefail

: "${WAREHOUSE_USER:?WAREHOUSE_USER is not set}"
: "${WAREHOUSE_PASSWORD:?WAREHOUSE_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    -v wh_user="$WAREHOUSE_USER" -v wh_password="$WAREHOUSE_PASSWORD" <<'SQL'
CREATE DATABASE airflow;
CREATE ROLE :"wh_user" LOGIN PASSWORD :'wh_password';
CREATE DATABASE warehouse OWNER :"wh_user";
REVOKE ALL ON DATABASE warehouse FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE warehouse TO :"wh_user";
SQL
