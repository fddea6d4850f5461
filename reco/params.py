"""The parameters of a ``recommendations`` run, defined once.

Each :class:`RunParam` in :data:`RUN_PARAMS` is one trigger parameter of the
``recommendations`` DAG, with its type, default (from ``reco/config.py``), bounds, choices,
pattern, title and help text, and the pipeline steps that receive it. Everything else is
generated from it:

* the DAG's trigger form: :func:`dag_params` (Airflow ``Param`` objects, of the class the
  DAG passes);
* the ``reco run`` flags and the run conf they make: :func:`add_run_arguments`,
  :func:`run_conf`;
* each step's arguments (``reco <step> --help``, built by its entry in ``reco/steps.py``),
  and the DAG's templated argument list for that step: :func:`step_args`.

Adding a parameter is one ``RunParam(...)`` entry below, plus its use in the step that
reads it (``args.<name>`` in its ``step()``): it then appears in the Airflow trigger form,
in ``reco run --help`` and in ``reco <step> --help``, and the DAG passes it to the step.

A step's own arguments that are no trigger parameter (``--run-dir``, ``--previous-rows``,
``--delimiter``, ``--holdout``, ``--seed``) are its ``Option``s in ``reco/steps.py``.

This module never imports Airflow: the steps and the CLI use it without Airflow.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reco import config

# The Spark steps of the DAG, in run order (``spark_jobs/<step>.py``).
STEPS = ("ingest", "validate", "train", "recommend")
JSON_TYPES: dict[type, str] = {int: "integer", float: "number", str: "string", bool: "boolean"}
JSON_OBJECT = r"^\s*\{.*\}\s*$"
MAPPING_PATTERN = (
    r"^\s*(user|item|rating|timestamp)\s*=\s*[^,=\s][^,=]*"
    r"(,\s*(user|item|rating|timestamp)\s*=\s*[^,=\s][^,=]*)*\s*$"
)
SCALE_PATTERN = r"^\s*(auto|\d+(\.\d+)?\s*-\s*\d+(\.\d+)?)\s*$"
FAMILIES_PATTERN = r"^\s*(als|ease)(\s*,\s*(als|ease))*\s*$"


def parse_bool(text: str | bool) -> bool:
    """``true/false``, ``yes/no``, ``1/0``, ``on/off`` (how a DAG param reaches a step)."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


