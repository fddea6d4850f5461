"""The reason for a recommendation: the user's liked item closest to it, by the model's
item-item cosine (ALS factors or EASE co-occurrence)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reco.modeling.scoring import ItemCosine, because_batches

# Three directions in 2-D: items 10 and 11 point the same way, 30 is orthogonal to them,
# 20 sits between. Ids are given unsorted on purpose.
IDS = np.array([30, 10, 20, 11])
VECS = np.array([[0.0, 5.0], [1.0, 0.0], [1.0, 1.0], [3.0, 0.1]])


def test_vectors_pick_the_liked_item_with_the_highest_cosine() -> None:
    cos = ItemCosine.of(IDS, VECS, "vectors")
    best, score = cos.closest(liked=[30, 10], recommended=[11, 20])
    assert best.tolist() == [10, 10]  # 20 is 45 deg from both: the lower id wins the tie
    expected_11 = 3.0 / np.hypot(3.0, 0.1)  # cos(10, 11)
    assert score[0] == pytest.approx(expected_11)
    assert score[1] == pytest.approx(np.sqrt(0.5))


def test_unknown_items_and_users_without_liked_items_get_no_reason() -> None:
    cos = ItemCosine.of(IDS, VECS, "vectors")
    best, score = cos.closest(liked=[999], recommended=[11, 20])
    assert best.tolist() == [-1, -1] and np.isnan(score).all()
    best, score = cos.closest(liked=[10], recommended=[777, 11])
    assert best.tolist() == [-1, 10] and np.isnan(score[0])
    best, _ = cos.closest(liked=None, recommended=[11])
    assert best.tolist() == [-1]


def test_gram_cosines_are_the_normalised_co_occurrence() -> None:
    # Users x items (ids 1, 2, 3): 1 and 2 are watched together, 3 mostly alone.
    x = np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=float)
    gram = x.T @ x
    cos = ItemCosine.of(np.array([1, 2, 3]), gram, "gram")
    best, score = cos.closest(liked=[1, 3], recommended=[2])
    assert best.tolist() == [1]
    assert score[0] == pytest.approx(gram[0, 1] / np.sqrt(gram[0, 0] * gram[1, 1]))


def test_an_item_is_never_its_own_reason() -> None:
    cos = ItemCosine.of(IDS, VECS, "vectors")
    best, _ = cos.closest(liked=[11, 30], recommended=[11])
    assert best.tolist() == [30]


def test_batches_give_one_row_per_recommended_item() -> None:
    cos = ItemCosine.of(IDS, VECS, "vectors")
    pdf = pd.DataFrame({"user_id": [7, 8], "items": [[11, 20], [30]], "liked": [[10], None]})
    [out] = list(because_batches(iter([pdf]), cos))
    assert out["user_id"].tolist() == [7, 7, 8]
    assert out["item_id"].tolist() == [11, 20, 30]
    assert out["because_item_id"].tolist()[:2] == [10, 10]
    assert out["because_item_id"].isna().tolist() == [False, False, True]
    assert str(out["because_item_id"].dtype) == "Int64"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown similarity kind"):
        ItemCosine.of(IDS, VECS, "pearson")
