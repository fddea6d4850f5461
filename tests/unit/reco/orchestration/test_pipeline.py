"""Model versions of a run: sortable, stable, named after the trained family."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

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


def test_an_unexpected_task_failure_is_kept_as_one_line_and_its_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from reco.orchestration.pipeline import task_errors
    from reco.runs import run_dir_for
    from reco.runtime import read_error

    run_id = "manual__task-errors-unexpected"
    with pytest.raises(KeyError), task_errors("record_quality", run_id):
        {}["n_ratings"]
    info = read_error(run_dir_for(run_id))
    assert info is not None
    assert info["message"] == (f"record_quality failed on run {run_id}: KeyError: 'n_ratings'")
    assert "Traceback" in info["traceback"] and "n_ratings" in info["traceback"]
    err = capsys.readouterr().err
    assert f"ERROR [record_quality]: {info['message']}" in err
    assert str(RunFolder(run_dir_for(run_id)).error) in err
