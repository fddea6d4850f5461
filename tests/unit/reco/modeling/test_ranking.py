"""Ranking-model pieces that need no Spark: candidates, EASE's closed form, block scoring,
neighbours from a co-occurrence matrix, the choice of the winner, the training plan."""

from __future__ import annotations

import numpy as np
import pytest

from reco import config
from reco.data.transforms import select_top_n
from reco.errors import PipelineError
from reco.modeling import models, rankers, ranking, scoring, train_plan
from reco.modeling.ranking import Candidate
from reco.modeling.scoring import ItemSide


def test_candidates_round_trip_and_label() -> None:
    c = Candidate("als", {"rank": 32, "regParam": 0.35, "alpha": 0.5, "maxIter": 8})
    assert c.as_dict() == {
        "family": "als",
        "rank": 32,
        "regParam": 0.35,
        "alpha": 0.5,
        "maxIter": 8,
    }
    assert Candidate.from_dict(c.as_dict()) == c
    assert c.label == "als rank=32 regParam=0.35 alpha=0.5 maxIter=8"
    # A champion recorded before families existed is an ALS one.
    old = Candidate.from_dict({"rank": 100, "regParam": 1.0, "alpha": 5.0, "maxIter": 15})
    assert old.family == "als" and old.params["rank"] == 100
    with pytest.raises(PipelineError, match="unknown model family 'svd'"):
        Candidate.from_dict({"family": "svd"})


def test_grid_candidates_are_the_cartesian_product_in_order() -> None:
    got = ranking.grid_candidates(
        "als", {"rank": [8, 16], "regParam": [0.1], "alpha": [1.0, 2.0], "maxIter": [5]}
    )
    assert [(c.params["rank"], c.params["alpha"]) for c in got] == [
        (8, 1.0),
        (8, 2.0),
        (16, 1.0),
        (16, 2.0),
    ]
    assert [c.params for c in ranking.grid_candidates("ease", {"lambda": [1.0, 2.0]})] == [
        {"lambda": 1.0},
        {"lambda": 2.0},
    ]
    with pytest.raises(PipelineError, match=r"the als grid has no values for \['alpha'\]"):
        ranking.grid_candidates("als", {"rank": [8], "regParam": [0.1], "maxIter": [5]})


def test_ease_weights_match_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((30, 6)) < 0.4).astype(float)
    gram = x.T @ x
    lam = 3.0
    b = rankers.ease_weights(gram, lam)
    p = np.linalg.inv(gram + lam * np.eye(6))
    want = np.eye(6) - p / np.diag(p)
    np.fill_diagonal(want, 0.0)
    assert b.dtype == np.float32
    assert np.allclose(b, want, atol=1e-5)
    assert np.all(np.diag(b) == 0)
    with pytest.raises(PipelineError, match="lambda must be > 0"):
        rankers.ease_weights(gram, 0.0)


def test_ease_side_scores_histories_and_falls_back_to_popularity() -> None:
    ids = np.array([10, 20, 30])
    weights = np.array([[0, 0.5, 0.1], [0.2, 0, 0.9], [0.3, 0.4, 0]], dtype=np.float32)
    side = ItemSide("ease", ids, weights, popularity=np.array([1.0, 0.2, 0.6]))
    got = side.scores([[10], [10, 20], [], [99]])  # 99 is outside EASE's catalogue
    assert np.allclose(got[0], [0, 0.5, 0.1])
    assert np.allclose(got[1], [0.2, 0.5, 1.0])
    assert np.allclose(got[2], [1.0, 0.2, 0.6])  # no history: the most popular
    assert np.allclose(got[3], [1.0, 0.2, 0.6])
    factors = ItemSide("factors", ids, np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    assert np.allclose(factors.scores([[2.0, 1.0]]), [[2.0, 1.0, 3.0]])


def test_select_top_n_masks_rated_items_and_pads() -> None:
    scores = np.array([[0.9, 0.1, 0.5], [0.3, 0.3, 0.3]])
    ids, top = select_top_n(
        scores, [np.array([10]), np.array([], dtype=np.int64)], np.array([10, 20, 30]), 3
    )
    assert ids.tolist() == [[30, 20, -1], [10, 20, 30]]  # ties by id; user 0 has 2 left
    assert top[0, :2].tolist() == [0.5, 0.1] and np.isnan(top[0, 2])
    with pytest.raises(ValueError, match="users x 3 items"):
        select_top_n(scores[:, :2], [np.array([])] * 2, np.array([10, 20, 30]), 1)


def test_cosine_neighbours_of_a_cooccurrence_matrix() -> None:
    # items 1 and 2 always co-occur; item 3 mostly alone
    x = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=float)
    out = scoring.cosine_neighbours(np.array([1, 2, 3]), x.T @ x, 2)
    first = out[out["item_id"] == 1].sort_values("rank")
    assert first["similar_item_id"].tolist() == [2, 3]
    assert first["score"].iloc[0] == pytest.approx(1.0)
    assert first["score"].iloc[1] == pytest.approx(1 / np.sqrt(3 * 2))
    assert (out["item_id"] != out["similar_item_id"]).all()
    assert len(out) == 6


