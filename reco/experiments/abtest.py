"""A/B test analysis: does showing the recommendations lift clicks?

Input folder (written by the platform, or by ``reco simulate-ab``):

- ``assignments.csv``: ``user_id,arm``: which arm each user was in;
- ``events.csv``: ``user_id,event,ts`` with ``event`` in ``impression`` / ``click``.

The Spark step (this file as a job) joins events to arms and counts users, impressions
and clicks per arm; rows it cannot use are counted by reason (``unassigned_user``,
``invalid_event``, ``invalid_user_id``, ``conflicting_assignment``) and reported, never
silently dropped. ``analyse`` then compares each arm with the control:

- CTR = clicks / impressions with a 95% Wilson interval;
- absolute and relative lift vs control, with the 95% Newcombe interval of the difference;
- two-sided two-proportion z-test p-value (pooled);
- the minimum detectable effect (absolute and relative) at the observed sample sizes, for
  alpha 0.05 and power 0.8 (Cohen's h, normal approximation).

Impressions are treated as independent trials, the usual CTR analysis; with many
impressions per user the intervals are somewhat optimistic.

    spark-submit spark_jobs/ab_aggregate.py --input DIR --out counts.json
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reco import config
from reco.errors import PipelineError
from reco.runtime import write_json

STAGE = "ab_aggregate"
ALPHA = 0.05
POWER = 0.8
EVENTS = ("impression", "click")


@dataclass(frozen=True)
class ArmCounts:
    arm: str
    users: int
    impressions: int
    clicks: int


# --------------------------------------------------------------------------------------
# Statistics (pure)
# --------------------------------------------------------------------------------------
def mde(p_control: float, n_control: int, n_treatment: int) -> float:
    """Smallest absolute CTR lift detectable with ``POWER`` at ``ALPHA`` (two-sided)."""
    from statsmodels.stats.power import NormalIndPower

    if n_control <= 0 or n_treatment <= 0:
        return math.nan
    h = NormalIndPower().solve_power(
        effect_size=None, nobs1=n_control, alpha=ALPHA, power=POWER, ratio=n_treatment / n_control
    )
    p = min(max(p_control, 0.0), 1.0)
    angle = math.asin(math.sqrt(p)) + h / 2
    return min(math.sin(min(angle, math.pi / 2)) ** 2, 1.0) - p


def analyse(arms: list[ArmCounts], control: str) -> list[dict[str, Any]]:
    """One row per arm: CTR and its interval; for treatment arms lift, p-value and MDE."""
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        proportion_confint,
        proportions_ztest,
    )

    by_arm = {a.arm: a for a in arms}
    if control not in by_arm:
        raise PipelineError(
            f"control arm {control!r} has no data; arms found: {sorted(by_arm)}. Pass the "
            "control arm's name (e.g. control_arm=control)"
        )
    c = by_arm[control]
    if c.impressions == 0:
        raise PipelineError(f"control arm {control!r} has no impressions: nothing to compare")
    p_c = c.clicks / c.impressions
    rows = []
    for a in sorted(arms, key=lambda x: (x.arm != control, x.arm)):
        row: dict[str, Any] = {**asdict(a), "is_control": a.arm == control}
        if a.impressions == 0:
            row.update(ctr=math.nan, ctr_low=math.nan, ctr_high=math.nan)
            rows.append(row)
            continue
        lo, hi = proportion_confint(a.clicks, a.impressions, alpha=ALPHA, method="wilson")
        row.update(ctr=a.clicks / a.impressions, ctr_low=float(lo), ctr_high=float(hi))
        if a.arm != control:
            d_lo, d_hi = confint_proportions_2indep(
                a.clicks,
                a.impressions,
                c.clicks,
                c.impressions,
                method="newcomb",
                compare="diff",
                alpha=ALPHA,
            )
            _, p_value = proportions_ztest(
                [a.clicks, c.clicks], [a.impressions, c.impressions], alternative="two-sided"
            )
            abs_lift = row["ctr"] - p_c
            m = mde(p_c, c.impressions, a.impressions)
            row.update(
                abs_lift=abs_lift,
                abs_lift_low=float(d_lo),
                abs_lift_high=float(d_hi),
                rel_lift=abs_lift / p_c if p_c else math.nan,
                rel_lift_low=float(d_lo) / p_c if p_c else math.nan,
                rel_lift_high=float(d_hi) / p_c if p_c else math.nan,
                p_value=float(p_value),
                significant=bool(p_value < ALPHA),
                mde_abs=m,
                mde_rel=m / p_c if p_c else math.nan,
            )
        rows.append(row)
    return rows


@dataclass(frozen=True)
class BusinessInputs:
    """Assumptions behind the impact estimate; shown beside the result, all configurable.

    ``retention_per_ctr_lift`` is the relative change in retention per relative change in
    CTR: 0.1 means a 10% CTR lift raises retention by 1% of its baseline (0.80 -> 0.808).
    """

    active_customers: int = config.AB_ACTIVE_CUSTOMERS
    annual_revenue_per_customer: float = config.AB_ANNUAL_REVENUE_PER_CUSTOMER
    baseline_retention: float = config.AB_BASELINE_RETENTION
    retention_per_ctr_lift: float = config.AB_RETENTION_PER_CTR_LIFT


def business_impact(
    rel_lift: float, inputs: BusinessInputs, bounds: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Extra retained customers and revenue per year from a relative CTR lift.

    retention' = min(1, baseline * (1 + retention_per_ctr_lift * rel_lift));
    extra customers = active_customers * (retention' - baseline); revenue = that * ARPU.
    """

    def estimate(lift: float) -> tuple[float, float]:
        new = min(1.0, inputs.baseline_retention * (1 + inputs.retention_per_ctr_lift * lift))
        extra = inputs.active_customers * (new - inputs.baseline_retention)
        return extra, extra * inputs.annual_revenue_per_customer

    customers, revenue = estimate(rel_lift)
    out: dict[str, Any] = {
        "inputs": asdict(inputs),
        "relative_ctr_lift": rel_lift,
        "extra_retained_customers": customers,
        "extra_annual_revenue": revenue,
    }
    if bounds is not None:
        lo, hi = (estimate(b) for b in bounds)
        out["extra_retained_customers_95ci"] = [lo[0], hi[0]]
        out["extra_annual_revenue_95ci"] = [lo[1], hi[1]]
    return out


