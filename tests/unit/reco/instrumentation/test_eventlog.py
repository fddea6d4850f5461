"""Parsing Spark's event log: stages tagged with their pipeline phase, metrics summed."""

from __future__ import annotations

import json
from pathlib import Path

from reco.instrumentation import eventlog


def event(kind: str, **fields) -> str:
    return json.dumps({"Event": f"SparkListener{kind}", **fields})


def stage_info(stage_id: int, tasks: int, start: int, end: int, **acc: int) -> dict:
    names = {
        "run": "internal.metrics.executorRunTime",
        "gc": "internal.metrics.jvmGCTime",
        "remote": "internal.metrics.shuffle.read.remoteBytesRead",
        "local": "internal.metrics.shuffle.read.localBytesRead",
        "written": "internal.metrics.shuffle.write.bytesWritten",
        "rows_in": "internal.metrics.input.recordsRead",
    }
    return {
        "Stage ID": stage_id,
        "Stage Attempt ID": 0,
        "Stage Name": f"stage {stage_id}",
        "Number of Tasks": tasks,
        "Submission Time": start,
        "Completion Time": end,
        "Accumulables": [
            {"ID": i, "Name": names[k], "Value": v} for i, (k, v) in enumerate(acc.items())
        ],
    }


LOG = [
    event("ApplicationStart", **{"App ID": "local-1", "App Name": "reco-train"}),
    event(
        "StageSubmitted",
        **{"Stage Info": stage_info(0, 4, 1000, 0), "Properties": {"reco.phase": "train/read"}},
    ),
    event("StageCompleted", **{"Stage Info": stage_info(0, 4, 1000, 3500, run=900, rows_in=120)}),
    event(
        "StageSubmitted",
        **{
            "Stage Info": stage_info(1, 2, 4000, 0),
            "Properties": {"reco.phase": "train/cross_validation"},
        },
    ),
    event(
        "StageCompleted",
        **{
            "Stage Info": stage_info(
                1, 2, 4000, 4250, run=200, gc=15, remote=10, local=30, written=64
            )
        },
    ),
    event(
        "StageSubmitted",
        **{
            "Stage Info": stage_info(2, 3, 5000, 0),
            "Properties": {"reco.phase": "train/cross_validation"},
        },
    ),
    event("StageCompleted", **{"Stage Info": stage_info(2, 3, 5000, 6000, run=700, written=36)}),
    event("StageSubmitted", **{"Stage Info": stage_info(3, 1, 7000, 0), "Properties": {}}),
    event("StageCompleted", **{"Stage Info": stage_info(3, 1, 7000, 7100, run=5)}),
    '{"Event":"SparkListenerStageCompleted","Stage In',  # a log still being written
]


def test_stage_rows_carry_phase_app_and_metrics() -> None:
    rows = eventlog.stage_metrics(LOG)
    assert [(r["stage_id"], r["step"], r["phase"]) for r in rows] == [
        (0, "train", "read"),
        (1, "train", "cross_validation"),
        (2, "train", "cross_validation"),
        (3, "", ""),
    ]
    first, second = rows[0], rows[1]
    assert first["app_id"] == "local-1" and first["app_name"] == "reco-train"
    assert first["tasks"] == 4 and first["seconds"] == 2.5
    assert first["executor_run_ms"] == 900 and first["input_rows"] == 120
    assert second["shuffle_read_bytes"] == 40  # remote + local
    assert second["gc_ms"] == 15 and second["shuffle_write_bytes"] == 64


def test_by_phase_sums_tagged_stages_only() -> None:
    sums = eventlog.by_phase(eventlog.stage_metrics(LOG))
    assert set(sums) == {("train", "read"), ("train", "cross_validation")}
    cv = sums[("train", "cross_validation")]
    assert cv["stages"] == 2 and cv["tasks"] == 5
    assert cv["stage_seconds"] == 1.25
    assert cv["executor_run_ms"] == 900 and cv["shuffle_write_bytes"] == 100
    assert cv["shuffle_read_bytes"] == 40 and cv["gc_ms"] == 15


def test_apps_noted_once_per_run(tmp_path) -> None:
    eventlog.note_app(tmp_path, "app-1")
    eventlog.note_app(tmp_path, "app-2")
    eventlog.note_app(tmp_path, "app-1")
    assert eventlog.run_apps(tmp_path) == ["app-1", "app-2"]
    assert eventlog.read_app("no-such-app", tmp_path) == []


def test_prune_removes_only_old_finished_logs(tmp_path: Path) -> None:
    import os

    from reco.instrumentation.eventlog import prune

    now = 1_800_000_000.0
    old, fresh, running = (tmp_path / n for n in ("local-1", "local-2", "local-3.inprogress"))
    for path, age_days in ((old, 20), (fresh, 1), (running, 30)):
        path.write_text("{}\n")
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    assert prune(tmp_path, keep_days=14, now=now) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local-2", "local-3.inprogress"]
    assert prune(tmp_path, keep_days=0, now=now) == []  # 0 keeps everything
