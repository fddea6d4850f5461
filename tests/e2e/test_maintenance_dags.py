"""The rollback and maintenance DAGs, run the way `reco run` runs a DAG (dag.test, real
tasks against the real embedded warehouse): the form's model_version restores that
version's lists; a pruned one fails the run and changes nothing; the maintenance DAG's
dry run names what retention would delete and why the rest stays."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from reco import config
from reco.cli import environment
from reco.publishing import publish
from tests.support.published import live, write_run

pytestmark = pytest.mark.slow

RUNS = ("dag-rollback-1", "dag-rollback-2")


@pytest.fixture()
def published_twice(warehouse_url: str):
    seen = {}
    for k, run in enumerate(RUNS, 1):
        folder = write_run(config.RUNS_DIR / run, k)
        publish.run(warehouse_url, folder.path, run)
        seen[f"als-v{k}"] = live(warehouse_url)
    yield seen
    for run in RUNS:
        shutil.rmtree(config.RUNS_DIR / run, ignore_errors=True)


def test_the_rollback_dag_restores_the_version_given_in_the_form(
    warehouse_url: str, published_twice
) -> None:
    _, state = environment.run_dag({"model_version": "als-v1"}, "rollback")
    assert state == "success"
    assert live(warehouse_url) == published_twice["als-v1"]
    _, state = environment.run_dag({}, "rollback")  # empty = the version before the current one
    assert state == "success"
    assert live(warehouse_url) == published_twice["als-v2"]


def test_the_rollback_dag_fails_on_a_pruned_version_and_changes_nothing(
    warehouse_url: str, published_twice
) -> None:
    shutil.rmtree(config.RUNS_DIR / RUNS[0])
    _, state = environment.run_dag({"model_version": "als-v1"}, "rollback")
    assert state == "failed"
    assert live(warehouse_url) == published_twice["als-v2"]


def test_the_maintenance_dag_dry_run_names_what_would_go(
    warehouse_url: str, published_twice, capfd, monkeypatch
) -> None:
    monkeypatch.setattr(config, "RETAIN_RUNS", 1)
    monkeypatch.setattr(config, "RETAIN_DAYS", 1.0)
    monkeypatch.setattr(config, "RETAIN_PUBLISHED", 1)
    old = write_run(config.RUNS_DIR / "dag-old-unpublished", 7)
    month_ago = time.time() - 30 * 86400
    os.utime(old.path, (month_ago, month_ago))
    try:
        _, state = environment.run_dag({"dry_run": True}, "maintenance")
        out = capfd.readouterr().out
        assert state == "success"
        assert "would prune run dag-old-unpublished" in out
        assert f"{RUNS[1]} (published now (the champion))" in out
        assert old.path.exists()  # a dry run deletes nothing
    finally:
        shutil.rmtree(old.path, ignore_errors=True)