@dataclass(frozen=True)
class RunParam:
    """One parameter of a ``recommendations`` run."""

    name: str  # the DAG param and run-conf key; the flag is --name-with-dashes
    type: type  # int, float, str or bool
    default: Any  # None when nullable
    title: str  # the trigger form's label
    help: str  # the trigger form's description, and the --help text
    steps: tuple[str, ...] = ()  # the Spark steps that receive it as a flag
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    pattern: str | None = None  # JSON-schema pattern (a regex search)
    nullable: bool = False  # may be left empty (None): an optional field of the form
    path: bool = False  # a file or folder: `reco run` resolves it against its folder
    # prepare resolves it (the dataset it picked, the detected format ...): the DAG passes
    # the steps prepare's value, not the trigger's
    prepared: bool = False
    required_in_steps: bool = False  # a step run by hand must be given it

    def __post_init__(self) -> None:
        if self.type not in JSON_TYPES:
            raise TypeError(f"{self.name}: type must be one of {list(JSON_TYPES)}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"{self.name!r}: a parameter name is lower_snake_case")
        if unknown := set(self.steps) - set(STEPS):
            raise ValueError(f"{self.name}: unknown steps {sorted(unknown)}; steps are {STEPS}")
        if self.nullable and (self.default is not None or self.type is not str or self.enum):
            raise ValueError(f"{self.name}: a nullable parameter is a text defaulting to None")
        if self.default is None and not self.nullable:
            raise ValueError(f"{self.name}: a parameter without default must be nullable")
        if problem := self.problem(self.default):
            raise ValueError(f"{self.name}: default {problem}")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def json_type(self) -> str:
        return JSON_TYPES[self.type]

    def schema(self) -> dict[str, Any]:
        """The JSON-schema keywords of the trigger form's field."""
        schema: dict[str, Any] = {}
        if self.enum is not None:
            schema["enum"] = list(self.enum)  # the choices say the type
        else:
            schema["type"] = ["null", self.json_type] if self.nullable else self.json_type
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        schema["title"] = self.title
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        return schema

    def problem(self, value: Any, *, check_enum: bool = True) -> str | None:
        """Why ``value`` (already typed) is refused, or None."""
        if value is None:
            return None if self.nullable else "is required"
        if check_enum and self.enum is not None and value not in self.enum:
            return f"{value!r} is not one of {', '.join(self.enum)}"
        if self.type is float and not math.isfinite(value):
            return f"{value!r} is not a finite number"
        if self.minimum is not None and value < self.minimum:
            return f"{value} is below the minimum {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"{value} is above the maximum {self.maximum}"
        if self.pattern is not None and not re.search(self.pattern, value):
            return f"{value!r} does not match the pattern {self.pattern}"
        return None

    def parse(self, text: Any) -> Any:
        """A command-line value -> the typed value (argparse ``type=``); an empty text is
        None for a nullable parameter (how the DAG passes an empty field)."""
        if self.type is bool:
            value = parse_bool(text)
        elif self.nullable and not str(text).strip():
            return None
        else:
            try:
                value = self.type(text)
            except ValueError:
                number = _float(text) if self.type is int else None
                if number is None or not number.is_integer():
                    raise argparse.ArgumentTypeError(
                        f"expected {'an' if self.json_type[0] in 'aeiou' else 'a'} "
                        f"{self.json_type}, got {text!r}"
                    ) from None
                value = int(number)  # 3.0: a JSON number that is an integer
        # argparse's choices check the enum, with its own "invalid choice" message
        if problem := self.problem(value, check_enum=False):
            raise argparse.ArgumentTypeError(problem)
        return value

    def template(self) -> str:
        """The DAG's Jinja template of the step argument (an empty field renders "")."""
        return (
            f"{{{{ params.{self.name} or '' }}}}"
            if self.nullable
            else f"{{{{ params.{self.name} }}}}"
        )

    def help_text(self, step: str | None = None) -> str:
        """``--help`` text: the form's description and the default; in a step, also where
        the DAG takes a prepared value from."""
        text = self.help
        if self.default is not None and self.default != "" and self.default is not False:
            text += f" [default: {self.default}]"
        if step is not None and self.prepared:
            text = text.rstrip(".") + ". The DAG passes the value its prepare task resolved."
        return text.replace("%", "%%")  # argparse %-formats help


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


RUN_PARAMS: tuple[RunParam, ...] = (
    RunParam(
        "dataset",
        str,
        None,
        title="Ratings dataset",
        help="Path of a ratings file or folder (MovieLens, CSV, Parquet) on the workers. Empty "
        f"= the export that started this run, else the newest in {config.RATINGS_INBOX}, else "
        "built-in synthetic data.",
        steps=("ingest",),
        nullable=True,
        path=True,
        prepared=True,
        required_in_steps=True,
    ),
    RunParam(
        "format",
        str,
        "auto",
        title="Input format",
        help="Input layout; auto detects the MovieLens layouts, CSV and Parquet",
        steps=("ingest",),
        enum=config.INPUT_FORMATS,
        prepared=True,
    ),
    RunParam(
        "columns",
        str,
        None,
        title="Column mapping",
        help="For csv/parquet with other column names: user=COL,item=COL,rating=COL"
        "[,timestamp=COL]. Empty = the standard names.",
        steps=("ingest",),
        pattern=MAPPING_PATTERN,
        nullable=True,
    ),
    RunParam(
        "rating_scale",
        str,
        "auto",
        title="Rating scale",
        help="MIN-MAX, e.g. 1-5 or 1-10; auto = 1-5 or 0.5-5 as detected",
        steps=("ingest",),
        pattern=SCALE_PATTERN,
    ),
    RunParam(
        "feedback",
        str,
        None,
        title="Feedback events",
        help="Folder of feedback events (like/dislike/watched, JSON Lines or CSV). "
        f"Empty = the default inbox {config.FEEDBACK_DIR} when it exists.",
        steps=("ingest",),
        nullable=True,
        path=True,
        prepared=True,
    ),
    RunParam(
        "top_n",
        int,
        config.DEFAULT_TOP_N,
        title="Top N",
        help="Recommendations per user",
        steps=("train", "recommend"),
        minimum=1,
        maximum=1000,
    ),
    RunParam(
        "similar_k",
        int,
        config.DEFAULT_SIMILAR_K,
        title="Similar items per item",
        help="Neighbours per item in reco.similar_items",
        steps=("recommend",),
        minimum=1,
        maximum=200,
    ),
    RunParam(
        "folds",
        int,
        config.DEFAULT_CV_FOLDS,
        title="Cross-validation folds",
        help="Cross-validation folds; 0 = fixed parameters (one value per grid key)",
        steps=("train",),
        minimum=0,
        maximum=10,
    ),
    RunParam(
        "families",
        str,
        ",".join(config.DEFAULT_FAMILIES),
        title="Model families",
        help="Model families that compete in the CV for the published top-N, "
        "comma-separated: als (implicit ALS, the default path), ease (item-item, "
        "bounded to the most-rated items)",
        steps=("train",),
        pattern=FAMILIES_PATTERN,
    ),
    RunParam(
        "ranking_grid",
        str,
        None,
        title="Implicit-ALS grid",
        help='Implicit-ALS grid as a JSON object, e.g. {"rank": [64], "alpha": [0.5, 1]}; '
        f"empty = the default {json.dumps(config.DEFAULT_RANKING_GRID)}",
        steps=("train",),
        pattern=JSON_OBJECT,
        nullable=True,
    ),
    RunParam(
        "ease_grid",
        str,
        None,
        title="EASE grid",
        help='EASE grid as a JSON object, e.g. {"lambda": [200, 500]}; empty = '
        f"the default {json.dumps(config.DEFAULT_EASE_GRID)}",
        steps=("train",),
        pattern=JSON_OBJECT,
        nullable=True,
    ),
    RunParam(
        "rating_cv",
        bool,
        False,
        title="Cross-validate the rating model",
        help="Also cross-validate the rating model (RMSE) over its grid; off = "
        "one fit at documented parameters",
        steps=("train",),
    ),
    RunParam(
        "grid",
        str,
        None,
        title="Rating-model grid",
        help='Rating-model ALS grid as a JSON object, e.g. {"rank": [10, 20]} '
        "(several values need rating_cv); empty = the default "
        f"{json.dumps(config.DEFAULT_GRID)}",
        steps=("train",),
        pattern=JSON_OBJECT,
        nullable=True,
    ),
    RunParam(
        "min_rows",
        int,
        config.DEFAULT_MIN_ROWS,
        title="Fewest ratings",
        help="Fewest ratings a batch may have",
        steps=("validate",),
        minimum=1,
    ),
    RunParam(
        "max_quarantine_share",
        float,
        config.DEFAULT_MAX_QUARANTINE_SHARE,
        title="Largest malformed share",
        help="Largest share of malformed input lines before the batch is refused",
        steps=("validate",),
        minimum=0,
        maximum=1,
    ),
    RunParam(
        "max_row_drop",
        float,
        config.DEFAULT_MAX_ROW_DROP,
        title="Largest batch shrink",
        help="Largest shrink vs the previous accepted batch (0.5 = half)",
        steps=("validate",),
        minimum=0,
        maximum=1,
    ),
    RunParam(
        "gate_tolerance",
        float,
        config.DEFAULT_GATE_TOLERANCE,
        title="Gate tolerance",
        help="How much worse than the published model a new one may be (relative)",
        steps=("train",),
        minimum=0,
    ),
)

BY_NAME: dict[str, RunParam] = {p.name: p for p in RUN_PARAMS}
if len(BY_NAME) != len(RUN_PARAMS):
    raise ValueError("two run parameters share a name")


def for_step(step: str) -> tuple[RunParam, ...]:
    """The parameters ``step`` receives, in schema order."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; steps are {STEPS}")
    return tuple(p for p in RUN_PARAMS if step in p.steps)


# ------------------------------------------------------------------------------------------
# Airflow: the trigger form and the steps' argument lists
# ------------------------------------------------------------------------------------------
def dag_params(param: Callable[..., Any]) -> dict[str, Any]:
    """The ``recommendations`` DAG's ``params=``: one ``param(default, description=...,
    **json_schema)`` per run parameter; the DAG passes ``airflow.sdk.Param`` (only the DAG
    files and ``reco.orchestration`` import Airflow)."""
    return {p.name: param(p.default, description=p.help, **p.schema()) for p in RUN_PARAMS}


def step_args(step: str, prepared: Mapping[str, Any] | None = None) -> list[Any]:
    """The DAG's argument list of ``step``'s run parameters: ``["--folds",
    "{{ params.folds }}", ...]``; a parameter prepare resolves is ``prepared[name]`` (the
    prepare task's output, an XComArg in the DAG)."""
    out: list[Any] = []
    for p in for_step(step):
        if p.prepared:
            if prepared is None:
                raise ValueError(f"{step} takes {p.name} from prepare: pass prepare's output")
            out += [p.flag, prepared[p.name]]
        else:
            out += [p.flag, p.template()]
    return out


# ------------------------------------------------------------------------------------------
# command lines: `reco run` and the steps
# ------------------------------------------------------------------------------------------
def add_run_arguments(parser: Any) -> None:
    """Every run parameter as a ``reco run`` flag of ``parser`` (a parser or an argument
    group; a boolean is an on/off switch)."""
    for p in RUN_PARAMS:
        if p.type is bool:
            action = argparse.BooleanOptionalAction if p.default else "store_true"
            parser.add_argument(p.flag, action=action, default=p.default, help=p.help_text())
        else:
            parser.add_argument(
                p.flag, type=p.parse, default=p.default, choices=p.enum, help=p.help_text()
            )


def run_conf(args: argparse.Namespace) -> dict[str, Any]:
    """The ``recommendations`` run conf from ``reco run``'s arguments: every run parameter,
    paths resolved against the current folder, an empty text None (the form's empty)."""
    conf: dict[str, Any] = {}
    for p in RUN_PARAMS:
        value = getattr(args, p.name)
        if p.path and value:
            value = str(Path(value).expanduser().resolve())
        conf[p.name] = value
    return conf