def test_the_best_mean_ndcg_wins_and_als_wins_ties() -> None:
    rows = [
        {
            "family": "als",
            "rank": 8,
            "regParam": 0.1,
            "alpha": 1.0,
            "maxIter": 5,
            "mean_ndcg": 0.30,
        },
        {"family": "ease", "lambda": 100.0, "mean_ndcg": 0.31},
        {
            "family": "als",
            "rank": 16,
            "regParam": 0.1,
            "alpha": 1.0,
            "maxIter": 5,
            "mean_ndcg": 0.31,
        },
    ]
    assert ranking.best_of(rows) == Candidate("ease", {"lambda": 100.0})
    rows[0]["mean_ndcg"] = 0.31
    assert ranking.best_of(rows).family == "als" and ranking.best_of(rows).params["rank"] == 8


def test_als_blocks_follow_the_data(monkeypatch) -> None:
    monkeypatch.delenv("RECO_ALS_BLOCKS", raising=False)
    assert models.als_blocks(100_000, 2) == 1  # small data: stage overhead dominates
    assert models.als_blocks(1_000_000, 2) == 2  # one per core
    assert models.als_blocks(1_000_000, 8) == 4  # ... once each holds enough ratings
    assert models.als_blocks(20_000_000, 2) == 20_000_000 // models.RATINGS_PER_ALS_BLOCK
    assert models.als_blocks(10**12, 2) == models.MAX_ALS_BLOCKS
    monkeypatch.setenv("RECO_ALS_BLOCKS", "7")
    assert models.als_blocks(100_000, 2) == 7


def test_families_and_plan_refuse_what_cannot_run() -> None:
    assert train_plan.parse_families("") == config.DEFAULT_FAMILIES
    assert train_plan.parse_families(" EASE, als,ease") == ("ease", "als")
    with pytest.raises(PipelineError, match=r"unknown model family \['svd'\]"):
        train_plan.parse_families("als,svd")
    two_rating = {"rank": [4, 8], "regParam": [0.1], "maxIter": [5]}
    with pytest.raises(PipelineError, match="pass rating_cv"):
        train_plan.plan(config.TrainParams(grid=two_rating))
    assert (
        len(train_plan.plan(config.TrainParams(grid=two_rating, rating_cv=True)).rating_points) == 2
    )
    # Default: one rating fit at the documented parameters, every family's grid in the CV.
    p = train_plan.plan(config.TrainParams())
    assert p.rating_points == [config.DEFAULT_RATING_PARAMS]
    assert {c.family for c in p.candidates} == set(config.DEFAULT_FAMILIES)
    # folds 0: the first family listed, which must have one point.
    one = {"rank": [8], "regParam": [0.1], "alpha": [1.0], "maxIter": [5]}
    fixed = train_plan.plan(config.TrainParams(folds=0, ranking_grid=one))
    assert fixed.fixed and fixed.candidates[0].family == "als"
    ease_first = train_plan.plan(
        config.TrainParams(folds=0, families=("ease", "als"), ease_grid={"lambda": [50.0]})
    )
    assert ease_first.candidates == [Candidate("ease", {"lambda": 50.0})]
    two = {**one, "rank": [8, 16]}
    with pytest.raises(PipelineError, match="got 1 rating and 2 ranking candidates"):
        train_plan.plan(config.TrainParams(folds=0, ranking_grid=two))
