"""Performance section of the run report: Spark stage metrics, history, trends.

Loads the Spark event-log metrics of a run's applications into ``reco.spark_stages``
(and their per-phase sums into the run's timing records), then builds, from what the
warehouse holds: each stage's seconds run by run, the average and p90 seconds per stage
over the last runs (beside this run's), trends across runs of wall time, data volume, RMSE
and nDCG, and the slowest Spark stages. The HTML is the template ``performance.html.j2``
(included by the run report), rendered by :mod:`reco.pages`.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

from reco.instrumentation import eventlog
from reco.pages import png_base64, render
from reco.publishing import warehouse

HISTORY_RUNS = 20
SLOWEST_STAGES = 10


def spark_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Stage rows of every Spark application that ran a phase of this run."""
    return [
        row
        for app in eventlog.run_apps(run_dir)
        for row in eventlog.for_run(eventlog.read_app(app), run_dir.name)
    ]


def attach_phase_sums(records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Put each phase's summed Spark metrics into its timing record's ``details.spark``."""
    sums = eventlog.by_phase(rows)
    for rec in records:
        agg = sums.get((rec["stage"], rec["phase"]))
        if agg:
            rec.setdefault("details", {})["spark"] = agg


def load_spark_stages(cur: Any, run_id: str, rows: list[dict[str, Any]]) -> int:
    sql = warehouse.named_statements("spark_stages.sql")
    cur.execute(sql["delete_run"], {"run_id": run_id})
    for row in rows:
        cur.execute(sql["insert"], {**row, "run_id": run_id})
    return len(rows)


def fetch(url: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    timings = warehouse.named_statements("stage_timings.sql")
    stages = warehouse.named_statements("spark_stages.sql")
    out = {}
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        for key, sql, params in (
            ("history", timings["history"], {"n": HISTORY_RUNS}),
            ("trends", timings["trends"], {"n": HISTORY_RUNS}),
            ("stage_trends", timings["stage_trends"], {"n": HISTORY_RUNS}),
            ("slowest", stages["slowest_for_run"], {"run_id": run_id, "limit": SLOWEST_STAGES}),
        ):
            cur.execute(sql, params)
            out[key] = warehouse.fetch_dicts(cur)
    return out


def earlier_wall(
    trends: list[dict[str, Any]],
    run_id: str,
    before: datetime | None = None,
    like: dict[str, Any] | None = None,
) -> tuple[float | None, int]:
    """Median wall seconds of the runs in ``trends`` that reached publish (they have a
    status in ``reco.model_runs``) and started before ``before``, and how many there are.
    ``like`` ({"dataset": ..., "cv_folds": ...}) keeps only the runs on that dataset with
    that CV setting: a run on another dataset, or with more folds, is not a comparison."""
    walls = [
        float(t["wall_s"])
        for t in trends
        if t["run_id"] != run_id
        and t.get("status")
        and t.get("wall_s") is not None
        and (before is None or t.get("run_start") is None or t["run_start"] < before)
        and all(t.get(key) == value for key, value in (like or {}).items())
    ]
    return (statistics.median(walls) if walls else None), len(walls)


def trends_png(trends: list[dict[str, Any]]) -> str:
    """Wall time, ratings, RMSE and nDCG per run, oldest first, base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not trends:
        return ""
    x = list(range(1, len(trends) + 1))
    fig, axes = plt.subplots(2, 2, figsize=(9, 5), sharex=True)
    for ax, key, title in (
        (axes[0][0], "wall_s", "wall time (s)"),
        (axes[0][1], "n_ratings", "ratings"),
        (axes[1][0], "rmse", "held-out RMSE"),
        (axes[1][1], "ndcg", "held-out nDCG@N"),
    ):
        ys = [float(t[key]) if t[key] is not None else float("nan") for t in trends]
        ax.plot(x, ys, marker="o", color="#4C72B0")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x)
    for ax in axes[1]:
        ax.set_xlabel("run (oldest first)")
    return png_base64(fig)


def stage_series(
    rows: list[dict[str, Any]],
) -> tuple[list[str], list[str], dict[str, list[float | None]]]:
    """From ``stage_trends`` rows: the runs (oldest first), the stages in pipeline order
    (by their average start within a run) and each stage's seconds per run (None where
    the stage has no ``total`` in that run)."""
    runs = list(dict.fromkeys(r["run_id"] for r in rows))
    at = {run: i for i, run in enumerate(runs)}
    offsets: dict[str, list[float]] = {}
    series: dict[str, list[float | None]] = {}
    for r in rows:
        if r.get("stage") is None or r.get("seconds") is None:
            continue
        series.setdefault(r["stage"], [None] * len(runs))[at[r["run_id"]]] = float(r["seconds"])
        offsets.setdefault(r["stage"], []).append(float(r.get("offset_s") or 0.0))
    stages = sorted(series, key=lambda s: statistics.fmean(offsets[s]))
    return runs, stages, {s: series[s] for s in stages}


