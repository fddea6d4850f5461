"""The ``reco`` commands an operator runs day to day: a run of the pipeline (``reco run``,
checked in a second before the DAG starts), the warehouse (``reco db``, ``reco
warehouse-url``, ``reco runs``), retention and rollback (``reco prune``, ``reco
rollback``), synthetic data and the A/B analysis (``reco generate``, ``reco simulate-ab``,
``reco ab-test``), the MovieLens downloads (``reco datasets list|fetch``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from reco import config
from reco.cli.environment import apply_project_env, check_java, run_dag


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
    from reco.data import movielens

    # A MovieLens name (ml-100k) that is no path here: its folder, fetched on first use.
    if args.dataset:
        args.dataset = movielens.resolve_dataset(args.dataset)
    # Every run parameter (reco/params.py); paths resolved here, an empty text is None.
    conf = run_params.run_conf(args)
    preflight(conf)  # its errors reach the terminal, before the log file takes the output
    if args.verbose:  # Airflow's and Spark's lines on the terminal, as they come
        run_id, state = run_dag(conf)
        return summarize(run_id, state)
    from reco import interrupts
    from reco.orchestration import progress
    from reco.spark import stop_local_drivers

    apply_project_env()  # before the listener imports Airflow
    interrupts.remember()
    watched = None
    try:
        with progress.watch(conf) as watched:
            try:
                run_id, state = run_dag(conf)
                interrupts.raise_if_pressed()  # a press no step turned into its end
            except KeyboardInterrupt:
                # A driver JVM interrupted while it started never got its gateway: it
                # would outlive this process. Stopped here, its last lines go to the log.
                stop_local_drivers()
                raise
            watched.finish(run_id)
    except KeyboardInterrupt:
        stop_local_drivers()  # pressed again while they stopped, or before the run began
        where = f"; the log is {watched.log}" if watched else ""
        print(f"\nreco run interrupted{where}", file=sys.stderr)
        return 130
    return summarize(run_id, state, log=watched.log)


def cmd_datasets_list(args: argparse.Namespace) -> int:
    """``reco datasets list``: GroupLens's MovieLens archives, and which are here."""
    from reco.data import movielens

    rows = movielens.listing()
    width = max(len(entry.what) for entry, _ in rows)
    print(f"{'NAME':16} {'SIZE':>7}  {'WHAT':{width}}  HERE")
    for entry, folder in rows:
        print(f"{entry.name:16} {entry.size:>7}  {entry.what:{width}}  {folder or '-'}")
    print(
        f"\nlooked in {config.MOVIELENS_DIR} (RECO_MOVIELENS_DIR) and {config.DATASETS_DIR} "
        f"(RECO_DATASETS_DIR); `reco datasets fetch NAME` downloads one from "
        f"{movielens.base_url()}"
    )
    return 0


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    """``reco datasets fetch NAME``: download, verify, unpack; then the licence terms."""
    from reco.data import movielens

    folder = movielens.fetch(
        args.name,
        dest=Path(args.dest) if args.dest else None,
        mirror=args.mirror,
        archive=Path(args.archive) if args.archive else None,
        force=args.force,
    )
    print(f"MovieLens {args.name}: {folder}")
    print(movielens.licence(args.name, folder))
    return 0


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
