"""A step past its execution_timeout (``reco run``, as a user runs it, real Spark): it is
stopped, retried as an infrastructure failure, and the run fails with a message that says
which step ran out of time, how long it had, and what to change; the published lists stay
as they were. (In a process of its own: the timeout ends that process's Spark driver.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from reco import config
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.publishing import warehouse
from reco.runs import RunFolder
from reco.spark import SPARK_PROCESS
from tests.support.alert_receivers import Inbox, alert_receivers

# 1.2 s: train is stopped in its first Spark work, or while its driver is still starting
# up (a busy machine, as under make test's workers). A timeout shorter than the task's own
# start lands before the step's code and says nothing of the step.
TIMEOUTS = '{"train": 0.02}'
FIXED = {
    "folds": 0,
    "grid": json.dumps({"rank": [8], "regParam": [0.3], "maxIter": [8]}),
    "ranking_grid": json.dumps({"rank": [16], "regParam": [0.3], "alpha": [1.0], "maxIter": [6]}),
}


def published(url: str) -> list[tuple]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM reco.recommendations ORDER BY user_id, rank")
        return cur.fetchall()


@pytest.fixture()
def inbox(monkeypatch) -> Inbox:
    with alert_receivers() as (received, env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield received


def test_a_step_past_its_timeout_is_retried_then_fails_saying_so(
    tmp_path: Path, monkeypatch, warehouse_url: str, inbox: Inbox
) -> None:
    data = tmp_path / "data"
    write_dataset(data, SyntheticSpec(n_users=80, n_items=120, mean_ratings_per_user=20, seed=5))
    before = published(warehouse_url)
    monkeypatch.setenv("RECO_TASK_TIMEOUTS", TIMEOUTS)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FIXED.items()]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reco"), "run", "--dataset", str(data),
         "--max-row-drop", "1", *flags],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode != 0, done.stdout[-2000:]
    assert "train ran past its execution_timeout of 1.2 s" in done.stdout + done.stderr
    run_dir = max(config.RUNS_DIR.glob("*/error.json"), key=lambda p: p.stat().st_mtime).parent
    run_id = json.loads(RunFolder(run_dir).run_info.read_text())["run_id"]
    error = json.loads(RunFolder(run_dir).error.read_text())
    assert error["stage"] == "train"
    assert error["message"].startswith("train ran past its execution_timeout of 1.2 s")
    assert "RECO_TASK_TIMEOUTS" in error["message"]
    # Retried as an infrastructure failure: three tries, each alerted with that message.
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT details->>'try_number', details->>'state' FROM reco.stage_timings "
            "WHERE run_id = %s AND stage = 'train' AND phase = 'airflow_task'",
            (run_id,),
        )
        assert cur.fetchall() == [("3", "failed")]
    _, post = inbox.wait_for(run_id, "task_failed")
    assert post["fields"]["step"] == "train"
    assert post["fields"]["cause"].startswith("train ran past its execution_timeout")
    assert published(warehouse_url) == before
    # No Spark process of the run outlives it: not the drivers the timeouts stopped, not
    # one caught while it was starting up.
    left = [p for p in psutil.process_iter(["cmdline", "environ"]) if run_spark_process(p)]
    assert not left, [(p.pid, " ".join(p.info["cmdline"])[:200]) for p in left]


def run_spark_process(p: psutil.Process) -> bool:
    """A Spark process started by the run above (it carries that run's timeout setting)."""
    env = p.info.get("environ") or {}
    cmd = " ".join(p.info.get("cmdline") or [])
    return env.get("RECO_TASK_TIMEOUTS") == TIMEOUTS and any(m in cmd for m in SPARK_PROCESS)
