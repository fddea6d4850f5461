"""Airflow's own times for every task of a run (queued, start, end) in ``reco.stage_timings``.

The Spark jobs time their phases from the inside; what they cannot see is the task around
them: time spent queued for a worker slot, Spark session start-up, retries. When a
``recommendations`` run ends (success or failure), the listener in
``plugins/reco_task_timings.py`` calls :func:`record_dag_run` in the process that finished
the run (the scheduler, or ``reco run``'s in-process ``dag.test()``). It reads the run's
task instances from Airflow's metadata database and writes one row per task
(``phase = 'airflow_task'``); then it reloads the run's phase timings and rebuilds the run
report, so the report's timeline shows the tasks too. A failure here is logged, never
raised: it must not affect the run or the scheduler.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Any

from reco import config
from reco.publishing import warehouse

log = logging.getLogger(__name__)

PHASE = "airflow_task"
DAG_IDS = ("recommendations",)


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


def store(url: str, run_id: str, rows: list[dict[str, Any]]) -> None:
    sql = warehouse.named_statements("stage_timings.sql")["upsert"]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        for row in rows:
            cur.execute(sql, {**row, "run_id": run_id})


def fetch_task_instances(dag_run: Any) -> list[Any]:
    """The run's task instances, read in the caller's metadata-DB session when it has one."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    query = select(TaskInstance).where(
        TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
    )
    session = object_session(dag_run)
    if session is not None:
        with session.no_autoflush:  # read only: never flush the caller's pending changes
            return list(session.scalars(query))
    with create_session() as new_session:
        tis = list(new_session.scalars(query))
        new_session.expunge_all()
        return tis


# ``reco run`` (in-process ``dag.test()``) records before it returns, so its summary and the
# tests see the rows; in the scheduler the warehouse writes and the report rebuild run in
# a thread, so the scheduling loop (and its metadata-DB transaction) never waits on them.
INLINE = False


def record_dag_run(dag_run: Any) -> None:
    """Store a finished run's task times and rebuild its report; log, never raise."""
    if dag_run.dag_id not in DAG_IDS:
        return
    run_id = dag_run.run_id
    try:
        rows = task_rows(fetch_task_instances(dag_run))
    except Exception as exc:  # a listener must never break the run or the scheduler
        log.warning("could not read the task instances of %s: %s", run_id, exc)
        return
    if INLINE:
        store_and_rebuild(run_id, rows)
    else:
        threading.Thread(
            target=store_and_rebuild, args=(run_id, rows), name=f"reco-task-timings-{run_id}"
        ).start()


def store_and_rebuild(run_id: str, rows: list[dict[str, Any]]) -> None:
    """Write the task rows, reload the phase timings and rebuild the report; log errors."""
    try:
        from reco.orchestration.pipeline import run_dir_for
        from reco.reporting import report

        url = warehouse.resolve_url(use_airflow=True)
        warehouse.apply_schema(url)
        store(url, run_id, rows)
        run_dir = run_dir_for(run_id)
        if (run_dir / config.RUN_METRICS).exists() and (run_dir / config.RUN_MANIFEST).exists():
            report.run(url, run_dir, run_id)  # the timeline now shows the tasks too
        elif run_dir.exists():
            report.load_timings(url, run_id, run_dir)  # a failed run still shows in trends
        log.info("recorded %d task timings of %s", len(rows), run_id)
    except Exception as exc:  # a listener must never break the run or the scheduler
        log.warning("could not record task timings of %s: %s", run_id, exc)
