from __future__ import annotations

import pytest

from reco.modeling.gate import decide


def run_metrics(rmse: float = 0.90, ndcg: float = 0.40, champion: dict | None = None) -> dict:
    return {
        "rating": {"rmse": rmse},
        "ranking": {"ndcg": ndcg, "k": 10},
        "baselines": {
            "global_mean": {"rmse": 1.12},
            "bias": {"rmse": 0.95},
            "most_popular": {"ndcg": 0.25},
        },
        "champion": champion,
    }


def champ(rmse: float, ndcg: float) -> dict:
    return {"model_version": "als-old", "rating": {"rmse": rmse}, "ranking": {"ndcg": ndcg}}


def test_beats_baselines_without_champion_publishes() -> None:
    d = decide(run_metrics())
    assert d["publish"] and d["reason"] == "beats the baselines"


def test_worse_than_bias_baseline_is_rejected_with_reason() -> None:
    d = decide(run_metrics(rmse=0.96))
    assert not d["publish"]
    assert d["reason"] == "rating RMSE 0.9600 does not beat the bias baseline 0.9500"


def test_ranking_no_better_than_most_popular_is_rejected() -> None:
    d = decide(run_metrics(ndcg=0.25))
    assert not d["publish"] and "does not beat most-popular 0.2500" in d["reason"]


def test_champion_tolerance_is_relative() -> None:
    # 1% worse RMSE than the champion: inside the 2% tolerance
    assert decide(run_metrics(rmse=0.909, champion=champ(0.90, 0.40)))["publish"]
    # 3% worse: outside
    d = decide(run_metrics(rmse=0.927, champion=champ(0.90, 0.40)))
    assert not d["publish"] and "worse than the champion's 0.9000" in d["reason"]
    # nDCG 5% below the champion's with a 10% tolerance: published
    assert decide(run_metrics(ndcg=0.38, champion=champ(0.90, 0.40)), tolerance=0.10)["publish"]
    assert not decide(run_metrics(ndcg=0.38, champion=champ(0.90, 0.40)), tolerance=0.0)["publish"]


def test_every_failed_check_is_listed() -> None:
    d = decide(run_metrics(rmse=1.2, ndcg=0.1))
    assert d["reason"].count(";") == 2  # global mean, bias, most-popular


def test_negative_tolerance_refused() -> None:
    with pytest.raises(ValueError):
        decide(run_metrics(), tolerance=-0.1)
