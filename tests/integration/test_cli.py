"""The `reco` command as a user runs it: clear one-line errors, nothing published."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reco.publishing import warehouse

RECO = str(Path(sys.executable).parent / "reco")


def reco(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RECO, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def published_count(url: str) -> int:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reco.recommendations")
        return cur.fetchone()[0]


def assert_one_clear_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_missing_dataset(tmp_path: Path, warehouse_url: str) -> None:
    before = published_count(warehouse_url)
    proc = reco("run", "--dataset", str(tmp_path / "nowhere"))
    assert_one_clear_error(proc, "dataset path", "nowhere does not exist")
    assert published_count(warehouse_url) == before


def test_unknown_format(tmp_path: Path) -> None:
    proc = reco("run", "--dataset", str(tmp_path), "--format", "xlsx")
    assert proc.returncode == 2
    assert "invalid choice: 'xlsx'" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_file(tmp_path: Path, warehouse_url: str) -> None:
    before = published_count(warehouse_url)
    (tmp_path / "u.data").write_bytes(b"")
    proc = reco("run", "--dataset", str(tmp_path))
    assert_one_clear_error(proc, "u.data is empty")
    assert published_count(warehouse_url) == before


def test_unreachable_warehouse_url(tmp_path: Path, ml100k: Path) -> None:
    proc = reco(
        "run",
        "--dataset",
        str(ml100k),
        env={"WAREHOUSE_URL": "postgresql://reco:pw@127.0.0.1:9/warehouse"},
    )
    assert_one_clear_error(proc, "cannot reach the warehouse PostgreSQL at 127.0.0.1:9/warehouse")
    assert "pw@" not in proc.stderr


def test_generate_and_warehouse_url(tmp_path: Path) -> None:
    proc = reco(
        "generate",
        "--users",
        "50",
        "--items",
        "80",
        "--scale",
        "1-10",
        "--out",
        str(tmp_path / "syn"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "scale 1-10" in proc.stdout
    assert (tmp_path / "syn" / "ratings.csv").exists()
    url = reco("warehouse-url")
    assert url.returncode == 0 and url.stdout.startswith("postgresql://")
    psql = subprocess.run(
        ["psql", url.stdout.strip(), "-tAc", "SELECT 1"], capture_output=True, text=True
    )
    if psql.returncode != 0 and "not found" in psql.stderr:
        pytest.skip("psql client not installed")
    assert psql.stdout.strip() == "1"


def test_step_help_is_helpful() -> None:
    proc = reco("train", "--help")
    assert proc.returncode == 0
    assert "--folds" in proc.stdout and "cross-validation" in proc.stdout.lower()
