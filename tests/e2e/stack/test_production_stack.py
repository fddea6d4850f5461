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
from urllib.parse import quote

import httpx
import psutil
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


def test_a_run_past_its_deadline_alerts_from_the_triggerer(local_run, airflow_stack) -> None:
    """The stack's deadline is 15 s after a run is queued; the form run took longer, so
    Airflow's Deadline Alert called the pipeline's callback in the triggerer."""
    run_id, _ = local_run
    mail, post = airflow_stack.alerts.wait_for(run_id, "deadline", timeout=120)
    assert post["fields"]["run"] == run_id and post["fields"]["dag"] == "recommendations"
    assert post["fields"]["deadline"] == "0:00:15"
    assert post["links"]["run"].endswith(f"/dags/recommendations/runs/{quote(run_id, safe='')}")
    assert "not finished within 0:00:15" in mail["subject"]


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


def train_driver(master_url: str) -> psutil.Process | None:
    """The spark-submit JVM (the driver) of a running train step, once its application is
    running on the cluster."""
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "org.apache.spark.deploy.SparkSubmit" in cmd and "spark_jobs/train.py" in cmd:
            return proc
    return None


def lists(tables: dict[str, list[tuple]], table: str) -> list[tuple]:
    """(key, item, rank) of every published row: the lists, without version and time."""
    return sorted(row[:3] for row in tables[table])


def test_same_dag_on_a_spark_cluster_matches_local_mode_and_survives_a_killed_driver(
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

        # The train step's driver dies mid-step (kill -9, as the OOM killer would): the
        # task fails and Airflow's retry runs the step again.
        def training_on_the_cluster() -> bool:
            running = [a["name"] for a in master_state(ui_port)["activeapps"]]
            return "reco-train" in running and train_driver(master_url) is not None

        wait_for(training_on_the_cluster, 300, "the train step's application")
        killed = train_driver(master_url)
        killed.kill()
        assert api.wait(run_id) == "success"
    finally:
        api.call("PATCH", conn_path, json={**body, "host": "local[*]"})
    on_cluster = published(warehouse_url)

    tries = {
        t["task_id"]: t["try_number"]
        for t in api.call("GET", f"/dags/recommendations/dagRuns/{run_id}/taskInstances").json()[
            "task_instances"
        ]
    }
    assert tries["train"] == 2 and tries["ingest"] == tries["recommend"] == 1, tries
    apps = master_state(ui_port)["completedapps"]
    assert sorted(app["name"] for app in apps) == [
        "reco-ingest",
        "reco-recommend",
        "reco-train",
        "reco-train",
        "reco-validate",
    ]
    assert attempts(warehouse_url, run_id) == [(1, "published")]
    # The same lists as the local-mode run on the same data and parameters.
    for table in ("reco.recommendations", "reco.similar_items"):
        assert lists(on_cluster, table) == lists(local, table), table
