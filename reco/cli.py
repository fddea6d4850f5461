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
  reco warehouse-url     print the PostgreSQL URL in use:  psql "$(reco warehouse-url)"
  reco db start|stop|status   the embedded PostgreSQL server
  reco runs              the latest rows of reco.model_runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from reco import config, steps
from reco.errors import PipelineError


def project_env() -> dict[str, str]:
    """Environment for Airflow and spark-submit: project settings + the venv on PATH."""
    env = dict(os.environ)
    env.update(
        {
            k: v
            for k, v in config.airflow_env().items()
            if k not in os.environ
            or k in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER")
        }
    )
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return env


def apply_project_env() -> None:
    os.environ.update(project_env())


# ------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from reco.data.formats import parse_scale
    from reco.data.synthetic import SyntheticSpec, write_dataset

    lo, hi = parse_scale(args.scale) or (1.0, 5.0)
    spec = SyntheticSpec(
        n_users=args.users,
        n_items=args.items,
        mean_ratings_per_user=args.ratings_per_user,
        rating_min=int(lo),
        rating_max=int(hi),
        seed=args.seed,
    )
    manifest = write_dataset(Path(args.out), spec)
    print(
        f"wrote {manifest['n_ratings']:,} ratings ({manifest['n_users']:,} users x "
        f"{manifest['n_items']:,} items, scale {int(lo)}-{int(hi)}) to {args.out}"
    )
    return 0


def cmd_warehouse_url(args: argparse.Namespace) -> int:
    from reco.publishing import warehouse

    print(warehouse.resolve_url())
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from reco.publishing import warehouse

    if os.environ.get("WAREHOUSE_URL") and args.action in ("start", "stop"):
        print("WAREHOUSE_URL is set: the embedded server is not used", file=sys.stderr)
    if args.action in ("upgrade", "version"):
        return cmd_db_schema(args.action, warehouse.resolve_url())
    if args.action == "start":
        url = warehouse.embedded_url()
        warehouse.apply_schema(url)
        print(f"embedded PostgreSQL running: {url}")
    elif args.action == "stop":
        stopped = warehouse.stop_embedded()
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    else:
        running = (config.PGDATA_DIR / "postmaster.pid").exists()
        print(f"embedded PostgreSQL ({config.PGDATA_DIR}): {'running' if running else 'stopped'}")
        if os.environ.get("WAREHOUSE_URL"):
            print(f"WAREHOUSE_URL in use: {warehouse.describe(os.environ['WAREHOUSE_URL'])}")
    return 0


