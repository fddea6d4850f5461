"""Performance section of the run report: Spark stage metrics, history, trends.

Loads the Spark event-log metrics of a run's applications into ``reco.spark_stages``
(and their per-phase sums into the run's timing records), then builds, from what the
warehouse holds: the average and p90 seconds per stage over the last runs, trends across
runs of wall time, data volume, RMSE and nDCG, and the slowest Spark stages.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from spark_jobs import eventlog, warehouse

HISTORY_RUNS = 20
SLOWEST_STAGES = 10


def png_base64(fig: Any) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


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
            ("slowest", stages["slowest_for_run"], {"run_id": run_id, "limit": SLOWEST_STAGES}),
        ):
            cur.execute(sql, params)
            out[key] = warehouse.fetch_dicts(cur)
    return out


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


def num(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def mb(n: int) -> str:
    return f"{n / 1e6:.2f}"


def render_section(data: dict[str, list[dict[str, Any]]]) -> str:
    esc = html.escape
    history = "".join(
        f"<tr><td>{esc(r['stage'])}</td><td class=n>{r['runs']}</td>"
        f"<td class=n>{r['avg_s']:.1f}</td><td class=n>{r['p90_s']:.1f}</td>"
        f"<td class=n>{r['max_s']:.1f}</td></tr>"
        for r in data["history"]
    )
    trend_rows = "".join(
        f"<tr><td>{esc(t['run_id'])}</td><td class=n>{t['wall_s']:.0f}</td>"
        f"<td class=n>{t['n_ratings'] or 0:,}</td><td>{esc(t['status'] or '')}</td>"
        f"<td class=n>{num(t['rmse'])}</td><td class=n>{num(t['ndcg'])}</td></tr>"
        for t in data["trends"]
    )
    slowest = "".join(
        f"<tr><td>{esc(s['step'])}/{esc(s['phase'])}</td><td>{s['stage_id']}</td>"
        f"<td>{esc(s['name'][:60])}</td><td class=n>{s['tasks']}</td>"
        f"<td class=n>{s['seconds']:.2f}</td><td class=n>{s['executor_run_ms'] / 1000:.1f}</td>"
        f"<td class=n>{s['gc_ms'] / 1000:.1f}</td><td class=n>{mb(s['shuffle_read_bytes'])}</td>"
        f"<td class=n>{mb(s['shuffle_write_bytes'])}</td><td class=n>{mb(s['spill_bytes'])}</td>"
        f"<td class=n>{s['input_rows']:,}</td><td class=n>{s['output_rows']:,}</td></tr>"
        for s in data["slowest"]
    )
    chart = trends_png(data["trends"])
    return f"""<h2>Over the last {len(data["trends"])} runs</h2>
{f'<img alt="trends across runs" src="data:image/png;base64,{chart}">' if chart else ""}
<table><tr><th>stage</th><th>runs</th><th>avg s</th><th>p90 s</th><th>max s</th></tr>
{history}</table>
<table><tr><th>run</th><th>wall s</th><th>ratings</th><th>status</th><th>RMSE</th>
<th>nDCG</th></tr>{trend_rows}</table>
<h2>Slowest Spark stages of this run</h2>
<p>From Spark's event log (<code>spark.eventLog.dir</code>; the Spark History Server opens
the same files). Executor time is summed over tasks; sizes in MB.</p>
<table><tr><th>phase</th><th>stage</th><th>name</th><th>tasks</th><th>seconds</th>
<th>executor s</th><th>GC s</th><th>shuffle read</th><th>shuffle write</th><th>spill</th>
<th>input rows</th><th>output rows</th></tr>{slowest}</table>
"""
