"""Metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reco.modeling.metrics import mae, mpe, ranking_metrics, rating_metrics, rmse


def test_rating_errors_by_hand() -> None:
    actual = np.array([4.0, 2.0, 5.0, 1.0])
    predicted = np.array([3.0, 2.0, 4.0, 2.0])  # errors -1, 0, -1, +1
    assert rmse(actual, predicted) == pytest.approx(math.sqrt(3 / 4))
    assert mae(actual, predicted) == pytest.approx(3 / 4)
    # (4-3)/4 + 0 + (5-4)/5 + (1-2)/1 = 0.25 + 0.2 - 1 = -0.55 -> mean -0.1375 -> -13.75 %
    assert mpe(actual, predicted) == pytest.approx(-13.75)
    assert rating_metrics(actual, actual) == {"rmse": 0.0, "mae": 0.0, "mpe": 0.0}


def test_rating_errors_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        rmse(np.array([1.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="no ratings"):
        mae(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="undefined"):
        mpe(np.array([0.0]), np.array([1.0]))


def frame(rows: list[tuple], cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=cols)


def test_ranking_metrics_by_hand() -> None:
    # user 1: held-out {a, b, c}; recommended a (1), x (2), b (3) -> hits at ranks 1 and 3
    # user 2: held-out {d};       recommended y (1), d (2), z (3) -> hit at rank 2
    truth = frame([(1, "a"), (1, "b"), (1, "c"), (2, "d")], ["user_id", "item_id"])
    recs = frame(
        [(1, "a", 1), (1, "x", 2), (1, "b", 3), (2, "y", 1), (2, "d", 2), (2, "z", 3)],
        ["user_id", "item_id", "rank"],
    )
    m = ranking_metrics(truth, recs, k=3, n_catalogue=10)
    assert m["precision"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["recall"] == pytest.approx((2 / 3 + 1 / 1) / 2)
    dcg1 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg1 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    ndcg2 = (1 / math.log2(3)) / 1.0
    assert m["ndcg"] == pytest.approx((dcg1 / idcg1 + ndcg2) / 2)
    ap1 = (1 / 1 + 2 / 3) / 3
    ap2 = (1 / 2) / 1
    assert m["map"] == pytest.approx((ap1 + ap2) / 2)
    assert m["catalogue_coverage"] == pytest.approx(6 / 10)
    assert m["user_coverage"] == 1.0 and m["users_evaluated"] == 2


def test_only_top_k_counts_and_perfect_list_scores_one() -> None:
    truth = frame([(1, 10), (1, 11)], ["user_id", "item_id"])
    recs = frame([(1, 10, 1), (1, 11, 2), (1, 12, 3)], ["user_id", "item_id", "rank"])
    m = ranking_metrics(truth, recs, k=2)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["ndcg"] == 1.0 and m["map"] == 1.0
    m1 = ranking_metrics(truth, recs, k=1)
    assert m1["precision"] == 1.0 and m1["recall"] == 0.5


def test_users_without_recommendations_lower_user_coverage() -> None:
    truth = frame([(1, 10), (2, 20)], ["user_id", "item_id"])
    recs = frame([(1, 10, 1)], ["user_id", "item_id", "rank"])
    m = ranking_metrics(truth, recs, k=1)
    assert m["users_evaluated"] == 1 and m["user_coverage"] == 0.5


def test_ranking_metrics_need_the_columns() -> None:
    with pytest.raises(ValueError, match="needs column"):
        ranking_metrics(frame([(1, 2)], ["u", "i"]), frame([(1, 2, 1)], ["u", "i", "r"]))
