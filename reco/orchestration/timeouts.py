"""A task past its ``execution_timeout`` (``config.task_timeout``): the message that says
so, kept in the run folder, and the in-process Spark driver ended so the retry gets a new
one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from reco.runtime import record_error


def span(timeout: Any) -> str:
    """A timeout as a person reads it: 1.2 s, 15 min, 4 h."""
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def timeout_message(stage: str, timeout: Any) -> str:
    return (
        f"{stage} ran past its execution_timeout of {span(timeout)} and was stopped; it is "
        "retried while it has tries left. Give it longer with RECO_TASK_TIMEOUTS, e.g. "
        f"'{{\"{stage}\": 480}}' (minutes)"
    )


def on_timeout(stage: str, run_dir: Path | None, exc: BaseException, timeout: Any) -> None:
    """A task past its execution_timeout: keep a message that says so, and end the Spark
    processes this process started, if any (:func:`reco.spark.stop_local_drivers`). The
    timeout interrupted a Py4J call, or the driver's launch, half-way: that session is
    unusable, and a driver caught starting would outlive the task; the retry starts anew."""
    from reco import spark

    if not spark.launched_by_spark_submit():
        spark.stop_local_drivers()
    record_error(run_dir, stage, timeout_message(stage, timeout), exc)
    print(f"ERROR [{stage}]: {timeout_message(stage, timeout)}", file=sys.stderr, flush=True)


def is_timeout(exc: BaseException) -> bool:
    return type(exc).__name__ == "AirflowTaskTimeout"
