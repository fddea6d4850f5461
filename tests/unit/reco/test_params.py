"""The run parameters are defined once (``reco/params.py``) and appear, the same, in the
DAG's trigger form, in ``reco run``'s flags and in the argparse of each step that takes
them; a value round-trips from the form through the DAG's step arguments to the step."""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reco import cli, config, steps
from reco import params as run_params
from reco.errors import PipelineError
from reco.modeling import gate, train_plan
from reco.params import RUN_PARAMS, RunParam

STEP_PARSERS = {name: steps.get(name).parser for name in run_params.STEPS}
# What prepare hands the steps for the parameters it resolves (the DAG passes these, not
# the trigger's values).
PREPARED = {"dataset": "/data/ratings.csv", "format": "csv", "feedback": ""}
# A valid value other than the default for text parameters (others are derived by type).
TEXT_SAMPLES = {
    "dataset": "/data/export.csv",
    "columns": "user=uid,item=mid,rating=stars",
    "rating_scale": "1-10",
    "feedback": "/data/feedback",
    "families": "ease",
    "ranking_grid": '{"rank": [8], "alpha": [1.0]}',
    "ease_grid": '{"lambda": [100]}',
    "grid": '{"rank": [10]}',
}
ids = [p.name for p in RUN_PARAMS]


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(config.DAGS_DIR / "recommendations.py"))
    assert bag.import_errors == {}
    return bag.dags["recommendations"]


def run_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def sample(p: RunParam) -> Any:
    """A valid value other than the default."""
    if p.type is bool:
        return not p.default
    if p.enum:
        return next(v for v in reversed(p.enum) if v != p.default)
    if p.type in (int, float):
        return p.type(p.maximum) if p.maximum is not None else p.default * 2 + 1
    return TEXT_SAMPLES.get(p.name, p.default)


def step_pairs(dag: Any, step: str) -> dict[str, Any]:
    """The DAG's ``--flag value`` arguments of a step task."""
    args = dag.get_task(step).application_args
    return dict(zip(args[::2], args[1::2], strict=True))


def render(dag: Any, step: str, value: Any, values: dict[str, Any], prepared: dict) -> str:
    """A DAG step argument as the task renders it: a template with the trigger's params, or
    what prepare returned for a parameter it resolves."""
    if isinstance(value, str):
        return dag.get_task(step).render_template(value, {"params": values})
    return prepared[value.key]  # prepare's output, an XComArg


