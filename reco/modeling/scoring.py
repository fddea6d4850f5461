"""Top-N scoring: users scored in numpy blocks on the executors against an item side
broadcast once, each user's seen items excluded.

Used by every model that publishes or is evaluated on a top-N: implicit ALS (item
factors), EASE (item-item weights) and the most-popular baseline (one popularity factor).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reco import config
from reco.data.transforms import select_top_n

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

USR, ITM = config.COL_USER, config.COL_ITEM
USERS_PER_BLOCK = 512
TOP_N_SCHEMA = "user_id long, item_id long, rank int, score double"


@dataclass
class ItemSide:
    """What every user is scored against.

    ``factors``: ``matrix`` is items x rank and a user's ``features`` its factor vector.
    ``ease``: ``matrix`` is the items x items weights and a user's ``features`` the ids of
    the items in their history; users with none get the items' ``popularity``.
    """

    kind: str
    item_ids: np.ndarray  # sorted ascending for "ease"
    matrix: np.ndarray
    popularity: np.ndarray | None = None

    def scores(self, features: list[Any]) -> np.ndarray:
        if self.kind == "factors":
            vecs = np.vstack([np.asarray(f, dtype=np.float64) for f in features])
            return vecs @ self.matrix.T
        from scipy import sparse

        rows, cols = [], []
        for r, ids in enumerate(features):
            ids = np.asarray(ids if ids is not None else [], dtype=np.int64)
            pos = np.searchsorted(self.item_ids, ids)
            ok = (pos < len(self.item_ids)) & (
                self.item_ids[np.minimum(pos, len(self.item_ids) - 1)] == ids
            )
            rows.append(np.full(int(ok.sum()), r))
            cols.append(pos[ok])
        r_idx = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c_idx = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        x = sparse.csr_matrix(
            (np.ones(len(r_idx), dtype=np.float32), (r_idx, c_idx)),
            shape=(len(features), len(self.item_ids)),
        )
        out = np.asarray(x @ self.matrix, dtype=np.float64)
        empty = np.asarray(x.sum(axis=1)).ravel() == 0
        if empty.any() and self.popularity is not None:
            out[empty] = self.popularity[None, :]
        return out


def score_batches(
    batches: Iterator[pd.DataFrame], side: ItemSide, n: int
) -> Iterator[pd.DataFrame]:
    for pdf in batches:
        for start in range(0, len(pdf), USERS_PER_BLOCK):
            chunk = pdf.iloc[start : start + USERS_PER_BLOCK]
            scores = side.scores(list(chunk["features"]))
            rated = [np.asarray(r if r is not None else [], dtype=np.int64) for r in chunk["seen"]]
            top_ids, top_scores = select_top_n(scores, rated, side.item_ids, n)
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
    spark: SparkSession, users: DataFrame, side: ItemSide, seen: DataFrame, n: int
) -> DataFrame:
    """Top-``n`` per user of ``users`` (Spark: user_id, features) against ``side``,
    excluding each user's items in ``seen`` (Spark: user_id, item_id)."""
    from pyspark.sql import functions as F

    excluded = seen.groupBy(USR).agg(F.collect_list(F.col(ITM).cast("long")).alias("seen"))
    joined = users.join(excluded, USR, "left")
    bc = spark.sparkContext.broadcast(side)

    def body(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return score_batches(batches, bc.value, n)

    return joined.mapInPandas(body, TOP_N_SCHEMA)


def similar_items(
    spark: SparkSession, item_ids: np.ndarray, item_vecs: np.ndarray, k: int
) -> DataFrame:
    """Top-``k`` neighbours per item by cosine similarity of ``item_vecs`` rows (self
    excluded): Spark frame ``item_id, similar_item_id, rank, score``. Reuses the top-N
    scorer with the unit-length vectors on both sides."""
    from pyspark.sql import functions as F

    norms = np.linalg.norm(item_vecs, axis=1, keepdims=True)
    unit = np.divide(item_vecs, norms, out=np.zeros_like(item_vecs), where=norms > 0)
    ids = item_ids.astype(np.int64)
    sides = spark.createDataFrame(
        pd.DataFrame({USR: ids, "features": list(unit.tolist())}),
        schema=f"{USR} long, features array<double>",
    )
    itself = sides.select(USR, F.col(USR).alias(ITM))
    return top_n(spark, sides, ItemSide("factors", ids, unit), itself, k).select(
        F.col(USR).alias(ITM),
        F.col(ITM).alias("similar_item_id"),
        config.COL_RANK,
        config.COL_SCORE,
    )


def cosine_neighbours(item_ids: np.ndarray, gram: np.ndarray, k: int) -> pd.DataFrame:
    """Top-``k`` neighbours per item by item-item cosine ``G_ij / sqrt(G_ii G_jj)`` of a
    co-occurrence (Gram) matrix, self excluded; computed on the driver in row blocks."""
    d = np.sqrt(np.clip(np.diag(gram), 0, None))
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    ids = item_ids.astype(np.int64)
    frames = []
    for start in range(0, len(ids), USERS_PER_BLOCK):
        rows = slice(start, start + USERS_PER_BLOCK)
        sims = gram[rows] * inv[rows, None] * inv[None, :]
        top_ids, top_scores = select_top_n(sims, [np.array([i]) for i in ids[rows]], ids, k)
        frames.append(
            pd.DataFrame(
                {
                    ITM: np.repeat(ids[rows], k),
                    "similar_item_id": top_ids.ravel(),
                    config.COL_RANK: np.tile(np.arange(1, k + 1, dtype=np.int32), len(top_ids)),
                    config.COL_SCORE: top_scores.ravel(),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out[out["similar_item_id"] >= 0].reset_index(drop=True)


# ----------------------------------------------------------------------------------------
# "Because you liked X": the reason for each recommendation
# ----------------------------------------------------------------------------------------
BECAUSE_SCHEMA = "user_id long, item_id long, because_item_id long, because_score double"


@dataclass
class ItemCosine:
    """Item-item cosine similarity of a model's items, looked up by item id.

    ``vectors``: ``matrix`` holds unit-length item vectors (ALS factors), a cosine is a dot
    product. ``gram``: ``matrix`` is the items' co-occurrence (Gram) matrix normalised to
    ``G_ij / sqrt(G_ii G_jj)`` (EASE), a cosine is a lookup.
    """

    kind: str
    item_ids: np.ndarray  # ascending
    matrix: np.ndarray

    @classmethod
    def of(cls, item_ids: np.ndarray, matrix: np.ndarray, kind: str) -> ItemCosine:
        order = np.argsort(item_ids, kind="stable")
        ids = np.asarray(item_ids, dtype=np.int64)[order]
        m = np.asarray(matrix, dtype=np.float64)[order]
        if kind == "vectors":
            norms = np.linalg.norm(m, axis=1, keepdims=True)
            m = np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
        elif kind == "gram":
            m = m[:, order]
            d = np.sqrt(np.clip(np.diag(m), 0, None))
            inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
            m = m * inv[:, None] * inv[None, :]
        else:
            raise ValueError(f"unknown similarity kind {kind!r}: expected vectors or gram")
        return cls(kind, ids, m)

    def positions(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """Row of each id in ``matrix`` and whether the model knows the id."""
        ids = np.asarray(ids if ids is not None else [], dtype=np.int64)
        pos = np.searchsorted(self.item_ids, ids)
        known = (pos < len(self.item_ids)) & (
            self.item_ids[np.minimum(pos, max(len(self.item_ids) - 1, 0))] == ids
        )
        return pos, known

    def between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosines of the items at rows ``a`` (rows) and rows ``b`` (columns)."""
        if self.kind == "vectors":
            return self.matrix[a] @ self.matrix[b].T
        return self.matrix[np.ix_(a, b)]

    def closest(self, liked: DataFrame, recommended: DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """For each recommended item, the liked item closest to it and their cosine;
        ``-1`` / ``nan`` where the user has no liked item the model knows."""
        liked_ids = np.asarray(liked if liked is not None else [], dtype=np.int64)
        rec_ids = np.asarray(recommended, dtype=np.int64)
        best = np.full(len(rec_ids), -1, dtype=np.int64)
        score = np.full(len(rec_ids), np.nan)
        pa, ka = self.positions(liked_ids)
        pb, kb = self.positions(rec_ids)
        if not ka.any() or not kb.any():
            return best, score
        sims = self.between(pa[ka], pb[kb])  # known liked x known recommended
        # A recommended item is never its own reason (it is excluded from the list anyway).
        sims = np.where(liked_ids[ka][:, None] == rec_ids[kb][None, :], -np.inf, sims)
        # Ties: the lower item id (liked ids sorted first, argmax keeps the first).
        order = np.argsort(liked_ids[ka], kind="stable")
        sims, candidates = sims[order], liked_ids[ka][order]
        top = np.argmax(sims, axis=0)
        top_score = sims[top, np.arange(sims.shape[1])]
        found = np.isfinite(top_score)
        best[np.flatnonzero(kb)[found]] = candidates[top[found]]
        score[np.flatnonzero(kb)[found]] = top_score[found]
        return best, score


def because_batches(batches: Iterator[pd.DataFrame], cosine: ItemCosine) -> Iterator[pd.DataFrame]:
    """Per user (``user_id``, ``items`` = the recommended ids, ``liked`` = liked ids): one
    row per recommended item with the liked item closest to it (``BECAUSE_SCHEMA``)."""
    for pdf in batches:
        users, items, because, scores = [], [], [], []
        for user, recs, liked in zip(pdf[USR], pdf["items"], pdf["liked"], strict=True):
            recs = np.asarray(recs, dtype=np.int64)
            best, score = cosine.closest(liked, recs)
            users.append(np.full(len(recs), user, dtype=np.int64))
            items.append(recs)
            because.append(best)
            scores.append(score)
        if not users:
            continue
        best_ids = np.concatenate(because)
        yield pd.DataFrame(
            {
                USR: np.concatenate(users),
                ITM: np.concatenate(items),
                "because_item_id": pd.Series(best_ids, dtype="Int64").mask(best_ids < 0),
                "because_score": np.concatenate(scores),
            }
        )
