"""Ctrl-C as a real SIGINT to this process: remembered even when the KeyboardInterrupt
it raises is replaced on its way up, as PySpark's toPandas() replaces it with the
cancelled job's error."""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reco import interrupts
from reco.runs import RunFolder
from reco.runtime import execute


@pytest.fixture()
def sigint() -> Iterator[None]:
    """Python's own SIGINT handler in place (an xdist worker may ignore SIGINT), the
    press forgotten before and after."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.reset()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        interrupts.reset()


def press_then_fail_in_finally(args: argparse.Namespace) -> dict:
    """What PySpark's toPandas does with a Ctrl-C that lands while it reads the Arrow
    batches: the finally asks for the collect's result, the job was cancelled, and
    that error replaces the KeyboardInterrupt."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises in here
        raise AssertionError("SIGINT never arrived")
    finally:
        raise RuntimeError("[SPARK_JOB_CANCELLED] Job 17 cancelled as part of all jobs")


def test_a_ctrl_c_that_became_another_error_still_stops_the_step(sigint, tmp_path: Path) -> None:
    assert interrupts.remember()
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as caught:
        execute("validate", press_then_fail_in_finally, argparse.Namespace(run_dir=run_dir))
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert interrupts.pressed()
    # Not recorded as the step's failure: nothing pressed the step's data into error.json.
    assert not RunFolder(run_dir).error.exists()


def test_without_the_record_the_same_press_is_lost_as_a_step_error(sigint, tmp_path: Path) -> None:
    """The control: Python's handler alone, the step ends as an ordinary failure (exit 1,
    error.json written), which Airflow retries."""
    run_dir = tmp_path / "run"
    code = execute("validate", press_then_fail_in_finally, argparse.Namespace(run_dir=run_dir))
    assert code == 1 and not interrupts.pressed()
    assert "SPARK_JOB_CANCELLED" in RunFolder(run_dir).error.read_text()


def test_the_handler_in_place_still_runs_and_a_later_one_is_wrapped_too(sigint) -> None:
    assert interrupts.remember()
    assert interrupts.remember()  # once is enough: not wrapped twice
    cancelled: list[str] = []

    def spark_like(signum: int, frame: object) -> None:  # PySpark's: cancel, then raise
        cancelled.append("all jobs")
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, spark_like)  # a new SparkContext installs its own
    assert interrupts.remember()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert cancelled == ["all jobs"] and interrupts.pressed()


def test_an_ignored_sigint_is_left_alone(sigint) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert not interrupts.remember()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
