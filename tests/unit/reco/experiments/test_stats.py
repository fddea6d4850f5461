"""A/B statistics (reco.experiments.stats) on hand-computed examples, and their calibration
on seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reco.errors import PipelineError
from reco.experiments.stats import ArmCounts, BusinessInputs, analyse, business_impact, mde


def test_two_proportion_z_test_by_hand() -> None:
    control, treatment = analyse(
        [ArmCounts("treatment", 500, 1000, 120), ArmCounts("control", 500, 1000, 100)], "control"
    )
    assert control["is_control"] and control["arm"] == "control"
    # pooled p = 220/2000 = 0.11; se = sqrt(0.11 * 0.89 * (1/1000 + 1/1000)) = 0.0139929
    z = (0.12 - 0.10) / math.sqrt(0.11 * 0.89 * 2 / 1000)
    assert z == pytest.approx(1.42930, abs=1e-5)
    p = math.erfc(z / math.sqrt(2))  # two-sided normal tail
    assert treatment["p_value"] == pytest.approx(p, rel=1e-9)
    assert treatment["p_value"] == pytest.approx(0.152918, abs=1e-6)
    assert not treatment["significant"]
    assert treatment["abs_lift"] == pytest.approx(0.02)
    assert treatment["rel_lift"] == pytest.approx(0.20)
    assert treatment["abs_lift_low"] < 0 < treatment["abs_lift"] < treatment["abs_lift_high"]


def test_wilson_interval_by_hand() -> None:
    [row] = analyse([ArmCounts("control", 10, 1000, 100)], "control")
    n, phat, zc = 1000, 0.1, 1.959963984540054
    centre = (phat + zc**2 / (2 * n)) / (1 + zc**2 / n)
    half = zc / (1 + zc**2 / n) * math.sqrt(phat * (1 - phat) / n + zc**2 / (4 * n**2))
    assert row["ctr_low"] == pytest.approx(centre - half, rel=1e-9)
    assert row["ctr_high"] == pytest.approx(centre + half, rel=1e-9)


def test_minimum_detectable_effect_by_hand() -> None:
    # Cohen's h at alpha .05 (two-sided), power .8, n = 1000 per arm: (1.95996 + 0.84162) *
    # sqrt(2 / 1000); the CTR that is h above 10% in arcsine space.
    h = (1.959964 + 0.841621) * math.sqrt(2 / 1000)
    p2 = math.sin(math.asin(math.sqrt(0.1)) + h / 2) ** 2
    assert mde(0.1, 1000, 1000) == pytest.approx(p2 - 0.1, rel=1e-4)
    assert mde(0.1, 4000, 4000) < mde(0.1, 1000, 1000) / 1.9  # ~1/sqrt(n)


def test_missing_control_is_named() -> None:
    with pytest.raises(PipelineError, match=r"control arm 'ctrl' has no data; arms found: \["):
        analyse([ArmCounts("a", 1, 10, 1), ArmCounts("b", 1, 10, 2)], "ctrl")


def test_a_a_tests_are_significant_at_the_nominal_rate() -> None:
    """2,000 seeded A/A experiments: about 5% come out significant at alpha 0.05."""
    rng = np.random.default_rng(7)
    n, ctr, trials = 20_000, 0.05, 2_000
    hits = 0
    for _ in range(trials):
        a, b = rng.binomial(n, ctr, size=2)
        [_, t] = analyse(
            [ArmCounts("control", n, n, int(a)), ArmCounts("b", n, n, int(b))], "control"
        )
        hits += t["significant"]
    rate = hits / trials
    sd = math.sqrt(0.05 * 0.95 / trials)  # 0.0049
    assert abs(rate - 0.05) < 3 * sd, rate


def test_lift_interval_covers_the_true_lift_at_about_95_percent() -> None:
    rng = np.random.default_rng(11)
    n, ctr, lift, trials = 50_000, 0.05, 0.10, 400
    covered = 0
    for _ in range(trials):
        a = int(rng.binomial(n, ctr))
        b = int(rng.binomial(n, ctr * (1 + lift)))
        [_, t] = analyse([ArmCounts("control", n, n, a), ArmCounts("t", n, n, b)], "control")
        covered += t["abs_lift_low"] <= ctr * lift <= t["abs_lift_high"]
    assert 0.92 <= covered / trials <= 0.98, covered / trials


def test_business_impact_by_hand() -> None:
    inputs = BusinessInputs(
        active_customers=100_000,
        annual_revenue_per_customer=50.0,
        baseline_retention=0.8,
        retention_per_ctr_lift=0.1,
    )
    out = business_impact(0.2, inputs, (-0.05, 0.4))
    # retention 0.8 -> 0.8 * (1 + 0.1 * 0.2) = 0.816: 1,600 customers, 80,000 a year
    assert out["extra_retained_customers"] == pytest.approx(1_600)
    assert out["extra_annual_revenue"] == pytest.approx(80_000)
    assert out["extra_retained_customers_95ci"] == pytest.approx([-400, 3_200])
    assert out["inputs"]["active_customers"] == 100_000
    capped = business_impact(10.0, inputs)  # retention cannot pass 100%
    assert capped["extra_retained_customers"] == pytest.approx(20_000)
