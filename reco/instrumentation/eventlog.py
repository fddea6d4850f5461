"""Spark's own stage metrics, read from its standard event log.

Every Spark step runs with ``spark.eventLog.enabled`` writing to ``<lake>/spark-events``
(uncompressed, one file per application), so the Spark History Server can open the same
logs, locally or from a cluster's driver. While a pipeline phase runs, the timer tags the
Spark jobs it starts with the local property ``reco.phase`` (``"train/cross_validation"``)
and notes the application id in the run folder (``spark_apps.txt``). The report step then
reads each application's log with :func:`stage_metrics` (one row per completed Spark
stage) and sums them per phase with :func:`by_phase`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reco import config

PHASE_PROPERTY = "reco.phase"
# The run a Spark job belongs to: steps of one run, or several runs (tests, make run),
# may share one Spark application, and so one event log.
RUN_PROPERTY = "reco.run"
APPS_FILE = "spark_apps.txt"

# Task metrics summed over a stage (the stage's accumulables) -> our column names.
ACCUMULABLES = {
    "internal.metrics.executorRunTime": "executor_run_ms",
    "internal.metrics.jvmGCTime": "gc_ms",
    "internal.metrics.shuffle.read.remoteBytesRead": "shuffle_read_bytes",
    "internal.metrics.shuffle.read.localBytesRead": "shuffle_read_bytes",
    "internal.metrics.shuffle.write.bytesWritten": "shuffle_write_bytes",
    "internal.metrics.memoryBytesSpilled": "memory_spill_bytes",
    "internal.metrics.diskBytesSpilled": "disk_spill_bytes",
    "internal.metrics.input.recordsRead": "input_rows",
    "internal.metrics.output.recordsWritten": "output_rows",
}
METRIC_COLUMNS = sorted(set(ACCUMULABLES.values()))


def tag_phase(run_dir: Path | None, label: str) -> str | None:
    """Tag the Spark jobs started from now on with ``label``; note the app id.

    Does nothing (and returns None) when no SparkContext is running in this process, so
    non-Spark steps never import Spark. Returns the previous tag, for :func:`restore`.
    """
    if "pyspark" not in sys.modules:
        return None
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        return None
    previous = sc.getLocalProperty(PHASE_PROPERTY) or ""
    sc.setLocalProperty(PHASE_PROPERTY, label)
    if run_dir is not None:
        sc.setLocalProperty(RUN_PROPERTY, run_dir.name)
        note_app(run_dir, sc.applicationId)
    return previous


def restore(previous: str | None) -> None:
    if previous is None or "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is not None:
        sc.setLocalProperty(PHASE_PROPERTY, previous or None)


def note_app(run_dir: Path, app_id: str) -> None:
    path = run_dir / APPS_FILE
    known = path.read_text().split() if path.exists() else []
    if app_id not in known:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(app_id + "\n")


def run_apps(run_dir: Path) -> list[str]:
    path = run_dir / APPS_FILE
    return path.read_text().split() if path.exists() else []


def log_path(app_id: str, events_dir: Path | None = None) -> Path | None:
    """The application's event log (finished, or still ``.inprogress``), if present."""
    d = events_dir or config.SPARK_EVENTS_DIR
    for candidate in (d / app_id, d / f"{app_id}.inprogress"):
        if candidate.exists():
            return candidate
    return None


def stage_metrics(lines: Iterable[str]) -> list[dict[str, Any]]:
    """One row per completed stage attempt of one application's event log."""
    app = {"app_id": "", "app_name": ""}
    phases: dict[tuple[int, int], str] = {}
    runs: dict[tuple[int, int], str] = {}
    rows = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the unfinished last line of a log still being written
        kind = event.get("Event")
        if kind == "SparkListenerApplicationStart":
            app = {"app_id": event.get("App ID", ""), "app_name": event.get("App Name", "")}
        elif kind == "SparkListenerStageSubmitted":
            info = event["Stage Info"]
            props = event.get("Properties") or {}
            key = (info["Stage ID"], info.get("Stage Attempt ID", 0))
            phases[key] = props.get(PHASE_PROPERTY, "")
            runs[key] = props.get(RUN_PROPERTY, "")
        elif kind == "SparkListenerStageCompleted":
            row = stage_row(event["Stage Info"], phases, app)
            row["run"] = runs.get((row["stage_id"], row["attempt"]), "")
            rows.append(row)
    return rows


def stage_row(
    info: dict[str, Any], phases: dict[tuple[int, int], str], app: dict[str, str]
) -> dict[str, Any]:
    key = (info["Stage ID"], info.get("Stage Attempt ID", 0))
    metrics = dict.fromkeys(METRIC_COLUMNS, 0)
    for acc in info.get("Accumulables") or []:
        column = ACCUMULABLES.get(acc.get("Name", ""))
        if column:
            metrics[column] += int(acc.get("Value") or 0)
    submitted = info.get("Submission Time")
    completed = info.get("Completion Time")
    label = phases.get(key, "")
    step, _, phase = label.partition("/")
    return {
        **app,
        "step": step,
        "phase": phase,
        "stage_id": key[0],
        "attempt": key[1],
        "name": info.get("Stage Name", ""),
        "tasks": info.get("Number of Tasks", 0),
        "submitted_ms": submitted,
        "completed_ms": completed,
        "seconds": (completed - submitted) / 1000 if submitted and completed else 0.0,
        "failed": bool(info.get("Failure Reason")),
        **metrics,
    }


def for_run(rows: list[dict[str, Any]], run: str) -> list[dict[str, Any]]:
    """The stages of one run: all of an application's when it served only this run (its
    untagged set-up stages included), else those tagged with the run."""
    others = {r.get("run", "") for r in rows} - {"", run}
    return [r for r in rows if r.get("run", "") == run] if others else rows


def read_app(app_id: str, events_dir: Path | None = None) -> list[dict[str, Any]]:
    path = log_path(app_id, events_dir)
    if path is None:
        return []
    with open(path, encoding="utf-8", errors="replace") as fh:
        return stage_metrics(fh)


def by_phase(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Stage metrics summed per (step, phase); untagged stages are left out."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if not r["step"]:
            continue
        agg = out.setdefault(
            (r["step"], r["phase"]),
            {"stages": 0, "tasks": 0, "stage_seconds": 0.0, **dict.fromkeys(METRIC_COLUMNS, 0)},
        )
        agg["stages"] += 1
        agg["tasks"] += r["tasks"]
        agg["stage_seconds"] = round(agg["stage_seconds"] + r["seconds"], 3)
        for c in METRIC_COLUMNS:
            agg[c] += r[c]
    return out


def prune(events_dir: Path, keep_days: float, now: float | None = None) -> list[Path]:
    """Delete finished event logs older than ``keep_days`` (by modification time); logs
    still being written (``.inprogress``) are kept. Returns what was removed."""
    import time

    if keep_days <= 0 or not events_dir.is_dir():
        return []
    cutoff = (now if now is not None else time.time()) - keep_days * 86400
    removed = []
    for path in events_dir.iterdir():
        finished = path.is_file() and not path.name.endswith(".inprogress")
        if finished and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
