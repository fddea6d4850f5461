"""A ``reco run`` as the person at the terminal follows it: which step runs, how far it has
got, about how long is left, and where Airflow's and Spark's own lines went.

:class:`RunProgress` holds the state of a run in progress. Two sources feed it: Airflow's
task events (``reco/orchestration/progress.py`` listens to them in-process) and the stage
timings every step appends to ``timings.jsonl`` as each phase ends (read by
``poller.py``'s :class:`~reco.console.poller.Poller`). Earlier runs' timings give the
estimate (``history.py``); how a phase reads is ``phases.py``'s. The views that draw it
are in ``view.py``; the log file that takes Airflow's and Spark's own lines meanwhile is
``run_log.py``'s. Nothing here imports Airflow.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reco.console.history import Estimate
from reco.console.phases import CV_FIT, RATING_CV_FIT, Plan, describe_phase, phase_times

# Task states that end a task (Airflow's names).
ENDED = {
    "success",
    "failed",
    "skipped",
    "upstream_failed",
    "removed",
    "up_for_retry",
    "interrupted",
}


@dataclass
class TaskState:
    task_id: str
    state: str = "running"
    started: float = 0.0  # epoch seconds
    seconds: float | None = None
    error: str = ""
    tries: int = 1
    phases: list[str] = field(default_factory=list)  # the phases it has finished, short


@dataclass(frozen=True)
class Event:
    """Something to say once: ``run`` (the run and its log), ``estimate``, ``start``,
    ``end`` (a task's end, ``state``, ``seconds``), ``phase`` (a finished phase)."""

    kind: str
    at: float
    task: str = ""
    text: str = ""
    state: str = ""
    seconds: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the state, for one frame of a view."""

    now: float
    elapsed: float
    run_id: str | None
    log: Path | None
    running: list[TaskState]
    n_tasks: int
    n_ended: int
    fits_done: int
    fits_total: int
    last_phase: dict[str, str]
    stage_estimate: dict[str, float]
    remaining: float | None
    estimate: Estimate | None
    finished: bool


def first_line(text: Any, limit: int = 240) -> str:
    """The first non-empty line of an error, at most ``limit`` characters."""
    line = next((s.strip() for s in str(text or "").splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


class RunProgress:
    """The state of one ``reco run``: thread-safe, fed by the task listener (Airflow's
    thread) and the poller, read by the views."""

    def __init__(self, plan: Plan | None = None, clock: Callable[[], float] = time.time):
        self.lock = threading.RLock()
        self.plan = plan or Plan()
        self.clock = clock
        self.started = clock()
        self.run_id: str | None = None
        self.run_dir: Path | None = None
        self.log: Path | None = None
        self.n_tasks = 0
        self.tasks: dict[str, TaskState] = {}
        self.fits_done = 0
        self.last_phase: dict[str, str] = {}
        self.estimate: Estimate | None = None
        self.first_phase_at: float | None = None  # epoch of this run's first phase start
        self.finished = False
        self._events: list[Event] = []

    # -- what happens ------------------------------------------------------------------------
    def _say(self, kind: str, **kw: Any) -> None:
        self._events.append(Event(kind, self.clock(), **kw))

    def set_run(self, run_id: str, run_dir: Path, log: Path | None, n_tasks: int = 0) -> None:
        with self.lock:
            if self.run_id is not None:
                return
            self.run_id, self.run_dir, self.log = run_id, run_dir, log
            self.n_tasks = n_tasks
            self._say("run", text=run_id)

    def set_estimate(self, est: Estimate | None) -> None:
        with self.lock:
            self.estimate = est
            if est is not None:
                self._say("estimate", seconds=est.total, text=str(est.runs))

    def task_running(self, task_id: str) -> None:
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                task = self.tasks[task_id] = TaskState(task_id, started=self.clock())
            else:  # a retry
                task.tries += 1
                task.state, task.started = "running", self.clock()
                task.seconds, task.error = None, ""
            self._say("start", task=task_id, text=str(task.tries))

    def task_ended(self, task_id: str, state: str, error: Any = None) -> None:
        """A task's end as Airflow reports it (``success``, ``failed``, ``skipped``,
        ``up_for_retry``...); a task that never started (``upstream_failed``) too."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                task = self.tasks[task_id] = TaskState(task_id, state=state, started=0.0)
            elif task.state != "running":
                return  # already said (the listener, then the final states)
            task.state = state
            task.seconds = self.clock() - task.started if task.started else None
            task.error = first_line(error)
            self._say("end", task=task_id, state=state, seconds=task.seconds, text=task.error)

    def phase_finished(self, rec: dict[str, Any]) -> None:
        """A line of the run's ``timings.jsonl``."""
        with self.lock:
            with contextlib.suppress(KeyError, ValueError, TypeError):
                start = phase_times(rec)[0]
                if self.first_phase_at is None or start < self.first_phase_at:
                    self.first_phase_at = start
            stage, phase = str(rec.get("stage", "")), str(rec.get("phase", ""))
            if phase == "total" or not stage:
                return
            details = rec.get("details") or {}
            fit = CV_FIT.match(phase) or RATING_CV_FIT.match(phase)
            if fit and stage == "train":
                self.fits_done += 1
            text = describe_phase(phase, details, rec.get("seconds"), self.plan, self.fits_done)
            self.last_phase[stage] = text
            task = self.tasks.get(stage)
            if task is not None and not fit:
                task.phases.append(phase.replace("_", " "))
            self._say("phase", task=stage, text=text, seconds=rec.get("seconds"))

    def finish(self) -> None:
        with self.lock:
            self.finished = True

    # -- what the views read -------------------------------------------------------------------
    def drain(self, cursor: int) -> tuple[list[Event], int]:
        """The events after ``cursor`` (each view keeps its own) and the new cursor."""
        with self.lock:
            return self._events[cursor:], len(self._events)

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left by the estimate (negative: longer than earlier runs), else None."""
        with self.lock:
            if self.estimate is None:
                return None
            now = self.clock() if now is None else now
            begun = self.first_phase_at if self.first_phase_at is not None else now
            return self.estimate.total - (now - begun)

    def snapshot(self) -> Snapshot:
        with self.lock:
            now = self.clock()
            return Snapshot(
                now=now,
                elapsed=now - self.started,
                run_id=self.run_id,
                log=self.log,
                running=[
                    TaskState(**{**vars(t), "phases": list(t.phases)})
                    for t in self.tasks.values()
                    if t.state == "running"
                ],
                n_tasks=self.n_tasks,
                n_ended=sum(1 for t in self.tasks.values() if t.state in ENDED - {"up_for_retry"}),
                fits_done=self.fits_done,
                fits_total=self.plan.fits,
                last_phase=dict(self.last_phase),
                stage_estimate=dict(self.estimate.stages) if self.estimate else {},
                remaining=self.remaining(now),
                estimate=self.estimate,
                finished=self.finished,
            )
