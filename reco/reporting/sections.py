"""The run report's sections, as data: pure functions of what the warehouse and the run
folder hold (:mod:`reco.reporting.facts` fetches it), which the page's template shows.

The headline (the verdict and why, the model, nDCG and RMSE beside the baselines and the
champion, reach, wall time), the stage timeline chart and the stage table (each CV
candidate's folds as one row), the held-out metrics and the CV tables. No Spark, no
database: :func:`reco.reporting.report.render_html` puts them on the page.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from reco import pages
from reco.reporting import performance, task_timings


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
    # Like with like: earlier runs on the same dataset with the same number of CV folds.
    like = {
        "dataset": (run or {}).get("dataset") or (manifest.get("source") or {}).get("ratings_path"),
        "cv_folds": metrics.get("cv_folds"),
    }
    median, n_earlier = performance.earlier_wall(trends, run_id, start, like)
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
        "compared_on": like,
        "wall_change": None if not (wall and median) else wall / median - 1,
    }
