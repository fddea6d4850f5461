"""What happens when a run ends (reco.reporting.run_end): the task times are stored, and
the report is rendered again only where no pipeline_report run will do it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reco import config
from reco.publishing import warehouse
from reco.reporting import facts, report, run_end, task_timings

RUN_ID = "manual__2026-11-01T12:00:00+00:00"
ROWS = [{"stage": "train", "phase": task_timings.PHASE}]


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every warehouse write and render, recorded instead of done; runs under tmp_path."""
    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(warehouse, "apply_schema", lambda url: seen.append(("schema", url)))
    monkeypatch.setattr(
        task_timings,
        "store",
        lambda url, run_id, rows: seen.append(("store", run_id, len(rows))) or len(rows),
    )
    monkeypatch.setattr(
        report,
        "rebuild",
        lambda url, run_id: seen.append(("render", run_id)) or {"report": "r.html"},
    )
    monkeypatch.setattr(
        facts,
        "load_timings",
        lambda url, run_id, run_dir: seen.append(("load", run_id)) or 7,
    )
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(facts, "fetch_timings", lambda url, run_id: [])
    monkeypatch.setattr(facts, "fetch_model_run", lambda url, run_id: None)
    return seen


def run_folder(*files: str) -> Path:
    """The run's folder with the given RunFolder files (``manifest``, ``metrics``) in it."""
    from reco.runs import RunFolder, run_dir_for

    run_dir = run_dir_for(RUN_ID)
    run_dir.mkdir(parents=True)
    for name in files:
        getattr(RunFolder(run_dir), name).write_text("{}")
    return run_dir


def index_line() -> Path:
    from reco.runs import run_dir_for

    return config.REPORTS_DIR / f"{run_dir_for(RUN_ID).name}.json"


def url() -> str:
    return "postgresql://test"


def test_in_process_the_times_are_stored_then_the_report_rendered_once(calls) -> None:
    run_folder("manifest", "metrics")
    assert run_end.record(RUN_ID, ROWS, in_process=True, warehouse_url=url) is None
    assert calls == [("schema", url()), ("store", RUN_ID, 1), ("render", RUN_ID)]


def test_in_the_scheduler_the_times_are_stored_in_a_thread_and_nothing_is_rendered(
    calls,
) -> None:
    run_folder("manifest", "metrics")
    thread = run_end.record(RUN_ID, ROWS, in_process=False, warehouse_url=url)
    assert thread is not None
    thread.join(30)
    # The pipeline_report DAG renders the page again (it waits for these rows).
    assert calls == [("schema", url()), ("store", RUN_ID, 1), ("load", RUN_ID)]


def test_a_run_that_stopped_before_training_is_loaded_for_the_trends(calls) -> None:
    run_folder("manifest")  # no metrics: no page
    out = run_end.store_and_refresh(RUN_ID, ROWS, url, render=True)
    assert out == {"task_times": 1, "timings": 7, "index": str(index_line())}
    # It has no page, but a line in the reports index: it stopped, and where.
    assert json.loads(index_line().read_text())["outcome"] == "unfinished"
    assert ("render", RUN_ID) not in calls


def test_a_run_without_a_folder_only_stores_its_task_times(calls) -> None:
    assert run_end.store_and_refresh(RUN_ID, ROWS, url, render=True) == {"task_times": 1}


def test_errors_are_logged_never_raised(calls, caplog: pytest.LogCaptureFixture) -> None:
    def down() -> str:
        raise OSError("warehouse down")

    with caplog.at_level(logging.WARNING, logger=run_end.__name__):
        assert run_end.store_and_refresh(RUN_ID, ROWS, down, render=True) is None
    assert "warehouse down" in caplog.text and calls == []
