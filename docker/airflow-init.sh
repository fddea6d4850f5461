#!/usr/bin/env bash
# One-shot set-up run by the `airflow-init` compose service before the other Airflow
# components start: migrate the metadata database (PostgreSQL), set the UI admin password,
# then `reco init` (checks Java, makes sure `spark_default` exists -- the
# AIRFLOW_CONN_SPARK_DEFAULT environment variable takes precedence over it -- and applies
# the warehouse schema at $WAREHOUSE_URL). Safe to run again.
set -euo pipefail

: "${AIRFLOW_ADMIN_USER:?AIRFLOW_ADMIN_USER is not set}"
: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set}"
: "${WAREHOUSE_URL:?WAREHOUSE_URL is not set}"

echo "airflow-init: migrating the metadata database"
airflow db migrate

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
reco init
echo "airflow-init: done"
