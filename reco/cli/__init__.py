"""``reco``: the command line of the recommendation pipeline.

Set-up and the whole pipeline:
  reco init              prepare the local Airflow home and the warehouse schema
  reco run               run the `recommendations` DAG once, in-process, and summarise it
  reco airflow ARGS...   any Airflow command with this project's settings
  reco airflow-ui        start the Airflow UI (airflow standalone) and print the login

One pipeline step by hand (see `reco STEP --help`):
  reco ingest | validate | train | recommend | publish | report
  reco ab-aggregate --input DIR --out FILE   (the A/B DAG's Spark step)

Data and warehouse:
  reco generate          write a deterministic synthetic ratings dataset
  reco datasets list|fetch NAME   the MovieLens archives of GroupLens; download one
  reco warehouse-url     print the PostgreSQL URL in use:  psql "$(reco warehouse-url)"
  reco db start|stop|status   the embedded PostgreSQL server
  reco runs              the latest rows of reco.model_runs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from reco import config, steps
from reco.cli.commands import (
    BUSINESS_INPUTS,
    cmd_ab_test,
    cmd_datasets_fetch,
    cmd_datasets_list,
    cmd_db,
    cmd_generate,
    cmd_prune,
    cmd_rollback,
    cmd_run,
    cmd_runs,
    cmd_simulate_ab,
    cmd_warehouse_url,
)
from reco.cli.environment import apply_project_env, cmd_airflow, cmd_airflow_ui, cmd_init
from reco.errors import PipelineError


def cmd_step(command: str, argv: list[str]) -> int:
    """``reco <step> ...``: the step run by hand, through its entry in reco/steps.py."""
    apply_project_env()
    return steps.COMMANDS[command].main(argv)


WAREHOUSE_URL_HELP = "default: $WAREHOUSE_URL, else embedded"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reco", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (
        add_data_commands,
        add_datasets_commands,
        add_run_commands,
        add_ab_commands,
        add_operator_commands,
    ):
        add(sub)
    for step in steps.STEPS.values():
        sub.add_parser(
            step.command, help=f"step: {step.summary} (reco {step.command} --help)", add_help=False
        )
    return parser


def add_data_commands(sub: Any) -> None:
    """generate, warehouse-url, db, init."""
    g = sub.add_parser("generate", help="write a deterministic synthetic ratings dataset")
    g.add_argument("--out", default=str(config.SYNTHETIC_DIR), help="output folder")
    g.add_argument("--users", type=int, default=600)
    g.add_argument("--items", type=int, default=1000)
    g.add_argument("--ratings-per-user", type=float, default=60.0, help="mean activity")
    g.add_argument("--scale", default="1-5", help="rating scale: 1-5 (default) or 1-10")
    g.add_argument("--seed", type=int, default=config.SEED)
    g.set_defaults(func=cmd_generate)

    sub.add_parser("warehouse-url", help="print the warehouse PostgreSQL URL in use").set_defaults(
        func=cmd_warehouse_url
    )
    d = sub.add_parser(
        "db",
        help="start/stop/status of the embedded PostgreSQL; upgrade/version of the warehouse "
        "schema",
    )
    d.add_argument(
        "action",
        choices=("start", "stop", "status", "upgrade", "version"),
        help="upgrade: apply the schema migrations the warehouse lacks (every run does it "
        "too); version: the warehouse's schema version against the code's",
    )
    d.set_defaults(func=cmd_db)
    i = sub.add_parser(
        "init",
        help="prepare Airflow (its metadata DB, spark_default, the spark pool) and the "
        "warehouse schema",
    )
    i.add_argument(
        "--image",
        action="store_true",
        help="only what a container image carries: the Spark driver's class archive and the "
        "Data Docs' CSS/JS (no Airflow, no warehouse); docker/Dockerfile runs it",
    )
    i.set_defaults(func=cmd_init)


def add_datasets_commands(sub: Any) -> None:
    """datasets list, datasets fetch: MovieLens from GroupLens, by name."""
    from reco.data.movielens import CATALOGUE

    ds = sub.add_parser(
        "datasets",
        help="the MovieLens archives GroupLens publishes: list them, fetch one",
        description="MovieLens by name. `reco run --dataset NAME` uses the same folders: "
        f"{config.MOVIELENS_DIR} (RECO_MOVIELENS_DIR) if it holds NAME, else "
        f"{config.DATASETS_DIR} (RECO_DATASETS_DIR), else it fetches NAME there.",
    )
    ds_sub = ds.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    ds_sub.add_parser(
        "list", help="the published archives, their size, and which are here already"
    ).set_defaults(func=cmd_datasets_list)
    f = ds_sub.add_parser(
        "fetch",
        help="download NAME.zip, check it against GroupLens's NAME.zip.md5, unpack it",
        description="Download NAME.zip from GroupLens (or --mirror), check it against the "
        "published NAME.zip.md5, unpack it into the data folder as NAME/ (written to a "
        "temporary folder first, renamed into place when complete) and print the licence "
        "terms. Known names: " + ", ".join(CATALOGUE),
    )
    f.add_argument("name", metavar="NAME", help="ml-100k, ml-latest-small, ml-1m, ...")
    f.add_argument(
        "--mirror",
        metavar="URL",
        default=None,
        help=f"folder URL holding NAME.zip and NAME.zip.md5 (default: {config.MOVIELENS_URL}, "
        "or $RECO_MOVIELENS_URL)",
    )
    f.add_argument(
        "--archive",
        metavar="PATH",
        default=None,
        help="a NAME.zip downloaded elsewhere: unpacked instead of downloading (checked "
        "against the published checksum when it can be read)",
    )
    f.add_argument(
        "--dest",
        metavar="DIR",
        default=None,
        help=f"folder to unpack into (default: {config.DATASETS_DIR}, or $RECO_DATASETS_DIR)",
    )
    f.add_argument("--force", action="store_true", help="replace a copy already there")
    f.set_defaults(func=cmd_datasets_fetch)


def add_run_commands(sub: Any) -> None:
    """run: the DAG's trigger parameters as flags."""
    from reco import params as run_params

    r = sub.add_parser(
        "run",
        help="run the recommendations DAG once and summarise it",
        description="Run the recommendations DAG once, in-process, and summarise it. Its "
        "flags are the DAG's trigger parameters (reco/params.py).",
    )
    run_params.add_run_arguments(r)
    r.add_argument(
        "--verbose",
        action="store_true",
        help="stream Airflow's and Spark's log lines to the terminal instead of the live "
        "progress (by default they go to the run's log file, run.log in its folder)",
    )
    r.set_defaults(func=cmd_run)


