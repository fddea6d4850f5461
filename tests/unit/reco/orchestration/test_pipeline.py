"""Model versions of a run: sortable, stable, named after the trained family."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reco.orchestration.pipeline import model_version_for
from reco.runs import RunFolder


def test_model_version_sorts_by_time_and_is_stable() -> None:
    t = datetime(2026, 11, 23, 18, 54, 8, tzinfo=UTC)
    v = model_version_for("run-a", t)
    assert v.startswith("als-20261123T185408Z-") and v == model_version_for("run-a", t)
    assert v != model_version_for("run-b", t)
    assert model_version_for("run-a", t, "ease") == "ease-" + v.removeprefix("als-")


def test_model_version_names_the_family_the_train_step_chose(tmp_path: Path) -> None:
    """run.json is written before training; the version takes the trained model's family."""
    from reco.orchestration.pipeline import version_stamp_for
    from reco.runtime import run_identity, write_json

    t = datetime(2026, 11, 23, 18, 54, 8, tzinfo=UTC)
    stamp = version_stamp_for("run-a", t)
    write_json(
        RunFolder(tmp_path).run_info,
        {
            "version_stamp": stamp,
            "model_version": model_version_for("run-a", t),
            "generated_at": t.isoformat(),
        },
    )
    assert run_identity(tmp_path) == (f"als-{stamp}", t)
    write_json(RunFolder(tmp_path).model_meta, {"family": "ease", "lambda": 300})
    assert run_identity(tmp_path) == (f"ease-{stamp}", t)
