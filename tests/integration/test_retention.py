"""Retention on real files: 30 simulated daily runs (each a run folder as a publishing run
leaves it, its Data Docs, its report and a Spark event log), pruned after each day as the
maintenance DAG does; the kept runs are the right ones and the disk stays bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reco import config
from reco.maintenance import retention
from reco.maintenance.retention import Policy
from tests.support.published import write_run

DAY = 86400.0
START = 1_790_000_000.0  # a day in 2026


@pytest.fixture()
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "lake" / "runs")
    monkeypatch.setattr(config, "SPARK_EVENTS_DIR", tmp_path / "lake" / "spark-events")
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(config, "DATA_DOCS_DIR", tmp_path / "reports" / "data_docs")
    return tmp_path


def simulate_day(day: int) -> str:
    key = f"scheduled__day{day:02d}"
    when = START + day * DAY
    write_run(config.RUNS_DIR / key, day + 1, modified=when)
    docs = config.DATA_DOCS_DIR / key
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html>" + "x" * 20_000 + "</html>")
    config.REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    (config.REPORTS_DIR / f"{key}.html").write_text("<html>" + "y" * 30_000 + "</html>")
    log = config.SPARK_EVENTS_DIR / f"app-{day:02d}"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"e" * 50_000)
    os.utime(log, (when, when))
    os.utime(config.RUNS_DIR / key, (when, when))
    return key


def test_thirty_daily_runs_keep_the_right_runs_and_bounded_disk(lake: Path, capsys) -> None:
    policy = Policy(keep_runs=5, keep_days=3, keep_published=3)
    published: list[str] = []  # current first
    sizes = []
    for day in range(30):
        key = simulate_day(day)
        if day % 4 == 0:  # every fourth run's model passes the gate and is published
            published.insert(0, key)
        result = retention.prune(published, policy, now=START + day * DAY + 3600)
        sizes.append(sum(retention.disk_use().values()))
        kept = set(result["kept"])
        assert key in kept  # the run of the day, always
        assert published[0] in kept if published else True
        assert len(kept) <= policy.keep_runs + policy.keep_published
    newest = {f"scheduled__day{d:02d}" for d in range(25, 30)}
    rollback_targets = {"scheduled__day28", "scheduled__day24", "scheduled__day20"}
    on_disk = {p.name for p in config.RUNS_DIR.iterdir()}
    assert on_disk == newest | rollback_targets
    assert result["kept"]["scheduled__day28"] == "published now (the champion)"
    assert result["kept"]["scheduled__day20"].startswith("one of the last 3 published")
    # Every file of a pruned run is gone: folder, Data Docs, report; old event logs too.
    assert {p.name for p in config.DATA_DOCS_DIR.iterdir()} == on_disk
    assert {p.stem for p in config.REPORTS_DIR.glob("*.html")} == on_disk
    assert {p.name for p in config.SPARK_EVENTS_DIR.iterdir()} == {
        f"app-{d:02d}" for d in range(25, 30)
    }
    one_run = sizes[0]
    assert max(sizes) <= (policy.keep_runs + policy.keep_published) * one_run * 1.1
    with capsys.disabled():
        print(f"\n30 daily runs: disk after each day {[s // 1024 for s in sizes]} KiB")


def test_a_dry_run_deletes_nothing_and_says_what_would_go(lake: Path) -> None:
    for day in range(6):
        simulate_day(day)
    before = sorted(p.name for p in config.RUNS_DIR.iterdir())
    result = retention.prune(
        [], Policy(keep_runs=2, keep_days=0, keep_published=1), dry_run=True, now=START + 6 * DAY
    )
    assert result["pruned"] == [f"scheduled__day{d:02d}" for d in range(4)]
    assert result["bytes_freed"] > 0
    assert sorted(p.name for p in config.RUNS_DIR.iterdir()) == before
