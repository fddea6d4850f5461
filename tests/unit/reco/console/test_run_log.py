"""``reco run``'s log file: the output of the process and its children goes there, and a
failed step's last error lines are read back from it for the summary."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from reco.console.run_log import error_lines, failed_task, meaningful, read_log

# What the failed step wrote in error.json (the summary's "failed at" line).
MESSAGE = (
    "train failed on read (/lake/runs/r/ratings.parquet): Py4JJavaError: "
    "org.apache.spark.SparkException: [FAILED_READ_FILE] Encountered error"
)

# A log as `reco run` writes it (shortened): Airflow's structured lines, Spark's log4j
# lines, the step's own error line and two Python tracebacks.
A = "2026-11-27T09:12:29.879910Z"
DAG = "[airflow.sdk.definitions.dag] loc=dag.py:1501"
LOG = f"""\
{A} [info     ] [DAG TEST] starting task_id=prepare map_index=-1 {DAG}
{A} [info     ] Task instance state updated    [airflow.api] correlation_id=01a2 loc=t.py:254
{A} [info     ] [DAG TEST] end task task_id=prepare map_index=-1 {DAG}
{A} [info     ] [DAG TEST] starting task_id=train map_index=-1 {DAG}
WARNING: Using incubator modules: jdk.incubator.vector
09:12:55 WARN Utils: Set SPARK_LOCAL_IP if you need to bind to another address
09:13:01 ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 3)
org.apache.spark.SparkException: [FAILED_READ_FILE] Encountered error while reading part-0.
\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFilesError(Errors.scala:1)
Caused by: java.lang.RuntimeException: part-0 is not a Parquet file
\tat org.apache.parquet.hadoop.ParquetFileReader.readFooter(ParquetFileReader.java:1)
Traceback (most recent call last):
  File "/work/main/reco/modeling/train.py", line 194, in read
    frame = spark.read.parquet(path)
py4j.protocol.Py4JJavaError: An error occurred while calling o123.parquet.
: org.apache.spark.SparkException: [FAILED_READ_FILE] Encountered error while reading part-0.
ERROR [train]: {MESSAGE} (unexpected: the traceback is above)
{A} [error    ] Task failed with exception     [task] loc=task_runner.py:1639
Traceback (most recent call last):
  File "/work/main/reco/orchestration/pipeline.py", line 367, in run_spark_step
    raise RuntimeError(f"[{{module}}] {{message}}")
RuntimeError: [train] {MESSAGE}
{A} [info     ] [DAG TEST] end task task_id=train map_index=-1 {DAG}
{A} [info     ] [DAG TEST] starting task_id=record_quality map_index=-1 {DAG}
{A} [info     ] Done. Returned value was: 0    [airflow.task.operators.python] loc=python.py:233
{A} [info     ] [DAG TEST] end task task_id=record_quality map_index=-1 {DAG}
{A} [info     ] Closing down clientserver connection [py4j.clientserver] loc=clientserver.py:570
"""


def test_the_failed_task_is_the_last_one_whose_part_of_the_log_has_an_error() -> None:
    assert failed_task(LOG) == "train"
    assert failed_task(LOG.replace("[error    ] Task failed with exception", "[info ] ok")) is None


def test_a_failed_steps_error_lines_without_plumbing_or_repeats() -> None:
    lines = error_lines(LOG, "train")
    assert lines == [
        "09:13:01 ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 3)",
        "org.apache.spark.SparkException: [FAILED_READ_FILE] Encountered error while reading "
        "part-0.",
        "Caused by: java.lang.RuntimeException: part-0 is not a Parquet file",
        f"ERROR [train]: {MESSAGE} (unexpected: the traceback is above)",
    ]
    # Airflow's wrappers, the Java frames, py4j's call line and the second copy are out.
    assert not any("Task failed" in line or "\tat" in line for line in lines)


def test_what_the_summary_already_says_is_not_repeated() -> None:
    lines = error_lines(LOG, "train", known=[MESSAGE])
    assert not any(line.startswith("ERROR [train]") for line in lines)
    assert lines[-1].startswith("Caused by: java.lang.RuntimeException")
    assert error_lines(LOG, "train", limit=2) == error_lines(LOG, "train")[-2:]


def test_a_task_without_errors_and_a_missing_task_have_none() -> None:
    assert error_lines(LOG, "record_quality") == []
    assert error_lines(LOG, "publish") == []


def test_meaningful_lines() -> None:
    assert meaningful(
        "2026-11-27T09:13:42Z [error    ] cannot reach the warehouse  [reco] k=v"
    ) == ("cannot reach the warehouse")
    assert meaningful("2026-11-27T09:13:42Z [warning  ] slow  [reco]") is None
    assert meaningful("ValueError: bad rating") == "ValueError: bad rating"
    assert meaningful("  File 'x.py', line 1") is None
    assert meaningful("py4j.protocol.Py4JJavaError: An error occurred while calling o1.x") is None


def test_read_log_drops_colours_and_a_missing_log_is_empty(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"\x1b[31mValueError: red\x1b[0m\n")
    assert read_log(log) == "ValueError: red\n"
    assert read_log(tmp_path / "none.log") == ""
    assert read_log(None) == ""


def test_capture_sends_the_process_and_its_children_to_the_log_and_gives_the_terminal_back(
    tmp_path: Path,
) -> None:
    # File descriptors are the process's: the capture runs in a child python, whose
    # "terminal" is the pipe this test reads.
    log = tmp_path / "logs" / "first.log"
    moved = tmp_path / "run" / "run.log"
    code = textwrap.dedent(
        f"""
        import atexit, subprocess, sys
        from pathlib import Path
        from reco.console.run_log import LogCapture

        atexit.register(lambda: print("at exit"))  # registered earlier, as py4j's is
        capture = LogCapture(Path({str(log)!r}))
        terminal = capture.start()
        print("python print")
        print("python stderr", file=sys.stderr)
        subprocess.run(["sh", "-c", "echo child stdout; echo child stderr >&2"], check=True)
        terminal.write("to the terminal\\n")
        print("where:", capture.move(Path({str(moved)!r})))
        print("after the move")
        capture.stop()
        print("summary")
        atexit.register(capture.park)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == "to the terminal\nsummary\n"
    assert out.stderr == ""
    assert not log.exists()
    lines = moved.read_text().splitlines()
    assert set(lines) == {
        "python print",
        "python stderr",
        "child stdout",
        "child stderr",
        f"where: {moved}",
        "after the move",
        "at exit",
    }
    assert lines[-1] == "at exit"