# --------------------------------------------------------------------------------------
# Simulation (seeded, known truth)
# --------------------------------------------------------------------------------------
def simulate(
    out_dir: Path,
    *,
    users: int = 20_000,
    control_ctr: float = 0.05,
    lift: float = 0.10,
    impressions_per_user: float = 10.0,
    arms: tuple[str, ...] = ("control", "treatment"),
    seed: int = config.SEED,
) -> dict[str, Any]:
    """Write ``assignments.csv`` and ``events.csv`` of an experiment whose treatment arms
    have CTR ``control_ctr * (1 + lift)`` (``lift=0`` gives an A/A test)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    user_ids = np.arange(1, users + 1)
    arm_of = rng.choice(np.array(arms), size=users)
    pd.DataFrame({"user_id": user_ids, "arm": arm_of}).to_csv(
        out_dir / "assignments.csv", index=False
    )
    n_imp = rng.poisson(impressions_per_user, size=users)
    ctr = np.where(arm_of == arms[0], control_ctr, control_ctr * (1 + lift))
    n_click = rng.binomial(n_imp, ctr)
    t0 = 1_763_000_000
    imp_users = np.repeat(user_ids, n_imp)
    click_users = np.repeat(user_ids, n_click)
    events = pd.DataFrame(
        {
            "user_id": np.concatenate([imp_users, click_users]),
            "event": ["impression"] * len(imp_users) + ["click"] * len(click_users),
            "ts": t0 + rng.integers(0, 7 * 86_400, len(imp_users) + len(click_users)),
        }
    )
    events.to_csv(out_dir / "events.csv", index=False)
    truth = {
        "control_ctr": control_ctr,
        "treatment_ctr": control_ctr * (1 + lift),
        "relative_lift": lift,
        "absolute_lift": control_ctr * lift,
        "arms": list(arms),
        "users": users,
        "seed": seed,
        "impressions": int(n_imp.sum()),
        "clicks": int(n_click.sum()),
    }
    write_json(out_dir / "truth.json", truth)
    return truth


# --------------------------------------------------------------------------------------
# Spark aggregation
# --------------------------------------------------------------------------------------
def aggregate(spark: Any, input_dir: Path) -> dict[str, Any]:
    """Per-arm users/impressions/clicks, plus counts of the rows that could not be used."""
    from pyspark.sql import functions as F

    assign_path, events_path = input_dir / "assignments.csv", input_dir / "events.csv"
    for p in (assign_path, events_path):
        if not p.exists():
            raise PipelineError(
                f"A/B input {p} is missing: the input folder needs assignments.csv "
                "(user_id,arm) and events.csv (user_id,event,ts)"
            )
    read = spark.read.option("header", True).option("inferSchema", False).csv
    assign = read(str(assign_path)).select(
        F.trim("user_id").try_cast("bigint").alias("user_id"), F.trim("arm").alias("arm")
    )
    events = read(str(events_path)).select(
        F.trim("user_id").try_cast("bigint").alias("user_id"),
        F.lower(F.trim("event")).alias("event"),
    )
    arms_per_user = (
        assign.where("user_id IS NOT NULL AND arm IS NOT NULL")
        .groupBy("user_id")
        .agg(F.countDistinct("arm").alias("n_arms"), F.first("arm").alias("arm"))
    )
    clean = arms_per_user.where("n_arms = 1").select("user_id", "arm")
    conflicting = arms_per_user.where("n_arms > 1").select("user_id")
    rejected = {
        "invalid_assignment": assign.where("user_id IS NULL OR arm IS NULL").count(),
        "conflicting_assignment": conflicting.count(),
    }
    tagged = events.join(clean, "user_id", "left").join(
        conflicting.withColumn("_conflict", F.lit(True)), "user_id", "left"
    )
    reason = (
        F.when(F.col("user_id").isNull(), "invalid_user_id")
        .when(~F.col("event").isin(*EVENTS) | F.col("event").isNull(), "invalid_event")
        .when(F.col("_conflict"), "conflicting_assignment_event")
        .when(F.col("arm").isNull(), "unassigned_user")
    )
    tagged = tagged.withColumn("reason", reason).cache()
    for row in tagged.where("reason IS NOT NULL").groupBy("reason").count().collect():
        rejected[row["reason"]] = row["count"]
    good = tagged.where("reason IS NULL")
    per_arm = {
        r["arm"]: r
        for r in good.groupBy("arm")
        .agg(
            F.sum(F.when(F.col("event") == "impression", 1).otherwise(0)).alias("impressions"),
            F.sum(F.when(F.col("event") == "click", 1).otherwise(0)).alias("clicks"),
        )
        .collect()
    }
    users = {r["arm"]: r["count"] for r in clean.groupBy("arm").count().collect()}
    tagged.unpersist()
    arms = [
        asdict(
            ArmCounts(
                arm=arm,
                users=int(users.get(arm, 0)),
                impressions=int(per_arm[arm]["impressions"]) if arm in per_arm else 0,
                clicks=int(per_arm[arm]["clicks"]) if arm in per_arm else 0,
            )
        )
        for arm in sorted(users)
    ]
    bad_clicks = [a["arm"] for a in arms if a["clicks"] > a["impressions"]]
    if bad_clicks:
        raise PipelineError(
            f"arms {bad_clicks} have more clicks than impressions: the events file is "
            "missing impressions; check the export"
        )
    return {
        "input": str(input_dir),
        "arms": arms,
        "rejected": {k: int(v) for k, v in rejected.items() if v},
    }


# --------------------------------------------------------------------------------------
# Warehouse and HTML
# --------------------------------------------------------------------------------------
RESULT_COLUMNS = (
    "arm", "is_control", "users", "impressions", "clicks", "ctr", "ctr_low", "ctr_high",
    "abs_lift", "abs_lift_low", "abs_lift_high", "rel_lift", "rel_lift_low", "rel_lift_high",
    "p_value", "significant", "mde_abs", "mde_rel",
)  # fmt: skip


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_results(
    url: str,
    experiment: str,
    rows: list[dict[str, Any]],
    impact: dict[str, Any] | None,
    rejected: dict[str, int],
    run_id: str,
) -> int:
    """Replace the experiment's rows in ``reco.ab_test_results`` in one transaction."""
    from reco.publishing import warehouse

    sql = warehouse.named_statements("ab_test_results.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["lock"], {"experiment": experiment})
        cur.execute(sql["delete_experiment"], {"experiment": experiment})
        for row in rows:
            params = {c: _clean(row.get(c)) for c in RESULT_COLUMNS}
            params.update(
                experiment=experiment,
                run_id=run_id,
                impact=json.dumps(impact if not row["is_control"] else None),
                rejected=json.dumps(rejected),
            )
            cur.execute(sql["insert"], params)
    return len(rows)


def fetch_results(url: str, experiment: str | None = None) -> list[dict[str, Any]]:
    """Rows of one experiment (default: the most recently analysed one)."""
    from reco.publishing import warehouse

    sql = warehouse.named_statements("ab_test_results.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["for_experiment"], {"experiment": experiment})
        return warehouse.fetch_dicts(cur)


def _pct(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{100 * v:.{digits}f}%"


def lift_chart_png(rows: list[dict[str, Any]]) -> str:
    """CTR per arm with its 95% interval, base64 PNG."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(rows)))
    for y, r in enumerate(rows):
        ax.errorbar(
            [100 * r["ctr"]],
            [y],
            xerr=[[100 * (r["ctr"] - r["ctr_low"])], [100 * (r["ctr_high"] - r["ctr"])]],
            fmt="o",
            color="tab:gray" if r["is_control"] else "tab:blue",
            capsize=4,
        )
    ax.set_yticks(range(len(rows)), [r["arm"] for r in rows])
    ax.set_xlabel("CTR, % (95% interval)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def render_section(rows: list[dict[str, Any]]) -> str:
    """The A/B results as an HTML section ('' when there are none)."""
    import html

    if not rows:
        return ""
    exp = html.escape(rows[0]["experiment"])
    body = []
    for r in rows:
        p_value = "" if r["p_value"] is None else f"{r['p_value']:.4f}"
        lift = (
            ""
            if r["is_control"]
            else (
                f"{_pct(r['rel_lift'], 1)} [{_pct(r['rel_lift_low'], 1)}, "
                f"{_pct(r['rel_lift_high'], 1)}]"
            )
        )
        body.append(
            "<tr>"
            f"<td>{html.escape(r['arm'])}{' (control)' if r['is_control'] else ''}</td>"
            f"<td>{r['users']:,}</td><td>{r['impressions']:,}</td><td>{r['clicks']:,}</td>"
            f"<td>{_pct(r['ctr'])} [{_pct(r['ctr_low'])}, {_pct(r['ctr_high'])}]</td>"
            f"<td>{'' if r['is_control'] else _pct(r['abs_lift'], 3)}</td><td>{lift}</td>"
            f"<td>{p_value}</td>"
            f"<td>{'' if r['mde_rel'] is None else _pct(r['mde_rel'], 1)}</td></tr>"
        )
    impact_html = ""
    for r in rows:
        imp = r.get("impact")
        if not imp:
            continue
        inputs = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:,}</td></tr>" for k, v in imp["inputs"].items()
        )
        ci = imp.get("extra_annual_revenue_95ci")
        ci_txt = f" (95% interval {ci[0]:,.0f} to {ci[1]:,.0f})" if ci else ""
        impact_html += (
            f"<h3>Business impact of {html.escape(r['arm'])}</h3>"
            f"<p>Estimated <b>{imp['extra_retained_customers']:,.0f}</b> extra retained customers "
            f"and <b>{imp['extra_annual_revenue']:,.0f}</b> extra revenue a year{ci_txt}, from a "
            f"relative CTR lift of {_pct(imp['relative_ctr_lift'], 1)} and these inputs:</p>"
            f"<table><tr><th>input</th><th>value</th></tr>{inputs}</table>"
        )
    rejected = rows[0].get("rejected") or {}
    rejected_txt = (
        f"<p>Rows not used, by reason: {html.escape(json.dumps(rejected))}</p>" if rejected else ""
    )
    return (
        f'<section id="ab-test"><h2>A/B test: {exp}</h2>'
        f'<img alt="A/B CTR intervals" src="data:image/png;base64,{lift_chart_png(rows)}">'
        "<table><tr><th>arm</th><th>users</th><th>impressions</th><th>clicks</th>"
        "<th>CTR [95% CI]</th><th>abs. lift</th><th>rel. lift [95% CI]</th><th>p-value</th>"
        "<th>MDE (rel.)</th></tr>" + "".join(body) + "</table>"
        f"{rejected_txt}{impact_html}</section>"
    )


def write_page(rows: list[dict[str, Any]], experiment: str) -> Path:
    """A standalone HTML page of the experiment in the reports folder."""
    config.REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    path = config.REPORTS_DIR / f"ab_{experiment}.html"
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>A/B test {experiment}</title><style>body{{font-family:sans-serif}}"
        "td,th{padding:2px 8px;text-align:right}</style></head><body>"
        + render_section(rows)
        + "</body></html>",
        encoding="utf-8",
    )
    return path


def run_analysis(
    url: str,
    counts_path: Path,
    experiment: str,
    control: str,
    inputs: BusinessInputs,
    run_id: str,
) -> dict[str, Any]:
    """Statistics on the aggregated counts -> ``reco.ab_test_results`` + HTML page."""
    counts = json.loads(counts_path.read_text())
    arms = [ArmCounts(**a) for a in counts["arms"]]
    rows = analyse(arms, control)
    treatments = [r for r in rows if not r["is_control"]]
    impact = None
    if len(treatments) == 1:
        t = treatments[0]
        impact = business_impact(t["rel_lift"], inputs, (t["rel_lift_low"], t["rel_lift_high"]))
    write_results(url, experiment, rows, impact, counts["rejected"], run_id)
    page = write_page(fetch_results(url, experiment), experiment)
    return {
        "experiment": experiment,
        "arms": len(rows),
        "rejected": counts["rejected"],
        "report": str(page),
        **{
            f"{t['arm']}_rel_lift": round(t["rel_lift"], 4)
            for t in treatments
            if t.get("rel_lift") is not None
        },
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reco ab-aggregate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", type=Path, required=True, help="folder with assignments/events")
    p.add_argument("--out", type=Path, required=True, help="JSON file for the per-arm counts")
    return p


def step(args: argparse.Namespace) -> dict[str, Any]:
    from reco.spark import get_spark

    counts = aggregate(get_spark("reco-ab-aggregate"), args.input)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(counts, indent=2))
    return {"arms": len(counts["arms"]), "rejected": counts["rejected"]}
