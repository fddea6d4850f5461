"""``reco run``'s summary of a failed run: the cause, the failed step's last error lines
from the run's log, and the log's path; and the ``--verbose`` switch."""

from __future__ import annotations

import json

import pytest

from reco import cli
from reco.console import summary
from reco.runs import RunFolder

A = "2026-11-27T09:12:29.879910Z"
DAG = "[airflow.sdk.definitions.dag] loc=dag.py:1501"


def log_of(task: str, *lines: str) -> str:
    return "\n".join(
        [
            f"{A} [info     ] [DAG TEST] starting task_id=prepare map_index=-1 {DAG}",
            f"{A} [info     ] [DAG TEST] end task task_id=prepare map_index=-1 {DAG}",
            f"{A} [info     ] [DAG TEST] starting task_id={task} map_index=-1 {DAG}",
            *lines,
            f"{A} [error    ] Task failed with exception     [task] loc=task_runner.py:1639",
            f"{A} [info     ] [DAG TEST] end task task_id={task} map_index=-1 {DAG}",
        ]
    )


def test_a_failure_without_a_message_quotes_the_failed_steps_errors_from_the_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_id = "manual__summary-no-error-json"
    folder = RunFolder.of(run_id)
    folder.path.mkdir(parents=True)
    folder.log.write_text(
        log_of(
            "train",
            "09:13:01 ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 3)",
            "java.lang.OutOfMemoryError: Java heap space",
            "\tat org.apache.spark.ml.recommendation.ALS.train(ALS.scala:1)",
        )
    )
    assert summary.summarize(run_id, "failed") == 1
    out = capsys.readouterr().out
    assert "see the task logs above" not in out
    assert (
        "  last errors of train in the log:\n"
        "    09:13:01 ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 3)\n"
        "    java.lang.OutOfMemoryError: Java heap space\n"
    ) in out
    assert f"  log              : {folder.log}\n" in out


def test_the_message_is_not_repeated_from_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    run_id = "manual__summary-error-json"
    folder = RunFolder.of(run_id)
    folder.path.mkdir(parents=True)
    message = "no usable ratings in /data/ratings.csv: all 50 lines were rejected"
    folder.error.write_text(
        json.dumps({"stage": "ingest", "message": message, "traceback": "Traceback ..."})
    )
    folder.log.write_text(
        log_of(
            "ingest",
            f"ERROR [ingest]: {message}",
            f"airflow.sdk.exceptions.AirflowFailException: [ingest] {message}",
        )
    )
    summary.summarize(run_id, "failed")
    out = capsys.readouterr().out
    assert f"  failed at ingest: {message}\n" in out
    assert f"  traceback        : {folder.error} (and in the log)\n" in out
    assert "last errors" not in out and out.count(message) == 1
    assert f"  log              : {folder.log}\n" in out


def test_a_run_that_never_got_a_folder_points_to_where_its_log_is(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "reco-run-1.log"
    log.write_text("ImportError: cannot import name 'dag' from 'recommendations'\n")
    summary.summarize("", "unknown", log=log)
    out = capsys.readouterr().out
    assert "    ImportError: cannot import name 'dag' from 'recommendations'\n" in out
    assert f"  log              : {log}\n" in out


def test_verbose_keeps_the_task_logs_on_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    summary.summarize("manual__summary-verbose", "failed")
    out = capsys.readouterr().out
    assert "see the task logs above for the cause" in out and "log  " not in out


def test_run_takes_verbose() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["run", "--verbose"]).verbose is True
    assert parser.parse_args(["run"]).verbose is False
