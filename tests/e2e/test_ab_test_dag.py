"""One run of the `ab_test_analysis` DAG (``dag.test()``) on a simulated experiment."""

from __future__ import annotations

import json

from reco import config
from reco.cli import environment
from reco.experiments import store
from reco.experiments.simulate import simulate
from reco.publishing import warehouse
from reco.runs import RunFolder


def test_ab_dag_publishes_results_and_report(tmp_path, warehouse_url) -> None:
    d = tmp_path / "exp"
    truth = simulate(d, users=20_000, control_ctr=0.04, lift=0.2, seed=21)
    environment.init_airflow()
    run_id, state = environment.run_dag(
        {"input": str(d), "experiment": "e2e-exp", "control_arm": "control"},
        dag_id="ab_test_analysis",
    )
    assert state == "success"
    rows = {r["arm"]: r for r in store.fetch_results(warehouse.resolve_url(), "e2e-exp")}
    assert rows["treatment"]["rel_lift_low"] <= 0.2 <= rows["treatment"]["rel_lift_high"]
    assert rows["treatment"]["impressions"] + rows["control"]["impressions"] == truth["impressions"]
    assert {r["run_id"] for r in rows.values()} == {run_id}
    assert (config.REPORTS_DIR / "ab_e2e-exp.html").exists()
    counts = json.loads(RunFolder.of_experiment(run_id).ab_counts.read_text())
    assert counts["rejected"] == {}


def test_ab_dag_fails_clearly_on_a_missing_input(tmp_path) -> None:
    run_id, state = environment.run_dag(
        {"input": str(tmp_path / "nope"), "experiment": "e2e-missing"}, dag_id="ab_test_analysis"
    )
    assert state == "failed"
    error = json.loads(RunFolder.of(run_id).error.read_text())
    assert "lacks assignments.csv, events.csv" in error["message"]
