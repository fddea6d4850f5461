"""The warehouse is unreachable for a whole DAG run: the task retries with the DAG's
backoff, then the run fails with a message naming the host and the cause, and nothing is
published."""

from __future__ import annotations

import json
from pathlib import Path

from reco.cli import environment
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.publishing import warehouse
from reco.runs import RunFolder, run_dir_for
from tests.support.airflow_db import task_tries
from tests.support.servers import free_port


def snapshot(url: str) -> list[tuple]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM reco.recommendations ORDER BY user_id, rank")
        return cur.fetchall()


def test_unreachable_warehouse_retries_with_backoff_then_fails_clearly(
    tmp_path: Path, warehouse_url: str, monkeypatch
) -> None:
    write_dataset(tmp_path, SyntheticSpec(n_users=30, n_items=40, mean_ratings_per_user=10))
    before = snapshot(warehouse_url)
    dag = environment.load_dag()
    assert dag.default_args["retries"] == 2 and dag.default_args["retry_exponential_backoff"]

    port = free_port()  # nothing listens here
    monkeypatch.setenv("WAREHOUSE_URL", f"postgresql://reco@127.0.0.1:{port}/reco")
    environment.init_airflow()
    run_id, state = environment.run_dag({"dataset": str(tmp_path)})
    monkeypatch.delenv("WAREHOUSE_URL")

    assert state == "failed"
    tries = task_tries(run_id, "prepare")
    # Tries 1 and 2 were retried (kept in task_instance_history); try 3 is final.
    assert [(n, s) for n, s, _, _ in tries] == [(1, "failed"), (2, "failed"), (3, "failed")]
    # Exponential backoff from retry_delay=5s: the wait before try 3 is longer than before try 2,
    # and both are at least the configured delay.
    waits = [
        (nxt[2] - prev[3]).total_seconds() for prev, nxt in zip(tries, tries[1:], strict=False)
    ]
    print(f"waits between tries: {waits}")
    assert waits[0] >= 5 and waits[1] >= 10 and waits[1] > waits[0], waits

    error = json.loads((RunFolder(run_dir_for(run_id)).error).read_text())
    assert error["stage"] == "prepare"
    assert f"127.0.0.1:{port}" in error["message"]
    assert "refused" in error["message"].lower()
    assert snapshot(warehouse_url) == before
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reco.model_runs WHERE run_id = %s", (run_id,))
        assert cur.fetchone() == (0,)
    assert not RunFolder(run_dir_for(run_id)).model.exists()
