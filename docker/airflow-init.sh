#!/usr/bin/env bash
# One-shot set-up run by the `airflow-init` compose service before the other Airflow
# components start; safe to run again (every `docker compose up`):
#   1. migrate Airflow's metadata database (PostgreSQL, its own login);
#   2. create the connections when missing (an operator's later edits in the UI are kept):
#      `warehouse` (the warehouse database, its owner's login) and `spark_default` (the
#      Spark master, with the executor sizes of .env as extras);
#   3. set the UI admin's password;
#   4. `reco init`: checks Java, creates the `spark` pool when missing, applies the
#      warehouse schema.
set -euo pipefail

: "${AIRFLOW_ADMIN_USER:?AIRFLOW_ADMIN_USER is not set}"
: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set}"
: "${RECO_WAREHOUSE_URL:?RECO_WAREHOUSE_URL is not set}"
: "${RECO_SPARK_MASTER:?RECO_SPARK_MASTER is not set}"

echo "airflow-init: migrating the metadata database"
airflow db migrate >/dev/null

have_connection() { airflow connections get "$1" -o json >/dev/null 2>&1; }

if have_connection warehouse; then
    echo "airflow-init: connection warehouse exists (kept)"
else
    airflow connections add warehouse --conn-uri "$RECO_WAREHOUSE_URL" \
        --conn-description "The recommendations warehouse the pipeline publishes to" >/dev/null
    echo "airflow-init: connection warehouse created"
fi

if have_connection spark_default; then
    echo "airflow-init: connection spark_default exists (kept)"
else
    extra=$(python - <<'PY'
import json
import os

extra = {"deploy-mode": os.environ.get("RECO_SPARK_DEPLOY_MODE", "client")}
for key, env in (
    ("executor_memory", "RECO_SPARK_EXECUTOR_MEMORY"),
    ("executor_cores", "RECO_SPARK_EXECUTOR_CORES"),
    ("total_executor_cores", "RECO_SPARK_TOTAL_EXECUTOR_CORES"),
    ("driver_memory", "RECO_SPARK_DRIVER_MEMORY"),
):
    if os.environ.get(env):
        extra[key] = os.environ[env]
print(json.dumps(extra))
PY
)
    host="${RECO_SPARK_MASTER%:*}"
    port="${RECO_SPARK_MASTER##*:}"
    airflow connections add spark_default --conn-type spark --conn-host "$host" \
        --conn-port "$port" --conn-extra "$extra" \
        --conn-description "Spark master for the reco jobs, and the executors' sizes" >/dev/null
    echo "airflow-init: connection spark_default created ($RECO_SPARK_MASTER, $extra)"
fi

# The simple auth manager reads passwords from this file and only generates one for
# users that are missing from it.
python - <<'PY'
import json
import os
from pathlib import Path

path = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
path.write_text(json.dumps({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}))
path.chmod(0o600)
print(f"airflow-init: UI login set for user {os.environ['AIRFLOW_ADMIN_USER']!r}")
PY

echo "airflow-init: reco init"
WAREHOUSE_URL="$RECO_WAREHOUSE_URL" reco init
echo "airflow-init: done"
