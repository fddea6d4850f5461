"""A/B analysis end to end on a seeded simulated experiment: Spark aggregation, statistics,
``reco.ab_test_results`` in the real PostgreSQL, and the HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reco import config
from reco.experiments import aggregate, analysis, simulate, stats, store
from reco.publishing import warehouse


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("ab")
    truth = simulate.simulate(d, users=30_000, control_ctr=0.05, lift=0.15, seed=3)
    # Rows the analysis must not use, each counted under its reason.
    with open(d / "assignments.csv", "a") as f:
        f.write("30001,control\n30001,treatment\n,control\n")
    with open(d / "events.csv", "a") as f:
        f.write("99999999,impression,1763000000\n1,view,1763000000\nabc,click,1763000000\n")
        f.write("30001,impression,1763000000\n")
    return d, truth


def test_spark_counts_match_the_simulation(spark, experiment) -> None:
    d, truth = experiment
    counts = aggregate.aggregate(spark, d)
    arms = {a["arm"]: a for a in counts["arms"]}
    assert set(arms) == {"control", "treatment"}
    assert sum(a["impressions"] for a in arms.values()) == truth["impressions"]
    assert sum(a["clicks"] for a in arms.values()) == truth["clicks"]
    assert sum(a["users"] for a in arms.values()) == truth["users"]
    assert counts["rejected"] == {
        "invalid_assignment": 1,
        "conflicting_assignment": 1,
        "conflicting_assignment_event": 1,
        "unassigned_user": 1,
        "invalid_event": 1,
        "invalid_user_id": 1,
    }


def test_analysis_recovers_the_true_lift_and_lands_in_the_warehouse(
    spark, experiment, warehouse_url, tmp_path
) -> None:
    d, truth = experiment
    counts_path = tmp_path / "counts.json"
    counts_path.write_text(json.dumps(aggregate.aggregate(spark, d)))
    warehouse.apply_schema(warehouse_url)
    out = analysis.run_analysis(
        warehouse_url, counts_path, "sim-15", "control", stats.BusinessInputs(), "test-run"
    )
    rows = {r["arm"]: r for r in store.fetch_results(warehouse_url, "sim-15")}
    t = rows["treatment"]
    assert t["rel_lift_low"] <= truth["relative_lift"] <= t["rel_lift_high"]
    assert t["abs_lift_low"] <= truth["absolute_lift"] <= t["abs_lift_high"]
    assert t["significant"] and t["p_value"] < 0.05
    assert 0 < t["mde_rel"] < truth["relative_lift"]  # the experiment was big enough
    assert rows["control"]["is_control"] and rows["control"]["p_value"] is None
    assert rows["control"]["ctr_low"] <= truth["control_ctr"] <= rows["control"]["ctr_high"]
    impact = t["impact"]
    assert impact["inputs"]["active_customers"] == config.AB_ACTIVE_CUSTOMERS
    assert impact["extra_annual_revenue"] > 0
    page = Path(out["report"]).read_text()
    assert "data:image/png;base64" in page and "Business impact of treatment" in page
    assert "active_customers" in page and "invalid_event" in page
    # Re-analysing replaces the experiment's rows, never duplicates them.
    analysis.run_analysis(
        warehouse_url, counts_path, "sim-15", "control", stats.BusinessInputs(), "test-run-2"
    )
    again = store.fetch_results(warehouse_url, "sim-15")
    assert len(again) == 2 and {r["run_id"] for r in again} == {"test-run-2"}


def test_a_a_experiment_is_not_significant(spark, warehouse_url, tmp_path) -> None:
    d = tmp_path / "aa"
    simulate.simulate(d, users=20_000, control_ctr=0.05, lift=0.0, seed=8)
    counts_path = tmp_path / "counts.json"
    counts_path.write_text(json.dumps(aggregate.aggregate(spark, d)))
    analysis.run_analysis(
        warehouse_url, counts_path, "sim-aa", "control", stats.BusinessInputs(), "aa"
    )
    t = next(r for r in store.fetch_results(warehouse_url, "sim-aa") if not r["is_control"])
    assert t["rel_lift_low"] <= 0 <= t["rel_lift_high"]
    assert not t["significant"]
