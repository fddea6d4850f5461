"""The pipeline's steps, one :class:`Step` each: every way of running a step goes through here.

A step's entry says its name (the stage of its timings and errors, ``reco <name>``,
``spark_jobs/<name>.py`` and the DAG's task), its entry function, its own arguments beside
the run parameters it takes from the one schema (``reco/params.py``), and what it reads
and writes in the run folder. From it come:

* the step's typed parameters: :meth:`Step.parse` (a command line: ``reco train ...``,
  ``spark-submit spark_jobs/train.py ...``, the DAG's rendered arguments) and
  :meth:`Step.from_conf` (a run conf: the trigger form's values, checked by ``prepare``
  before any Spark work), both through each parameter's own typed parse;
* the step's run: :meth:`Step.main` (parse, check its inputs exist, run timed, one clear
  line and an exit code on failure), which the ``spark_jobs/*.py`` applications, ``reco
  <step>`` and the DAG's in-process tasks call;
* the step's pre-Spark check (:meth:`Step.check`), which ``prepare`` runs on a run conf.

Adding a step is one ``Step(...)`` entry in :data:`STEPS` plus its module (a ``step(args)``
function and its ``STAGE``); a Spark step also gets its one-line ``spark_jobs/<name>.py``
and its task in the DAG. The entry functions are named, not imported, so that ``reco
--help`` and the DAG files do not load Spark or pandas.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reco import config
from reco import params as run_params
from reco.errors import PipelineError
from reco.runs import RunFolder
from reco.runtime import execute


class StepArgs(argparse.Namespace):
    """A step's parameters, typed by the schema: ``run_dir`` a ``Path``, each run parameter
    of its declared type (``None`` for an empty optional one), each option of its own."""

    run_dir: Path


@dataclass(frozen=True)
class Option:
    """A step's own argument, no trigger parameter (``--run-dir``, ``--holdout``, ...)."""

    name: str  # the attribute; the flag is --name-with-dashes
    type: Callable[[str], Any]
    help: str
    default: Any = None
    required: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


RUN_DIR = Option(
    "run_dir",
    Path,
    "run folder in the data lake (one per pipeline run), e.g. var/lake/runs/<run>",
    required=True,
)
RUN_ID = Option("run_id", str, "run id to record (default: the run folder's name)")
WAREHOUSE_URL = Option(
    "warehouse_url", str, "PostgreSQL URL (default: $WAREHOUSE_URL, else the embedded server)"
)


