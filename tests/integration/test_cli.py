"""The `reco` command as a user runs it: clear one-line errors, nothing published."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reco.publishing import warehouse
from tests.support.psql import psql_client
from tests.support.warehouse_state import published_state

RECO = str(Path(sys.executable).parent / "reco")
SEEDED = "cli-test-seed"


def reco(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RECO, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def published(warehouse_url: str) -> Iterator[str]:
    """A warehouse with lists in reco.recommendations for the refused commands to leave
    alone: those found there, else a few rows seeded for this module and removed after it
    (no reco.model_runs row, so no run's gate sees them as a champion)."""
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reco.recommendations")
        seed = cur.fetchone()[0] == 0
        if seed:
            cur.execute(
                "INSERT INTO reco.recommendations "
                "(user_id, item_id, rank, score, model_version, generated_at) "
                "SELECT u, 100 * u + r, r, 1.0 / r, %s, now() "
                "FROM generate_series(1, 5) u, generate_series(1, 3) r",
                (SEEDED,),
            )
    yield warehouse_url
    if seed:
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM reco.recommendations WHERE model_version = %s", (SEEDED,))


def assert_one_clear_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_missing_dataset(tmp_path: Path, published: str) -> None:
    before = published_state(published)
    proc = reco("run", "--dataset", str(tmp_path / "nowhere"))
    assert_one_clear_error(proc, "dataset path", "nowhere does not exist")
    assert published_state(published) == before


def test_unknown_format(tmp_path: Path) -> None:
    proc = reco("run", "--dataset", str(tmp_path), "--format", "xlsx")
    assert proc.returncode == 2
    assert "invalid choice: 'xlsx'" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_file(tmp_path: Path, published: str) -> None:
    before = published_state(published)
    (tmp_path / "u.data").write_bytes(b"")
    proc = reco("run", "--dataset", str(tmp_path))
    assert_one_clear_error(proc, "u.data is empty")
    assert published_state(published) == before


def test_unreachable_warehouse_url(tmp_path: Path, ml100k: Path, published: str) -> None:
    before = published_state(published)
    proc = reco(
        "run",
        "--dataset",
        str(ml100k),
        env={"WAREHOUSE_URL": "postgresql://reco:pw@127.0.0.1:9/warehouse"},
    )
    assert_one_clear_error(proc, "cannot reach the warehouse PostgreSQL at 127.0.0.1:9/warehouse")
    assert "pw@" not in proc.stderr
    assert published_state(published) == before  # nor did it fall back to the embedded one


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
    # The URL as psql takes it (the psql on PATH, else the embedded server's own client).
    psql = subprocess.run(
        [psql_client(), url.stdout.strip(), "-X", "-tAc", "SELECT to_regclass('reco.model_runs')"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == "reco.model_runs"


def test_step_help_is_helpful() -> None:
    proc = reco("train", "--help")
    assert proc.returncode == 0
    assert "--folds" in proc.stdout and "cross-validation" in proc.stdout.lower()
