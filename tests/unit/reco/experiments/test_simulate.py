"""The simulated experiment (reco.experiments.simulate): the files the analysis reads, and
a truth that matches them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reco.experiments.simulate import simulate


def test_the_files_hold_what_the_truth_says(tmp_path: Path) -> None:
    truth = simulate(tmp_path, users=500, control_ctr=0.1, lift=0.5, seed=4)
    assign = pd.read_csv(tmp_path / "assignments.csv")
    events = pd.read_csv(tmp_path / "events.csv")
    assert list(assign.columns) == ["user_id", "arm"] and len(assign) == 500
    assert set(assign["arm"]) == {"control", "treatment"}
    assert list(events.columns) == ["user_id", "event", "ts"]
    counts = events["event"].value_counts()
    assert counts["impression"] == truth["impressions"] and counts["click"] == truth["clicks"]
    assert truth["treatment_ctr"] == 0.1 * 1.5 and truth["absolute_lift"] == 0.1 * 0.5
    assert json.loads((tmp_path / "truth.json").read_text()) == truth


def test_the_same_seed_gives_the_same_experiment(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a", users=200, seed=9)
    b = simulate(tmp_path / "b", users=200, seed=9)
    assert a == b
    assert (tmp_path / "a" / "events.csv").read_bytes() == (
        tmp_path / "b" / "events.csv"
    ).read_bytes()
