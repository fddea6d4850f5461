"""A run in progress as the person at the terminal follows it: the state fed by task events
and timing lines, the estimate from earlier runs, and the two views."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from reco.console import view as progress_view
from reco.console.history import Estimate, estimate
from reco.console.phases import Plan, describe_phase, fmt_seconds
from reco.console.poller import TimingsTail
from reco.console.run_state import RunProgress
from reco.runs import RunFolder

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


def record(stage: str, phase: str, start: float, seconds: float, **details) -> dict:
    began = T0 + timedelta(seconds=start)
    return {
        "stage": stage,
        "phase": phase,
        "started_at": began.isoformat(),
        "finished_at": (began + timedelta(seconds=seconds)).isoformat(),
        "seconds": seconds,
        "details": details,
    }


@pytest.mark.parametrize(
    "seconds, text",
    [(2.34, "2.3 s"), (23.4, "23 s"), (65, "1m05s"), (299, "4m59s"), (3720, "1h02m")],
)
def test_fmt_seconds(seconds: float, text: str) -> None:
    assert fmt_seconds(seconds) == text


def test_phases_are_described_for_a_person() -> None:
    plan = Plan(folds=3, candidates=2, rating_points=0)
    assert plan.fits == 6
    assert (
        describe_phase("cv_als_c1_fold2", {"fold": 2, "ndcg": 0.2881}, 20.1, plan, 5)
        == "CV fit 5/6: als candidate 2/2, fold 3/3, nDCG 0.288 (20 s)"
    )
    assert (
        describe_phase("rating_cv_p0_fold1", {"rmse": 0.91}, 3.0, Plan(2, 0, 2), 1)
        == "CV fit 1/4: rating point 1/2, fold 2/2, RMSE 0.910 (3.0 s)"
    )
    assert describe_phase("read", {"rows": 35030}, 6.14, plan, 0) == "read: 35,030 rows (6.1 s)"
    assert (
        describe_phase("ratings_suite", {"expectations": 18, "failed": 1}, 7.3, plan, 0)
        == "ratings suite: 18 checks, 1 failed (7.3 s)"
    )
    assert describe_phase("write", {"failed": True}, 1.0, plan, 0) == "write FAILED (1.0 s)"


def test_task_events_phases_and_the_fit_counter() -> None:
    clock = Clock()
    p = RunProgress(Plan(folds=2, candidates=2), clock=clock)
    p.set_run("manual__r", Path("/lake/runs/r"), Path("/lake/runs/r/run.log"), 8)
    p.task_running("train")
    clock.now += 30
    p.phase_finished(record("train", "read", 0, 1.0, rows=100))
    p.phase_finished(record("train", "cv_als_c0_fold0", 1, 10.0, ndcg=0.3))
    p.phase_finished(record("train", "cv_ease_c1_fold0", 1, 12.0, ndcg=0.31))
    snap = p.snapshot()
    assert snap.fits_done == 2 and snap.fits_total == 4
    assert [t.task_id for t in snap.running] == ["train"]
    share, doing = progress_view.task_progress(snap.running[0], snap)
    assert share == 0.5
    assert doing == "CV fits 2/4 · last: ease candidate 2/2, fold 1/2, nDCG 0.310 (12 s)"
    p.phase_finished(record("train", "total", 0, 40.0))  # the task's end says it
    clock.now += 10
    p.task_ended("train", "success")
    p.task_ended("train", "success")  # the final states repeat what the listener said
    events, cursor = p.drain(0)
    assert [e.kind for e in events] == ["run", "start", "phase", "phase", "phase", "end"]
    assert events[-1].seconds == 40 and events[-1].state == "success"
    assert p.drain(cursor) == ([], cursor)
    assert p.tasks["train"].phases == ["read"]  # CV fits are counted, not listed


def test_a_retry_and_a_task_that_never_ran() -> None:
    clock = Clock()
    p = RunProgress(clock=clock)
    p.task_running("publish")
    p.task_ended("publish", "up_for_retry", RuntimeError("cannot reach the warehouse\nmore"))
    p.task_running("publish")
    p.task_ended("report", "upstream_failed")
    events, _ = p.drain(0)
    assert [(e.kind, e.task, e.state, e.text) for e in events] == [
        ("start", "publish", "", "1"),
        ("end", "publish", "up_for_retry", "cannot reach the warehouse"),
        ("start", "publish", "", "2"),
        ("end", "report", "upstream_failed", ""),
    ]
    assert events[-1].seconds is None
    assert p.snapshot().running[0].tries == 2


def test_remaining_time_counts_from_the_runs_first_phase() -> None:
    clock = Clock()
    p = RunProgress(clock=clock)
    assert p.remaining() is None
    p.set_estimate(Estimate(total=100.0, stages={"train": 60.0}, runs=3))
    assert p.remaining() == 100.0  # not started yet
    p.phase_finished(record("prepare", "total", 0, 0.5))
    clock.now = T0.timestamp() + 30
    assert p.remaining() == pytest.approx(70.0)
    clock.now = T0.timestamp() + 130
    snap = p.snapshot()
    assert snap.remaining == pytest.approx(-30.0)
    assert progress_view.left_text(snap) == "longer than earlier runs (about 1m40s)"


def test_timings_tail_reads_whole_new_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "timings.jsonl"
    tail = TimingsTail(path)
    assert tail.read_new() == []  # not written yet
    line = json.dumps(record("ingest", "read", 0, 1.0))
    path.write_text(line + "\n" + line[:20])
    assert [r["phase"] for r in tail.read_new()] == ["read"]
    with open(path, "a") as fh:
        fh.write(line[20:] + "\nnot json\n")
    assert [r["phase"] for r in tail.read_new()] == ["read"]
    assert tail.read_new() == []


def write_run(
    runs: Path, name: str, dataset: str, seconds: float, fits: int = 0, **extra: bool
) -> Path:
    folder = RunFolder(runs / name)
    folder.path.mkdir(parents=True)
    folder.run_info.write_text(json.dumps({"dataset": dataset}))
    lines = [record("prepare", "total", 0, 1.0), record("train", "total", 1, seconds - 3)]
    lines += [record("train", f"cv_als_c0_fold{f}", 2, 1.0) for f in range(fits)]
    if not extra.get("unfinished"):
        lines.append(record("report", "render", seconds - 1, 1.0))
    folder.timings.write_text("".join(json.dumps(r) + "\n" for r in lines))
    if extra.get("failed"):
        folder.error.write_text("{}")
    return folder.path


def test_the_estimate_is_the_median_of_earlier_runs_like_this_one(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for i, seconds in enumerate((100, 120, 200)):
        write_run(runs, f"ok{i}", "/data/a", seconds, fits=2)
    write_run(runs, "other-data", "/data/b", 10, fits=2)
    write_run(runs, "other-fits", "/data/a", 10, fits=0)
    write_run(runs, "failed", "/data/a", 10, fits=2, failed=True)
    write_run(runs, "unfinished", "/data/a", 10, fits=2, unfinished=True)
    current = write_run(runs, "current", "/data/a", 10, fits=2)
    est = estimate(runs, "/data/a", 2, exclude=current)
    assert est is not None
    assert (est.total, est.runs) == (120.0, 3)
    assert est.stages["train"] == 117.0 and est.stages["prepare"] == 1.0
    assert estimate(runs, "/data/c", 2) is None
    assert estimate(tmp_path / "none", "/data/a", 2) is None
    (runs / "broken").mkdir()
    RunFolder(runs / "broken").run_info.write_text("{not json")
    assert estimate(runs, "/data/a", 2, exclude=current) == est


def test_plain_view_lines_are_timestamped_one_per_start_end_and_phase() -> None:
    clock = Clock()
    p = RunProgress(Plan(), clock=clock)
    out = io.StringIO()
    view = progress_view.PlainView(out, p, heartbeat=3600)
    p.set_run("manual__r", Path("/r"), Path("/r/run.log"), 2)
    p.task_running("ingest")
    p.phase_finished(record("ingest", "read", 0, 6.1, rows=35030))
    clock.now += 21.5
    p.task_ended("ingest", "success")
    p.task_ended("publish", "failed", "[publish] cannot reach the warehouse")
    view.close()
    lines = [line[9:] for line in out.getvalue().splitlines()]  # after "HH:MM:SS "
    assert lines[0].startswith("starting the recommendations DAG")
    assert lines[1:] == [
        "run manual__r: 2 steps; Airflow's and Spark's log lines: /r/run.log",
        "ingest          running",
        "ingest          · read: 35,030 rows (6.1 s)",
        "ingest          success 22 s",
        "publish         failed: [publish] cannot reach the warehouse",
    ]


def test_plain_view_says_what_runs_when_nothing_else_was_said() -> None:
    clock = Clock()
    p = RunProgress(Plan(folds=2, candidates=1, rating_points=0), clock=clock)
    out = io.StringIO()
    view = progress_view.PlainView(out, p, heartbeat=0)
    view.update()
    assert "Airflow: starting the run" in out.getvalue().splitlines()[-1]
    p.task_running("train")
    clock.now += 45
    view.update()
    assert (
        out.getvalue().splitlines()[-1].endswith("train           still running, 45 s; CV fits 0/2")
    )


def test_live_view_frame_and_lines() -> None:
    clock = Clock()
    p = RunProgress(Plan(folds=3, candidates=2), clock=clock)
    p.set_run("manual__r", Path("/r"), Path("/r/run.log"), 8)
    p.task_running("ingest")
    p.phase_finished(record("ingest", "read", 0, 6.1, rows=35030))
    clock.now += 21.5
    p.task_ended("ingest", "success")
    p.task_running("train")
    p.phase_finished(record("train", "cv_als_c0_fold0", 1, 20.0, ndcg=0.28))
    clock.now += 30
    p.set_estimate(Estimate(total=100.0, stages={"train": 60.0}, runs=3))
    screen = Console(file=io.StringIO(), width=120, color_system=None)
    view = progress_view.LiveView.__new__(progress_view.LiveView)  # no terminal: no Live
    view.progress, view.fancy, view._spinners = p, True, {}
    for event in p.drain(0)[0]:
        if event.kind in ("run", "estimate", "end"):
            screen.print(view.line(event))
    screen.print(view.render())
    text = screen.file.getvalue()
    assert "run manual__r: 8 steps; Airflow's and Spark's log lines: /r/run.log" in text
    assert "✓ ingest            22 s  read" in text
    assert "train             30 s  ━━━━" in text
    assert "CV fits 1/6 · last: als candidate 1/2, fold 1/3, nDCG 0.280 (20 s)" in text
    assert "step 2/8 · elapsed 52 s · about 48 s left · Ctrl-C stops the run" in text


def test_the_view_is_live_only_on_a_terminal(tmp_path: Path, monkeypatch) -> None:
    with open(tmp_path / "file", "w") as fh:
        assert not progress_view.is_terminal(fh)
    assert not progress_view.is_terminal(io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setattr(progress_view.os, "isatty", lambda fd: True)
    with open(tmp_path / "file", "w") as fh:
        assert not progress_view.is_terminal(fh)
