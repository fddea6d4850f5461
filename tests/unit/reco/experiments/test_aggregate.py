"""The aggregation step's command line (reco.experiments.aggregate); the counts themselves
need Spark: tests/integration/test_ab_test.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from reco import steps
from reco.errors import PipelineError
from reco.experiments import aggregate


def test_the_step_takes_an_input_folder_and_a_counts_file() -> None:
    args = steps.get("ab_aggregate").parse(["--input", "in", "--out", "c.json"])
    assert args.input == Path("in") and args.out == Path("c.json")
    assert aggregate.STAGE == "ab_aggregate"
    with pytest.raises(SystemExit):
        steps.get("ab_aggregate").parse(["--input", "in"])


def test_a_missing_input_file_is_named_before_spark_reads(tmp_path: Path) -> None:
    (tmp_path / "assignments.csv").write_text("user_id,arm\n1,control\n")
    with pytest.raises(PipelineError, match=r"events\.csv is missing"):
        aggregate.aggregate(None, tmp_path)  # no Spark session needed to say so