# ------------------------------------------------------------------------------------------
# the schema
# ------------------------------------------------------------------------------------------
def test_the_schema_is_importable_without_airflow() -> None:
    code = (
        "import sys, reco.params, reco.modeling.train; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_schema_is_consistent() -> None:
    assert len({p.name for p in RUN_PARAMS}) == len(RUN_PARAMS)
    assert set(STEP_PARSERS) == set(run_params.STEPS)
    for p in RUN_PARAMS:
        assert p.flag == "--" + p.name.replace("_", "-")
        assert p.title and p.help, p.name
        assert p.problem(p.default) is None, p.name
    assert all(run_params.for_step(s) for s in run_params.STEPS)
    with pytest.raises(ValueError, match="unknown steps"):
        RunParam("x", int, 1, title="X", help="x", steps=("publish",))
    with pytest.raises(ValueError, match="default"):
        RunParam("x", int, 0, title="X", help="x", steps=("train",), minimum=1)


def test_defaults_come_from_config() -> None:
    by_name = run_params.BY_NAME
    assert by_name["top_n"].default == config.DEFAULT_TOP_N
    assert by_name["similar_k"].default == config.DEFAULT_SIMILAR_K
    assert by_name["folds"].default == config.DEFAULT_CV_FOLDS
    assert by_name["families"].default == ",".join(config.DEFAULT_FAMILIES)
    assert by_name["min_rows"].default == config.DEFAULT_MIN_ROWS
    assert by_name["max_quarantine_share"].default == config.DEFAULT_MAX_QUARANTINE_SHARE
    assert by_name["max_row_drop"].default == config.DEFAULT_MAX_ROW_DROP
    assert by_name["gate_tolerance"].default == config.DEFAULT_GATE_TOLERANCE
    assert by_name["format"].enum == config.INPUT_FORMATS
    assert by_name["gate_tolerance"].default == gate.DEFAULT_TOLERANCE


# ------------------------------------------------------------------------------------------
# the DAG's trigger form
# ------------------------------------------------------------------------------------------
def test_every_run_param_is_a_dag_param_with_its_default_and_type(dag) -> None:
    assert list(dag.params) == [p.name for p in RUN_PARAMS]  # the form's order
    json_types = {bool: "boolean", int: "integer", float: "number", str: "string"}
    for p in RUN_PARAMS:
        param = dag.params.get_param(p.name)
        assert param.value == p.default and type(param.value) is type(p.default), p.name
        assert param.description == p.help and param.schema == p.schema(), p.name
        assert param.schema["title"] == p.title
        if p.enum:
            assert param.schema["enum"] == list(p.enum)
        else:
            want = ["null", json_types[p.type]] if p.nullable else json_types[p.type]
            assert param.schema["type"] == want, p.name
        for key in ("minimum", "maximum", "pattern"):
            assert param.schema.get(key) == getattr(p, key), (p.name, key)
        copy.deepcopy(param).resolve(p.default)  # the default passes its own schema
        copy.deepcopy(param).resolve(sample(p))  # (resolve keeps the value it checks)


PROBES = [
    None,
    "",
    "  ",
    "!!!",
    "auto",
    " 1 - 10 ",
    "five",
    "als,ease",
    "als,svd",
    "user=uid,item=mid",
    "userid",
    "{}",
    '{"rank": [8]}',
    "rank=64",
    "csv",
    "xlsx",
]


@pytest.mark.parametrize("p", RUN_PARAMS, ids=ids)
def test_the_schema_refuses_what_the_trigger_form_refuses(dag, p: RunParam) -> None:
    """reco/params.py's checks (used by the command lines) agree with the JSON schema
    Airflow validates the form with."""
    from airflow.sdk.exceptions import ParamValidationError

    param = dag.params.get_param(p.name)
    if p.type in (int, float):
        probes: list[Any] = [p.default, sample(p), -1, 0, 1, 0.5, 10**6]
        probes += [b + d for b in (p.minimum, p.maximum) if b is not None for d in (-1, 0, 1)]
        probes = [p.type(v) for v in probes]
    elif p.type is bool:
        probes = [True, False]
    else:
        probes = [*PROBES, p.default, sample(p)]
    for value in probes:
        try:
            copy.deepcopy(param).resolve(value)  # (resolve keeps the value it checks)
            form_accepts = True
        except ParamValidationError:
            form_accepts = False
        assert (p.problem(value) is None) == form_accepts, (p.name, value)


# ------------------------------------------------------------------------------------------
# `reco run`
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", RUN_PARAMS, ids=ids)
def test_every_run_param_is_a_reco_run_flag(dag, p: RunParam) -> None:
    parser = run_parser()
    assert p.flag in flags(parser) and p.flag in parser.format_help()
    default = dag.params[p.name]
    assert getattr(parser.parse_args([]), p.name) == default
    if default is not None and p.type is not bool:
        assert f"[default: {default}]" in p.help_text()  # also a 0
    if p.type is bool:  # a switch
        assert getattr(parser.parse_args([p.flag]), p.name) is (not default)
    else:
        for value in (default, sample(p)):
            text = "" if value is None else str(value)
            parsed = getattr(parser.parse_args([p.flag, text]), p.name)
            assert parsed == value and type(parsed) is type(value), (p.name, value)


def test_reco_run_has_no_flag_outside_the_schema() -> None:
    assert flags(run_parser()) == {"-h", "--help", "--verbose"} | {p.flag for p in RUN_PARAMS}


def test_the_reco_run_conf_is_what_the_dag_accepts(dag, tmp_path, monkeypatch) -> None:
    parser = cli.build_parser()
    conf = run_params.run_conf(parser.parse_args(["run"]))
    assert list(conf) == [p.name for p in RUN_PARAMS]
    assert conf == {p.name: p.default for p in RUN_PARAMS}
    copy.deepcopy(dag.params).update(conf)  # raises ParamValidationError if refused

    monkeypatch.chdir(tmp_path)
    argv = ["run"]
    for p in RUN_PARAMS:
        value = sample(p)
        argv += [p.flag] if p.type is bool else [p.flag, str(value)]
    conf = run_params.run_conf(parser.parse_args(argv))
    for p in RUN_PARAMS:
        want = sample(p)
        if p.path:  # resolved against the folder `reco run` runs in
            want = str((tmp_path / want).resolve())
        assert conf[p.name] == want, p.name
    params = copy.deepcopy(dag.params)
    params.update(conf)
    params.validate()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--top-n", "0"], "argument --top-n: 0 is below the minimum 1"),
        (["--folds", "three"], "argument --folds: expected an integer, got 'three'"),
        (["--max-row-drop", "1.5"], "argument --max-row-drop: 1.5 is above the maximum 1"),
        (["--ranking-grid", "rank=64"], "argument --ranking-grid: 'rank=64' does not match"),
        (["--format", "xlsx"], "argument --format: invalid choice: 'xlsx'"),
    ],
)
def test_reco_run_refuses_what_the_form_refuses(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["run", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# the steps
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", run_params.STEPS)
def test_each_step_takes_exactly_its_run_params(step: str, capsys) -> None:
    parser = STEP_PARSERS[step]()
    wanted = {p.flag for p in RUN_PARAMS if step in p.steps}
    assert flags(parser) & {p.flag for p in RUN_PARAMS} == wanted
    # and its run's --help (spark-submit spark_jobs/<step>.py, reco <step>) lists them
    with pytest.raises(SystemExit) as exc:
        steps.get(step).main(["--help"])
    assert exc.value.code == 0
    shown = capsys.readouterr().out
    assert all(flag in shown for flag in wanted), shown


@pytest.mark.parametrize("step", run_params.STEPS)
def test_the_dag_passes_each_step_its_run_params(dag, step: str) -> None:
    pairs = step_pairs(dag, step)
    schema_flags = {p.flag for p in RUN_PARAMS}
    assert {f for f in pairs if f in schema_flags} == {p.flag for p in run_params.for_step(step)}
    for p in run_params.for_step(step):
        if p.prepared:
            assert getattr(pairs[p.flag], "key", None) == p.name  # prepare's value
        else:
            assert pairs[p.flag] == p.template()
    assert pairs["--run-dir"].key == "run_dir"
    with pytest.raises(ValueError, match="prepare"):
        run_params.step_args("ingest")  # its dataset comes from prepare


@pytest.mark.parametrize("step", run_params.STEPS)
@pytest.mark.parametrize("which", ["defaults", "samples"])
def test_a_form_value_round_trips_to_the_step(dag, step: str, which: str) -> None:
    """Trigger form value -> the DAG's rendered step argument -> the step's parser -> the
    same typed value (an empty field is None)."""
    values = {k: dag.params[k] for k in dag.params}
    if which == "samples":
        values = {p.name: sample(p) for p in RUN_PARAMS}
        params = copy.deepcopy(dag.params)
        params.update(values)  # the form accepts them
    argv = ["--run-dir", "/lake/runs/r"]
    for flag, value in step_pairs(dag, step).items():
        if flag in {p.flag for p in RUN_PARAMS}:
            argv += [flag, render(dag, step, value, values, PREPARED)]
    args = STEP_PARSERS[step]().parse_args(argv)
    for p in run_params.for_step(step):
        want = PREPARED[p.name] if p.prepared else values[p.name]
        want = None if want == "" and p.nullable else want
        got = getattr(args, p.name)
        assert got == want and type(got) is type(want), (p.name, got, want)


@pytest.mark.parametrize("step", run_params.STEPS)
@pytest.mark.parametrize("which", ["defaults", "samples"])
def test_a_run_conf_and_the_rendered_arguments_parse_to_the_same_values(
    dag, step: str, which: str
) -> None:
    """What prepare checks (the run conf, typed by the step's own parse) is what the step
    then runs on (the DAG's rendered arguments, parsed by its command line)."""
    values = {k: dag.params[k] for k in dag.params}
    if which == "samples":
        values = {p.name: sample(p) for p in RUN_PARAMS}
    conf = {p.name: PREPARED[p.name] if p.prepared else values[p.name] for p in RUN_PARAMS}
    argv = ["--run-dir", "/lake/runs/r"]
    for flag, value in step_pairs(dag, step).items():
        if flag in {p.flag for p in RUN_PARAMS}:
            argv += [flag, render(dag, step, value, values, PREPARED)]
    from_conf = vars(steps.get(step).from_conf(conf, run_dir=Path("/lake/runs/r")))
    parsed = vars(steps.get(step).parse(argv))
    assert {k: from_conf[k] for k in parsed} == parsed
    assert {k: type(v) for k, v in from_conf.items()} == {k: type(v) for k, v in parsed.items()}


def test_a_run_conf_value_the_form_would_refuse_is_named() -> None:
    train = steps.get("train")
    with pytest.raises(PipelineError, match="argument --top-n: 0 is below the minimum 1"):
        train.from_conf({"top_n": 0}, run_dir=Path("r"))
    with pytest.raises(PipelineError, match="argument --top-n: expected an integer, got 'ten'"):
        train.from_conf({"top_n": "ten"}, run_dir=Path("r"))
    with pytest.raises(PipelineError, match="argument --format: 'xlsx' is not one of"):
        steps.get("ingest").from_conf({"format": "xlsx", "dataset": "d"}, run_dir=Path("r"))
    with pytest.raises(PipelineError, match="--run-dir is required"):
        train.from_conf({})


def test_the_train_step_checks_only_what_the_schema_cannot_say() -> None:
    parse = steps.get("train").parse
    with pytest.raises(PipelineError, match="--folds must be at least 2"):
        train_plan.params_from_args(parse(["--run-dir", "r", "--folds", "1"]))
    params = train_plan.params_from_args(parse(["--run-dir", "r", "--rating-cv", "True"]))
    assert params.rating_cv and params.gate_tolerance == config.DEFAULT_GATE_TOLERANCE
    assert params.top_k == config.DEFAULT_TOP_N and params.folds == config.DEFAULT_CV_FOLDS
    with pytest.raises(SystemExit):
        parse(["--run-dir", "r", "--gate-tolerance", "-0.1"])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"folds": 1}, "--folds must be at least 2"),
        ({"top_n": 0}, "argument --top-n: 0 is below the minimum 1"),
        ({"folds": 0, "ranking_grid": '{"rank": [8, 16]}'}, "needs one value per grid key"),
        ({"grid": '{"rank": [10, 20]}'}, "pass rating_cv"),
    ],
)
def test_prepare_refuses_what_train_would_refuse(params: dict, message: str) -> None:
    from reco.orchestration import pipeline

    with pytest.raises(PipelineError, match=message):
        pipeline.check_model_params(params)
    pipeline.check_model_params({p.name: p.default for p in RUN_PARAMS})
