"""Report: per-stage timings into ``reco.stage_timings`` and an HTML run report.

Loads the run's ``timings.jsonl`` into the warehouse, then builds the report from what
the warehouse holds (so the page shows what SQL sees), in the order a reviewer reads it:
a headline (published or rejected and why, the model chosen, nDCG and RMSE beside the
baselines and the champion, users served, wall time against earlier runs), the stage
timeline and table, trends over the last runs, the CV as one table, then the details and
links to the run's Data Docs and Spark History Server. The page is the Jinja2 template
``templates/run_report.html.j2`` (autoescaped), filled by pure functions of the fetched
data. Writes ``var/reports/<run>.html`` and refreshes ``var/reports/latest.html``.

This module is the one owner of the page: :func:`run` loads and renders, everything else
calls it. Per run it renders once in the run's own ``report`` task, and once more after
the run has ended, when Airflow's task times (which exist only then) are in the warehouse:
:func:`rebuild`, called by the ``pipeline_report`` DAG in the scheduler, or for an
in-process ``reco run`` by :mod:`reco.reporting.run_end` (see there).

    reco report --run-dir var/lake/runs/R
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reco import config, pages
from reco.errors import PipelineError
from reco.experiments import page as ab_page
from reco.experiments import store as ab_store
from reco.instrumentation import eventlog
from reco.instrumentation.timing import read_timings, timer
from reco.publishing import warehouse
from reco.reporting import performance, task_timings
from reco.runs import RunFolder, run_dir_for
from reco.runtime import read_json
from reco.validation import quality

if TYPE_CHECKING:
    from reco.steps import StepArgs

STAGE = "report"


def load_timings(url: str, run_id: str, run_dir: Path) -> int:
    """The run's timing records (with each phase's Spark metrics from the event log) into
    ``reco.stage_timings``, and its Spark stages into ``reco.spark_stages``."""
    records = read_timings(run_dir)
    stages = performance.spark_rows(run_dir)
    performance.attach_phase_sums(records, stages)
    sql = warehouse.named_statements("stage_timings.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        # One loader per run at a time (the run's report task and a pipeline_report run
        # can overlap): the second waits, then replaces the rows.
        cur.execute(sql["lock_run"], {"run_id": run_id})
        cur.execute(sql["delete_run"], {"run_id": run_id})
        for rec in records:
            cur.execute(
                sql["insert"],
                {**rec, "run_id": run_id, "details": json.dumps(rec.get("details", {}))},
            )
        performance.load_spark_stages(cur, run_id, stages)
    return len(records)


def fetch_timings(url: str, run_id: str) -> list[dict[str, Any]]:
    sql = warehouse.named_statements("stage_timings.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["for_run"], {"run_id": run_id})
        return warehouse.fetch_dicts(cur)


def timeline_png(rows: list[dict[str, Any]]) -> str:
    """A Gantt chart, base64 PNG: per stage, Airflow's task span (with the time it sat
    queued before it) behind the time spent inside the job (its ``total`` phase)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = {r["stage"]: r for r in rows if r["phase"] == "total"}
    tasks = {r["stage"]: r for r in rows if r["phase"] == task_timings.PHASE}
    if not totals and not tasks:
        return ""
    lanes = sorted(
        set(totals) | set(tasks), key=lambda s: (tasks.get(s) or totals[s])["started_at"]
    )
    queued_at = {
        s: datetime.fromisoformat(r["details"]["queued_at"])
        for s, r in tasks.items()
        if (r["details"] or {}).get("queued_at")
    }
    t0 = min(
        [r["started_at"] for r in (*totals.values(), *tasks.values())] + list(queued_at.values())
    )
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(lanes) + 1.2))
    for i, stage in enumerate(lanes):
        end = 0.0
        if stage in queued_at:
            q = (queued_at[stage] - t0).total_seconds()
            wait = (tasks[stage]["started_at"] - queued_at[stage]).total_seconds()
            ax.barh(i, wait, left=q, height=0.6, color="#DDDDDD", hatch="//", edgecolor="#999")
        if stage in tasks:
            t = tasks[stage]
            start = (t["started_at"] - t0).total_seconds()
            ax.barh(i, t["seconds"], left=start, height=0.6, color="#A6C8E8")
            end = start + t["seconds"]
        if stage in totals:
            r = totals[stage]
            start = (r["started_at"] - t0).total_seconds()
            ax.barh(i, r["seconds"], left=start, height=0.35, color="#4C72B0")
            end = max(end, start + r["seconds"])
        label = (tasks.get(stage) or totals[stage])["seconds"]
        ax.text(end, i, f" {label:.1f}s", va="center", fontsize=8)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the run started")
    ax.set_title("Timeline: queued (hatched), Airflow task (light), inside the job (dark)")
    return pages.png_base64(fig)


