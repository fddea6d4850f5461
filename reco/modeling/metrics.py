"""Model-quality metrics: rating error and top-N ranking quality. Pure pandas/numpy.

Ranking metrics follow the Microsoft Recommenders definitions (``python_evaluation``), so
numbers compare with their published benchmark: relevance is binary (a held-out item is
relevant), only users present in both the ground truth and the recommendations count,
and the ground truth is *all* of a user's held-out items.

- precision@k = hits in the top k / k
- recall@k    = hits in the top k / number of held-out items
- nDCG@k      = sum over hits of 1/log2(rank+1), divided by the ideal DCG of
                min(k, held-out items) hits
- MAP@k       = sum of precision@rank at each hit rank, divided by min(k, held-out items)

Rating error: RMSE, MAE, and MPE (mean percentage error, ``100 * mean((actual - predicted)
/ actual)``; positive means the model under-predicts; ratings are never 0 on any scale we
accept, so the division is safe).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reco import config


def _errors(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if a.shape != p.shape:
        raise ValueError(f"actual and predicted differ in length: {a.shape} vs {p.shape}")
    if a.size == 0:
        raise ValueError("no ratings to score")
    return a, p


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = _errors(actual, predicted)
    return float(np.sqrt(np.mean((a - p) ** 2)))


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = _errors(actual, predicted)
    return float(np.mean(np.abs(a - p)))


def mpe(actual: np.ndarray, predicted: np.ndarray) -> float:
    a, p = _errors(actual, predicted)
    if np.any(a == 0):
        raise ValueError("MPE is undefined for a rating of 0")
    return float(100.0 * np.mean((a - p) / a))


def rating_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "rmse": rmse(actual, predicted),
        "mae": mae(actual, predicted),
        "mpe": mpe(actual, predicted),
    }


def ranking_metrics(
    truth: pd.DataFrame,
    recs: pd.DataFrame,
    k: int = config.DEFAULT_TOP_N,
    *,
    n_catalogue: int | None = None,
    n_users: int | None = None,
    col_user: str = config.COL_USER,
    col_item: str = config.COL_ITEM,
    col_rank: str = config.COL_RANK,
) -> dict[str, float]:
    """precision/recall/nDCG/MAP@k, catalogue coverage and share of users served.

    ``truth``: held-out (user, item) pairs. ``recs``: (user, item, rank) with rank 1 best.
    ``n_catalogue``: items that could have been recommended (for coverage);
    ``n_users``: users who should have been served (default: users in ``truth``).
    """
    for name, df, cols in (
        ("truth", truth, (col_user, col_item)),
        ("recs", recs, (col_user, col_item, col_rank)),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{name} needs column(s) {missing}; got {list(df.columns)}")
    if k < 1:
        raise ValueError("k must be >= 1")
    top = recs[recs[col_rank] <= k][[col_user, col_item, col_rank]]
    truth_pairs = truth[[col_user, col_item]].drop_duplicates()
    n_true = truth_pairs.groupby(col_user).size().rename("n_true")
    users = n_true.index.intersection(top[col_user].unique())
    if len(users) == 0:
        raise ValueError("no user has both held-out items and recommendations")
    hits = top.merge(truth_pairs, on=[col_user, col_item], how="inner")
    hits = hits[hits[col_user].isin(users)].sort_values([col_user, col_rank])
    hits["gain"] = 1.0 / np.log2(hits[col_rank] + 1.0)
    hits["hit_no"] = hits.groupby(col_user).cumcount() + 1
    hits["prec_at_hit"] = hits["hit_no"] / hits[col_rank]
    per_user = pd.DataFrame(index=users)
    per_user["n_true"] = n_true.reindex(users)
    grouped = hits.groupby(col_user)
    per_user["hits"] = grouped.size().reindex(users).fillna(0)
    per_user["dcg"] = grouped["gain"].sum().reindex(users).fillna(0.0)
    per_user["ap_sum"] = grouped["prec_at_hit"].sum().reindex(users).fillna(0.0)
    ideal_n = np.minimum(per_user["n_true"].to_numpy(), k).astype(int)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    per_user["idcg"] = discounts[ideal_n - 1]
    served = recs[col_user].nunique()
    return {
        "k": k,
        "precision": float((per_user["hits"] / k).mean()),
        "recall": float((per_user["hits"] / per_user["n_true"]).mean()),
        "ndcg": float((per_user["dcg"] / per_user["idcg"]).mean()),
        "map": float((per_user["ap_sum"] / ideal_n).mean()),
        "users_evaluated": int(len(users)),
        "catalogue_coverage": (
            float(top[col_item].nunique() / n_catalogue) if n_catalogue else float("nan")
        ),
        "user_coverage": float(min(1.0, served / (n_users or truth_pairs[col_user].nunique()))),
    }
