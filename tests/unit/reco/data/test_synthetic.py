from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reco.data.synthetic import SyntheticSpec, generate_frames, write_dataset

SMALL = SyntheticSpec(n_users=200, n_items=300, mean_ratings_per_user=30)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a, _ = generate_frames(SMALL)
    b, _ = generate_frames(SMALL)
    c, _ = generate_frames(
        SyntheticSpec(n_users=200, n_items=300, mean_ratings_per_user=30, seed=7)
    )
    assert a.equals(b)
    assert not a.equals(c)


def test_pairs_unique_ids_positive_ratings_on_scale() -> None:
    ratings, items = generate_frames(SMALL)
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert ratings["userId"].min() >= 1 and ratings["movieId"].min() >= 1
    assert set(ratings["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(set(ratings["rating"].unique())) == 5  # the whole scale is used
    assert len(items) == 300 and items["title"].notna().all()


def test_ten_point_scale() -> None:
    ratings, _ = generate_frames(
        SyntheticSpec(n_users=100, n_items=200, rating_min=1, rating_max=10)
    )
    assert ratings["rating"].min() >= 1 and ratings["rating"].max() <= 10
    assert ratings["rating"].nunique() >= 8


def test_popularity_and_activity_are_long_tailed() -> None:
    ratings, _ = generate_frames(SyntheticSpec(n_users=500, n_items=800))
    per_item = ratings.groupby("movieId").size().sort_values(ascending=False).to_numpy()
    top_share = per_item[: len(per_item) // 10].sum() / per_item.sum()
    assert top_share > 0.35  # top 10% of items take well over 10% of ratings
    per_user = ratings.groupby("userId").size()
    assert per_user.max() > 4 * per_user.median()


def test_write_dataset_uses_movielens_latest_layout(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path, SMALL)
    header = (tmp_path / "ratings.csv").read_text().splitlines()[0]
    assert header == "userId,movieId,rating,timestamp"
    assert (tmp_path / "movies.csv").exists()
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["rating_min"] == 1 and saved["rating_max"] == 5
    assert saved["n_ratings"] == manifest["n_ratings"] > 0


def test_rejects_empty_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_frames(SyntheticSpec(rating_min=5, rating_max=5))


def test_signal_is_learnable() -> None:
    """Users' ratings correlate with their latent taste: per-item means differ a lot."""
    ratings, _ = generate_frames(SyntheticSpec(n_users=400, n_items=300))
    item_means = ratings.groupby("movieId")["rating"].mean()
    assert np.std(item_means) > 0.3
