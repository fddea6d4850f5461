"""A run's line in the reports index (reco.reporting.index): how it ended, read from the
publish's record, the step that failed, or the gate; its dataset, model and figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reco.reporting import index
from reco.runs import RunFolder

T0 = datetime(2026, 12, 4, 13, 53, 10, tzinfo=UTC)
TIMINGS = [
    {"started_at": T0 + timedelta(seconds=s), "finished_at": T0 + timedelta(seconds=s + d)}
    for s, d in ((0, 5), (5, 60), (70, 18))
]
METRICS = {
    "ranking": {"family": "als", "params": {"rank": 32, "regParam": 0.2}, "ndcg": 0.4523, "k": 10},
    "rating": {"rmse": 0.9055},
    "gate": {"publish": True},
}


def folder(tmp_path: Path, *, metrics: dict | None = None, error: dict | None = None) -> Path:
    run_dir = tmp_path / "run_1"
    run_dir.mkdir()
    f = RunFolder(run_dir)
    f.run_info.write_text(json.dumps({"dataset": "/data/ml-100k"}))
    f.manifest.write_text(json.dumps({"source": {"ratings_path": "/data/ml-100k/u.data"}}))
    if metrics is not None:
        f.metrics.write_text(json.dumps(metrics))
    if error is not None:
        f.error.write_text(json.dumps(error))
    return run_dir


def test_a_published_run_line(tmp_path: Path) -> None:
    entry = index.line("r1", folder(tmp_path, metrics=METRICS), TIMINGS, {"status": "published"})
    assert entry == {
        "run_id": "r1",
        "page": "run_1.html",
        "started": "2026-12-04T13:53:10+00:00",
        "dataset": "/data/ml-100k",
        "outcome": "published",
        "model": "als rank=32, regParam=0.2",
        "ndcg": 0.4523,
        "k": 10,
        "rmse": 0.9055,
        "wall_s": 88.0,
    }


@pytest.mark.parametrize(
    ("metrics", "error", "run", "outcome"),
    [
        (METRICS, None, {"status": "rejected"}, "rejected"),
        (METRICS, {"stage": "publish"}, {"status": "failed"}, "failed at publish"),
        (None, {"stage": "validate", "message": "gate"}, None, "failed at validate"),
        ({**METRICS, "gate": {"publish": False}}, None, None, "rejected"),
        (METRICS, None, None, "passed the gate"),
        (None, None, None, "unfinished"),
    ],
)
def test_how_a_run_ended(tmp_path: Path, metrics, error, run, outcome) -> None:
    run_dir = folder(tmp_path, metrics=metrics, error=error)
    assert index.line("r1", run_dir, TIMINGS, run)["outcome"] == outcome


def test_a_run_without_timings_or_metrics_has_blanks(tmp_path: Path) -> None:
    entry = index.line("r1", folder(tmp_path), [], None)
    assert (entry["started"], entry["wall_s"], entry["model"], entry["ndcg"]) == (
        None,
        None,
        "",
        None,
    )
    written = index.write(tmp_path / "reports", tmp_path / "run_1", entry)
    runs, others = index.entries(tmp_path / "reports")
    assert written.name == "run_1.json" and others == []
    assert [(r["run_id"], r["has_page"], r["when"]) for r in runs] == [("r1", False, "")]
