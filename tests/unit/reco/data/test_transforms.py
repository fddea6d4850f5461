from __future__ import annotations

import numpy as np
import pytest

from reco.data.transforms import top_n_block


def test_ranks_by_dot_product_and_excludes_rated_items() -> None:
    users = np.array([[1.0, 0.0], [0.0, 1.0]])
    item_ids = np.array([10, 20, 30, 40])
    items = np.array([[3.0, 0.0], [2.0, 1.0], [1.0, 3.0], [0.0, 2.0]])
    # user 0 scores: 3, 2, 1, 0 ; has rated item 10 -> top2 = 20 (2.0), 30 (1.0)
    # user 1 scores: 0, 1, 3, 2 ; rated nothing   -> top2 = 30 (3.0), 40 (2.0)
    ids, scores = top_n_block(
        users, [np.array([10]), np.array([], dtype=np.int64)], item_ids, items, 2
    )
    assert ids.tolist() == [[20, 30], [30, 40]]
    assert scores.tolist() == [[2.0, 1.0], [3.0, 2.0]]


def test_ties_break_by_item_id_for_deterministic_output() -> None:
    users = np.array([[1.0]])
    ids, scores = top_n_block(
        users,
        [np.array([], dtype=np.int64)],
        np.array([7, 3, 5]),
        np.array([[1.0], [1.0], [1.0]]),
        3,
    )
    assert ids.tolist() == [[3, 5, 7]]
    assert scores.tolist() == [[1.0, 1.0, 1.0]]


def test_user_who_rated_almost_everything_gets_padding_not_rated_items() -> None:
    users = np.array([[1.0]])
    ids, scores = top_n_block(
        users, [np.array([1, 2])], np.array([1, 2, 3]), np.array([[5.0], [4.0], [1.0]]), 3
    )
    assert ids.tolist() == [[3, -1, -1]]
    assert scores[0, 0] == 1.0 and np.isnan(scores[0, 1:]).all()


def test_n_larger_than_catalogue_is_padded() -> None:
    ids, _ = top_n_block(
        np.array([[1.0]]),
        [np.array([], dtype=np.int64)],
        np.array([1, 2]),
        np.array([[2.0], [1.0]]),
        4,
    )
    assert ids.tolist() == [[1, 2, -1, -1]]


@pytest.mark.parametrize(
    ("users", "items", "rated", "n", "message"),
    [
        (np.zeros((1, 2)), np.zeros((2, 3)), [np.array([])], 1, "factor sizes differ"),
        (np.zeros((2, 2)), np.zeros((2, 2)), [np.array([])], 1, "one array per user"),
        (np.zeros((1, 2)), np.zeros((2, 2)), [np.array([])], 0, "n must be"),
    ],
)
def test_rejects_inconsistent_inputs(users, items, rated, n, message) -> None:
    with pytest.raises(ValueError, match=message):
        top_n_block(users, rated, np.arange(items.shape[0]), items, n)
