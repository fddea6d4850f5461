"""The fitted ranking models, one class per family, behind one interface (:class:`Ranker`):
each gives its users' inputs and its item side (:class:`~reco.modeling.scoring.ItemSide`,
scored in numpy blocks on the executors), its item vectors for similar items, and saves
itself beside its meta.

- :class:`AlsRanker`: implicit-feedback ALS (Spark MLlib); a fit on a share of the run's
  ratings divides ``regParam`` by that share (see :mod:`reco.modeling.ranking`).
- :class:`EaseRanker`: EASE (Steck, 2019). The item-item Gram matrix ``X^T X`` of the
  binary user x item matrix over the ``EASE_MAX_ITEMS`` most-rated items is computed by
  Spark (:func:`ease_gram`, MLlib ``RowMatrix.computeGramianMatrix``); the weights
  ``B = I - P / diag(P)``, ``P = (G + lambda I)^-1`` are solved on the driver
  (:func:`ease_weights`).

Which family and parameters win, and how candidates are fitted, evaluated and
cross-validated: :mod:`reco.modeling.ranking`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reco import config
from reco.errors import PipelineError
from reco.modeling import models
from reco.modeling.scoring import ItemSide, top_n
from reco.runs import MODEL_META

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

USR, ITM = config.COL_USER, config.COL_ITEM
EASE_MAX_ITEMS = int(os.environ.get("RECO_EASE_MAX_ITEMS", "3000"))


class Ranker:
    """A fitted ranking model: users' inputs, the item side, persistence."""

    family: str
    params: dict[str, Any]

    def user_inputs(self, signals: DataFrame) -> DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def item_side(self) -> ItemSide:  # pragma: no cover - interface
        raise NotImplementedError

    def item_vectors_for_similarity(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - interface

    def save(self, path: Path) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def recommend(
        self,
        spark: SparkSession,
        signals: DataFrame,
        seen: DataFrame,
        n: int,
        users: DataFrame | None = None,
    ) -> DataFrame:
        """Top-``n`` per user of ``signals`` (or of ``users``, a frame with user_id)."""
        inputs = self.user_inputs(signals)
        if users is not None:
            inputs = inputs.join(users.select(USR).distinct(), USR)
        return top_n(spark, inputs, self.item_side(), seen, n)

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, **self.params}


