"""A ``reco run`` as the person at the terminal follows it: which step runs, how far it has
got, about how long is left, and where Airflow's and Spark's own lines went.

:class:`RunProgress` holds the state of a run in progress. Two sources feed it: Airflow's
task events (``reco/orchestration/progress.py`` listens to them in-process) and the stage
timings every step appends to ``timings.jsonl`` as each phase ends (:class:`TimingsTail`,
read by :class:`Poller`). Earlier runs' timings give the estimate (:func:`estimate`).
The views that draw it are in ``view.py``; the log file that takes Airflow's and
Spark's own lines meanwhile is ``run_log.py``'s. Nothing here imports Airflow.
"""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from reco.runs import RunFolder

# Train's cross-validation fits, one timed phase each (reco/modeling/ranking.py, train.py).
CV_FIT = re.compile(r"^cv_(?P<family>[a-z]+)_c(?P<i>\d+)_fold(?P<f>\d+)$")
RATING_CV_FIT = re.compile(r"^rating_cv_p(?P<i>\d+)_fold(?P<f>\d+)$")
# Earlier runs read for the estimate: the newest folders, and at most this many alike.
HISTORY_SCAN = 200
HISTORY_RUNS = 5
# Task states that end a task (Airflow's names).
ENDED = {"success", "failed", "skipped", "upstream_failed", "removed", "up_for_retry"}


