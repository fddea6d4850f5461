"""An unexpected failure inside a real Spark step reaches the person as one line: the step,
what it was reading, Spark's own message; the traceback stays in the log and error.json,
and ``reco run``'s summary points there."""

from __future__ import annotations

import json

import pytest

from reco import steps
from reco.console import summary
from reco.modeling import train
from reco.runs import RunFolder, run_dir_for
from reco.runtime import execute, read_error

pytestmark = pytest.mark.integration


def test_a_corrupt_ratings_file_fails_train_naming_the_file_and_the_cause(
    spark, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = "manual__step-errors-corrupt-parquet"
    run_dir = run_dir_for(run_id)
    folder = RunFolder(run_dir)
    folder.ratings.mkdir(parents=True, exist_ok=True)
    # A part file damaged on disk: not Parquet at all.
    (folder.ratings / "part-00000.parquet").write_bytes(b"PAR1 this is not parquet" * 40)
    folder.manifest.write_text(
        json.dumps(
            {
                "source": {"ratings_path": "/data/u.data", "rating_scale": [1, 5]},
                "n_ratings": 1000,
                "n_rejected": 0,
            }
        )
    )
    args = steps.get("train").parse(["--run-dir", str(run_dir), "--folds", "0"])

    code = execute("train", train.step, args)

    err = capsys.readouterr().err
    assert code == 1
    info = read_error(run_dir)
    assert info is not None
    message = info["message"]
    assert message.startswith(f"train failed on read ({folder.ratings}): "), message
    # Spark's own reason, without the Py4J call or Java stack frames.
    assert "[FAILED_READ_FILE" in message and "part-00000.parquet" in message
    assert "\tat " not in message and "An error occurred while calling" not in message
    assert len(message) < 600
    assert "Traceback (most recent call last)" in info["traceback"]
    assert f"ERROR [train]: {message}" in err
    assert str(folder.error) in err.strip().splitlines()[-1]

    summary.summarize(run_id, "failed")
    out = capsys.readouterr().out
    assert f"failed at train: {message}" in out
    assert f"traceback        : {folder.error}" in out
