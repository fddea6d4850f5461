"""The pipeline as its operators run it, with the same commands as docker-compose.yml:
Airflow's api-server, scheduler, dag-processor and triggerer on loopback (see conftest),
the run triggered from the Trigger form, then driven through the REST API v2 (login,
clear and re-run, trigger with a conf, poll), and a Spark standalone master + worker from
the pip-installed Spark that the same DAG uses once the ``spark_default`` connection points
at it."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyspark
import pytest

from reco import config
from reco.publishing import warehouse
from reco.runs import run_key
from tests.support.airflow_stack import CONF, N_USERS, TOP_N, Stack, published
from tests.support.servers import background, free_port, wait_for


def attempts(url: str, run_id: str) -> list[tuple]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT attempt, status FROM reco.model_runs WHERE run_id = %s ORDER BY attempt",
            (run_id,),
        )
        return cur.fetchall()


def per_user(rows: list[tuple]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for row in rows:
        counts[row[0]] = counts.get(row[0], 0) + 1
    return counts


@pytest.fixture(scope="module")
def airflow_base(airflow_stack: Stack) -> str:
    return airflow_stack.base


@pytest.fixture(scope="module")
def local_run(form_run) -> tuple[str, dict[str, list[tuple]]]:
    """The run triggered from the Trigger form (see conftest), on local[*]."""
    return form_run


def test_login_is_required(airflow_base: str) -> None:
    assert httpx.get(f"{airflow_base}/api/v2/dags", timeout=30).status_code == 401


def test_the_run_publishes_top_n_and_the_listener_records_task_times(
    local_run, warehouse_url
) -> None:
    run_id, tables = local_run
    assert per_user(tables["reco.recommendations"]) == {u: TOP_N for u in range(1, N_USERS + 1)}
    assert tables["reco.similar_items"]
    assert attempts(warehouse_url, run_id) == [(1, "published")]
    # The scheduler's listener stores each task's queued, start and end times (in a
    # thread, just after the run ends).
    expected = {"prepare", "ingest", "validate", "train", "recommend", "publish", "report"}

    def task_times() -> dict:
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT stage, details FROM reco.stage_timings "
                "WHERE run_id = %s AND phase = 'airflow_task'",
                (run_id,),
            )
            return dict(cur.fetchall())

    wait_for(lambda: expected <= set(task_times()), 120, "the listener's task timings")
    assert all(d["queued_at"] and d["queued_seconds"] >= 0 for d in task_times().values())


def test_run_reports_are_served_in_the_ui_behind_login(airflow_base, api, local_run) -> None:
    run_id, _ = local_run
    url = f"{airflow_base}/reco-reports"
    assert httpx.get(f"{url}/latest.html", timeout=30).status_code == 401
    page = httpx.get(f"{url}/latest.html", headers=api.auth, timeout=30)
    assert page.status_code == 200 and run_id in page.text and "Where the time went" in page.text
    index = httpx.get(f"{url}/", headers=api.auth, timeout=30)
    assert index.status_code == 200 and run_key(run_id) in index.text
    assert httpx.get(f"{url}/..%2Fairflow.cfg", headers=api.auth, timeout=30).status_code == 404
    [plugin] = [
        p for p in api.call("GET", "/plugins").json()["plugins"] if p["name"] == "reco_reports"
    ]
    assert {v["category"] for v in plugin["external_views"]} == {"Reports"}


def test_rerunning_the_same_run_leaves_identical_tables(api, local_run, warehouse_url) -> None:
    run_id, first = local_run
    # What "Clear" on the run does in the UI: every task of the same run runs again.
    resp = api.call(
        "POST",
        "/dags/recommendations/clearTaskInstances",
        json={"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True},
    )
    assert resp.status_code == 200, resp.text
    assert {ti["task_id"] for ti in resp.json()["task_instances"]} >= {
        "prepare",
        "train",
        "publish",
    }
    assert api.wait(run_id) == "success"
    assert published(warehouse_url) == first
    assert attempts(warehouse_url, run_id) == [(1, "published"), (2, "published")]


def master_state(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A standalone master and one 2-core worker on 127.0.0.1, as in docker-compose.yml."""
    spark_home = Path(pyspark.__file__).parent
    spark_class = str(spark_home / "bin" / "spark-class")
    logs = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port, worker_ui = free_port(7077), free_port(), free_port()
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1"}
    master_url = f"spark://127.0.0.1:{port}"
    master_log, worker_log = logs / "master.log", logs / "worker.log"
    master_cmd = [spark_class, "org.apache.spark.deploy.master.Master"]
    master_cmd += ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)]
    worker_cmd = [spark_class, "org.apache.spark.deploy.worker.Worker", master_url]
    worker_cmd += ["--host", "127.0.0.1", "--cores", "2", "--memory", "4g"]
    worker_cmd += ["--webui-port", str(worker_ui), "--work-dir", str(logs / "work")]
    with background(master_cmd, master_log, env):
        wait_for(
            lambda: master_state(ui_port)["status"] == "ALIVE", 120, "the master", [master_log]
        )
        with background(worker_cmd, worker_log, env):
            wait_for(
                lambda: master_state(ui_port)["aliveworkers"] == 1,
                120,
                "the worker to register",
                [master_log, worker_log],
            )
            yield master_url, ui_port


def test_same_dag_on_a_spark_cluster_matches_local_mode(
    api, local_run, spark_cluster, dataset, warehouse_url
) -> None:
    master_url, ui_port = spark_cluster
    _, local = local_run
    conn_path = f"/connections/{config.SPARK_CONN_ID}"
    before = api.call("GET", conn_path).json()
    assert before["host"] == "local[*]"
    body = {"connection_id": config.SPARK_CONN_ID, "conn_type": "spark", "host": master_url}
    try:
        # The one change, as an operator makes it in Admin -> Connections.
        assert api.call("PATCH", conn_path, json=body).status_code == 200
        run_id = api.trigger({"dataset": str(dataset), **CONF})
        assert api.wait(run_id) == "success"
    finally:
        api.call("PATCH", conn_path, json={**body, "host": "local[*]"})
    on_cluster = published(warehouse_url)

    apps = master_state(ui_port)["completedapps"]
    assert sorted(app["name"] for app in apps) == [
        "reco-ingest",
        "reco-recommend",
        "reco-train",
        "reco-validate",
    ]
    assert all(app["state"] == "FINISHED" for app in apps)
    assert attempts(warehouse_url, run_id) == [(1, "published")]
    # Same users, same N per user, as the local-mode run on the same data and seed.
    assert per_user(on_cluster["reco.recommendations"]) == per_user(local["reco.recommendations"])
    assert per_user(on_cluster["reco.similar_items"]) == per_user(local["reco.similar_items"])
