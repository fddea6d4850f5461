"""The models: baselines, the rating model and the ranking model (Spark).

- **Splits and folds are hash-based** (``xxhash64(user, item, seed)``): the same rating
  lands on the same side in every run, whatever the partitioning, so folds are
  deterministic and a champion and a challenger are scored on identical held-out data.
- **Baselines**: global mean; user + item biases regularised like Surprise's
  ``BaselineOnly`` (alternating least squares on the biases); most-popular top-N.
- **Rating model** (judged by RMSE): the average of plain explicit ALS and a bias-aware
  ALS (global mean + biases + ALS on the residuals), clipped to the rating scale. On
  ML-100K the blend measured 0.913 RMSE where each part alone measured 0.925.
- **Ranking model** (publishes the top-N): implicit-feedback ALS where each rating is a
  positive interaction with confidence ``1 + alpha * rating``. Explicit ALS ranks poorly
  (it favours obscure items with few ratings); implicit ALS measured nDCG@10 0.47 on
  ML-100K under the Microsoft Recommenders protocol, most-popular 0.26.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spark_jobs import config, metrics
from spark_jobs.transforms import require_columns, top_n_block

USR, ITM, RAT = config.COL_USER, config.COL_ITEM, config.COL_RATING
MIN_RATINGS_FOR_HOLDOUT = 5
BIAS_REG_ITEM = 10.0
BIAS_REG_USER = 15.0
BIAS_ITERATIONS = 3
# ALS user/item blocks: Spark's default (10) unless RECO_ALS_BLOCKS is set. Fewer blocks
# (4) measured slower on ML-100K with 2 cores, not faster.
ALS_BLOCKS = int(os.environ.get("RECO_ALS_BLOCKS", "10"))


# ----------------------------------------------------------------------------------------
# splits
# ----------------------------------------------------------------------------------------
def split_by_user(ratings: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """Per-user stratified split: each user with >= 5 ratings gives ``fraction`` of them
    (chosen by a seeded hash) to the second frame."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    require_columns(ratings, [USR, ITM], "split_by_user")
    h = F.xxhash64(F.col(USR), F.col(ITM), F.lit(seed))
    by_user = Window.partitionBy(USR)
    ranked = ratings.withColumn("_pr", F.percent_rank().over(by_user.orderBy(h))).withColumn(
        "_n", F.count(F.lit(1)).over(by_user)
    )
    held = (F.col("_n") >= MIN_RATINGS_FOR_HOLDOUT) & (F.col("_pr") >= 1.0 - fraction)
    return (ranked.where(~held).drop("_pr", "_n"), ranked.where(held).drop("_pr", "_n"))


def with_folds(ratings: Any, k: int, seed: int) -> Any:
    from pyspark.sql import functions as F

    return ratings.withColumn(
        "_fold", F.pmod(F.xxhash64(F.col(USR), F.col(ITM), F.lit(seed + 1)), F.lit(k))
    )


# ----------------------------------------------------------------------------------------
# rating model
# ----------------------------------------------------------------------------------------
@dataclass
class RatingModel:
    mu: float
    user_bias: Any  # Spark DataFrame (user_id, bu)
    item_bias: Any  # Spark DataFrame (item_id, bi)
    plain: Any  # ALSModel on ratings
    residual: Any  # ALSModel on rating - baseline
    scale: tuple[float, float]


def fit_biases(train: Any) -> tuple[float, Any, Any]:
    """Regularised user and item biases (Surprise BaselineOnly, ALS variant)."""
    from pyspark.sql import functions as F

    mu = float(train.agg(F.avg(RAT)).first()[0])
    bu = None
    bi = None
    for _ in range(BIAS_ITERATIONS):
        base = train if bu is None else train.join(bu, USR, "left")
        resid = (
            F.col(RAT)
            - F.lit(mu)
            - (F.coalesce(F.col("bu"), F.lit(0.0)) if bu is not None else F.lit(0.0))
        )
        bi = base.groupBy(ITM).agg(
            (F.sum(resid) / (F.lit(BIAS_REG_ITEM) + F.count(F.lit(1)))).alias("bi")
        )
        bi = bi.localCheckpoint()
        base = train.join(bi, ITM, "left")
        resid = F.col(RAT) - F.lit(mu) - F.coalesce(F.col("bi"), F.lit(0.0))
        bu = base.groupBy(USR).agg(
            (F.sum(resid) / (F.lit(BIAS_REG_USER) + F.count(F.lit(1)))).alias("bu")
        )
        bu = bu.localCheckpoint()
    return mu, bu, bi


