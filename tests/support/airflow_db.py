"""What Airflow itself recorded of a DAG run: its metadata database (SQLite under the
test Airflow home), read directly, so a check does not depend on the pipeline's own
timing rows."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from reco import config


def _rows(sql: str, params: tuple) -> list[tuple]:
    db = sqlite3.connect(config.AIRFLOW_HOME / "airflow.db")
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def task_tries(
    run_id: str, task_id: str, dag_id: str = "recommendations"
) -> list[tuple[int, str, datetime, datetime]]:
    """(try_number, state, start, end) of every try of a task in one run."""
    rows = _rows(
        "SELECT try_number, state, start_date, end_date FROM task_instance_history "
        "WHERE dag_id = ? AND run_id = ? AND task_id = ? "
        "UNION ALL SELECT try_number, state, start_date, end_date FROM task_instance "
        "WHERE dag_id = ? AND run_id = ? AND task_id = ? ORDER BY 1",
        (dag_id, run_id, task_id, dag_id, run_id, task_id),
    )
    return [(n, s, datetime.fromisoformat(a), datetime.fromisoformat(b)) for n, s, a, b in rows]


def task_states(run_id: str, dag_id: str = "recommendations") -> dict[str, str | None]:
    """Each task's final state in one run, as the Airflow UI shows it."""
    return dict(
        _rows(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        )
    )