def fmt_seconds(seconds: float) -> str:
    """``2.3 s``, ``23 s``, ``1m05s``, ``1h02m``: short enough for a status line."""
    s = max(0.0, seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, rest = divmod(int(round(s)), 60)
        return f"{m}m{rest:02d}s"
    h, rest = divmod(int(round(s)) // 60, 60)
    return f"{h}h{rest:02d}m"


# ------------------------------------------------------------------------------------------
# what the run will do, and what earlier runs took
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """The cross-validation fits the train step will time, known from the run parameters
    before it starts (the counter's total)."""

    folds: int = 0
    candidates: int = 0  # ranking candidates searched by CV (0: fixed parameters)
    rating_points: int = 0  # rating-model grid points searched by CV (0: no rating CV)

    @property
    def fits(self) -> int:
        return self.folds * (self.candidates + self.rating_points)


@dataclass(frozen=True)
class Estimate:
    """What comparable earlier runs took: ``total`` from their first phase's start to their
    last phase's end, and each stage's span, in seconds (medians over ``runs`` runs)."""

    total: float
    stages: dict[str, float]
    runs: int


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a ``timings.jsonl`` (unlike ``timing.read_timings``, repeats kept)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict) and "stage" in rec:
                out.append(rec)
    return out


def _times(rec: dict[str, Any]) -> tuple[float, float]:
    return (
        datetime.fromisoformat(rec["started_at"]).timestamp(),
        datetime.fromisoformat(rec["finished_at"]).timestamp(),
    )


def span(records: Iterable[dict[str, Any]], stage: str | None = None) -> float | None:
    """Seconds from the first start to the last end of the records (of one ``stage``)."""
    times = [_times(r) for r in records if stage is None or r.get("stage") == stage]
    if not times:
        return None
    return max(t[1] for t in times) - min(t[0] for t in times)


def cv_fits(records: Iterable[dict[str, Any]]) -> int:
    """How many cross-validation fits a run's train step timed."""
    return len(
        {
            r["phase"]
            for r in records
            if r.get("stage") == "train"
            and (CV_FIT.match(str(r.get("phase"))) or RATING_CV_FIT.match(str(r.get("phase"))))
        }
    )


def comparable_records(run_dir: Path, dataset: str, fits: int) -> list[dict[str, Any]] | None:
    """An earlier run's timings when it ran to its report without an error, on the same
    dataset with as many CV fits; else None."""
    folder = RunFolder(run_dir)
    if folder.error.exists() or not folder.timings.exists() or not folder.run_info.exists():
        return None
    info = json.loads(folder.run_info.read_text(encoding="utf-8"))
    if info.get("dataset") != dataset:
        return None
    records = read_records(folder.timings)
    if not any(r.get("stage") == "report" for r in records) or cv_fits(records) != fits:
        return None
    return records


def estimate(
    runs_dir: Path,
    dataset: str,
    fits: int,
    exclude: Path | None = None,
    limit: int = HISTORY_RUNS,
) -> Estimate | None:
    """The median time of the latest ``limit`` earlier runs like this one (same dataset,
    as many CV fits, ran to the report without an error), or None when there is none."""
    try:
        folders = [d for d in runs_dir.iterdir() if d.is_dir() and d != exclude]
        folders.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    except OSError:
        return None
    picked: list[list[dict[str, Any]]] = []
    for folder in folders[:HISTORY_SCAN]:
        try:
            records = comparable_records(folder, dataset, fits)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if records:
            picked.append(records)
            if len(picked) >= limit:
                break
    if not picked:
        return None
    try:
        totals = [span(r) or 0.0 for r in picked]
        stages: dict[str, float] = {}
        for stage in {r["stage"] for records in picked for r in records}:
            spans = [s for records in picked if (s := span(records, stage)) is not None]
            stages[stage] = statistics.median(spans)
    except (ValueError, KeyError, TypeError):
        return None
    return Estimate(statistics.median(totals), stages, len(picked))


# ------------------------------------------------------------------------------------------
# the state of the run in progress
# ------------------------------------------------------------------------------------------
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
                start = _times(rec)[0]
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


def describe_phase(
    phase: str, details: dict[str, Any], seconds: Any, plan: Plan, fits_done: int
) -> str:
    """One finished phase, for a person: ``CV fit 3/6: als candidate 1/2, fold 3/3, nDCG
    0.281 (20 s)`` or ``read: 35,030 rows (6.1 s)``."""
    took = f" ({fmt_seconds(float(seconds))})" if isinstance(seconds, int | float) else ""
    failed = " FAILED" if details.get("failed") is True else ""
    of_folds = f"/{plan.folds}" if plan.folds else ""
    if m := CV_FIT.match(phase):
        of = f"/{plan.candidates}" if plan.candidates else ""
        score = f", nDCG {details['ndcg']:.3f}" if isinstance(details.get("ndcg"), float) else ""
        return (
            f"CV fit {fits_done}{'/' + str(plan.fits) if plan.fits else ''}: {m['family']} "
            f"candidate {int(m['i']) + 1}{of}, fold {int(m['f']) + 1}{of_folds}{score}"
            f"{failed}{took}"
        )
    if m := RATING_CV_FIT.match(phase):
        of = f"/{plan.rating_points}" if plan.rating_points else ""
        score = f", RMSE {details['rmse']:.3f}" if isinstance(details.get("rmse"), float) else ""
        return (
            f"CV fit {fits_done}{'/' + str(plan.fits) if plan.fits else ''}: rating point "
            f"{int(m['i']) + 1}{of}, fold {int(m['f']) + 1}{of_folds}{score}{failed}{took}"
        )
    facts = []
    if isinstance(details.get("rows"), int):
        facts.append(f"{details['rows']:,} rows")
    if isinstance(details.get("expectations"), int):
        bad = details.get("failed")
        facts.append(
            f"{details['expectations']} checks"
            + (f", {bad} failed" if isinstance(bad, int) and not isinstance(bad, bool) else "")
        )
    said = f": {', '.join(facts)}" if facts else ""
    return f"{phase.replace('_', ' ')}{said}{failed}{took}"


# ------------------------------------------------------------------------------------------
# following the run's timings
# ------------------------------------------------------------------------------------------
class TimingsTail:
    """The lines appended to a ``timings.jsonl`` since the last read (whole lines only)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self._partial = b""

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict):
                    out.append(rec)
        return out


class View(Protocol):
    def update(self) -> None: ...

    def close(self) -> None: ...


class Poller:
    """Every ``interval`` seconds, in a thread: new timing lines into the progress, the
    estimate once the run's folder says its dataset, then a view update."""

    def __init__(
        self,
        progress: RunProgress,
        view: View,
        runs_dir: Path,
        interval: float = 0.5,
    ):
        self.progress, self.view, self.runs_dir, self.interval = progress, view, runs_dir, interval
        self._tail: TimingsTail | None = None
        self._tail_lock = threading.Lock()
        self._estimated = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reco-run-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def catch_up(self) -> None:
        """The run's timing lines written so far into the progress (also called before a
        task's end is told, so that its last phases come before it)."""
        run_dir = self.progress.run_dir
        if run_dir is None:
            return
        with self._tail_lock:
            if self._tail is None:
                self._tail = TimingsTail(RunFolder(run_dir).timings)
            for rec in self._tail.read_new():
                self.progress.phase_finished(rec)

    def poll(self) -> None:
        self.catch_up()
        run_dir = self.progress.run_dir
        if run_dir is not None and not self._estimated and RunFolder(run_dir).run_info.exists():
            self._estimated = True
            with contextlib.suppress(OSError, ValueError, KeyError):
                info = json.loads(RunFolder(run_dir).run_info.read_text(encoding="utf-8"))
                self.progress.set_estimate(
                    estimate(
                        self.runs_dir,
                        str(info.get("dataset")),
                        self.progress.plan.fits,
                        exclude=run_dir,
                    )
                )
        self.view.update()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # the view must never stop the run
                with contextlib.suppress(Exception):
                    print(f"reco run progress: {type(exc).__name__}: {exc}", file=sys.stderr)

    def stop(self) -> None:
        """Stop the thread, then a last poll (the final timings and task states)."""
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.poll()
