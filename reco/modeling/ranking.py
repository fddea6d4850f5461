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
(``scoring.ItemSide``), and exclude each user's seen items. The fitted models, one class per
family, are in ``rankers.py``; this module fits, loads and cross-validates them.

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

import pandas as pd

from reco import config
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.modeling import metrics, models
from reco.modeling.rankers import (
    EASE_MAX_ITEMS,
    AlsRanker,
    EaseGram,
    EaseRanker,
    Ranker,
    ease_gram,
)
from reco.runs import MODEL_META

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

USR, ITM, RAT = config.COL_USER, config.COL_ITEM, config.COL_RATING
FAMILIES = ("als", "ease")
KEYS = {"als": ("rank", "regParam", "alpha", "maxIter"), "ease": ("lambda",)}
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
# one candidate: fit, load, evaluate
# ----------------------------------------------------------------------------------------
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