# --- the page, as data: pure functions of what the warehouse and the run folder hold ------

# A CV fit's phase (``cv_als_c0_fold2``, ``rating_cv_p1_fold0``): folded into one table row
# per candidate.
FOLD_PHASE = re.compile(r"^(?P<base>.+)_fold(?P<fold>\d+)$")
# Details shown in their own columns, or not at all (the timeline shows queued_at).
DETAIL_COLUMNS = {"rows", "spark", "queued_at", "fold"}
# How a detail reads in the notes column; others read "key value".
NOTE_FORMATS = {
    "state": "{}",
    "operator": "{}",
    "try_number": "try {}",
    "queued_seconds": "queued {} s",
    "version": "{}",
    "ndcg": "nDCG {}",
    "precision": "P {}",
    "rmse": "RMSE {}",
    "shuffle_partitions": "shuffle partitions {}",
    "als_blocks": "ALS blocks {}",
}
STATUS_LABELS = {
    "published": "Published",
    "rejected": "Rejected",
    "failed": "Publish failed",
    "publishing": "Publish unfinished",
    "abandoned": "Abandoned (process gone)",
    "passed": "Passed the gate",  # no reco.model_runs row: whether it was published is unknown
}
CV_SCORE_PREFIXES = ("mean_", "std_", "fold_", "cv_")
HISTORY_SERVER_URL = "http://localhost:18080"  # the History Server's default port


def fmt_value(v: Any) -> str:
    """A detail value as text: numbers rounded, lists joined; never JSON."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v.is_integer():
            return f"{int(v):,}"
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, list | tuple):
        return " / ".join(fmt_value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {fmt_value(x)}" for k, x in v.items())
    return str(v)


def param_text(params: dict[str, Any]) -> str:
    """``rank=32, regParam=0.2``: a candidate's parameters, without family and scores."""
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, int | float) and not isinstance(v, bool) else f"{k}={v}"
        for k, v in params.items()
        if k != "family" and not k.startswith(CV_SCORE_PREFIXES)
    )


def detail_notes(details: list[dict[str, Any]]) -> list[str]:
    """The details of one phase (or of the folds of one CV candidate) as short notes: a
    value the folds share once, values that differ joined with " / "."""
    keys = list(dict.fromkeys(k for d in details for k in d if k not in DETAIL_COLUMNS))
    notes = []
    for key in keys:
        values = [d[key] for d in details if d.get(key) is not None and d.get(key) != ""]
        if not values:
            continue
        if key == "failed" and values[0] is True:
            notes.append("FAILED")
            continue
        shown = fmt_value(values[0]) if len(set(map(repr, values))) == 1 else fmt_value(values)
        notes.append(NOTE_FORMATS.get(key, key + " {}").format(shown))
    return notes