class AlsRanker(Ranker):
    family = "als"

    def __init__(self, model: Any, params: dict[str, Any]) -> None:
        self.model = model
        self.params = dict(params)
        self._side: ItemSide | None = None

    @classmethod
    def fit(
        cls, signals: DataFrame, params: dict[str, Any], seed: int, blocks: int, share: float = 1.0
    ) -> AlsRanker:
        """Fit on ``signals``, which hold ``share`` of the ratings the parameters are for."""
        fitted = {**params, "regParam": float(params["regParam"]) / share}
        return cls(models.fit_ranking_model(signals, fitted, seed, blocks=blocks), params)

    def user_inputs(self, signals: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        return self.model.userFactors.select(F.col("id").cast("long").alias(USR), "features")

    def item_side(self) -> ItemSide:
        if self._side is None:
            _, ids, vecs = models.als_factors(self.model)
            self._side = ItemSide("factors", ids, vecs)
        return self._side

    def item_vectors_for_similarity(self) -> tuple[np.ndarray, np.ndarray]:
        side = self.item_side()
        return side.item_ids, side.matrix

    def save(self, path: Path) -> None:
        self.model.write().overwrite().save(str(path / "als"))
        write_meta(path, self.describe())

    @classmethod
    def load(cls, path: Path, params: dict[str, Any]) -> AlsRanker:
        from pyspark.ml.recommendation import ALSModel

        return cls(ALSModel.load(str(path / "als")), params)


class EaseRanker(Ranker):
    family = "ease"

    def __init__(
        self,
        item_ids: np.ndarray,
        weights: np.ndarray,
        gram: np.ndarray,
        params: dict[str, Any],
    ) -> None:
        self.item_ids = item_ids
        self.weights = weights
        self.gram = gram
        self.params = dict(params)

    @classmethod
    def fit(cls, gram: EaseGram, lam: float) -> EaseRanker:
        return cls(gram.item_ids, ease_weights(gram.matrix, lam), gram.matrix, {"lambda": lam})

    def user_inputs(self, signals: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        return (
            signals.groupBy(USR)
            .agg(F.collect_list(F.col(ITM).cast("long")).alias("features"))
            .select(F.col(USR).cast("long").alias(USR), "features")
        )

    def item_side(self) -> ItemSide:
        counts = np.diag(self.gram).astype(np.float64)
        popularity = counts / counts.max() if counts.size and counts.max() > 0 else counts
        return ItemSide("ease", self.item_ids, self.weights, popularity)

    def item_vectors_for_similarity(self) -> tuple[np.ndarray, np.ndarray]:
        # Cosine of the items' co-occurrence columns: people who watched X also watched Y.
        return self.item_ids, self.gram

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "ease_items.npy", self.item_ids)
        np.save(path / "ease_weights.npy", self.weights)
        np.save(path / "ease_gram.npy", self.gram.astype(np.float32))
        write_meta(path, self.describe())

    @classmethod
    def load(cls, path: Path, params: dict[str, Any]) -> EaseRanker:
        return cls(
            np.load(path / "ease_items.npy"),
            np.load(path / "ease_weights.npy"),
            np.load(path / "ease_gram.npy").astype(np.float64),
            params,
        )


@dataclass
class EaseGram:
    item_ids: np.ndarray
    matrix: np.ndarray  # float64, items x items


def ease_catalogue(signals: DataFrame, max_items: int = EASE_MAX_ITEMS) -> np.ndarray:
    """The ids EASE scores: the ``max_items`` most-rated items (ties: lower id), sorted."""
    from pyspark.sql import functions as F

    top = (
        signals.groupBy(ITM)
        .count()
        .orderBy(F.col("count").desc(), F.col(ITM))
        .limit(max_items)
        .toPandas()
    )
    return np.sort(top[ITM].to_numpy(dtype=np.int64))


def ease_gram(spark: SparkSession, signals: DataFrame, max_items: int = EASE_MAX_ITEMS) -> EaseGram:
    """``X^T X`` of the binary user x item matrix over the EASE catalogue, by Spark."""
    from pyspark.mllib.linalg import SparseVector
    from pyspark.mllib.linalg.distributed import RowMatrix
    from pyspark.sql import functions as F

    item_ids = ease_catalogue(signals, max_items)
    m = len(item_ids)
    index = spark.createDataFrame(
        pd.DataFrame({ITM: item_ids.astype(np.int64), "_idx": np.arange(m, dtype=np.int64)})
    )
    histories = (
        signals.select(USR, F.col(ITM).cast("long").alias(ITM))
        .join(F.broadcast(index), ITM)
        .groupBy(USR)
        .agg(F.sort_array(F.collect_set("_idx")).alias("idx"))
    )
    rows = histories.rdd.map(lambda r: SparseVector(m, r["idx"], [1.0] * len(r["idx"])))
    gram = RowMatrix(rows, numCols=m).computeGramianMatrix().toArray()
    return EaseGram(item_ids, np.asarray(gram, dtype=np.float64))


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """EASE's closed form: ``B = I - P / diag(P)``, ``P = (G + lambda I)^-1``, diagonal 0."""
    from scipy.linalg import lapack

    if lam <= 0:
        raise PipelineError(f"EASE lambda must be > 0, got {lam}")
    g = np.array(gram, dtype=np.float64, copy=True)
    g[np.diag_indices_from(g)] += lam
    chol, info = lapack.dpotrf(g, lower=False)
    if info != 0:
        raise PipelineError(f"EASE: the Gram matrix is not positive definite (LAPACK {info})")
    inv, info = lapack.dpotri(chol, lower=False)
    if info != 0:
        raise PipelineError(f"EASE: inverting the Gram matrix failed (LAPACK {info})")
    p = np.triu(inv) + np.triu(inv, 1).T
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / MODEL_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
