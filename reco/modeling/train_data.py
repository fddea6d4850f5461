"""The train step's data: the run's ratings read and cached, sized for the fits, and split
per user into the train part every model is fitted on and the held-out part it is scored
on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reco import config
from reco.data.transforms import to_als_types
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.modeling import models
from reco.modeling.train_plan import STAGE
from reco.runs import RunFolder
from reco.runtime import read_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass
class Ratings:
    """The run's ratings as read (a cached Spark frame), and how fits on them are sized."""

    frame: DataFrame
    n: int
    scale: tuple[float, float]
    blocks: int  # ALS user and item blocks of every fit
    cores: int

    @classmethod
    def sized(cls, frame: DataFrame, n: int, scale: tuple[float, float], cores: int) -> Ratings:
        return cls(frame, n, scale, models.als_blocks(n, cores), cores)


@dataclass
class Data:
    """Every model is fitted on ``train`` and scored on ``holdout``; ``ratings`` (all of
    them) feed the final refit."""

    ratings: DataFrame
    train: DataFrame
    holdout: DataFrame
    n: int
    n_train: int
    n_holdout: int
    n_catalogue: int
    scale: tuple[float, float]
    blocks: int
    cores: int

    def unpersist(self) -> None:
        for df in (self.ratings, self.train, self.holdout):
            df.unpersist()


def read_ratings(spark: SparkSession, run_dir: Path) -> Ratings:
    """The run's ratings, cached; the shuffle partitions and ALS blocks sized to them."""
    from reco.spark import parallelism, size_shuffle

    manifest = read_json(RunFolder(run_dir).manifest)
    scale = tuple(manifest["source"]["rating_scale"])
    with timer(run_dir, STAGE, "read", source=RunFolder(run_dir).ratings) as t:
        partitions = size_shuffle(spark, int(manifest.get("n_ratings") or 0))
        frame = to_als_types(spark.read.parquet(str(RunFolder(run_dir).ratings))).cache()
        ratings = Ratings.sized(frame, frame.count(), scale, parallelism(spark))
        t.update(rows=ratings.n, shuffle_partitions=partitions, als_blocks=ratings.blocks)
    return ratings


def check_enough_ratings(n: int, folds: int) -> None:
    """Refuse a run with fewer than 10 ratings per fold (at least 20)."""
    if n < 10 * max(folds, 2):
        what = f"cross-validate with {folds} folds" if folds else "train on"
        raise PipelineError(f"only {n} ratings: too few to {what} (at least 20 are needed)")


def split_holdout(r: Ratings, fraction: float, seed: int, run_dir: Path | None) -> Data:
    """Per user, by a seeded hash, ``fraction`` of each user's ratings held out."""
    with timer(run_dir, STAGE, "split") as t:
        train, holdout = models.split_by_user(r.frame, fraction, seed)
        d = holdout_data(r, train.cache(), holdout.cache())
        t.update(train=d.n_train, holdout=d.n_holdout)
    if d.n_holdout == 0:
        raise PipelineError("no user has the 5+ ratings needed to hold some out for evaluation")
    return d


def holdout_data(r: Ratings, train: DataFrame, holdout: DataFrame) -> Data:
    """``r`` split into ``train`` and ``holdout`` (cached frames), with their sizes."""
    n_train, n_holdout = train.count(), holdout.count()
    n_catalogue = train.select(config.COL_ITEM).distinct().count()
    return Data(
        r.frame, train, holdout, r.n, n_train, n_holdout, n_catalogue, r.scale, r.blocks, r.cores
    )
