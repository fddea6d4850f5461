"""The step registry (``reco/steps.py``): every entry names real code and real run-folder
files, every Spark step's application runs through it, and a step whose input is missing
says which step to run first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from reco import config, steps
from reco.errors import PipelineError
from reco.runs import RunFolder

NAMES = list(steps.STEPS)


@pytest.mark.parametrize("name", NAMES)
def test_each_entry_names_its_function_and_the_stage_its_module_times(name: str) -> None:
    step = steps.get(name)
    assert callable(step.function())
    assert name == step.module.STAGE  # the timings and errors carry the step's name
    if step.check_entry:
        assert callable(steps.resolve(step.check_entry))


@pytest.mark.parametrize("name", NAMES)
def test_what_a_step_reads_and_writes_are_run_folder_files(name: str) -> None:
    folder = RunFolder(Path("/lake/runs/r"))
    step = steps.get(name)
    for attr in (*step.reads, *step.writes):
        assert isinstance(getattr(folder, attr), Path), attr
    for attr in step.reads:  # something earlier writes it
        assert any(attr in s.writes for s in steps.STEPS.values()), attr


def test_every_spark_step_has_an_application_of_one_line_of_work_through_the_registry() -> None:
    spark = {s.name for s in steps.STEPS.values() if s.spark}
    files = {p.stem for p in config.SPARK_JOBS_DIR.glob("*.py") if p.stem != "__init__"}
    assert spark == files
    for name in spark:
        tree = ast.parse((config.SPARK_JOBS_DIR / f"{name}.py").read_text())
        main = [n for n in tree.body if isinstance(n, ast.If)]
        assert len(main) == 1 and f"steps.get('{name}').main()" in ast.unparse(main[0])


def test_a_spark_application_runs_as_spark_submit_would_start_it(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(steps.get("validate").application), "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert f"{RunFolder(tmp_path).manifest} is missing" in out.stderr
    assert f"run `reco ingest --run-dir {tmp_path}` first" in out.stderr


def test_a_missing_input_stops_the_step_before_its_work_and_names_the_writer(
    tmp_path: Path,
) -> None:
    recommend = steps.get("recommend")
    with pytest.raises(PipelineError, match="ingest"):
        recommend.run(recommend.parse(["--run-dir", str(tmp_path)]))
    RunFolder(tmp_path).manifest.write_text("{}")
    RunFolder(tmp_path).ratings.mkdir()
    with pytest.raises(PipelineError, match=r"model is missing.*reco train --run-dir"):
        recommend.run(recommend.parse(["--run-dir", str(tmp_path)]))


def test_unknown_step_names_the_steps() -> None:
    with pytest.raises(ValueError, match="steps are ingest, validate"):
        steps.get("nope")