def add_ab_commands(sub: Any) -> None:
    """simulate-ab, ab-test."""
    sa = sub.add_parser(
        "simulate-ab",
        help="write a seeded A/B experiment with a known lift (assignments.csv, events.csv)",
    )
    sa.add_argument("--out", required=True, help="folder to write")
    sa.add_argument("--users", type=int, default=20_000)
    sa.add_argument("--control-ctr", type=float, default=0.05)
    sa.add_argument("--lift", type=float, default=0.10, help="true relative lift (0 = A/A)")
    sa.add_argument("--impressions-per-user", type=float, default=10.0)
    sa.add_argument("--seed", type=int, default=config.SEED)
    sa.set_defaults(func=cmd_simulate_ab)

    ab = sub.add_parser("ab-test", help="run the ab_test_analysis DAG once on an input folder")
    ab.add_argument("--input", required=True, help="folder with assignments.csv, events.csv")
    ab.add_argument("--experiment", default="reco-vs-popular")
    ab.add_argument("--control-arm", default="control")
    business = ab.add_argument_group("business impact inputs (defaults in reco/config.py, AB_*)")
    for name, kind in BUSINESS_INPUTS.items():
        business.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    ab.set_defaults(func=cmd_ab_test)


def add_operator_commands(sub: Any) -> None:
    """rollback, prune, runs, airflow, airflow-ui."""
    rb = sub.add_parser(
        "rollback",
        help="publish an earlier model's lists again (same atomic swap as a publish)",
        description="Publish an earlier model's recommendations, similar and popular items "
        "again, through the same atomic swap as a publish (readers see the current lists or "
        "the restored ones, never a mix). Recorded in reco.model_runs; the champion moves "
        "with it. A version whose files retention pruned is refused.",
    )
    rb.add_argument(
        "--to",
        metavar="MODEL_VERSION",
        default=None,
        help="the version to restore (default: the one published before the current one)",
    )
    rb.add_argument("--list", action="store_true", help="list the published versions instead")
    rb.add_argument("--limit", type=int, default=20, help="rows of --list (default 20)")
    rb.add_argument("--warehouse-url", default=None, help=WAREHOUSE_URL_HELP)
    rb.set_defaults(func=cmd_rollback)

    pr = sub.add_parser(
        "prune",
        help="delete old runs' files (what the daily maintenance DAG does)",
        description="Delete the run folders, Data Docs, reports and Spark event logs of runs "
        "that retention does not keep: kept are the newest RECO_RETAIN_RUNS runs, runs younger "
        "than RECO_RETAIN_DAYS days, the run readers see now and the last "
        "RECO_RETAIN_PUBLISHED published runs (rollback targets).",
    )
    pr.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    pr.add_argument("--warehouse-url", default=None, help=WAREHOUSE_URL_HELP)
    pr.set_defaults(func=cmd_prune)

    rs = sub.add_parser("runs", help="show the latest training runs")
    rs.add_argument("--limit", type=int, default=10)
    rs.set_defaults(func=cmd_runs)

    a = sub.add_parser("airflow", help="run an Airflow command with this project's settings")
    a.add_argument("airflow_args", nargs=argparse.REMAINDER)
    a.set_defaults(func=cmd_airflow)

    ui = sub.add_parser(
        "airflow-ui", help="start the Airflow UI (airflow standalone) and print the login"
    )
    ui.add_argument("--port", type=int, default=8080)
    ui.set_defaults(func=cmd_airflow_ui)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in steps.COMMANDS:
        return cmd_step(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        print(
            f"ERROR: command failed ({' '.join(map(str, exc.cmd[:3]))} ...): {' | '.join(detail)}",
            file=sys.stderr,
        )
        return 2
