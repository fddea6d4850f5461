"""The Great Expectations gate on real Spark frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_jobs import formats, ingest, validate
from spark_jobs.errors import PipelineError


@pytest.fixture(scope="module")
def ml100k_run(spark, ml100k: Path, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("validate_run")
    ingest.run(spark, d, formats.detect_source(ml100k))
    return d


def test_ml100k_passes_every_expectation(spark, ml100k_run: Path) -> None:
    result = validate.run(spark, ml100k_run)
    assert result == {"expectations": 17, "failed": 0}


def test_row_floor_failure_names_expectation_and_observed_value(spark, ml100k_run) -> None:
    with pytest.raises(PipelineError) as info:
        validate.run(spark, ml100k_run, min_rows=200_000)
    msg = str(info.value)
    assert "1 of 17 expectations" in msg
    assert "expect_table_row_count_to_be_between(): observed 100000" in msg


def ingest_lines(spark, run_dir: Path, lines: list[str]) -> None:
    """Write ML-100K-layout lines to ``run_dir/u.data`` and ingest them there."""
    f = run_dir / "u.data"
    f.write_text("".join(lines))
    ingest.run(spark, run_dir, formats.detect_source(f))


def test_implausible_mean_fails_the_gate(spark, tmp_path: Path) -> None:
    ingest_lines(
        spark, tmp_path, [f"{u}\t{i}\t1\t100\n" for u in range(1, 21) for i in range(1, 11)]
    )
    with pytest.raises(
        PipelineError,
        match=r"expect_column_mean_to_be_between\(column=rating\): "
        r"observed 1\.0",
    ):
        validate.run(spark, tmp_path, min_rows=10)


def test_future_timestamps_fail_the_gate(spark, tmp_path: Path) -> None:
    rows = [f"{u}\t{i}\t{1 + (u + i) % 5}\t100\n" for u in range(1, 21) for i in range(1, 11)]
    ingest_lines(spark, tmp_path, [*rows, "21\t1\t3\t4102444800\n"])  # 2100-01-01
    with pytest.raises(
        PipelineError,
        match=r"expect_column_max_to_be_between\(column=timestamp\)"
        r": observed 4102444800",
    ):
        validate.run(spark, tmp_path, min_rows=10)
