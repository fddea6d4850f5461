"""Report: per-stage timings into ``reco.stage_timings`` and an HTML run report.

Loads the run's ``timings.jsonl`` into the warehouse, then builds the report from what
the warehouse holds (so the page shows what SQL sees), in the order a reviewer reads it:
a headline (published or rejected and why, the model chosen, nDCG and RMSE beside the
baselines and the champion, users served, wall time against earlier runs), the stage
timeline and table, trends over the last runs, the CV as one table, then the details and
links to the run's Data Docs and Spark History Server. The page is the Jinja2 template
``templates/run_report.html.j2`` (autoescaped), filled by pure functions of the fetched
data. Writes ``var/reports/<run>.html`` and refreshes ``var/reports/latest.html``.
What the page shows is gathered (run folder, warehouse) by :mod:`reco.reporting.facts`
and made into its sections by :mod:`reco.reporting.sections`.

This module is the one owner of the page: :func:`run` loads and renders, everything else
calls it. Per run it renders once in the run's own ``report`` task, and once more after
the run has ended, when Airflow's task times (which exist only then) are in the warehouse:
:func:`rebuild`, called by the ``pipeline_report`` DAG in the scheduler, or for an
in-process ``reco run`` by :mod:`reco.reporting.run_end` (see there).

    reco report --run-dir var/lake/runs/R
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config, pages
from reco.errors import PipelineError
from reco.experiments import page as ab_page
from reco.experiments import store as ab_store
from reco.instrumentation.timing import timer
from reco.publishing import warehouse
from reco.reporting import index, performance
from reco.reporting.facts import (
    count_users_served,
    fetch_model_run,
    fetch_timings,
    links_for,
    load_timings,
)
from reco.reporting.sections import (
    cv_rows,
    fmt_value,
    headline,
    model_rows,
    param_text,
    rating_cv_rows,
    stage_table,
    stage_totals,
    timeline_png,
)
from reco.runs import RunFolder, run_dir_for
from reco.runtime import read_json

if TYPE_CHECKING:
    from reco.steps import StepArgs

STAGE = "report"


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
        index.write(config.REPORTS_DIR, run_dir, index.line(run_id, run_dir, rows, model_run))
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