def cmd_db_schema(action: str, url: str) -> int:
    """``reco db upgrade``: apply the schema's pending migrations; ``reco db version``: the
    warehouse's schema version against the code's."""
    from reco.publishing import warehouse

    if action == "upgrade":
        applied = warehouse.apply_schema(url)
        print(
            f"{warehouse.describe(url)}: applied {', '.join(applied)}"
            if applied
            else f"{warehouse.describe(url)}: already at the code's schema version"
        )
    state = warehouse.schema_status(url)
    print(
        f"schema version: warehouse {state['warehouse_version'] or 'none recorded'}, "
        f"code {state['code_version']}"
    )
    if state["pending"]:
        print(f"pending (reco db upgrade, or the next run, applies them): {state['pending']}")
    if state["refused"]:
        print(f"ERROR: {state['refused']}", file=sys.stderr)
        return 2
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from reco.publishing import rollback, warehouse

    url = warehouse.resolve_url(args.warehouse_url)
    if args.list:
        rows = rollback.listing(url)
        if not rows:
            print("nothing published yet")
        for r in rows[: args.limit]:
            state = "current" if r["current"] else ("restorable" if r["restorable"] else "pruned")
            print(f"{r['published_at'][:19]}  {r['model_version']:40}  {state:10}  {r['run_id']}")
        return 0
    done = rollback.rollback(url, args.to, log=print)
    print(f"[rollback] done: {json.dumps(done, default=str)}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from reco.maintenance import retention
    from reco.publishing import warehouse

    url = warehouse.resolve_url(args.warehouse_url)
    warehouse.apply_schema(url)
    result = retention.prune(retention.published_run_ids(url), dry_run=args.dry_run, log=print)
    for key, why in result["kept"].items():
        print(f"kept {key}: {why}")
    verb = "would free" if args.dry_run else "freed"
    print(
        f"{len(result['pruned'])} runs and {result['event_logs_pruned']} event logs pruned"
        f"{' (dry run: nothing deleted)' if args.dry_run else ''}; {verb} "
        f"{result['bytes_freed'] / 2**20:.1f} MiB"
    )
    return 0


def airflow(*argv: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "airflow"
    return subprocess.run(
        [str(exe), *argv], env=project_env(), check=check, capture_output=capture, text=True
    )


def init_airflow() -> None:
    """Migrate the metadata DB and make sure ``spark_default`` (local[*]) and the ``spark``
    pool exist; what an operator changed in either is kept."""
    config.AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    airflow("db", "migrate", capture=True)
    listed = airflow(
        "connections", "get", config.SPARK_CONN_ID, "-o", "json", check=False, capture=True
    )
    if listed.returncode != 0:
        airflow(
            "connections",
            "add",
            config.SPARK_CONN_ID,
            "--conn-type",
            "spark",
            "--conn-host",
            "local[*]",
            "--conn-description",
            "Spark master for the reco jobs: local[*] or spark://HOST:7077",
            capture=True,
        )
    if airflow("pools", "get", config.SPARK_POOL, check=False, capture=True).returncode != 0:
        airflow(
            "pools",
            "set",
            config.SPARK_POOL,
            str(config.SPARK_POOL_SLOTS),
            "Spark applications the reco DAGs run at once",
            capture=True,
        )


def cmd_init(args: argparse.Namespace) -> int:
    from reco.publishing import warehouse
    from reco.validation import data_docs_assets

    java = check_java()
    print(f"java: {java}")
    if not args.image:
        init_airflow()
        print(f"airflow home: {config.AIRFLOW_HOME} ({metadata_db()} metadata, examples off)")
        url = warehouse.resolve_url()
        warehouse.apply_schema(url)
        print(f"warehouse schema applied: {warehouse.describe(url)}")
    from reco import spark

    if spark.cds_enabled() and not spark.CDS_ARCHIVE.exists():
        if os.access(
            spark.CDS_ARCHIVE.parent if spark.CDS_ARCHIVE.parent.exists() else sys.prefix, os.W_OK
        ):
            print("spark driver class archive: building (about a minute, once) ...", flush=True)
            built = spark.build_cds_archive()
            print(
                f"spark driver class archive: {built}"
                if built
                else "spark driver class archive: not built (Spark starts without it, slower)"
            )
        else:
            print(
                f"spark driver class archive: not built ({sys.prefix} is not writable for this "
                "user; build it where the environment is installed: reco init --image)"
            )
    print(f"data docs assets (CSS/JS for offline Data Docs): {data_docs_assets.ensure_vendored()}")
    return 0


def metadata_db() -> str:
    """Which database Airflow's metadata is in, for the summary (never its password)."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return url.split(":", 1)[0].split("+", 1)[0] if url else "SQLite"


def check_java() -> str:
    """Spark 4 needs Java 17+; return the version line or raise naming the fix."""
    java = shutil.which(
        "java",
        path=(os.environ.get("JAVA_HOME", "") + "/bin") if os.environ.get("JAVA_HOME") else None,
    ) or shutil.which("java")
    fix = (
        "install a Java 17 or 21 runtime (Debian: apt-get install openjdk-17-jre-headless) "
        "and put it on PATH or set JAVA_HOME"
    )
    if not java:
        raise PipelineError(f"Java was not found: Spark 4 needs Java 17+; {fix}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True)
    line = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else ""
    import re

    m = re.search(r'version "(\d+)(?:\.(\d+))?', line)
    major = int(m.group(1)) if m else 0
    if major == 1 and m and m.group(2):
        major = int(m.group(2))
    if major < 17:
        raise PipelineError(
            f"Java {major or '?'} found ({line.strip()}): Spark 4 needs Java 17+; {fix}"
        )
    return line.strip()


def load_dag(dag_id: str = "recommendations") -> Any:
    import importlib.util

    path = config.DAGS_DIR / f"{dag_id}.py"
    spec = importlib.util.spec_from_file_location(f"reco_dag_{dag_id}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.dag


def run_dag(conf: dict[str, Any], dag_id: str = "recommendations") -> tuple[str, str]:
    """Run the DAG once in-process (``dag.test``); returns ``(run_id, state)``."""
    apply_project_env()
    if not (config.AIRFLOW_HOME / "airflow.db").exists():
        init_airflow()
    # dag.test() runs are marked triggered_by=test: the task-times listener stores their
    # task times and renders the report again before dag.test() returns
    # (reco/reporting/run_end.py).
    dag = load_dag(dag_id)
    # Deadline Alerts are the scheduler's (a run in-process has no one to alert): Airflow
    # 3.3's dag.test() looks them up as if the DAG were serialized and fails on them.
    dag.deadline = None
    dr = dag.test(run_conf=conf)
    state = str(getattr(dr.state, "value", dr.state)) if dr is not None else "unknown"
    return (dr.run_id if dr is not None else ""), state


def preflight(conf: dict[str, Any]) -> None:
    """Fail in a second, with one clear message, on what would only fail later in the DAG:
    Java, the dataset (path, format, empty file), the model parameters (families, grids,
    folds), the warehouse connection."""
    from reco.data import formats
    from reco.orchestration import pipeline
    from reco.publishing import warehouse

    check_java()
    if conf["dataset"]:
        formats.detect_source(
            conf["dataset"],
            conf["format"],
            columns=formats.parse_mapping(conf["columns"]),
            rating_scale=formats.parse_scale(conf["rating_scale"]),
        )
    pipeline.check_model_params(conf)
    url = warehouse.resolve_url()
    warehouse.connect(url).close()


def cmd_run(args: argparse.Namespace) -> int:
    from reco import params as run_params
    from reco.console.summary import summarize

    # Every run parameter (reco/params.py); paths resolved here, an empty text is None.
    conf = run_params.run_conf(args)
    preflight(conf)  # its errors reach the terminal, before the log file takes the output
    if args.verbose:  # Airflow's and Spark's lines on the terminal, as they come
        run_id, state = run_dag(conf)
        return summarize(run_id, state)
    from reco.orchestration import progress

    apply_project_env()  # before the listener imports Airflow
    watched = None
    try:
        with progress.watch(conf) as watched:
            run_id, state = run_dag(conf)
            watched.finish(run_id)
    except KeyboardInterrupt:
        where = f"; the log is {watched.log}" if watched else ""
        print(f"\nreco run interrupted{where}", file=sys.stderr)
        return 130
    return summarize(run_id, state, log=watched.log)


def cmd_simulate_ab(args: argparse.Namespace) -> int:
    from reco.experiments.simulate import simulate

    truth = simulate(
        Path(args.out),
        users=args.users,
        control_ctr=args.control_ctr,
        lift=args.lift,
        impressions_per_user=args.impressions_per_user,
        seed=args.seed,
    )
    print(
        f"wrote {args.out}: {truth['users']:,} users, {truth['impressions']:,} impressions, "
        f"{truth['clicks']:,} clicks; true CTR control {truth['control_ctr']:.4f}, "
        f"treatment {truth['treatment_ctr']:.4f} (lift {truth['relative_lift']:+.1%})"
    )
    return 0


BUSINESS_INPUTS: dict[str, type] = {
    "active_customers": int,
    "annual_revenue_per_customer": float,
    "baseline_retention": float,
    "retention_per_ctr_lift": float,
}


def cmd_ab_test(args: argparse.Namespace) -> int:
    from reco.experiments import store
    from reco.publishing import warehouse

    check_java()
    conf = {
        "input": str(Path(args.input).expanduser().resolve()),
        "experiment": args.experiment,
        "control_arm": args.control_arm,
    }
    for name in BUSINESS_INPUTS:
        if getattr(args, name) is not None:
            conf[name] = getattr(args, name)
    run_id, state = run_dag(conf, dag_id="ab_test_analysis")
    print("\n" + "=" * 72)
    if state != "success":
        print(f"ab_test_analysis run {run_id} FAILED (state: {state}); see the task logs above")
        return 1
    for r in store.fetch_results(warehouse.resolve_url(), args.experiment):
        line = f"  {r['arm']:<12} CTR {r['ctr']:.4%} [{r['ctr_low']:.4%}, {r['ctr_high']:.4%}]"
        if not r["is_control"]:
            line += (
                f"  lift {r['rel_lift']:+.1%} [{r['rel_lift_low']:+.1%}, "
                f"{r['rel_lift_high']:+.1%}]  p={r['p_value']:.4f}  MDE {r['mde_rel']:.1%}"
            )
        print(line)
    print(f"  report: {config.REPORTS_DIR / f'ab_{args.experiment}.html'}")
    print("=" * 72)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from reco.publishing import warehouse

    url = warehouse.resolve_url()
    warehouse.apply_schema(url)
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(warehouse.named_statements("model_runs.sql")["latest"], {"limit": args.limit})
        for rec in warehouse.fetch_dicts(cur):
            m = rec["metrics"] or {}
            print(
                f"{rec['started_at']:%Y-%m-%d %H:%M} {rec['run_id'][:40]:40} #{rec['attempt']} "
                f"{rec['status']:10} rmse={m.get('rmse', float('nan')):.4f} "
                f"rows={rec['n_published'] or 0:,} {rec['status_reason'] or ''}"
            )
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    exe = Path(sys.executable).parent / "airflow"
    os.execve(str(exe), [str(exe), *args.airflow_args], project_env())
    return 0  # not reached


def cmd_airflow_ui(args: argparse.Namespace) -> int:
    """``airflow standalone`` with the project's DAGs; prints the URL and the login, and
    stops every process of it on Ctrl-C, SIGTERM or SIGHUP (:mod:`reco.orchestration.
    standalone`)."""
    from reco.orchestration import standalone

    with standalone.stop_signals() as received:
        check_java()
        apply_project_env()
        standalone.stop_stale(received)
        if not received and not (config.AIRFLOW_HOME / "airflow.db").exists():
            init_airflow()
        if received:
            return 0
        env = project_env()
        env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
        env.setdefault("AIRFLOW__API__PORT", str(args.port))
        return standalone.serve(env, received)


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
    for add in (add_data_commands, add_run_commands, add_ab_commands, add_operator_commands):
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


if __name__ == "__main__":
    sys.exit(main())
