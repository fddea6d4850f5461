"""Step entry points: an unexpected exception becomes one line naming the step, what it
was working on and the cause; the traceback is kept in the log and in error.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.runs import RunFolder
from reco.runtime import cause_of, execute, failure_message, read_error

# What a Py4J call into Spark raises when a job fails (shape of str(Py4JJavaError)).
PY4J_TEXT = (
    "An error occurred while calling o61.parquet.\n"
    ": org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Error while reading "
    "file file:/data/ratings.parquet/part-0.parquet. SQLSTATE: KD001\n"
    "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFilesError(...)\n"
    "\tat org.apache.spark.sql.execution.datasources.FileScanRDD(...)\n"
)


def test_cause_is_the_spark_message_without_the_py4j_call_and_java_frames() -> None:
    cause = cause_of(RuntimeError(PY4J_TEXT))
    assert cause.startswith("org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT]")
    assert "o61" not in cause and "\tat " not in cause


def test_cause_is_bounded() -> None:
    assert len(cause_of(ValueError("x" * 5000))) == 400
    assert cause_of(ValueError("")) == "(no message)"


def test_message_names_the_innermost_phase_and_its_file(tmp_path: Path) -> None:
    source = tmp_path / "u.item"
    with (
        pytest.raises(KeyError) as info,
        timer(tmp_path, "ingest", "read"),
        timer(tmp_path, "ingest", "items", source=source),
    ):
        {}["title"]
    assert failure_message("ingest", info.value) == (
        f"ingest failed on items ({source}): KeyError: 'title'"
    )


def test_message_falls_back_to_what_the_step_was_given() -> None:
    message = failure_message("train", ZeroDivisionError("division by zero"), "run_dir /r")
    assert message == "train failed on run_dir /r: ZeroDivisionError: division by zero"


def step_that(raises: BaseException):
    def step(args: argparse.Namespace) -> dict:
        with timer(args.run_dir, "train", "split", path=args.run_dir / "ratings.parquet"):
            raise raises

    return step


def test_unexpected_failure_exit_1_one_line_and_the_traceback_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(run_dir=tmp_path / "run")
    code = execute("train", step_that(ValueError("need at least one array")), args)
    err = capsys.readouterr().err
    assert code == 1
    expected = (
        f"train failed on split ({tmp_path / 'run' / 'ratings.parquet'}): ValueError: "
        "need at least one array"
    )
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ERROR [train]: {expected}")
    assert str(RunFolder(tmp_path / "run").error) in last
    assert "Traceback (most recent call last)" in err  # the task log keeps it
    info = read_error(tmp_path / "run")
    assert info is not None and info["message"] == expected
    assert info["exception"] == "ValueError"
    assert "raise raises" in info["traceback"]
    # The phase is also recorded as failed in the run's timings.
    timings = [
        json.loads(x) for x in RunFolder(tmp_path / "run").timings.read_text().split("\n") if x
    ]
    assert any(t["phase"] == "split" and t["details"].get("failed") for t in timings)


def test_refusal_is_one_line_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(run_dir=tmp_path / "run")
    code = execute("train", step_that(PipelineError("only 12 ratings: too few")), args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "ERROR [train]: only 12 ratings: too few"
    info = read_error(tmp_path / "run")
    assert info == {"stage": "train", "message": "only 12 ratings: too few"}
