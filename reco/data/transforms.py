"""Pure transforms: ``DataFrame -> DataFrame`` (Spark) or arrays -> arrays (numpy).

Each checks its input schema first and raises ``ValueError`` naming what is missing, so a
wrong call fails at the call, not three stages later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reco import config
from reco.data.parsing import REASON_DUPLICATE

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def require_columns(df: DataFrame, columns: list[str] | tuple[str, ...], what: str) -> None:
    """Raise ``ValueError`` if ``df`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs column(s) {missing}; got {df.columns}")


def split_rejected(df: DataFrame, *, reason_col: str = "reason") -> tuple[DataFrame, DataFrame]:
    """``(accepted rows (raw kept, reason dropped), rejected rows: raw + reason)``."""
    require_columns(df, ["raw", reason_col], "split_rejected")
    accepted = df.where(df[reason_col].isNull()).drop(reason_col)
    rejected = df.where(df[reason_col].isNotNull()).select("raw", reason_col)
    return accepted, rejected


def deduplicate_latest(
    df: DataFrame,
    *,
    col_user: str = config.COL_USER,
    col_item: str = config.COL_ITEM,
    col_rating: str = config.COL_RATING,
    col_timestamp: str = config.COL_TIMESTAMP,
) -> tuple[DataFrame, DataFrame]:
    """Keep one row per (user, item): the latest timestamp (ties: the higher rating).

    Returns ``(kept, superseded)``; superseded rows carry ``reason = duplicate_superseded``
    so they can be quarantined rather than lost.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    require_columns(df, [col_user, col_item, col_rating, col_timestamp], "deduplicate_latest")
    w = Window.partitionBy(col_user, col_item).orderBy(
        F.col(col_timestamp).desc_nulls_last(), F.col(col_rating).desc()
    )
    ranked = df.withColumn("_dup_rank", F.row_number().over(w))
    kept = ranked.where(F.col("_dup_rank") == 1).drop("_dup_rank")
    superseded = (
        ranked.where(F.col("_dup_rank") > 1)
        .drop("_dup_rank")
        .withColumn("reason", F.lit(REASON_DUPLICATE))
    )
    return kept, superseded


def to_als_types(
    df: DataFrame,
    *,
    col_user: str = config.COL_USER,
    col_item: str = config.COL_ITEM,
    col_rating: str = config.COL_RATING,
) -> DataFrame:
    """ALS wants int ids and float ratings; ingest has already bounded ids to the int range."""
    from pyspark.sql import functions as F

    require_columns(df, [col_user, col_item, col_rating], "to_als_types")
    return df.select(
        F.col(col_user).cast("int").alias(col_user),
        F.col(col_item).cast("int").alias(col_item),
        F.col(col_rating).cast("float").alias(col_rating),
    )


def top_n_block(
    user_vectors: np.ndarray,
    rated_items: list[np.ndarray],
    item_ids: np.ndarray,
    item_vectors: np.ndarray,
    n: int,
    item_bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` items per user by ``user . item (+ bias)``, excluding each user's rated items.

    Returns ``(item_ids [users x n], scores [users x n])``, best first. Users with fewer
    than ``n`` unrated items get fewer real entries, padded with id ``-1`` / score ``nan``.
    """
    if user_vectors.ndim != 2 or item_vectors.ndim != 2:
        raise ValueError("user_vectors and item_vectors must be 2-D arrays")
    if user_vectors.shape[1] != item_vectors.shape[1]:
        raise ValueError(
            f"factor sizes differ: users {user_vectors.shape[1]}, items {item_vectors.shape[1]}"
        )
    if len(rated_items) != user_vectors.shape[0]:
        raise ValueError("rated_items needs one array per user")
    if n < 1:
        raise ValueError("n must be >= 1")
    scores = user_vectors @ item_vectors.T
    if item_bias is not None:
        scores = scores + item_bias[None, :]
    return select_top_n(scores, rated_items, item_ids, n)


def select_top_n(
    scores: np.ndarray, rated_items: list[np.ndarray], item_ids: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``n`` of each row of ``scores`` (users x items, columns in ``item_ids``
    order), excluding each user's ``rated_items``; ties break by item id.

    Returns ``(item_ids [users x n], scores [users x n])``, best first, padded with id
    ``-1`` / score ``nan`` where a user has fewer than ``n`` scorable items. A float64
    ``scores`` is masked in place.
    """
    if scores.ndim != 2 or scores.shape[1] != len(item_ids):
        raise ValueError(f"scores must be users x {len(item_ids)} items, got {scores.shape}")
    if len(rated_items) != scores.shape[0]:
        raise ValueError("rated_items needs one array per user")
    if n < 1:
        raise ValueError("n must be >= 1")
    scores = scores.astype(np.float64, copy=False)
    pos = {int(item): j for j, item in enumerate(item_ids)}
    for row, rated in enumerate(rated_items):
        cols = [pos[int(x)] for x in rated if int(x) in pos]
        if cols:
            scores[row, cols] = -np.inf
    k = min(n, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    # Sort the k candidates: by score desc, then item id asc for deterministic ties.
    cand_ids = item_ids[part]
    order = np.lexsort((cand_ids, -part_scores), axis=1)
    top_idx = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(scores, top_idx, axis=1)
    top_ids = item_ids[top_idx].astype(np.int64)
    invalid = ~np.isfinite(top_scores)
    top_ids[invalid] = -1
    top_scores[invalid] = np.nan
    if k < n:
        pad = n - k
        top_ids = np.pad(top_ids, ((0, 0), (0, pad)), constant_values=-1)
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=np.nan)
    return top_ids, top_scores