def with_baseline(df: Any, mu: float, bu: Any, bi: Any) -> Any:
    from pyspark.sql import functions as F

    return (
        df.join(bu, USR, "left")
        .join(bi, ITM, "left")
        .withColumn(
            "_base",
            F.lit(mu) + F.coalesce(F.col("bu"), F.lit(0.0)) + F.coalesce(F.col("bi"), F.lit(0.0)),
        )
        .drop("bu", "bi")
    )


def als(seed: int, rating_col: str = RAT, prediction_col: str = "prediction", **params: Any) -> Any:
    from pyspark.ml.recommendation import ALS

    return ALS(
        userCol=USR,
        itemCol=ITM,
        ratingCol=rating_col,
        coldStartStrategy="nan",
        checkpointInterval=5,
        seed=seed,
        numUserBlocks=ALS_BLOCKS,
        numItemBlocks=ALS_BLOCKS,
        **params,
    ).setPredictionCol(prediction_col)


def fit_rating_model(
    train: Any, params: dict[str, Any], seed: int, scale: tuple[float, float]
) -> RatingModel:
    from pyspark.sql import functions as F

    mu, bu, bi = fit_biases(train)
    plain = als(seed, prediction_col="_p_plain", **params).fit(train)
    resid_df = with_baseline(train, mu, bu, bi).withColumn(
        "_resid", (F.col(RAT) - F.col("_base")).cast("float")
    )
    residual = als(seed, rating_col="_resid", prediction_col="_p_resid", **params).fit(resid_df)
    return RatingModel(mu, bu, bi, plain, residual, scale)


def predict_ratings(model: RatingModel, df: Any) -> Any:
    """``df`` + ``prediction``: the blend, clipped to the scale; unknown users/items fall
    back to the bias baseline."""
    from pyspark.sql import functions as F

    lo, hi = model.scale
    scored = model.residual.transform(
        model.plain.transform(with_baseline(df, model.mu, model.user_bias, model.item_bias))
    )
    plain = F.when(F.isnan("_p_plain"), F.col("_base")).otherwise(F.col("_p_plain"))
    resid = F.col("_base") + F.when(F.isnan("_p_resid"), F.lit(0.0)).otherwise(F.col("_p_resid"))
    blend = 0.5 * plain + 0.5 * resid
    return scored.withColumn(
        config.COL_PREDICTION, F.least(F.greatest(blend, F.lit(lo)), F.lit(hi))
    ).drop("_p_plain", "_p_resid")


def clip_column(col: Any, scale: tuple[float, float]) -> Any:
    from pyspark.sql import functions as F

    return F.least(F.greatest(col, F.lit(scale[0])), F.lit(scale[1]))


def spark_rating_metrics(df: Any, prediction: Any) -> dict[str, float]:
    """RMSE, MAE, MPE of ``prediction`` (a Column) against ``rating`` (same definitions as
    :mod:`spark_jobs.metrics`), computed in Spark."""
    from pyspark.sql import functions as F

    err = F.col(RAT) - prediction
    row = df.agg(
        F.sqrt(F.avg(err * err)).alias("rmse"),
        F.avg(F.abs(err)).alias("mae"),
        (F.lit(100.0) * F.avg(err / F.col(RAT))).alias("mpe"),
        F.count(F.lit(1)).alias("n"),
    ).first()
    return {
        "rmse": float(row["rmse"]),
        "mae": float(row["mae"]),
        "mpe": float(row["mpe"]),
        "n": int(row["n"]),
    }


# ----------------------------------------------------------------------------------------
# ranking model and top-N
# ----------------------------------------------------------------------------------------
def fit_ranking_model(train: Any, params: dict[str, Any], seed: int) -> Any:
    """Implicit ALS; confidence ``1 + alpha * rating``."""
    return als(seed, implicitPrefs=True, **params).fit(train)


USERS_PER_BLOCK = 512
TOP_N_SCHEMA = "user_id long, item_id long, rank int, score double"


