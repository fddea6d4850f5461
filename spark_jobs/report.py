"""Report: per-stage timings into ``reco.stage_timings`` and an HTML run report.

Loads the run's ``timings.jsonl`` into the warehouse, then builds the report from what
the warehouse holds (so the page shows what SQL sees): the stage timeline, model metrics
beside the global-mean baseline, and data volume. Writes
``var/reports/<run>.html`` and refreshes ``var/reports/latest.html``.

    reco report --run-dir var/lake/runs/R
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from spark_jobs import abtest, config, performance, task_timings, warehouse
from spark_jobs.errors import PipelineError
from spark_jobs.runtime import main_for, read_json, run_dir_arg
from spark_jobs.timing import read_timings, timer

STAGE = "report"


def load_timings(url: str, run_id: str, run_dir: Path) -> int:
    """The run's timing records (with each phase's Spark metrics from the event log) into
    ``reco.stage_timings``, and its Spark stages into ``reco.spark_stages``."""
    records = read_timings(run_dir)
    stages = performance.spark_rows(run_dir)
    performance.attach_phase_sums(records, stages)
    sql = warehouse.named_statements("stage_timings.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
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
    return performance.png_base64(fig)


def model_table(m: dict[str, Any]) -> str:
    """Every metric beside its baselines (and the champion, when there is one)."""
    base, champ = m["baselines"], m.get("champion") or {}
    k = m["ranking"]["k"]
    cols = ["this run", "global mean", "user+item bias", "most popular", "champion"]

    def cell(v: Any) -> str:
        return f"<td class=n>{v:.4f}</td>" if isinstance(v, int | float) else "<td></td>"

    rows = []
    for label, key in (("RMSE", "rmse"), ("MAE", "mae"), ("MPE %", "mpe")):
        vals = [
            m["rating"][key],
            base["global_mean"][key],
            base["bias"][key],
            None,
            (champ.get("rating") or {}).get(key),
        ]
        rows.append(f"<tr><th>{label}</th>{''.join(cell(v) for v in vals)}</tr>")
    for label, key in (
        (f"nDCG@{k}", "ndcg"),
        (f"precision@{k}", "precision"),
        (f"recall@{k}", "recall"),
        (f"MAP@{k}", "map"),
        ("catalogue coverage", "catalogue_coverage"),
        ("users served", "user_coverage"),
    ):
        vals = [
            m["ranking"][key],
            None,
            None,
            base["most_popular"][key],
            (champ.get("ranking") or {}).get(key),
        ]
        rows.append(f"<tr><th>{label}</th>{''.join(cell(v) for v in vals)}</tr>")
    head = "".join(f"<th>{c}</th>" for c in cols)
    return f"<table><tr><th>metric (held-out)</th>{head}</tr>{''.join(rows)}</table>"


def cv_table(m: dict[str, Any]) -> str:
    """The ranking CV as one compact table: a row per candidate, best first, the published
    one marked; the per-fold nDCG in one cell."""
    rows = sorted(m["ranking"].get("cv_results") or [], key=lambda r: -r["mean_ndcg"])
    if not rows:
        return ""
    k = m["ranking"]["k"]
    published = m["ranking"]["params"]
    body = []
    for r in rows:
        cand = {key: r[key] for key in published if key in r}
        mark = "&#9733; " if cand == published else ""
        params = ", ".join(f"{key}={v:g}" for key, v in r.items() if key in PARAM_KEYS)
        folds = " ".join(f"{v:.4f}" for v in r["fold_ndcg"])
        body.append(
            f"<tr><td>{mark}{html.escape(r['family'])}</td><td>{html.escape(params)}</td>"
            f"<td class=n>{r['mean_ndcg']:.4f}</td><td class=n>{r['std_ndcg']:.4f}</td>"
            f"<td class=n>{r['mean_precision']:.4f}</td><td class=n>{folds}</td></tr>"
        )
    return (
        f"<h3>Cross-validation ({m.get('cv_folds')} folds, {len(rows)} candidates)</h3>"
        f"<table><tr><th>family</th><th>parameters</th><th>mean nDCG@{k}</th><th>sd</th>"
        f"<th>mean P@{k}</th><th>nDCG@{k} per fold</th></tr>{''.join(body)}</table>"
    )


PARAM_KEYS = ("rank", "regParam", "alpha", "maxIter", "lambda")


def render_html(
    run_id: str,
    manifest: dict[str, Any],
    metrics: dict[str, Any],
    rows: list[dict[str, Any]],
    extra_sections: str = "",
) -> str:
    esc = html.escape
    chart = timeline_png(rows)
    stage_rows = "".join(
        f"<tr><td>{esc(r['stage'])}</td><td>{esc(r['phase'])}</td>"
        f"<td class=n>{r['seconds']:.2f}</td>"
        f"<td>{esc(json.dumps(r['details'], default=str))}</td></tr>"
        for r in rows
    )
    metric_rows = model_table(metrics)
    rejected = manifest.get("rejected_by_reason") or {}
    folds = metrics.get("cv_folds")
    rating_by = (
        f"chosen by {folds}-fold CV of its own"
        if metrics["rating"].get("cv_results")
        else "fitted once at fixed parameters (its own CV: rating_cv)"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Run report {esc(run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}th{{background:#f0f0f0}}</style>
</head><body>
<h1>Recommendation run <code>{esc(run_id)}</code></h1>
<h2>Data</h2>
<table><tr><th>dataset</th><td>{esc(str(manifest["source"]["ratings_path"]))}</td></tr>
<tr><th>format</th><td>{esc(manifest["source"]["format"])}</td></tr>
<tr><th>ratings ingested</th><td class=n>{manifest["n_ratings"]:,}</td></tr>
<tr><th>users / items</th><td class=n>{manifest["n_users"]:,} / {manifest["n_items"]:,}</td></tr>
<tr><th>rejected lines</th><td class=n>{manifest.get("n_rejected", 0):,}
 {esc(json.dumps(rejected)) if rejected else ""}</td></tr></table>
<h2>Model</h2>
<p><b>Published top-N model:</b> <code>{esc(json.dumps(metrics["ranking"]["params"]))}</code>:
{esc(metrics["ranking"].get("why", ""))}</p>
<p>Held-out: {metrics.get("n_holdout", 0):,} ratings ({metrics.get("holdout_fraction", 0):.0%} of
each user's, seeded); rating model {rating_by}:
<code>{esc(json.dumps(metrics["rating"]["params"]))}</code></p>
{metric_rows}
{cv_table(metrics)}
<p><b>Gate:</b> {"published" if metrics["gate"]["publish"] else "REJECTED"}:
{esc(metrics["gate"]["reason"])}</p>
<h2>Where the time went</h2>
{f'<img alt="stage timeline" src="data:image/png;base64,{chart}">' if chart else ""}
<table><tr><th>stage</th><th>phase</th><th>seconds</th><th>details</th></tr>
{stage_rows}</table>
{extra_sections}
</body></html>
"""