@dataclass(frozen=True)
class Step:
    """One pipeline step: see the module's docstring."""

    name: str
    summary: str  # one line, for ``reco --help``
    entry: str  # "package.module:function", the function taking the step's StepArgs
    options: tuple[Option, ...] = (RUN_DIR,)
    reads: tuple[str, ...] = ()  # RunFolder files that must exist before it runs
    writes: tuple[str, ...] = ()  # RunFolder files it writes (the optional ones too)
    check_entry: str | None = None  # "module:function" checking its StepArgs before Spark
    spark: bool = True  # a Spark application (spark_jobs/<name>.py; a SparkStepOperator)

    @property
    def command(self) -> str:
        """``reco <command>``."""
        return self.name.replace("_", "-")

    @property
    def application(self) -> Path:
        """The spark-submit application of a Spark step."""
        return config.SPARK_JOBS_DIR / f"{self.name}.py"

    @property
    def module(self) -> Any:
        return importlib.import_module(self.entry.split(":")[0])

    def function(self) -> Callable[[StepArgs], dict[str, Any]]:
        return resolve(self.entry)

    def run_params(self) -> tuple[run_params.RunParam, ...]:
        """The run parameters it takes, in schema order."""
        return run_params.for_step(self.name) if self.name in run_params.STEPS else ()

    # -- its parameters ----------------------------------------------------------------------
    def parser(self) -> argparse.ArgumentParser:
        """``reco <name> --help``: the step's module docstring, its options and its run
        parameters (a boolean takes a value, as the DAG passes it: ``--rating-cv False``;
        alone it means true), and what it reads and writes."""
        p = argparse.ArgumentParser(
            prog=f"reco {self.command}",
            description=self.module.__doc__,
            epilog=self.files_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for o in self.options:
            p.add_argument(o.flag, type=o.type, default=o.default, required=o.required, help=o.help)
        for rp in self.run_params():
            if rp.type is bool:
                p.add_argument(
                    rp.flag,
                    type=rp.parse,
                    nargs="?",
                    const=True,
                    default=rp.default,
                    metavar="BOOL",
                    help=rp.help_text(self.name),
                )
            else:
                p.add_argument(
                    rp.flag,
                    type=rp.parse,
                    default=rp.default,
                    choices=rp.enum,
                    required=rp.required_in_steps,
                    help=rp.help_text(self.name),
                )
        return p

    def files_help(self) -> str | None:
        lines = [
            f"{what} (in the run folder): "
            + ", ".join(getattr(RunFolder(Path(".")), f).name for f in files)
            for what, files in (("reads", self.reads), ("writes", self.writes))
            if files
        ]
        return "\n".join(lines) or None

    def parse(self, argv: list[str] | None = None) -> StepArgs:
        """A command line -> the typed parameters (argparse's usage error, exit 2, on a bad
        one, as any command line tool)."""
        return self.parser().parse_args(argv, namespace=StepArgs())

    def from_conf(self, conf: Mapping[str, Any], **options: Any) -> StepArgs:
        """A run conf (the trigger form's values; missing ones take their default) -> the
        typed parameters, by the same per-parameter parse as :meth:`parse`; a refused value
        is a ``PipelineError`` naming it. ``options`` gives the step's own arguments."""
        args = StepArgs()
        for o in self.options:
            if o.name not in options and o.required:
                raise PipelineError(f"{self.name} parameters: {o.flag} is required")
            setattr(args, o.name, options.get(o.name, o.default))
        for rp in self.run_params():
            value = conf.get(rp.name)
            try:
                typed = rp.default if value is None else rp.parse(value)
            except argparse.ArgumentTypeError as exc:
                raise PipelineError(f"{self.name} parameters: argument {rp.flag}: {exc}") from None
            # parse leaves the choices to argparse; the schema's own check says the same
            if rp.enum is not None and (problem := rp.problem(typed)):
                raise PipelineError(f"{self.name} parameters: argument {rp.flag}: {problem}")
            setattr(args, rp.name, typed)
        return args

    def check(self, args: StepArgs) -> Any:
        """What the step refuses before its Spark work (its check function's result)."""
        return resolve(self.check_entry)(args) if self.check_entry else None

    # -- its run ------------------------------------------------------------------------------
    def missing_input(self, run_dir: Path) -> str | None:
        """The first file it reads that is not there, named with the step that writes it."""
        folder = RunFolder(run_dir)
        for name in self.reads:
            path: Path = getattr(folder, name)
            if not path.exists():
                writer = next((s for s in STEPS.values() if name in s.writes), None)
                by = f"run `reco {writer.command} --run-dir {run_dir}` first" if writer else ""
                return f"{path} is missing: the step that writes it has not run here; {by}"
        return None

    def run(self, args: StepArgs) -> dict[str, Any]:
        """The step's work on typed parameters (its inputs checked first)."""
        run_dir = getattr(args, "run_dir", None)
        if run_dir is not None and (missing := self.missing_input(run_dir)):
            raise PipelineError(missing)
        return self.function()(args)

    def main(self, argv: list[str] | None = None) -> int:
        """A command line's run: parse, run timed; 0, or 2 for refused input (one line on
        stderr and ``error.json``), 1 for an unexpected failure."""
        return execute(self.name, self.run, self.parse(argv))


def resolve(entry: str) -> Callable[..., Any]:
    module, _, function = entry.partition(":")
    return getattr(importlib.import_module(module), function)


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step(
            "ingest",
            "raw ratings to typed, deduplicated Parquet; bad lines quarantined with a reason",
            "reco.data.ingest:step",
            options=(RUN_DIR, Option("delimiter", str, "field separator for --format csv")),
            writes=("ratings", "quarantine", "manifest", "items", "feedback"),
        ),
        Step(
            "validate",
            "the Great Expectations suites and the quarantine share gate the batch",
            "reco.validation.validate:step",
            options=(
                RUN_DIR,
                Option(
                    "previous_rows",
                    int,
                    "ratings in the previous accepted batch (the DAG looks it up)",
                ),
            ),
            reads=("manifest", "ratings"),
            writes=("validation", "gx"),
        ),
        Step(
            "train",
            "cross-validated ranking model, rating model and the publish gate",
            "reco.modeling.train:step",
            options=(
                RUN_DIR,
                Option(
                    "holdout",
                    float,
                    "share of each user's ratings held out for evaluation (default 0.2)",
                    config.DEFAULT_HOLDOUT_FRACTION,
                ),
                Option("seed", int, f"random seed (default {config.SEED})", config.SEED),
            ),
            reads=("manifest", "ratings"),
            writes=("metrics", "model", "model_meta", "popular_items"),
            check_entry="reco.modeling.train_plan:check",
        ),
        Step(
            "recommend",
            "top-N per user, similar items, popular fill; the output suite must pass",
            "reco.modeling.recommend:step",
            reads=("manifest", "ratings", "model"),
            writes=("recommendations", "similar_items", "output_validation"),
        ),
        Step(
            "publish",
            "COPY and atomic swap into PostgreSQL when the model passed its gate",
            "reco.publishing.publish:step",
            options=(RUN_DIR, RUN_ID, WAREHOUSE_URL),
            reads=("manifest", "metrics"),
            spark=False,
        ),
        Step(
            "report",
            "the run's HTML report and stage timings",
            "reco.reporting.report:step",
            options=(RUN_DIR, RUN_ID, WAREHOUSE_URL),
            spark=False,
        ),
        Step(
            "ab_aggregate",
            "per-arm counts of an A/B experiment's assignments and events",
            "reco.experiments.aggregate:step",
            options=(
                Option("input", Path, "folder with assignments.csv and events.csv", required=True),
                Option("out", Path, "JSON file for the per-arm counts", required=True),
            ),
        ),
    )
}
COMMANDS: dict[str, Step] = {s.command: s for s in STEPS.values()}


def get(name: str) -> Step:
    try:
        return STEPS[name]
    except KeyError:
        raise ValueError(f"unknown step {name!r}; steps are {', '.join(STEPS)}") from None