def _score_batches(
    batches: Iterator[pd.DataFrame], item_ids: np.ndarray, item_vecs: np.ndarray, n: int
) -> Iterator[pd.DataFrame]:
    for pdf in batches:
        for start in range(0, len(pdf), USERS_PER_BLOCK):
            chunk = pdf.iloc[start : start + USERS_PER_BLOCK]
            vecs = np.vstack(chunk["features"].to_numpy()).astype(np.float64)
            rated = [np.asarray(r if r is not None else [], dtype=np.int64) for r in chunk["rated"]]
            top_ids, top_scores = top_n_block(vecs, rated, item_ids, item_vecs, n)
            out = pd.DataFrame(
                {
                    USR: np.repeat(chunk[USR].to_numpy(dtype=np.int64), n),
                    ITM: top_ids.ravel(),
                    config.COL_RANK: np.tile(np.arange(1, n + 1, dtype=np.int32), len(chunk)),
                    config.COL_SCORE: top_scores.ravel(),
                }
            )
            yield out[out[ITM] >= 0]


def top_n(
    spark: Any, user_vectors: Any, item_ids: np.ndarray, item_vecs: np.ndarray, seen: Any, n: int
) -> Any:
    """Top-``n`` per user of ``user_vectors`` (Spark: user_id, features) against the item
    matrix, excluding each user's items in ``seen`` (Spark: user_id, item_id)."""
    from pyspark.sql import functions as F

    rated = seen.groupBy(USR).agg(F.collect_list(F.col(ITM).cast("long")).alias("rated"))
    users = user_vectors.join(rated, USR, "left")
    bc = spark.sparkContext.broadcast((item_ids, item_vecs))

    def body(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        ids, vecs = bc.value
        return _score_batches(batches, ids, vecs, n)

    return users.mapInPandas(body, TOP_N_SCHEMA)


def similar_items(spark: Any, item_ids: np.ndarray, item_vecs: np.ndarray, k: int) -> Any:
    """Top-``k`` neighbours per item by cosine similarity of ALS item factors (self excluded).

    Spark frame ``item_id, similar_item_id, rank, score``; reuses the top-N scorer with the
    unit-length item vectors as both sides.
    """
    import pandas as pd
    from pyspark.sql import functions as F

    norms = np.linalg.norm(item_vecs, axis=1, keepdims=True)
    unit = np.divide(item_vecs, norms, out=np.zeros_like(item_vecs), where=norms > 0)
    ids = item_ids.astype(np.int64)
    sides = spark.createDataFrame(
        pd.DataFrame({USR: ids, "features": list(unit.tolist())}),
        schema=f"{USR} long, features array<double>",
    )
    itself = sides.select(USR, F.col(USR).alias(ITM))
    return top_n(spark, sides, ids, unit, itself, k).select(
        F.col(USR).alias(ITM),
        F.col(ITM).alias("similar_item_id"),
        config.COL_RANK,
        config.COL_SCORE,
    )


def als_factors(model: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """(user vectors as a Spark frame, item ids, item matrix) of an ALS model."""
    from pyspark.sql import functions as F

    items = model.itemFactors.orderBy("id").toPandas()
    users = model.userFactors.select(F.col("id").cast("long").alias(USR), "features")
    return (
        users,
        items["id"].to_numpy(dtype=np.int64),
        np.vstack(items["features"].to_numpy()).astype(np.float64),
    )


def most_popular_top_n(spark: Any, train: Any, users: Any, n: int) -> Any:
    """Most-popular baseline: items by number of ratings, rated items excluded."""
    from pyspark.sql import functions as F

    pop = train.groupBy(ITM).count().toPandas()
    item_ids = pop[ITM].to_numpy(dtype=np.int64)
    vecs = pop["count"].to_numpy(dtype=np.float64)[:, None]
    user_vecs = (
        users.select(F.col(USR).cast("long").alias(USR))
        .distinct()
        .withColumn("features", F.array(F.lit(1.0)))
    )
    return top_n(spark, user_vecs, item_ids, vecs, train, n)


def ranking_metrics_spark(recs: Any, holdout: Any, k: int, n_catalogue: int) -> dict[str, float]:
    truth = holdout.select(USR, ITM).toPandas()
    got = recs.select(USR, ITM, config.COL_RANK).toPandas()
    return metrics.ranking_metrics(truth, got, k, n_catalogue=n_catalogue)
