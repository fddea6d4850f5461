"""The ranking models that publish the top-N, and their cross-validation.

Two model families compete in the same k-fold cross-validation; the one with the best
mean nDCG@k across the folds is published:

- **als** (the default path): implicit-feedback ALS (Spark MLlib) on the rating signals,
  confidence ``1 + alpha * rating``. Spark multiplies ``regParam`` by each user's and
  item's number of ratings (ALS-WR), so a fit on a part of the data (a CV fold, the
  held-out refit) would penalise each user less than the final fit on all of it, and the
  CV would favour over-regularised candidates (measured: ``bench/grid_search.py``). So a
  candidate's ``regParam`` is the value of the fit on *all* the run's ratings, and a fit
  on a fraction ``f`` of them uses ``regParam / f``: every fit gives a user the penalty
  the published model gives them.
- **ease**: EASE (Steck, 2019), a closed-form item-item model. The item-item Gram matrix
  ``X^T X`` of the binary user x item matrix is computed by Spark (MLlib
  ``RowMatrix.computeGramianMatrix``); the weights ``B = I - P / diag(P)`` with
  ``P = (G + lambda I)^-1`` are solved on the driver. Its memory and time grow with the
  square and the cube of the catalogue, so it is bounded: only the ``EASE_MAX_ITEMS``
  most-rated items (default 3,000; ``RECO_EASE_MAX_ITEMS``) enter it, and it never
  recommends the others. At 3,000 items ``B`` is 36 MB in float32.

Both score users in numpy blocks on the executors against an item side broadcast once
(:class:`ItemSide`), and exclude each user's seen items.

Folds are per user and hash-based (``models.with_folds``): each user's ratings are spread
over the folds, the same way in every run. Each fold's two parts are cached once and
shared by every candidate; candidates run in parallel threads (``CV_PARALLELISM``).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reco import config
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.modeling import metrics, models
from reco.modeling.scoring import ItemSide, top_n
from reco.runs import MODEL_META

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

USR, ITM, RAT = config.COL_USER, config.COL_ITEM, config.COL_RATING
FAMILIES = ("als", "ease")
KEYS = {"als": ("rank", "regParam", "alpha", "maxIter"), "ease": ("lambda",)}
EASE_MAX_ITEMS = int(os.environ.get("RECO_EASE_MAX_ITEMS", "3000"))
MAX_CV_THREADS = 4


def cv_threads(parallelism: int) -> int:
    """Candidate fits run at once: one per two cores, at least 2 (a fit leaves cores idle
    while its driver schedules), at most ``MAX_CV_THREADS``; ``RECO_CV_PARALLELISM``
    overrides."""
    if os.environ.get("RECO_CV_PARALLELISM"):
        return max(1, int(os.environ["RECO_CV_PARALLELISM"]))
    return max(2, min(MAX_CV_THREADS, parallelism // 2))


# ----------------------------------------------------------------------------------------
# candidates
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One model configuration: a family and its parameters."""

    family: str
    params: dict[str, float | int] = field(hash=False)

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, **self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        family = d.get("family", "als")
        if family not in FAMILIES:
            raise PipelineError(f"unknown model family {family!r}: use one of {FAMILIES}")
        return cls(family, {k: d[k] for k in KEYS[family] if k in d})

    @property
    def label(self) -> str:
        return self.family + " " + " ".join(f"{k}={v:g}" for k, v in self.params.items())


def grid_candidates(family: str, grid: dict[str, list[float | int]]) -> list[Candidate]:
    """Every combination of a family's grid, in a stable order."""
    keys = KEYS[family]
    missing = [k for k in keys if not grid.get(k)]
    if missing:
        raise PipelineError(f"the {family} grid has no values for {missing}")
    return [
        Candidate(family, dict(zip(keys, combo, strict=True)))
        for combo in itertools.product(*(grid[k] for k in keys))
    ]


# ----------------------------------------------------------------------------------------
# the two families
# ----------------------------------------------------------------------------------------
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