def runs_with_stages(rows: list[dict[str, Any]]) -> int:
    """How many runs in ``stage_trends`` rows have at least one stage total."""
    return len({r["run_id"] for r in rows if r.get("stage") is not None})


def stage_trends_png(rows: list[dict[str, Any]], run_id: str | None = None) -> str:
    """Each stage's seconds run by run, one small panel per stage (own scale, from 0) so a
    slow stage does not flatten the fast ones; ``run_id``'s point in red. Base64 PNG, ''
    with fewer than two runs to compare."""
    if runs_with_stages(rows) < 2:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, stages, series = stage_series(rows)
    x = list(range(1, len(runs) + 1))
    ncols = 2 if len(stages) > 2 else 1
    nrows = -(-len(stages) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(9, 1.5 * nrows + 0.9), sharex=True, squeeze=False
    )
    flat = [ax for row in axes for ax in row]
    for ax, stage in zip(flat, stages, strict=False):
        ys = [float("nan") if v is None else v for v in series[stage]]
        ax.plot(x, ys, marker="o", markersize=3, color="#4C72B0")
        if run_id in runs and series[stage][runs.index(run_id)] is not None:
            i = runs.index(run_id)
            ax.scatter([x[i]], [ys[i]], color="#C44E52", zorder=3, s=25)
        ax.set_title(stage, fontsize=9, loc="left")
        top = max((v for v in series[stage] if v is not None), default=0.0)
        ax.set_ylim(0, 1.15 * top or 1.0)
        ax.tick_params(labelsize=7)
        ax.set_xticks(x)
    for ax in flat[len(stages) :]:
        ax.set_visible(False)
    for col in range(ncols):
        # The lowest visible panel of each column carries the run axis label.
        visible = [axes[r][col] for r in range(nrows) if axes[r][col].get_visible()]
        if visible:
            visible[-1].set_xlabel("run (oldest first)", fontsize=8)
            visible[-1].xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(
        "Seconds inside each stage (phase 'total'), run by run; this run in red", fontsize=10
    )
    return png_base64(fig)


def stages_png(history: list[dict[str, Any]], this_run: dict[str, float] | None = None) -> str:
    """Per stage: average seconds over the last runs, p90 and max as ticks, and this
    run's seconds as a dot, base64 PNG ('' without history)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return ""
    this_run = this_run or {}
    ys = list(range(len(history)))
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(history) + 1.2))
    ax.barh(ys, [float(h["avg_s"]) for h in history], height=0.6, color="#A6C8E8", label="avg")
    ax.scatter(
        [float(h["p90_s"]) for h in history], ys, marker="|", s=300, color="#4C72B0", label="p90"
    )
    ax.scatter(
        [float(h["max_s"]) for h in history], ys, marker="|", s=150, color="#999999", label="max"
    )
    mine = [(i, this_run[h["stage"]]) for i, h in enumerate(history) if h["stage"] in this_run]
    if mine:
        ax.scatter(
            [s for _, s in mine],
            [i for i, _ in mine],
            marker="o",
            color="#C44E52",
            zorder=3,
            label="this run",
        )
    ax.set_yticks(ys, [h["stage"] for h in history])
    ax.invert_yaxis()
    ax.set_xlabel("seconds inside the job (phase 'total')")
    ax.set_title("Per stage over the last runs: average (bar), p90 and max (ticks)")
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False, markerscale=0.6
    )
    return png_base64(fig)


def section_context(
    data: dict[str, list[dict[str, Any]]],
    this_run: dict[str, float] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """What ``performance.html.j2`` shows: the fetched rows and their charts."""
    stage_trends = data.get("stage_trends") or []
    return {
        "history": data["history"],
        "trends": data["trends"],
        "slowest": data["slowest"],
        "stage_trends_runs": runs_with_stages(stage_trends),
        "stage_trends_chart": stage_trends_png(stage_trends, run_id),
        "stages_chart": stages_png(data["history"], this_run),
        "trends_chart": trends_png(data["trends"]),
    }


def render_section(
    data: dict[str, list[dict[str, Any]]],
    this_run: dict[str, float] | None = None,
    run_id: str | None = None,
) -> str:
    """The performance section on its own (the run report includes the same template)."""
    return render("performance.html.j2", perf=section_context(data, this_run, run_id))
