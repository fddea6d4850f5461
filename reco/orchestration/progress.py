"""``reco run``'s live progress, the Airflow side: a listener registered in this process for
the run's task events, and :func:`watch`, which puts the pieces together around
``dag.test()``.

``dag.test()`` runs the tasks one after another in this process. Airflow's task runner
calls the listener when a task starts and ends (``airflow.sdk.listener``, the task SDK's
manager: the only one its in-process runner calls); the first call names the run, and so
its folder, where the log file moves. Tasks the run never started (``upstream_failed``)
have no such call: :meth:`Watch.finish` reads the run's final task states from the
metadata DB. The rest is Airflow-free: the state and its poller
(``reco/console/run_state.py``, ``poller.py``), the views (``reco/console/view.py``) and
the log file (``reco/console/run_log.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from reco import config, interrupts
from reco.console.phases import Plan
from reco.console.poller import Poller
from reco.console.run_log import LogCapture
from reco.console.run_state import RunProgress
from reco.console.view import make_view
from reco.runs import RunFolder, run_dir_for

# Where a run's log starts, before Airflow has named the run (then it moves to its folder).
LOGS_DIR = config.VAR_DIR / "logs"
# What ``airflow.listeners.hookimpl`` is; taken from pluggy so that importing this module
# does not import Airflow (that happens once the log file has the output).
hookimpl = pluggy.HookimplMarker("airflow")


def planned_work(conf: dict[str, Any]) -> Plan:
    """The CV fits train will time for this run conf, as train plans them (the counter's
    total); an empty plan when the parameters do not say (preflight has checked them)."""
    from reco import steps
    from reco.modeling import train_plan

    try:
        step = steps.get("train")
        params = step.check(step.from_conf(conf, run_dir=config.RUNS_DIR))
        plan = train_plan.plan(params)
    except (Exception, SystemExit):
        return Plan()
    candidates = 0 if plan.fixed else len(plan.candidates)
    rating = len(plan.rating_points) if params.rating_cv and params.folds >= 2 else 0
    return Plan(params.folds if candidates or rating else 0, candidates, rating)


def state_name(state: Any) -> str:
    return str(getattr(state, "value", state) or "none")


class TaskListener:
    """Airflow listener: the run's task starts and ends into a :class:`RunProgress`.
    ``on_run(run_id, task_ids)`` is called once, at the first task of the run;
    ``catch_up()`` before a task's end is told (its last timing lines first)."""

    def __init__(
        self,
        progress: RunProgress,
        dag_id: str,
        on_run: Callable[[str, list[str]], None],
        catch_up: Callable[[], None] = lambda: None,
    ) -> None:
        self.progress, self.dag_id, self.on_run = progress, dag_id, on_run
        self.catch_up = catch_up
        self.run_id: str | None = None
        self.task_ids: list[str] = []

    def _ours(self, ti: Any) -> bool:
        if getattr(ti, "dag_id", None) != self.dag_id:
            return False
        if self.run_id is None:
            self.run_id = str(ti.run_id)
            with contextlib.suppress(Exception):
                self.task_ids = list(ti.task.dag.task_ids)
            self.on_run(self.run_id, self.task_ids)
        return str(ti.run_id) == self.run_id

    # A listener must never break the run: every hook swallows its own errors.
    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        interrupts.raise_if_pressed()  # pressed between two tasks: the next does not start
        with contextlib.suppress(Exception):
            if self._ours(task_instance):
                self.progress.task_running(task_instance.task_id)

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        with contextlib.suppress(Exception):
            if self._ours(task_instance):
                self.catch_up()
                self.progress.task_ended(task_instance.task_id, "success")
        interrupts.raise_if_pressed()  # a press the task's code swallowed ends the run here

    @hookimpl
    def on_task_instance_failed(
        self, previous_state: Any, task_instance: Any, error: Any = None
    ) -> None:
        # Ctrl-C in a task: Airflow's task runner takes the KeyboardInterrupt (or the error
        # it became on its way up, reco/interrupts.py) for the task's failure, and
        # dag.test() would retry it. Raised again here, it ends the run.
        pressed = isinstance(error, KeyboardInterrupt) or interrupts.pressed()
        with contextlib.suppress(Exception):
            if self._ours(task_instance):
                state = state_name(getattr(task_instance, "state", None))
                state = state if state in ("up_for_retry", "failed") else "failed"
                self.catch_up()
                shown = ("interrupted", "Ctrl-C") if pressed else (state, error)
                self.progress.task_ended(task_instance.task_id, *shown)
        if pressed:
            cause = error if isinstance(error, BaseException) else None
            raise KeyboardInterrupt("Ctrl-C") from cause

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        with contextlib.suppress(Exception):
            if self._ours(task_instance):
                self.catch_up()
                self.progress.task_ended(task_instance.task_id, "skipped")