def load(path: Path) -> Ranker:
    """The ranking model saved by the train step in ``path``."""
    meta_path = path / MODEL_META
    if not meta_path.exists():
        raise PipelineError(f"no trained model in {path}: run the train step first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    cand = Candidate.from_dict(meta)
    return (AlsRanker if cand.family == "als" else EaseRanker).load(path, cand.params)


def fit(
    spark: SparkSession,
    signals: DataFrame,
    cand: Candidate,
    seed: int,
    blocks: int,
    gram: EaseGram | None = None,
    share: float = 1.0,
) -> Ranker:
    """Fit one candidate on ``signals``, ``share`` of the run's ratings (ALS rescales its
    regParam by it, see the module doc); EASE reuses ``gram`` when given."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if cand.family == "als":
        return AlsRanker.fit(signals, cand.params, seed, blocks, share)
    return EaseRanker.fit(gram or ease_gram(spark, signals), float(cand.params["lambda"]))


def evaluate(
    spark: SparkSession,
    ranker: Ranker,
    signals: DataFrame,
    truth: pd.DataFrame,
    k: int,
    n_catalogue: int,
    users: DataFrame | None = None,
) -> dict[str, float]:
    """Ranking metrics of ``ranker``'s top-``k`` against held-out ``truth`` pairs; items in
    ``signals`` (what it was fitted on) are excluded."""
    recs = ranker.recommend(spark, signals, signals, k, users=users)
    got = recs.select(USR, ITM, config.COL_RANK).toPandas()
    return metrics.ranking_metrics(truth, got, k, n_catalogue=n_catalogue)


# ----------------------------------------------------------------------------------------
# cross-validation
# ----------------------------------------------------------------------------------------
@dataclass
class Fold:
    index: int
    fit_part: DataFrame  # cached
    share: float  # of the ratings the candidates' parameters are for
    truth: pd.DataFrame  # held-out (user, item) pairs of the fold
    users: DataFrame  # the fold's held-out users
    _gram: EaseGram | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def gram(self, spark: SparkSession) -> EaseGram:
        with self._lock:
            if self._gram is None:
                self._gram = ease_gram(spark, self.fit_part)
            return self._gram


def make_folds(train: DataFrame, k: int, seed: int, n_total: int | None = None) -> list[Fold]:
    """Per-user hash folds of ``train``, each part cached once; ``n_total``: the ratings
    the candidates' parameters are for (default: ``train``'s)."""
    from pyspark.sql import functions as F

    folded = models.with_folds(train, k, seed).cache()
    out = []
    for f in range(k):
        fit_part = folded.where(F.col("_fold") != f).drop("_fold").cache()
        held = folded.where(F.col("_fold") == f).select(USR, ITM)
        truth = held.toPandas()
        users = held.select(USR).distinct().cache()
        n_fit = fit_part.count()
        out.append(Fold(f, fit_part, n_fit / (n_total or n_fit + len(truth)), truth, users))
    folded.unpersist()
    return out


def cross_validate(
    spark: SparkSession,
    train: DataFrame,
    candidates: list[Candidate],
    folds: int,
    seed: int,
    k: int,
    n_catalogue: int,
    blocks: int,
    run_dir: Path | None = None,
    stage: str = "train",
    n_total: int | None = None,
) -> list[dict[str, Any]]:
    """Per-fold nDCG@k (and precision@k) of every candidate; sorted as given.

    ``n_total``: the ratings the candidates' parameters are for (the final fit's; default
    ``train``'s). Each (candidate, fold) fit is its own timed phase
    ``cv_<family>_c<i>_fold<f>``.
    """
    fold_list = make_folds(train, folds, seed, n_total)

    def one(job: tuple[int, Candidate, Fold]) -> tuple[int, int, dict[str, float]]:
        i, cand, fold = job
        with timer(
            run_dir,
            stage,
            f"cv_{cand.family}_c{i}_fold{fold.index}",
            fold=fold.index,
            **cand.as_dict(),
        ) as t:
            gram = fold.gram(spark) if cand.family == "ease" else None
            ranker = fit(spark, fold.fit_part, cand, seed, blocks, gram, fold.share)
            m = evaluate(spark, ranker, fold.fit_part, fold.truth, k, n_catalogue, fold.users)
            t.update(ndcg=m["ndcg"], precision=m["precision"])
        return i, fold.index, m

    # EASE candidates of a fold share its Gram matrix: queue them after the ALS fits so the
    # first EASE job of a fold computes it while the other thread fits.
    jobs = [(i, c, f) for f in fold_list for i, c in enumerate(candidates) if c.family == "als"]
    jobs += [(i, c, f) for f in fold_list for i, c in enumerate(candidates) if c.family != "als"]
    scores: dict[tuple[int, int], dict[str, float]] = {}
    try:
        from reco.spark import parallelism

        with ThreadPoolExecutor(max_workers=cv_threads(parallelism(spark))) as pool:
            for i, f, m in pool.map(one, jobs):
                scores[(i, f)] = m
    finally:
        for fold in fold_list:
            fold.fit_part.unpersist()
            fold.users.unpersist()
    return cv_table(candidates, folds, scores)


def cv_table(
    candidates: list[Candidate], folds: int, scores: dict[tuple[int, int], dict[str, float]]
) -> list[dict[str, Any]]:
    """Each candidate's parameters with its mean, spread and per-fold nDCG and precision,
    from ``scores`` keyed by (candidate, fold)."""
    results = []
    for i, cand in enumerate(candidates):
        ndcgs = [scores[(i, f)]["ndcg"] for f in range(folds)]
        precs = [scores[(i, f)]["precision"] for f in range(folds)]
        results.append(
            {
                **cand.as_dict(),
                "mean_ndcg": statistics.fmean(ndcgs),
                "std_ndcg": statistics.pstdev(ndcgs),
                "mean_precision": statistics.fmean(precs),
                "fold_ndcg": ndcgs,
                "fold_precision": precs,
            }
        )
    return results


def best_of(results: list[dict[str, Any]]) -> Candidate:
    """The candidate with the best mean nDCG (ties: the earlier one, ALS before EASE)."""
    top = max(enumerate(results), key=lambda ir: (ir[1]["mean_ndcg"], -ir[0]))[1]
    return Candidate.from_dict(top)


def catalogue_note(cand: Candidate, n_items: int) -> str | None:
    """Why EASE cannot recommend some items, when the catalogue is above its cap."""
    if cand.family == "ease" and n_items > EASE_MAX_ITEMS:
        return (
            f"EASE scores the {EASE_MAX_ITEMS:,} most-rated of {n_items:,} items "
            f"(RECO_EASE_MAX_ITEMS); the others are not recommended"
        )
    return None
