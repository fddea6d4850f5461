"""The run report's per-run queries against the real (embedded) PostgreSQL: each stage's
seconds run by run (``stage_timings.sql`` ``stage_trends``) and one run's attempts in
``reco.model_runs`` (``model_runs.sql`` ``for_run``), however old the run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reco.publishing import warehouse
from reco.reporting import facts, performance

# Far in the future, so these are the newest runs whatever else the test warehouse holds;
# every row is deleted again after each test.
T0 = datetime(2099, 1, 1, 12, 0, tzinfo=UTC)
OLD = datetime(2001, 1, 1, 12, 0, tzinfo=UTC)
RUN_A, RUN_B, RUN_C, RUN_OLD = "rq-a", "rq-b", "rq-c", "rq-old"
NEWER = [f"rq-newer-{i:03d}" for i in range(120)]
ALL_RUNS = [RUN_A, RUN_B, RUN_C, RUN_OLD, *NEWER]


def add_timing(cur: Any, run_id: str, stage: str, phase: str, start: datetime, s: float) -> None:
    cur.execute(
        "INSERT INTO reco.stage_timings (run_id, stage, phase, started_at, finished_at, seconds)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (run_id, stage, phase, start, start + timedelta(seconds=s), s),
    )


def add_model_run(
    cur: Any, run_id: str, attempt: int, status: str, started: datetime, reason: str | None
) -> None:
    cur.execute(
        "INSERT INTO reco.model_runs (run_id, attempt, model_version, status, status_reason,"
        " started_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (run_id, attempt, f"v-{run_id}-{attempt}", status, reason, started),
    )


@pytest.fixture()
def warehouse_rows(warehouse_url: str) -> Iterator[str]:
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        # Run A: three stages. Run B: its stages finished in another order, a sub-phase and
        # Airflow's task row beside the totals. Run C: only Airflow task rows (it failed
        # before any job recorded a total).
        day = timedelta(days=1)
        add_timing(cur, RUN_A, "ingest", "total", T0, 20.0)
        add_timing(cur, RUN_A, "train", "total", T0 + timedelta(seconds=25), 70.0)
        add_timing(cur, RUN_A, "publish", "total", T0 + timedelta(seconds=100), 1.5)
        add_timing(cur, RUN_B, "ingest", "airflow_task", T0 + day, 24.0)
        add_timing(cur, RUN_B, "ingest", "total", T0 + day + timedelta(seconds=1), 22.0)
        add_timing(cur, RUN_B, "ingest", "read", T0 + day + timedelta(seconds=1), 8.0)
        add_timing(cur, RUN_B, "train", "total", T0 + day + timedelta(seconds=26), 65.0)
        add_timing(cur, RUN_B, "publish", "total", T0 + day + timedelta(seconds=95), 1.2)
        add_timing(cur, RUN_C, "ingest", "airflow_task", T0 + 2 * day, 3.0)
        # reco.model_runs: an old run with two attempts, then 120 newer runs, so it is not
        # among the newest 100 rows.
        add_model_run(cur, RUN_OLD, 1, "failed", OLD, "warehouse went away")
        add_model_run(cur, RUN_OLD, 2, "rejected", OLD + timedelta(minutes=5), "worse nDCG")
        for i, run_id in enumerate(NEWER):
            add_model_run(cur, run_id, 1, "published", OLD + timedelta(days=1, minutes=i), None)
        add_model_run(cur, RUN_B, 1, "published", T0 + day, None)
    yield warehouse_url
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM reco.stage_timings WHERE run_id = ANY(%s)", (ALL_RUNS,))
        cur.execute("DELETE FROM reco.model_runs WHERE run_id = ANY(%s)", (ALL_RUNS,))


def stage_trends(url: str, n: int) -> list[dict[str, Any]]:
    sql = warehouse.named_statements("stage_timings.sql")["stage_trends"]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql, {"n": n})
        return warehouse.fetch_dicts(cur)


def test_stage_trends_gives_each_stage_total_per_run_oldest_first(warehouse_rows: str) -> None:
    rows = stage_trends(warehouse_rows, 3)
    assert [(r["run_id"], r["stage"], r["seconds"]) for r in rows] == [
        (RUN_A, "ingest", 20.0),
        (RUN_A, "train", 70.0),
        (RUN_A, "publish", 1.5),
        (RUN_B, "ingest", 22.0),
        (RUN_B, "train", 65.0),
        (RUN_B, "publish", 1.2),
        # A run without totals is kept (as one empty row), so the runs match 'trends'.
        (RUN_C, None, None),
    ]
    # Each stage's start within its run (from the run's first row, Airflow's task here).
    assert [r["offset_s"] for r in rows if r["run_id"] == RUN_B] == [1.0, 26.0, 95.0]
    # The window is the newest n runs.
    assert [r["run_id"] for r in stage_trends(warehouse_rows, 2)] == [RUN_B] * 3 + [RUN_C]


def test_stage_trends_become_the_chart_series(warehouse_rows: str) -> None:
    data = performance.fetch(warehouse_rows, RUN_B)
    assert set(data) == {"history", "trends", "stage_trends", "slowest"}
    ours = [r for r in data["stage_trends"] if r["run_id"] in (RUN_A, RUN_B, RUN_C)]
    assert ours == data["stage_trends"][-len(ours) :]  # the newest runs come last
    runs, stages, series = performance.stage_series(ours)
    assert runs == [RUN_A, RUN_B, RUN_C]
    assert stages == ["ingest", "train", "publish"]
    assert series["train"] == [70.0, 65.0, None]
    # The trends query sees the same runs, in the same order.
    assert [t["run_id"] for t in data["trends"]][-3:] == runs


def test_for_run_returns_one_runs_attempts_latest_first(warehouse_rows: str) -> None:
    sql = warehouse.named_statements("model_runs.sql")["for_run"]
    with warehouse.connection(warehouse_rows) as conn, conn.cursor() as cur:
        cur.execute(sql, {"run_id": RUN_OLD})
        rows = warehouse.fetch_dicts(cur)
        cur.execute(sql, {"run_id": "rq-never-ran"})
        assert cur.fetchall() == []
    assert [(r["run_id"], r["attempt"], r["status"]) for r in rows] == [
        (RUN_OLD, 2, "rejected"),
        (RUN_OLD, 1, "failed"),
    ]


def test_the_report_finds_an_old_runs_real_status(warehouse_rows: str) -> None:
    # 121 rows are newer than its attempts: the old 100-row window missed this run.
    run = facts.fetch_model_run(warehouse_rows, RUN_OLD)
    assert run is not None
    assert (run["attempt"], run["status"], run["status_reason"]) == (2, "rejected", "worse nDCG")
    assert facts.fetch_model_run(warehouse_rows, RUN_B)["status"] == "published"
    assert facts.fetch_model_run(warehouse_rows, "rq-never-ran") is None


def test_two_loads_of_one_runs_timings_at_once_both_succeed(warehouse_url, tmp_path) -> None:
    """A run's own report task and the pipeline_report run it starts can load the same
    run's timings at the same moment: the second waits for the first, nothing collides."""
    from concurrent.futures import ThreadPoolExecutor

    from reco.instrumentation.timing import timer

    run_id = "rq-concurrent"
    for stage in ("prepare", "ingest", "validate", "train", "recommend", "publish"):
        with timer(tmp_path, stage, "total", rows=10):
            pass
    try:
        with ThreadPoolExecutor(4) as pool:
            loaded = list(
                pool.map(lambda _: facts.load_timings(warehouse_url, run_id, tmp_path), range(4))
            )
        assert loaded == [6, 6, 6, 6]
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM reco.stage_timings WHERE run_id = %s", (run_id,))
            assert cur.fetchone()[0] == 6
    finally:
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM reco.stage_timings WHERE run_id = %s", (run_id,))
