"""The Airflow side of ``reco run``'s progress: the CV fits planned from the run conf, and
the listener that Airflow's in-process task runner calls."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from reco.console.phases import Plan
from reco.console.run_state import RunProgress
from reco.orchestration import progress

QUICK = {
    "folds": 2,
    "grid": json.dumps({"rank": [8], "regParam": [0.3], "maxIter": [8]}),
    "ranking_grid": json.dumps({"rank": [16], "regParam": [0.3], "alpha": [1.0], "maxIter": [6]}),
    "ease_grid": json.dumps({"lambda": [20.0]}),
}


@pytest.mark.parametrize(
    "conf, plan",
    [
        (QUICK, Plan(folds=2, candidates=2, rating_points=0)),
        ({**QUICK, "folds": 0}, Plan()),
        ({**QUICK, "families": "als"}, Plan()),  # one candidate: no search
        (
            {
                **QUICK,
                "rating_cv": True,
                "grid": json.dumps(
                    {"rank": [8, 16], "regParam": [0.1], "residualRegParam": [0.1], "maxIter": [8]}
                ),
            },
            Plan(folds=2, candidates=2, rating_points=2),
        ),
        ({**QUICK, "folds": 1}, Plan()),  # refused by train (preflight says why)
    ],
)
def test_planned_cv_fits_follow_trains_plan(conf: dict, plan: Plan) -> None:
    assert progress.planned_work(conf) == plan


def test_the_default_run_plans_a_cv() -> None:
    plan = progress.planned_work({})
    assert plan.folds == 3 and plan.fits >= 6


def ti(task_id: str, run_id: str = "manual__r", dag_id: str = "recommendations", **kw):
    dag = SimpleNamespace(task_ids=["prepare", "ingest", "publish"])
    return SimpleNamespace(
        task_id=task_id, run_id=run_id, dag_id=dag_id, task=SimpleNamespace(dag=dag), **kw
    )


def test_the_listener_feeds_the_progress_through_airflows_own_listener_manager() -> None:
    from airflow.sdk.listener import get_listener_manager

    state = RunProgress()
    runs: list[tuple[str, list[str]]] = []
    caught_up: list[str] = []
    listener = progress.TaskListener(
        state, "recommendations", lambda r, t: runs.append((r, t)), lambda: caught_up.append("x")
    )
    progress.register(listener)  # pluggy checks the hooks against Airflow's specification
    try:
        hook = get_listener_manager().hook
        hook.on_task_instance_running(previous_state=None, task_instance=ti("prepare"))
        hook.on_task_instance_success(previous_state=None, task_instance=ti("prepare"))
        hook.on_task_instance_running(previous_state=None, task_instance=ti("ingest"))
        hook.on_task_instance_failed(
            previous_state=None,
            task_instance=ti("ingest", state="up_for_retry"),
            error=ValueError("bad"),
        )
        hook.on_task_instance_running(previous_state=None, task_instance=ti("publish"))
        hook.on_task_instance_skipped(previous_state=None, task_instance=ti("publish"))
        # another DAG's task, or another run's, is not this run's
        hook.on_task_instance_running(previous_state=None, task_instance=ti("x", dag_id="other"))
        hook.on_task_instance_running(previous_state=None, task_instance=ti("y", run_id="r2"))
    finally:
        progress.unregister(listener)
    hook.on_task_instance_running(previous_state=None, task_instance=ti("late"))
    assert runs == [("manual__r", ["prepare", "ingest", "publish"])]
    assert len(caught_up) == 3
    ends = [(e.task, e.state, e.text) for e in state.drain(0)[0] if e.kind == "end"]
    assert ends == [
        ("prepare", "success", ""),
        ("ingest", "up_for_retry", "bad"),
        ("publish", "skipped", ""),
    ]
    assert set(state.tasks) == {"prepare", "ingest", "publish"}


def test_a_failing_callback_never_reaches_airflow() -> None:
    def boom(run_id: str, task_ids: list[str]) -> None:
        raise OSError("disk full")

    listener = progress.TaskListener(RunProgress(), "recommendations", boom)
    listener.on_task_instance_running(previous_state=None, task_instance=ti("prepare"))


def test_watch_is_not_started_by_importing(tmp_path: Path) -> None:
    # Importing the module must not import Airflow (the log file takes the output first).
    import subprocess
    import sys

    code = "import sys, reco.orchestration.progress; print('airflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_after_ctrl_c_a_failed_try_is_interrupted_not_retried_and_no_task_goes_on(
    monkeypatch,
) -> None:
    """A press that reached the task as another error (reco/interrupts.py): the step shows
    as interrupted, and the listener ends the run instead of letting dag.test() retry it;
    a task that ends or starts after the press ends it too."""
    from reco import interrupts

    state = RunProgress()
    listener = progress.TaskListener(state, "recommendations", lambda r, t: None)
    listener.on_task_instance_running(previous_state=None, task_instance=ti("validate"))
    monkeypatch.setattr(interrupts, "_pressed", interrupts.threading.Event())
    interrupts._pressed.set()
    cancelled = RuntimeError("Job 17 cancelled")
    with pytest.raises(KeyboardInterrupt) as caught:
        listener.on_task_instance_failed(
            previous_state=None, task_instance=ti("validate", state="up_for_retry"), error=cancelled
        )
    assert caught.value.__cause__ is cancelled
    ends = [(e.task, e.state, e.text) for e in state.drain(0)[0] if e.kind == "end"]
    assert ends == [("validate", "interrupted", "Ctrl-C")]
    with pytest.raises(KeyboardInterrupt):
        listener.on_task_instance_success(previous_state=None, task_instance=ti("validate"))
    with pytest.raises(KeyboardInterrupt):
        listener.on_task_instance_running(previous_state=None, task_instance=ti("train"))
    assert "train" not in state.tasks