def nonfinite(col: str) -> Column:
    """True where ``col`` is NULL, NaN or infinite."""
    from pyspark.sql import functions as F

    return F.col(col).isNull() | F.isnan(col) | (F.abs(F.col(col)) == float("inf"))


def recommendation_summary(
    recs: DataFrame,
    ratings: DataFrame,
    model_items: DataFrame,
    n: int,
    *,
    col_user: str = config.COL_USER,
    col_item: str = config.COL_ITEM,
    col_rank: str = config.COL_RANK,
    col_score: str = config.COL_SCORE,
) -> DataFrame:
    """One row per user known from ``ratings``: what the recommendations output suite checks.

    Columns: ``user_id, n, expected_n, min_rank, max_rank, distinct_ranks, n_rated,
    n_nonfinite``. ``expected_n`` is ``min(n, items the model can score that the user has
    not rated)``; ``n_rated`` counts recommended items the user already rated.
    """
    from pyspark.sql import functions as F

    require_columns(recs, [col_user, col_item, col_rank, col_score], "recommendation_summary")
    require_columns(ratings, [col_user, col_item], "recommendation_summary")
    require_columns(model_items, [col_item], "recommendation_summary")
    pairs = ratings.select(col_user, col_item).distinct()
    scorable = pairs.join(model_items.select(col_item).distinct(), col_item)
    known = pairs.select(col_user).distinct()
    rated_scorable = scorable.groupBy(col_user).agg(F.count("*").alias("_rated"))
    per_user = recs.groupBy(col_user).agg(
        F.count("*").alias("n"),
        F.min(col_rank).alias("min_rank"),
        F.max(col_rank).alias("max_rank"),
        F.countDistinct(col_rank).alias("distinct_ranks"),
        F.sum(F.when(nonfinite(col_score), 1).otherwise(0)).alias("n_nonfinite"),
    )
    hits = (
        recs.join(pairs, [col_user, col_item]).groupBy(col_user).agg(F.count("*").alias("n_rated"))
    )
    n_items = model_items.select(col_item).distinct().count()
    return (
        known.join(per_user, col_user, "left")
        .join(rated_scorable, col_user, "left")
        .join(hits, col_user, "left")
        .select(
            col_user,
            F.coalesce(F.col("n"), F.lit(0)).alias("n"),
            F.least(F.lit(n), F.lit(n_items) - F.coalesce(F.col("_rated"), F.lit(0))).alias(
                "expected_n"
            ),
            "min_rank",
            "max_rank",
            F.coalesce(F.col("distinct_ranks"), F.lit(0)).alias("distinct_ranks"),
            F.coalesce(F.col("n_rated"), F.lit(0)).alias("n_rated"),
            F.coalesce(F.col("n_nonfinite"), F.lit(0)).alias("n_nonfinite"),
        )
    )
