"""docker-compose.yml: valid Compose, the full stack, and no secret outside .env.

No Docker needed: the file is checked against the official Compose Specification schema
(vendored in tests/fixtures/compose-spec.json, from compose-spec/compose-spec) and read
with PyYAML (which resolves the ``<<: *anchor`` merges the way Compose does).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"

AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
SPARK_SERVICES = ("spark-master", "spark-worker-1", "spark-worker-2", "spark-history")
REQUIRED_SERVICES = {"postgres", *SPARK_SERVICES, *AIRFLOW_SERVICES}
SECRET_WORDS = ("PASSWORD", "SECRET", "KEY")
# ${VAR}, ${VAR:-default}, ${VAR:?message}; not $${VAR}, which is escaped for the container.
VAR_USE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
WHOLE_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}")
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"[A-Za-z_][A-Za-z0-9_]*=", line)
    )
    return {name: value for name, value in pairs}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> str:
    cmd = service.get("command") or ""
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def compose_validator() -> Validator:
    schema = json.loads(SCHEMA.read_text())
    # The spec says "https://json-schema.org/draft-07/schema"; jsonschema only maps the
    # canonical http://...# spelling (else it warns and falls back to the latest draft).
    uri = schema["$schema"].replace("https://", "http://", 1).rstrip("#") + "#"
    cls = validator_for({"$schema": uri})
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(document: dict[str, Any]) -> list[str]:
    errors = compose_validator().iter_errors(document)
    return sorted(f"{e.json_path}: {e.message}" for e in errors)


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_schema_validation_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["helthcheck"] = {"test": "true"}
    broken["services"]["spark-worker-1"]["depends_on"]["spark-master"]["condition"] = "up"
    errors = schema_errors(broken)
    assert any("postgres" in e and "helthcheck" in e for e in errors), errors
    assert any("spark-worker-1" in e for e in errors), errors


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert services.keys() >= REQUIRED_SERVICES
    # One image for every service, PostgreSQL included (no registry image to pull).
    images = {svc["image"] for svc in services.values()}
    assert images == {"${RECO_IMAGE:-reco-pipeline:local}"}
    assert "docker/postgres-entrypoint.sh" in " ".join(services["postgres"]["entrypoint"])


def test_every_service_runs_unprivileged_and_publishes_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        assert svc["user"] == "50000:0", name
        for port in svc.get("ports") or []:
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"


def test_the_data_volume_is_at_one_path_for_drivers_executors_and_history(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in (*AIRFLOW_SERVICES, "airflow-init", *SPARK_SERVICES[1:]):
        assert "reco-data:/opt/reco-data" in services[name]["volumes"], name


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    long_running = {name for name, svc in services.items() if svc.get("restart") != "no"}
    assert long_running >= REQUIRED_SERVICES
    assert "airflow-init" in services and "airflow-init" not in long_running
    for name in long_running:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
    assert "/api/v2/monitor/health" in str(services["airflow-apiserver"]["healthcheck"])


def test_healthy_conditions_point_at_services_with_healthchecks(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
            if spec["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is not one-shot"


def test_airflow_runs_local_executor_on_postgres(services: dict[str, dict[str, Any]]) -> None:
    for name, subcommand in {**AIRFLOW_SERVICES, "airflow-init": "init"}.items():
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/reco/dags", name
        # Its own login, not the server's superuser.
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
            "postgresql+psycopg2://${AIRFLOW_DB_USER}:${AIRFLOW_DB_PASSWORD}@postgres:5432/airflow"
        )
        assert subcommand in command(services[name]), name
    init = environment(services["airflow-init"])
    assert init["RECO_WAREHOUSE_URL"].endswith("@postgres:5432/warehouse")
    assert init["RECO_SPARK_MASTER"] == "spark://spark-master:7077"


def test_spark_services_run_the_standalone_cluster(services: dict[str, dict[str, Any]]) -> None:
    master = command(services["spark-master"])
    assert "org.apache.spark.deploy.master.Master" in master and "--port 7077" in master
    for name in ("spark-worker-1", "spark-worker-2"):
        worker = command(services[name])
        assert "org.apache.spark.deploy.worker.Worker" in worker
        assert "spark://spark-master:7077" in worker
    history = services["spark-history"]
    assert "org.apache.spark.deploy.history.HistoryServer" in command(history)
    assert "/opt/reco-data/lake/spark-events" in environment(history)["SPARK_HISTORY_OPTS"]


def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if any(word in key.upper() for word in SECRET_WORDS):
                assert WHOLE_REF.fullmatch(value), f"{name}: {key} is not a ${{VAR}} reference"
            for password in URL_PASSWORD.findall(value):
                assert WHOLE_REF.fullmatch(password), f"{name}: {key} embeds a password"


def test_every_variable_is_documented_in_env_example() -> None:
    documented = env_example()
    text = COMPOSE.read_text()
    used = set(VAR_USE.findall(text))
    assert used, "the compose file should take its settings from the environment"
    assert used <= documented.keys(), f"missing from .env.example: {used - documented.keys()}"
    for name, value in documented.items():
        if any(word in name for word in SECRET_WORDS):
            assert value in ("", "change-me"), f".env.example: {name} must be a placeholder"
        if value == "change-me":
            assert f"${{{name}:?" in text, f"{name} should be required with ${{{name}:?...}}"
