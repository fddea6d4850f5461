"""Airflow task instances -> reco.stage_timings rows (the listener's pure part)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from reco.reporting.task_timings import PHASE, in_process, task_rows

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def ti(task_id: str, state: str, queued: float | None, start: float | None, end: float | None):
    at = lambda s: None if s is None else T0 + timedelta(seconds=s)  # noqa: E731
    return SimpleNamespace(
        task_id=task_id,
        state=state,
        try_number=2,
        operator="SparkSubmitOperator",
        queued_dttm=at(queued),
        start_date=at(start),
        end_date=at(end),
    )


def test_rows_hold_queue_wait_span_and_state() -> None:
    [row] = task_rows([ti("train", "success", 0.0, 2.5, 62.5)])
    assert row["stage"] == "train" and row["phase"] == PHASE
    assert row["started_at"] == T0 + timedelta(seconds=2.5)
    assert row["seconds"] == 60.0
    details = json.loads(row["details"])
    assert details == {
        "state": "success",
        "try_number": 2,
        "operator": "SparkSubmitOperator",
        "queued_at": T0.isoformat(),
        "queued_seconds": 2.5,
    }


def test_tasks_that_never_started_are_left_out_and_running_ones_end_at_start() -> None:
    rows = task_rows(
        [
            ti("publish", "upstream_failed", None, None, None),
            ti("report", "running", None, 5.0, None),
        ]
    )
    assert [r["stage"] for r in rows] == ["report"]
    assert rows[0]["seconds"] == 0.0
    assert json.loads(rows[0]["details"])["queued_seconds"] is None  # dag.test(): no queue


def test_dag_test_runs_are_told_apart_by_the_run_itself() -> None:
    from enum import Enum

    class TriggeredBy(Enum):  # Airflow's DagRunTriggeredByType, by value
        TEST = "test"
        UI = "ui"

    assert in_process(SimpleNamespace(triggered_by=TriggeredBy.TEST))
    assert in_process(SimpleNamespace(triggered_by="test"))
    assert not in_process(SimpleNamespace(triggered_by=TriggeredBy.UI))
    assert not in_process(SimpleNamespace(triggered_by=None))
    assert not in_process(SimpleNamespace())


def test_the_module_renders_nothing_and_imports_neither_airflow_nor_the_report() -> None:
    import ast
    from pathlib import Path

    from reco.reporting import task_timings

    tree = ast.parse(Path(task_timings.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m and m.startswith(("airflow", "reco.reporting"))}
    assert not hasattr(task_timings, "INLINE")
