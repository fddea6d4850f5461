"""The evaluation protocols the benchmarks share: the MovieLens files as pandas frames, the
random and the per-user stratified splits, and staging a frame for Spark.

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

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(config.PROJECT_ROOT).parent / "shared" / "datasets"
SEED = 42
K = 10


def load(name: str) -> tuple[pd.DataFrame, tuple[float, float]]:
    """A shared MovieLens dataset as ``user_id, item_id, rating, timestamp`` and its scale."""
    if name == "ml-100k":
        df = pd.read_csv(
            DATASETS / name / "u.data",
            sep="\t",
            header=None,
            names=["user_id", "item_id", "rating", "timestamp"],
        )
        return df, (1.0, 5.0)
    df = pd.read_csv(DATASETS / name / "ratings.csv").rename(
        columns={"userId": "user_id", "movieId": "item_id"}
    )
    return df, (0.5, 5.0)


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
