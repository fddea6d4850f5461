"""Deterministic synthetic ratings, so the pipeline runs with no download.

Users and items get latent taste factors; item popularity follows a power law (a few
blockbusters, a long tail) and user activity is log-normal (many light users, a few
heavy ones). Users choose what to rate by popularity and by taste (they mostly watch what
they expect to like), so who-rated-what carries a learnable personal signal. A rating is
``global mean + user bias + item bias + taste match + noise``, rounded onto the scale.
The output uses the MovieLens "latest" layout (``ratings.csv``, ``movies.csv``) plus a
``manifest.json`` naming the rating scale, so it goes through the same ingest path as
real data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from reco import config

GENRES = ("Action", "Comedy", "Drama", "Thriller", "Romance", "Sci-Fi", "Animation", "Documentary")


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of a synthetic dataset."""

    n_users: int = 600
    n_items: int = 1000
    mean_ratings_per_user: float = 60.0
    min_ratings_per_user: int = 10
    rating_min: int = 1
    rating_max: int = 5
    n_factors: int = 8
    popularity_exponent: float = 1.0
    noise: float = 0.5
    selection_taste: float = 1.5  # how much taste (vs popularity) drives what users rate
    seed: int = config.SEED
    start_ts: int = 1_600_000_000  # 2020-09-13
    span_seconds: int = 3 * 365 * 24 * 3600


USERS_PER_BLOCK = 512


def choose_items(
    rng: np.random.Generator,
    user_f: np.ndarray,
    item_f: np.ndarray,
    popularity: np.ndarray,
    activity: np.ndarray,
    taste_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Which items each user rates: ``activity[u]`` distinct items drawn without
    replacement with weights ``popularity * exp(taste_weight * taste)`` (Gumbel top-k), so
    users mostly rate popular items *and* items they like, as in real rating data."""
    k = user_f.shape[1]
    log_pop = np.log(popularity)
    users_out, items_out = [], []
    for start in range(0, user_f.shape[0], USERS_PER_BLOCK):
        uf = user_f[start : start + USERS_PER_BLOCK]
        act = activity[start : start + USERS_PER_BLOCK]
        keys = log_pop[None, :] + taste_weight * (uf @ item_f.T) / np.sqrt(k)
        keys += rng.gumbel(size=keys.shape)
        kmax = int(act.max())
        top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
        order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
        ordered = np.take_along_axis(top, order, axis=1)
        mask = np.arange(kmax)[None, :] < act[:, None]
        users_out.append(np.repeat(np.arange(start, start + len(uf)), act))
        items_out.append(ordered[mask])
    return np.concatenate(users_out), np.concatenate(items_out)


def generate_frames(spec: SyntheticSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(ratings, items)`` frames for ``spec``; same spec, same rows."""
    if spec.n_users < 1 or spec.n_items < 2:
        raise ValueError("a synthetic dataset needs at least 1 user and 2 items")
    if spec.rating_max <= spec.rating_min:
        raise ValueError(
            f"rating scale {spec.rating_min}-{spec.rating_max} is empty: max must exceed min"
        )
    rng = np.random.default_rng(spec.seed)
    k = spec.n_factors
    user_f = rng.normal(0.0, 1.0, (spec.n_users, k))
    item_f = rng.normal(0.0, 1.0, (spec.n_items, k))
    user_bias = rng.normal(0.0, 0.35, spec.n_users)
    item_bias = rng.normal(0.0, 0.45, spec.n_items)

    # Long-tailed popularity: item j has weight 1 / (rank_j ** exponent) in a shuffled order.
    pop_rank = rng.permutation(spec.n_items) + 1
    popularity = 1.0 / pop_rank.astype(float) ** spec.popularity_exponent
    popularity /= popularity.sum()
    # Popular items are also a little better liked (as in real data).
    item_bias += 0.25 * (np.log(popularity) - np.log(popularity).mean()) / np.log(popularity).std()

    # Log-normal activity with the requested mean, clipped to [min, half the catalogue].
    sigma = 0.9
    mu = np.log(spec.mean_ratings_per_user) - sigma**2 / 2
    activity = np.clip(
        rng.lognormal(mu, sigma, spec.n_users).round().astype(int),
        spec.min_ratings_per_user,
        max(spec.min_ratings_per_user, spec.n_items // 2),  # nobody rates everything
    )

    users, items = choose_items(rng, user_f, item_f, popularity, activity, spec.selection_taste)

    scale_mid = (spec.rating_min + spec.rating_max) / 2.0
    scale_half = (spec.rating_max - spec.rating_min) / 2.0
    taste = np.einsum("ij,ij->i", user_f[users], item_f[items]) / np.sqrt(k)
    raw = -0.3 + user_bias[users] + item_bias[items] + 0.6 * taste
    raw += rng.normal(0.0, spec.noise, raw.size)
    # Map the latent score (roughly N(0.35, 1)) onto the scale; tanh keeps it bounded.
    rating = scale_mid + scale_half * np.tanh(raw / 1.5) * 1.1
    rating = np.clip(np.rint(rating), spec.rating_min, spec.rating_max)

    ts = spec.start_ts + rng.integers(0, spec.span_seconds, users.size)
    ratings = pd.DataFrame(
        {
            "userId": users + 1,
            "movieId": items + 1,
            "rating": rating.astype(float),
            "timestamp": ts.astype(np.int64),
        }
    )
    genre_idx = rng.integers(0, len(GENRES), (spec.n_items, 2))
    items_df = pd.DataFrame(
        {
            "movieId": np.arange(1, spec.n_items + 1),
            "title": [f"Synthetic Title {i} ({1980 + i % 45})" for i in range(1, spec.n_items + 1)],
            "genres": ["|".join(sorted({GENRES[a], GENRES[b]})) for a, b in genre_idx],
        }
    )
    return ratings, items_df


def write_dataset(out_dir: Path, spec: SyntheticSpec) -> dict[str, object]:
    """Write ``ratings.csv``, ``movies.csv`` and ``manifest.json`` to ``out_dir``."""
    ratings, items = generate_frames(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    ratings.to_csv(out_dir / "ratings.csv", index=False)
    items.to_csv(out_dir / "movies.csv", index=False)
    manifest: dict[str, object] = {
        "source": "synthetic",
        "rating_min": spec.rating_min,
        "rating_max": spec.rating_max,
        "n_ratings": int(len(ratings)),
        "n_users": int(ratings["userId"].nunique()),
        "n_items": int(ratings["movieId"].nunique()),
        "spec": asdict(spec),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# --- published rows (reco.recommendations' layout) ------------------------------------
PUBLISHED_N = 10
PUBLISHED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def published_rows(users: int, version: str, offset: int = 0) -> pa.Table:
    """``users`` x PUBLISHED_N rows in ``reco.recommendations``' layout, for publish tests and
    the publish benchmark; item ids depend on the version so every answer names its set."""
    user = np.repeat(np.arange(1, users + 1, dtype=np.int64), PUBLISHED_N)
    rank = np.tile(np.arange(1, PUBLISHED_N + 1, dtype=np.int32), users)
    return pa.table(
        {
            "user_id": user,
            "item_id": user * 100 + rank + offset,
            "rank": rank,
            "score": (PUBLISHED_N + 1 - rank).astype(np.float64),
            "model_version": pa.array([version] * len(user)),
            "generated_at": pa.array([PUBLISHED_AT] * len(user), pa.timestamp("us", tz="UTC")),
        }
    )