def run(url: str, run_dir: Path, run_id: str | None = None) -> dict[str, Any]:
    run_id = run_id or run_dir.name
    manifest = read_json(run_dir / config.RUN_MANIFEST)
    metrics = read_json(run_dir / config.RUN_METRICS)
    warehouse.apply_schema(url)
    # The page shows what the warehouse holds, so the timings are loaded before it is
    # built; this step's own phases reach the table on the next load of this run.
    n = load_timings(url, run_id, run_dir)
    rows = fetch_timings(url, run_id)
    config.REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    path = config.REPORTS_DIR / f"{run_dir.name}.html"
    with timer(run_dir, STAGE, "render"):
        # The latest A/B experiment analysed, with its business-impact estimate.
        perf_section = performance.render_section(performance.fetch(url, run_id))
        ab_section = abtest.render_section(abtest.fetch_results(url))
        path.write_text(
            render_html(run_id, manifest, metrics, rows, perf_section + ab_section),
            encoding="utf-8",
        )
    shutil.copyfile(path, config.REPORTS_DIR / "latest.html")
    return {"report": str(path), "timings": n}


def rebuild(url: str, run_id: str | None = None) -> dict[str, Any]:
    """Rebuild a run's report (default: the latest run in ``reco.model_runs``)."""
    from spark_jobs.pipeline import run_dir_for

    if not run_id:
        sql = warehouse.named_statements("model_runs.sql")["latest"]
        with warehouse.connection(url) as conn, conn.cursor() as cur:
            cur.execute(sql, {"limit": 1})
            row = cur.fetchone()
        if row is None:
            raise PipelineError("no run in reco.model_runs yet: run the recommendations DAG first")
        run_id = row[0]
    run_dir = run_dir_for(run_id)
    if not (run_dir / config.RUN_METRICS).exists():
        raise PipelineError(
            f"run {run_id} has no model metrics in {run_dir}: it stopped before training, "
            "so it has no report (pick a run from reco.model_runs)"
        )
    return run(url, run_dir, run_id)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reco report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_dir_arg(p)
    p.add_argument("--run-id", default=None, help="run id (default: run folder name)")
    p.add_argument("--warehouse-url", default=None)
    return p


def step(args: argparse.Namespace) -> dict[str, Any]:
    return run(warehouse.resolve_url(args.warehouse_url), args.run_dir, args.run_id)


def main(argv: list[str] | None = None) -> int:
    return main_for(STAGE, build_parser, step, argv)


if __name__ == "__main__":
    sys.exit(main())
