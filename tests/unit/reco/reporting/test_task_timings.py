"""Airflow task instances -> reco.stage_timings rows (the listener's pure part)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from reco.reporting.task_timings import PHASE, task_rows

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
