"""A/B statistics on per-arm counts (pure: no Spark, no database).

For each arm beside the control:

- CTR = clicks / impressions with a 95% Wilson interval;
- absolute and relative lift vs control, with the 95% Newcombe interval of the difference;
- two-sided two-proportion z-test p-value (pooled);
- the minimum detectable effect (absolute and relative) at the observed sample sizes, for
  alpha 0.05 and power 0.8 (Cohen's h, normal approximation).

Impressions are treated as independent trials, the usual CTR analysis; with many
impressions per user the intervals are somewhat optimistic. :func:`business_impact`
turns a relative CTR lift into retained customers and revenue under stated assumptions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from reco import config
from reco.errors import PipelineError

ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True)
class ArmCounts:
    """What the Spark aggregation counts per arm (``reco.experiments.aggregate``)."""

    arm: str
    users: int
    impressions: int
    clicks: int


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