def register(listener: TaskListener) -> None:
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager().add_listener(listener)


def unregister(listener: TaskListener) -> None:
    from airflow.sdk.listener import get_listener_manager

    with contextlib.suppress(Exception):
        get_listener_manager().pm.unregister(listener)


def final_states(dag_id: str, run_id: str) -> dict[str, str]:
    """Every task of the run and its state, from the metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(TaskInstance.task_id, TaskInstance.state).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
    )
    with create_session() as session:
        return {task_id: state_name(state) for task_id, state in session.execute(query)}


@dataclass
class Watch:
    """What :func:`watch` yields: the run's state and where its log is."""

    progress: RunProgress
    capture: LogCapture
    listener: TaskListener
    dag_id: str

    @property
    def log(self) -> Path:
        return self.progress.log or self.capture.path

    def finish(self, run_id: str) -> None:
        """After ``dag.test()``: the tasks the listener did not see end (never started:
        ``upstream_failed``, ...), in the DAG's order, from the metadata DB."""
        if run_id:
            with contextlib.suppress(Exception):
                states = final_states(self.dag_id, run_id)
                order = self.listener.task_ids or sorted(states)
                for task_id in sorted(states, key=lambda t: order.index(t) if t in order else 99):
                    if states[task_id] not in ("running", "queued", "scheduled", "none"):
                        self.progress.task_ended(task_id, states[task_id])
        self.progress.finish()


@contextmanager
def watch(conf: dict[str, Any], dag_id: str = "recommendations") -> Iterator[Watch]:
    """Around an in-process run of ``dag_id`` (``cli.run_dag``): this process's output, and
    so Airflow's and Spark's log lines, into a log file that moves to the run's folder
    (``RunFolder.log``) once the run has an id; the run's progress on the terminal (a live
    view, or plain timestamped lines when the output is not a terminal). The terminal gets
    its descriptors back on the way out, also on an exception or Ctrl-C.

    Call it once the project's Airflow environment is applied (``cli.apply_project_env``):
    registering the listener imports Airflow.
    """
    capture = LogCapture(LOGS_DIR / f"reco-run-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log")
    terminal = capture.start()
    try:
        progress = RunProgress(planned_work(conf))
        progress.log = capture.path
        view = make_view(terminal, progress)
        try:

            def on_run(run_id: str, task_ids: list[str]) -> None:
                run_dir = run_dir_for(run_id)
                log = capture.move(RunFolder(run_dir).log)
                progress.set_run(run_id, run_dir, log, len(task_ids))

            poller = Poller(progress, view, config.RUNS_DIR)
            listener = TaskListener(progress, dag_id, on_run, poller.catch_up)
            register(listener)
            poller.start()
            try:
                yield Watch(progress, capture, listener, dag_id)
            finally:
                unregister(listener)
                poller.stop()
        finally:
            view.close()
    finally:
        capture.stop()
        # What the process still prints at exit (py4j's and Spark's shutdown) goes to the
        # log too, not under the summary.
        atexit.register(capture.park)
