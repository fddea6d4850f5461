"""The ratings inbox watcher: what counts as a new, complete export, and what a run reads."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reco.data.watch import Entry, pick_new, scan
from reco.errors import PipelineError
from reco.orchestration import pipeline


def touch(path: Path, text: str, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_scan_sees_files_and_folders_but_not_work_in_progress(tmp_path: Path) -> None:
    touch(tmp_path / "ratings-1.csv", "user_id,item_id,rating\n", 1000)
    touch(tmp_path / "ml-100k" / "u.data", "1\t2\t3\t4\n", 2000)
    touch(tmp_path / "ml-100k" / "u.item", "x", 3000)
    touch(tmp_path / ".partial.csv", "x", 4000)
    touch(tmp_path / "_copying" / "u.data", "x", 5000)
    (tmp_path / "empty-folder").mkdir()
    entries = {Path(e.path).name: e for e in scan(tmp_path)}
    assert set(entries) == {"ratings-1.csv", "ml-100k"}
    assert entries["ml-100k"].mtime_ns == 3000 * 10**9  # its newest file
    assert entries["ml-100k"].size == len("1\t2\t3\t4\n") + 1
    assert scan(tmp_path / "missing") == []


def test_pick_new_waits_until_an_entry_stops_changing() -> None:
    a1 = Entry("/in/a.csv", 10, 100)
    a2 = Entry("/in/a.csv", 20, 300)  # still being written
    b = Entry("/in/b.csv", 15, 50)
    assert pick_new([a1], [a2], 0) is None
    assert pick_new([a2], [a2], 0) == a2
    assert pick_new([a2, b], [a2, b], 0) == a2  # the newest
    assert pick_new([a2, b], [a2, b], 20) is None  # already fired for
    assert pick_new([a2, b], [a2, b], 15) == a2


def test_the_watcher_fires_once_for_a_dropped_file_with_its_path(tmp_path: Path) -> None:
    from reco.orchestration.assets import NewExportTrigger

    old = touch(tmp_path / "old.csv", "user_id,item_id,rating\n1,2,3\n", time.time() - 60)
    trigger = NewExportTrigger(directory=str(tmp_path), poll_seconds=0.05)
    trigger._memory_watermark = old.stat().st_mtime_ns  # fired for it before

    async def first_event() -> dict:
        async def drop() -> None:
            await asyncio.sleep(0.2)
            touch(tmp_path / "new.csv", "user_id,item_id,rating\n1,2,3\n", time.time())

        dropper = asyncio.create_task(drop())
        async for event in trigger.run():
            await dropper
            return event.payload
        raise AssertionError("the trigger ended without an event")

    # In a thread of its own: another test (Playwright, Airflow) may leave an event loop
    # running in this one.
    with ThreadPoolExecutor(1) as pool:
        payload = pool.submit(asyncio.run, asyncio.wait_for(first_event(), 10)).result()
    assert payload["path"] == str(tmp_path / "new.csv") and payload["size"] > 0
    assert trigger._memory_watermark == (tmp_path / "new.csv").stat().st_mtime_ns
    classpath, kwargs = trigger.serialize()
    assert classpath == "reco.orchestration.assets.NewExportTrigger"
    assert kwargs == {"directory": str(tmp_path), "poll_seconds": 0.05}


def test_a_run_reads_the_given_then_the_landed_then_the_newest_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "newest_export", lambda: str(tmp_path / "newest.csv"))
    assert pipeline.choose_dataset(" /data/x.csv ", "/in/landed.csv") == "/data/x.csv"
    assert pipeline.choose_dataset(None, "/in/landed.csv") == "/in/landed.csv"
    assert pipeline.choose_dataset("", None) == str(tmp_path / "newest.csv")
    touch(tmp_path / "inbox" / "a.csv", "x", 1000)
    touch(tmp_path / "inbox" / "b.csv", "x", 2000)
    monkeypatch.undo()
    assert pipeline.newest_export(tmp_path / "inbox") == str(tmp_path / "inbox" / "b.csv")
    assert pipeline.newest_export(tmp_path / "nothing") is None


@pytest.mark.parametrize(
    "params, message",
    [
        ({"families": "als,svd"}, "argument --families: 'als,svd' does not match"),
        ({"ranking_grid": "{rank: 8}"}, r"ranking_grid \(--ranking-grid\) is not valid JSON"),
        ({"ease_grid": '{"lambda": []}'}, r"ease_grid \(--ease-grid\) lambda has no values"),
        ({"grid": '{"rank": ["ten"]}'}, "grid rank must be numbers"),
        ({"grid": '{"depth": [3]}'}, "keys among"),
    ],
)
def test_bad_model_params_are_refused_before_spark(params: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        pipeline.check_model_params(params)


def test_default_model_params_pass() -> None:
    pipeline.check_model_params({"families": None, "ranking_grid": None, "grid": ""})


def test_the_report_waits_for_the_publishing_run_to_end() -> None:
    states = iter(["queued", "running", "running", "success"])
    assert pipeline.wait_for_run_end(lambda _: next(states), "r1", timeout=5, poll=0) == "success"
    assert pipeline.wait_for_run_end(lambda _: "running", "r1", timeout=0.05, poll=0.01) is None
    assert pipeline.wait_for_run_end(lambda _: "failed", "r1") == "failed"


def test_the_ab_analysis_after_a_publish_is_skipped_without_experiment_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from reco import config

    monkeypatch.setattr(config, "AB_INBOX", tmp_path / "experiment")
    with pytest.raises(AirflowSkipException, match="no experiment data"):
        pipeline.prepare_ab_run({}, "r1", "postgresql://unused", manual=False)
    # Triggered by hand, the same gap is an error that says what to provide.
    with pytest.raises(PipelineError, match="lacks assignments.csv, events.csv"):
        pipeline.prepare_ab_run({}, "r1", "postgresql://unused", manual=True)
