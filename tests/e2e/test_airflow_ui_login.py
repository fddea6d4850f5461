"""`make airflow` (``reco airflow-ui``) keeps the UI login on and prints a generated
password that works; no password is stored in the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from servers import background, free_port, wait_for

from spark_jobs import cli, config


def test_airflow_ui_prints_a_generated_password_that_logs_in(tmp_path: Path) -> None:
    cli.init_airflow()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "airflow-ui.log"
    reco = str(Path(sys.executable).parent / "reco")
    env = cli.project_env()
    env["AIRFLOW__API__BASE_URL"] = base
    with background([reco, "airflow-ui", "--port", str(port)], log, env):
        wait_for(lambda: "password:" in log.read_text(errors="replace"), 240, "the login", [log])
        printed = log.read_text(errors="replace")
        match = re.search(r"login: (\S+)\s+password: (\S+)", printed)
        assert match, printed[-2000:]
        user, password = match.groups()
        assert user == "admin" and password != "admin" and len(password) >= 12
        assert f"Airflow UI: http://localhost:{port}" in printed
        wait_for(
            lambda: httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200,
            240,
            "the api-server",
            [log],
        )
        assert httpx.get(f"{base}/api/v2/dags", timeout=30).status_code == 401
        token = httpx.post(
            f"{base}/auth/token", json={"username": user, "password": password}, timeout=30
        )
        assert token.status_code == 201, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        wait_for(
            lambda: (
                httpx.get(
                    f"{base}/api/v2/dags/recommendations", headers=headers, timeout=30
                ).status_code
                == 200
            ),
            240,
            "the DAGs to be parsed",
            [log],
        )
    # The generated password lives in the local Airflow home, never in the project files.
    password_file = config.AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    assert password in password_file.read_text()
    root = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked
    assert not any(password in (root / p).read_text(errors="ignore") for p in tracked)
