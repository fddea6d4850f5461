"""The evaluation protocols the benchmarks share: the MovieLens files as pandas frames, the
random and the per-user stratified splits, staging a frame for Spark, and a split held as
the train step holds its own (so the benchmarks call the train step's functions on it).

The ranking protocol is Microsoft Recommenders' (``python_stratified_split``, 75/25 per
user, seed 42, k = 10), so its figures compare with their published benchmark.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reco import config
from reco.data import formats
from reco.modeling import train_data

ROOT = Path(__file__).resolve().parent.parent
DATASETS = config.MOVIELENS_DIR
SEED = 42
K = 10


def load(name: str) -> tuple[pd.DataFrame, tuple[float, float]]:
    """A shared MovieLens dataset as ``user_id, item_id, rating, timestamp``, and its scale,
    located and laid out as ingest resolves it (``formats.detect_source``)."""
    src = formats.detect_source(DATASETS / name)
    if src.has_header:  # ml-latest: userId,movieId,rating,timestamp
        df = pd.read_csv(src.ratings_path, sep=src.delimiter).rename(
            columns={"userId": "user_id", "movieId": "item_id"}
        )
    else:
        df = pd.read_csv(
            src.ratings_path,
            sep=src.delimiter,
            header=None,
            names=["user_id", "item_id", "rating", "timestamp"],
            engine="python" if len(src.delimiter) > 1 else "c",
        )
    return df, src.rating_scale


def random_split(df: pd.DataFrame, frac: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    perm = np.random.default_rng(SEED).permutation(len(df))
    cut = int(round(frac * len(df)))
    return df.iloc[perm[:cut]], df.iloc[perm[cut:]]


def stratified_split(df: pd.DataFrame, frac: float = 0.75) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, a seeded random ``frac`` of the ratings to train, the rest to test."""
    rng = np.random.default_rng(SEED)
    train, test = [], []
    for _, g in df.groupby("user_id", sort=True):
        idx = rng.permutation(len(g))
        cut = int(round(frac * len(g)))
        train.append(g.iloc[idx[:cut]])
        test.append(g.iloc[idx[cut:]])
    return pd.concat(train), pd.concat(test)


def to_spark(spark: Any, df: pd.DataFrame) -> Any:
    """Stage through Parquet, as the pipeline does: a frame built from pandas would carry
    the whole dataset inside every task of every ALS job."""
    from reco.data.transforms import to_als_types

    path = Path(tempfile.mkdtemp(prefix="reco-bench-")) / "part.parquet"
    df[["user_id", "item_id", "rating"]].to_parquet(path, index=False)
    return to_als_types(spark.read.parquet(str(path))).cache()


def split_data(
    spark: Any, fit_part: pd.DataFrame, test_part: pd.DataFrame, scale: tuple[float, float]
) -> train_data.Data:
    """A benchmark split held as the train step holds its own (``train_data.holdout_data``, ALS
    blocks sized by ``train_data.Ratings``): models are fitted on ``fit_part`` and scored on
    ``test_part``."""
    from reco.spark import parallelism, size_shuffle

    size_shuffle(spark, len(fit_part))
    fit_on = to_spark(spark, fit_part)
    ratings = train_data.Ratings.sized(fit_on, len(fit_part), scale, parallelism(spark))
    return train_data.holdout_data(ratings, fit_on, to_spark(spark, test_part))
