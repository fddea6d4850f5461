"""Airflow's own times for every task of a run (queued, start, end) in ``reco.stage_timings``.

The Spark jobs time their phases from the inside; what they cannot see is the task around
them: time spent queued for a worker slot, Spark session start-up, retries. When a
``recommendations`` run ends, the listener in ``plugins/reco_task_timings.py`` reads the
run's task instances from Airflow's metadata database and hands them to
:mod:`reco.reporting.run_end`, which stores them here (one row per task,
``phase = 'airflow_task'``) and decides whether the report is rendered again.

This module only turns task instances into rows, stores them and reads them back: it
renders nothing and imports neither Airflow nor the report.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from reco.publishing import warehouse

PHASE = "airflow_task"
DAG_IDS = ("recommendations",)


def in_process(dag_run: Any) -> bool:
    """Whether the run is a ``dag.test()`` run (``reco run``, ``airflow dags test``): it
    ends in the process that called ``dag.test()``, with no scheduler around it."""
    triggered_by = getattr(dag_run, "triggered_by", None)
    return str(getattr(triggered_by, "value", triggered_by) or "").lower() == "test"


def task_rows(task_instances: list[Any]) -> list[dict[str, Any]]:
    """One ``reco.stage_timings`` row per task instance that started (pure; any objects with
    ``task_id``, ``state``, ``try_number``, ``queued_dttm``, ``start_date``, ``end_date``,
    ``operator``)."""
    rows = []
    for ti in task_instances:
        start: datetime | None = ti.start_date
        if start is None:  # never started (the run ended first); upstream_failed and
            # skipped tasks do have a start (= end) and are kept, with their state
            continue
        end: datetime = ti.end_date or start
        queued: datetime | None = ti.queued_dttm
        state = getattr(ti.state, "value", ti.state)
        details = {
            "state": str(state) if state is not None else None,
            "try_number": ti.try_number,
            "operator": ti.operator,
            "queued_at": queued.isoformat() if queued else None,
            "queued_seconds": round((start - queued).total_seconds(), 3)
            if queued and queued <= start
            else None,
        }
        rows.append(
            {
                "stage": ti.task_id,
                "phase": PHASE,
                "started_at": start,
                "finished_at": end,
                "seconds": round((end - start).total_seconds(), 3),
                "details": json.dumps(details),
            }
        )
    return rows


def store(url: str, run_id: str, rows: list[dict[str, Any]]) -> int:
    """Upsert the run's task rows (a re-run of a task replaces its row); how many."""
    sql = warehouse.named_statements("stage_timings.sql")["upsert"]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        for row in rows:
            cur.execute(sql, {**row, "run_id": run_id})
    return len(rows)


def stored(url: str, run_id: str) -> int:
    """How many task rows of the run ``reco.stage_timings`` holds."""
    sql = warehouse.named_statements("stage_timings.sql")["for_run"]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql, {"run_id": run_id})
        return sum(1 for r in warehouse.fetch_dicts(cur) if r["phase"] == PHASE)


def wait_stored(url: str, run_id: str, timeout: float = 60, poll: float = 2) -> bool:
    """Wait until the listener has stored the run's task rows (it does so in a thread just
    after the run ends); False after ``timeout`` seconds without them."""
    deadline = time.monotonic() + timeout
    while not stored(url, run_id):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True
