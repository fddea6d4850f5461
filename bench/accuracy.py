"""Accuracy benchmark: this project's models beside their baselines and published anchors.

Two protocols on each shared MovieLens dataset:

- rating error: a random 80/20 split (numpy, seed 42); the rating model is tuned by the
  pipeline's own k-fold CV (default grid, 3 folds) on the 80% and scored on the 20%;
- ranking: the Microsoft Recommenders protocol: a per-user stratified 75/25 split
  (seed 42), k = 10, ground truth = all of a user's held-out items, items seen in
  training excluded; the ranking model's parameters are chosen on a validation split of
  the training part only (never on the test part).

Run with ``make bench-accuracy``; prints a markdown table and writes
``bench/results/accuracy.json``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spark_jobs import config, models  # noqa: E402
from spark_jobs.train import (  # noqa: E402
    GRID_KEYS,
    RANKING_GRID_KEYS,
    cross_validate,
    grid_points,
    ranking_scores,
    rating_scores,
)

DATASETS = ROOT.parent / "shared" / "datasets"
SEED = 42
K = 10

# Published results on ML-100K (../shared/datasets/README.md); protocols differ, see there.
ANCHORS_100K = [
    ("Spark ALS (MS Recommenders, 75/25 stratified)", 0.9629, 0.7471, 0.0466, 0.0496),
    ("SVD (MS Recommenders, 75/25 stratified)", 0.9387, 0.7427, 0.0959, 0.0912),
    ("SAR (MS Recommenders, 75/25 stratified)", None, None, 0.388, 0.334),
    ("BiVAE (MS Recommenders, 75/25 stratified)", None, None, 0.475, 0.412),
    ("Surprise SVD (5-fold CV)", 0.934, 0.737, None, None),
    ("Surprise SVD++ (5-fold CV)", 0.919, 0.721, None, None),
    ("Surprise BaselineOnly (5-fold CV)", 0.944, 0.748, None, None),
    ("GLocal-K (u1 split, best published)", 0.8889, 0.6950, None, None),
]


def load(name: str) -> tuple[pd.DataFrame, tuple[float, float]]:
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
    rng = np.random.default_rng(SEED)
    train, test = [], []
    for _, g in df.groupby("user_id", sort=True):
        idx = rng.permutation(len(g))
        cut = int(round(frac * len(g)))
        train.append(g.iloc[idx[:cut]])
        test.append(g.iloc[idx[cut:]])
    return pd.concat(train), pd.concat(test)


def to_spark(spark, df: pd.DataFrame):
    """Stage through Parquet, as the pipeline does: a frame built from pandas would carry
    the whole dataset inside every task of every ALS job."""
    import tempfile

    from spark_jobs.transforms import to_als_types

    path = Path(tempfile.mkdtemp(prefix="reco-bench-")) / "part.parquet"
    df[["user_id", "item_id", "rating"]].to_parquet(path, index=False)
    return to_als_types(spark.read.parquet(str(path))).cache()


def rating_protocol(spark, df: pd.DataFrame, scale: tuple[float, float], folds: int) -> dict:
    from pyspark.sql import functions as F

    tr, te = random_split(df)
    train, test = to_spark(spark, tr), to_spark(spark, te)
    mu, bu, bi = models.fit_biases(train)
    base = models.with_baseline(test, mu, bu, bi)
    out = {
        "global_mean": models.spark_rating_metrics(test, F.lit(mu)),
        "bias": models.spark_rating_metrics(base, models.clip_column(F.col("_base"), scale)),
    }
    t0 = time.perf_counter()
    cv = cross_validate(
        models.with_folds(train, folds, SEED).cache(),
        grid_points(config.DEFAULT_GRID, GRID_KEYS),
        folds,
        SEED,
        scale,
    )
    best = {k: min(cv, key=lambda r: r["cv_rmse"])[k] for k in GRID_KEYS}
    out["model"] = rating_scores(spark, train, test, best, SEED, scale)
    out["model"]["params"] = best
    out["train_seconds"] = time.perf_counter() - t0
    return out


def ranking_protocol(spark, df: pd.DataFrame) -> dict:
    tr, te = stratified_split(df)
    train, test = to_spark(spark, tr), to_spark(spark, te)
    n_catalogue = int(tr["item_id"].nunique())
    out = {
        "most_popular": models.ranking_metrics_spark(
            models.most_popular_top_n(spark, train, test, K), test, K, n_catalogue
        )
    }
    t0 = time.perf_counter()
    fit_part, validation = models.split_by_user(train, 0.2, SEED + 7)
    fit_part, validation = fit_part.cache(), validation.cache()
    selection = [
        {
            **p,
            "validation_ndcg": ranking_scores(spark, fit_part, validation, p, SEED, K, n_catalogue)[
                "ndcg"
            ],
        }
        for p in grid_points(config.DEFAULT_RANKING_GRID, RANKING_GRID_KEYS)
    ]
    best = {k: max(selection, key=lambda r: r["validation_ndcg"])[k] for k in RANKING_GRID_KEYS}
    out["model"] = ranking_scores(spark, train, test, best, SEED, K, n_catalogue)
    out["model"]["params"] = best
    out["train_seconds"] = time.perf_counter() - t0
    return out


def fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def table(results: dict) -> str:
    lines = [
        "| dataset | system | RMSE | MAE | nDCG@10 | P@10 | train wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rp, kp = r["rating"], r["ranking"]
        lines += [
            f"| {name} | **reco** (rating: bias-aware ALS blend; top-N: implicit ALS) | "
            f"**{fmt(rp['model']['rmse'])}** | **{fmt(rp['model']['mae'])}** | "
            f"**{fmt(kp['model']['ndcg'])}** | **{fmt(kp['model']['precision'])}** | "
            f"{rp['train_seconds']:.0f} s CV+refit / {kp['train_seconds']:.0f} s selection+fit |",
            f"| {name} | global mean (baseline) | {fmt(rp['global_mean']['rmse'])} | "
            f"{fmt(rp['global_mean']['mae'])} | | | |",
            f"| {name} | user+item bias (baseline) | {fmt(rp['bias']['rmse'])} | "
            f"{fmt(rp['bias']['mae'])} | | | |",
            f"| {name} | most popular (baseline) | | | {fmt(kp['most_popular']['ndcg'])} | "
            f"{fmt(kp['most_popular']['precision'])} | |",
        ]
        if name == "ml-100k":
            lines += [
                f"| ml-100k | {a} (published) | {fmt(b)} | {fmt(c)} | {fmt(d)} | {fmt(e)} | |"
                for a, b, c, d, e in ANCHORS_100K
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--folds", type=int, default=config.DEFAULT_CV_FOLDS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "accuracy.json")
    args = parser.parse_args(argv)

    from spark_jobs.spark import get_spark

    spark = get_spark("reco-bench-accuracy")
    results = {}
    for name in args.datasets.split(","):
        df, scale = load(name)
        print(f"[{name}] rating protocol (random 80/20, seed {SEED}) ...", flush=True)
        rating = rating_protocol(spark, df, scale, args.folds)
        print(f"[{name}] ranking protocol (stratified 75/25, k={K}) ...", flush=True)
        ranking = ranking_protocol(spark, df)
        results[name] = {"rating": rating, "ranking": ranking}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