def table_row(stage: str, phase: str, group: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of the stage table from one timing row, or from a CV candidate's folds."""
    details = [r.get("details") or {} for r in group]
    spark = [d.get("spark") or {} for d in details]

    def total(items: list[dict[str, Any]], *keys: str) -> float | None:
        vals = [i[k] for i in items for k in keys if i.get(k) is not None]
        return sum(vals) if vals else None

    notes = detail_notes(details)
    if len(group) > 1:
        per_fold = " / ".join(f"{r['seconds']:.1f}" for r in group)
        notes.insert(0, f"sum of {len(group)} folds: {per_fold} s")
        phase = f"{phase} \u00d7 {len(group)} folds"
    spill = total(spark, "memory_spill_bytes", "disk_spill_bytes")
    if spill:
        notes.append(f"spill {spill / 1e6:.1f} MB")
    shuffle = total(spark, "shuffle_read_bytes", "shuffle_write_bytes")
    executor_ms = total(spark, "executor_run_ms")
    return {
        "stage": stage,
        "phase": phase,
        "seconds": sum(float(r["seconds"]) for r in group),
        "rows": total(details, "rows"),
        "tasks": total(spark, "tasks"),
        "shuffle_mb": None if shuffle is None else shuffle / 1e6,
        "executor_s": None if executor_ms is None else executor_ms / 1000,
        "notes": " \u00b7 ".join(notes),
        "kind": "total"
        if group[0]["phase"] == "total"
        else ("task" if group[0]["phase"] == task_timings.PHASE else ""),
        "failed": any(d.get("failed") is True for d in details),
    }


def stage_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's timing rows, in order, as table rows; each CV candidate's fold fits are
    one row (placed where its first fold started)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for r in rows:
        m = FOLD_PHASE.match(r["phase"])
        key = (r["stage"], m["base"] if m else r["phase"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(r)
    return [table_row(stage, phase, groups[(stage, phase)]) for stage, phase in order]


def run_wall(rows: list[dict[str, Any]]) -> tuple[datetime | None, float | None]:
    """When the run started and its wall seconds so far (first start to last finish of
    its timing rows, as the trends query measures it)."""
    if not rows:
        return None, None
    start = min(r["started_at"] for r in rows)
    return start, (max(r["finished_at"] for r in rows) - start).total_seconds()


def stage_totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each stage's seconds inside the job (its ``total`` phase), for the history chart."""
    return {r["stage"]: float(r["seconds"]) for r in rows if r["phase"] == "total"}


def verdict(metrics: dict[str, Any], run: dict[str, Any] | None) -> dict[str, Any]:
    """Published or not, and why: ``reco.model_runs`` when it holds the run, else the gate
    decision the train step wrote."""
    gate = metrics.get("gate") or {}
    if run:
        status = run["status"]
        reason = run.get("status_reason") or ""
        source = f"reco.model_runs, attempt {run.get('attempt')}"
        if not reason and status == "publishing":
            reason = "the publish step did not record its end (the warehouse went away?)"
    else:
        status = "passed" if gate.get("publish", True) else "rejected"
        reason = ""
        source = "the gate in metrics.json (no reco.model_runs row for this run)"
    # A published run has no status_reason: the gate says why it passed.
    reason = reason or gate.get("reason") or ""
    return {
        "status": status,
        "label": STATUS_LABELS.get(status, status),
        "reason": reason,
        "source": source,
    }


def quality_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """nDCG@k and RMSE beside the baselines and the champion, for the headline."""
    base, champ = m["baselines"], m.get("champion") or {}
    ndcg, rmse = m["ranking"]["ndcg"], m["rating"]["rmse"]
    ndcg_base = base["most_popular"]["ndcg"]
    rmse_base = (base["global_mean"]["rmse"], base["bias"]["rmse"])
    return [
        {
            "metric": f"nDCG@{m['ranking']['k']}",
            "hint": "higher is better",
            "this": ndcg,
            "baselines": [None, None, ndcg_base],
            "champion": (champ.get("ranking") or {}).get("ndcg"),
            "beats_baselines": ndcg > ndcg_base,
        },
        {
            "metric": "RMSE",
            "hint": "lower is better",
            "this": rmse,
            "baselines": [*rmse_base, None],
            "champion": (champ.get("rating") or {}).get("rmse"),
            "beats_baselines": rmse < min(rmse_base),
        },
    ]


def model_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Every held-out metric beside its baselines (and the champion, when there is one)."""
    base, champ = m["baselines"], m.get("champion") or {}
    k = m["ranking"]["k"]
    out = []
    for label, key in (("RMSE", "rmse"), ("MAE", "mae"), ("MPE %", "mpe")):
        out.append(
            {
                "label": label,
                "values": [
                    m["rating"][key],
                    base["global_mean"][key],
                    base["bias"][key],
                    None,
                    (champ.get("rating") or {}).get(key),
                ],
            }
        )
    for label, key in (
        (f"nDCG@{k}", "ndcg"),
        (f"precision@{k}", "precision"),
        (f"recall@{k}", "recall"),
        (f"MAP@{k}", "map"),
        ("catalogue coverage", "catalogue_coverage"),
        ("users served", "user_coverage"),
    ):
        out.append(
            {
                "label": label,
                "values": [
                    m["ranking"][key],
                    None,
                    None,
                    base["most_popular"][key],
                    (champ.get("ranking") or {}).get(key),
                ],
            }
        )
    return out


def cv_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """The ranking CV: one row per candidate, best first, the published one marked; the
    per-fold nDCG in one cell."""
    published = m["ranking"]["params"]
    return [
        {
            "chosen": {key: r[key] for key in published if key in r} == published,
            "family": r["family"],
            "params": param_text(r),
            "mean": r["mean_ndcg"],
            "sd": r["std_ndcg"],
            "precision": r["mean_precision"],
            "folds": " / ".join(f"{v:.4f}" for v in r["fold_ndcg"]),
        }
        for r in sorted(m["ranking"].get("cv_results") or [], key=lambda r: -r["mean_ndcg"])
    ]


def rating_cv_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """The rating model's own CV (when it ran): one row per grid point, best first."""
    chosen = m["rating"]["params"]
    return [
        {
            "chosen": {key: r.get(key) for key in chosen} == chosen,
            "params": param_text(r),
            "rmse": r["cv_rmse"],
            "folds": " / ".join(f"{v:.4f}" for v in r["fold_rmse"]),
        }
        for r in sorted(m["rating"].get("cv_results") or [], key=lambda r: r["cv_rmse"])
    ]


def headline(
    manifest: dict[str, Any],
    metrics: dict[str, Any],
    rows: list[dict[str, Any]],
    run: dict[str, Any] | None,
    trends: list[dict[str, Any]],
    run_id: str,
    users_served: int | None,
) -> dict[str, Any]:
    """The ten-second summary: verdict and why, model, quality, reach, wall time."""
    ranking = metrics["ranking"]
    start, wall = run_wall(rows)
    median, n_earlier = performance.earlier_wall(trends, run_id, start)
    champ = metrics.get("champion") or {}
    decided = verdict(metrics, run)
    return {
        **decided,
        "family": ranking.get("family") or metrics.get("model_family", ""),
        "params": param_text(ranking["params"]),
        "why": ranking.get("why", ""),
        "quality": quality_rows(metrics),
        "champion_version": champ.get("model_version")
        or (metrics.get("gate") or {}).get("champion_version"),
        "has_champion": bool(champ),
        "published": decided["status"] == "published",
        "users_served": users_served,
        "n_users": (run or {}).get("n_users") or manifest.get("n_users"),
        "n_published": (run or {}).get("n_published"),
        "wall_s": wall,
        "median_wall_s": median,
        "n_earlier": n_earlier,
        "wall_change": None if not (wall and median) else wall / median - 1,
    }


def history_server_command(events_dir: Path, python: str = sys.executable) -> str:
    """The shell lines that start a Spark History Server on ``events_dir`` (README)."""
    find_home = "import os, pyspark; print(os.path.dirname(pyspark.__file__))"
    opts = f"-Dspark.history.fs.logDirectory={events_dir}"
    return (
        f"SPARK_HOME=$({shlex.quote(python)} -c {shlex.quote(find_home)})\n"
        f"SPARK_HISTORY_OPTS={shlex.quote(opts)} \\\n"
        '  "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.history.HistoryServer'
    )


def links_for(
    run_dir: Path, *, data_docs: bool | None = None, python: str = sys.executable
) -> dict[str, Any]:
    """Where to dig deeper: the run's Data Docs (relative to the report, so the link works
    from ``var/reports`` on disk and under ``/reco-reports/``) and the History Server
    command for its Spark event logs. ``data_docs`` overrides the check that they exist."""
    index = quality.data_docs_dir(run_dir) / "index.html"
    if data_docs is None:
        data_docs = index.exists()
    try:
        href = quote(index.relative_to(config.REPORTS_DIR).as_posix())
    except ValueError:
        href = index.as_uri()
    return {
        "data_docs": href if data_docs else None,
        "events_dir": str(config.SPARK_EVENTS_DIR),
        "apps": eventlog.run_apps(run_dir),
        "history_server": history_server_command(config.SPARK_EVENTS_DIR, python),
        "history_url": HISTORY_SERVER_URL,
    }


def count_users_served(run_dir: Path) -> int | None:
    """Distinct users in the run's recommendations file (None when it is gone)."""
    path = RunFolder(run_dir).recommendations
    if not path.exists():
        return None
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    users = pq.read_table(path, columns=[config.COL_USER]).column(0)
    return int(pc.count_distinct(users).as_py())


def fetch_model_run(url: str, run_id: str) -> dict[str, Any] | None:
    """The run's latest attempt in ``reco.model_runs`` (however old the run), or None."""
    sql = warehouse.named_statements("model_runs.sql")["for_run"]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql, {"run_id": run_id})
        attempts = warehouse.fetch_dicts(cur)
    return attempts[0] if attempts else None


def render_html(
    run_id: str,
    manifest: dict[str, Any],
    metrics: dict[str, Any],
    rows: list[dict[str, Any]],
    ab: dict[str, Any] | None = None,
    *,
    run: dict[str, Any] | None = None,
    perf: dict[str, list[dict[str, Any]]] | None = None,
    links: dict[str, Any] | None = None,
    users_served: int | None = None,
) -> str:
    """The run report page from fetched data (no Spark, no database): ``rows`` are the
    run's ``reco.stage_timings``, ``run`` its ``reco.model_runs`` row, ``perf`` what
    :func:`performance.fetch` returns; ``ab`` the latest A/B experiment
    (:func:`reco.experiments.page.section_context`), shown after the data."""
    trends = (perf or {}).get("trends") or []
    folds = metrics.get("cv_folds")
    rejected = manifest.get("rejected_by_reason") or {}
    return pages.render(
        "run_report.html.j2",
        run_id=run_id,
        head=headline(manifest, metrics, rows, run, trends, run_id, users_served),
        timeline=timeline_png(rows),
        stages=stage_table(rows),
        perf=None
        if perf is None
        else performance.section_context(perf, stage_totals(rows), run_id),
        metrics=metrics,
        k=metrics["ranking"]["k"],
        model_rows=model_rows(metrics),
        cv=cv_rows(metrics),
        rating_cv=rating_cv_rows(metrics),
        rating_by=(
            f"chosen by {folds}-fold CV of its own"
            if metrics["rating"].get("cv_results")
            else "fitted once at fixed parameters (its own CV: rating_cv)"
        ),
        rating_params=param_text(metrics["rating"]["params"]),
        manifest=manifest,
        rejected=", ".join(f"{k} {fmt_value(v)}" for k, v in rejected.items()),
        ab=ab or None,
        links=links,
    )


def run(
    url: str, run_dir: Path, run_id: str | None = None, *, record_timing: bool = True
) -> dict[str, Any]:
    """Load the run's timings and write its report. ``record_timing=False`` (a rebuild,
    later) keeps the render out of the run's timings, so its wall time stays the run's."""
    run_id = run_id or run_dir.name
    manifest = read_json(RunFolder(run_dir).manifest)
    metrics = read_json(RunFolder(run_dir).metrics)
    warehouse.apply_schema(url)
    # The page shows what the warehouse holds, so the timings are loaded before it is
    # built; this step's own phases reach the table on the next load of this run.
    n = load_timings(url, run_id, run_dir)
    rows = fetch_timings(url, run_id)
    config.REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    path = config.REPORTS_DIR / f"{run_dir.name}.html"
    with timer(run_dir if record_timing else None, STAGE, "render"):
        model_run = fetch_model_run(url, run_id)
        published = (model_run or {}).get("status") == "published"
        # The latest A/B experiment analysed, with its business-impact estimate.
        ab = ab_page.section_context(ab_store.fetch_results(url))
        page = render_html(
            run_id,
            manifest,
            metrics,
            rows,
            ab,
            run=model_run,
            perf=performance.fetch(url, run_id),
            links=links_for(run_dir),
            users_served=count_users_served(run_dir) if published else None,
        )
        path.write_text(page, encoding="utf-8")
    shutil.copyfile(path, config.REPORTS_DIR / "latest.html")
    return {"report": str(path), "timings": n}


def has_page(run_dir: Path) -> bool:
    """Whether the run got far enough for a report (its manifest and model metrics)."""
    return (RunFolder(run_dir).metrics).exists() and (RunFolder(run_dir).manifest).exists()


def rebuild(url: str, run_id: str | None = None) -> dict[str, Any]:
    """Render a run's report again, from what the warehouse holds now (default: the latest
    run in ``reco.model_runs``)."""
    if not run_id:
        sql = warehouse.named_statements("model_runs.sql")["latest"]
        with warehouse.connection(url) as conn, conn.cursor() as cur:
            cur.execute(sql, {"limit": 1})
            row = cur.fetchone()
        if row is None:
            raise PipelineError("no run in reco.model_runs yet: run the recommendations DAG first")
        run_id = row[0]
    run_dir = run_dir_for(run_id)
    if not (RunFolder(run_dir).metrics).exists():
        raise PipelineError(
            f"run {run_id} has no model metrics in {run_dir}: it stopped before training, "
            "so it has no report (pick a run from reco.model_runs)"
        )
    return run(url, run_dir, run_id, record_timing=False)


def step(args: StepArgs) -> dict[str, Any]:
    return run(warehouse.resolve_url(args.warehouse_url), args.run_dir, args.run_id)
