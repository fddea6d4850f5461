"""One line per run for the reports index (``/reco-reports/``): when it started, on which
dataset, how it ended (published, rejected, or failed and at which step), the model, its
nDCG and RMSE, and its wall time.

Each run's line is kept as ``var/reports/<run>.json`` beside its page: written when its
report renders (:func:`reco.reporting.report.run`) and when the run ends
(:mod:`reco.reporting.run_end`), so a run that failed before training, and has no page,
is listed too. :func:`entries` reads them back newest first for the index; a page without
its line (a report from before these lines existed) is listed by its file time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reco.runs import RunFolder
from reco.runtime import read_error, read_json

SUFFIX = ".json"


def outcome(run: dict[str, Any] | None, metrics: dict[str, Any], error: dict | None) -> str:
    """How the run ended, as the index says it: the publish's record first, then the step
    that failed, then the gate's own decision (a run not yet published)."""
    if run and run.get("status"):
        status = str(run["status"])
        if status == "failed" and error:
            return f"failed at {error.get('stage') or 'publish'}"
        return status
    if error:
        return f"failed at {error.get('stage') or 'an unknown step'}"
    gate = metrics.get("gate") or {}
    if metrics:
        return "passed the gate" if gate.get("publish", True) else "rejected"
    return "unfinished"


def model_text(metrics: dict[str, Any]) -> str:
    """The chosen model, short: its family and parameters."""
    ranking = metrics.get("ranking") or {}
    family = ranking.get("family") or metrics.get("model_family") or ""
    params = ranking.get("params") or {}
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if k != "family")
    return f"{family} {shown}".strip()


def line(
    run_id: str,
    run_dir: Path,
    timings: list[dict[str, Any]],
    run: dict[str, Any] | None,
) -> dict[str, Any]:
    """The run's index line from its folder, its timing rows and its ``reco.model_runs``
    row (None when it has none)."""
    folder = RunFolder(run_dir)
    info = read_json(folder.run_info) if folder.run_info.exists() else {}
    manifest = read_json(folder.manifest) if folder.manifest.exists() else {}
    metrics = read_json(folder.metrics) if folder.metrics.exists() else {}
    started = min((r["started_at"] for r in timings), default=None)
    finished = max((r["finished_at"] for r in timings), default=None)
    dataset = info.get("dataset") or (manifest.get("source") or {}).get("ratings_path")
    return {
        "run_id": run_id,
        "page": f"{run_dir.name}.html",
        "started": started.astimezone(UTC).isoformat() if started else None,
        "dataset": dataset,
        "outcome": outcome(run, metrics, read_error(run_dir)),
        "model": model_text(metrics) if metrics else "",
        "ndcg": (metrics.get("ranking") or {}).get("ndcg"),
        "k": (metrics.get("ranking") or {}).get("k"),
        "rmse": (metrics.get("rating") or {}).get("rmse"),
        "wall_s": (finished - started).total_seconds() if started and finished else None,
    }


def write(reports_dir: Path, run_dir: Path, entry: dict[str, Any]) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"{run_dir.name}{SUFFIX}"
    path.write_text(json.dumps(entry, indent=1), encoding="utf-8")
    return path


def display(entry: dict[str, Any]) -> dict[str, Any]:
    """A line as the index shows it: the start as UTC minutes, the dataset by its folder or
    file name (the whole path in its tooltip)."""
    started = entry.get("started")
    dataset = entry.get("dataset") or ""
    return {
        **entry,
        "when": f"{datetime.fromisoformat(started):%Y-%m-%d %H:%M} UTC" if started else "",
        "dataset_name": Path(dataset).name if dataset else "",
    }


def entries(reports_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``(runs, other pages)``: each run's line, newest first; then the pages that are not
    a run's (A/B analyses, reports from before these lines), newest first by file time."""
    runs = []
    for path in reports_dir.glob(f"*{SUFFIX}"):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a line being written, or damaged: the run's page is still listed
        entry["has_page"] = (reports_dir / str(entry.get("page", ""))).is_file()
        runs.append(display(entry))
    runs.sort(key=lambda e: e.get("started") or "", reverse=True)
    listed = {e.get("page") for e in runs}
    others = sorted(
        (p for p in reports_dir.glob("*.html") if p.name != "latest.html" and p.name not in listed),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    return runs, [
        {
            "name": p.name,
            "title": p.stem,
            "modified": f"{datetime.fromtimestamp(p.stat().st_mtime, UTC):%Y-%m-%d %H:%M} UTC",
        }
        for p in others
    ]
