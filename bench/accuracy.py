"""Accuracy benchmark: the lists as published, and the rating model, beside baselines and
published anchors.

Two protocols on each shared MovieLens dataset:

- **ranking** (Microsoft Recommenders: per-user stratified 75/25 split, seed 42, k = 10,
  ground truth = all of a user's test items, items seen in training excluded): the 75%
  goes through the train step exactly as a run's ratings do (``train.run``: its own
  held-out split, k-fold CV over every candidate of every family, the final refit on all
  of it), and the model it saves - the one the recommend step would publish - is scored
  on the 25%;
- **rating error**: a random 80/20 split (seed 42); the baselines and the rating model as
  the train step fits them (``train.rating_baselines``, ``train.rating_model``: the
  documented parameters, or its own CV with ``--rating-cv``) on the 80%, scored on the 20%.

Run with ``make bench-accuracy``; prints a markdown table and writes
``bench/results/accuracy.json``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.protocols import ROOT, SEED, K, load, random_split, split_data, stratified_split
from reco import config
from reco.modeling import ranking, train, train_plan
from reco.runs import RunFolder
from reco.runtime import write_json

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


def rating_protocol(spark, df: pd.DataFrame, scale: tuple[float, float], rating_cv: bool) -> dict:
    """The baselines and the rating model as the train step fits them (its CV first with
    ``rating_cv``), on the random 80%, scored on the 20%."""
    d = split_data(spark, *random_split(df), scale)
    out, biases = train.rating_baselines(d.train, d.holdout, d.scale)
    params = config.TrainParams(seed=SEED, rating_cv=rating_cv)
    t0 = time.perf_counter()
    out["model"] = train.rating_model(
        d, train_plan.plan(params).rating_points, params, biases, None
    )
    out["train_seconds"] = time.perf_counter() - t0
    return out


def ranking_protocol(spark, df: pd.DataFrame, scale: tuple[float, float]) -> dict:
    """The training part through ``train.run``, the saved model scored on the test part."""
    tr, te = stratified_split(df)
    run_dir = Path(tempfile.mkdtemp(prefix="reco-bench-run-"))
    tr.to_parquet(RunFolder(run_dir).ratings, index=False)
    write_json(
        RunFolder(run_dir).manifest,
        {"n_ratings": len(tr), "source": {"rating_scale": list(scale)}},
    )
    t0 = time.perf_counter()
    train.run(spark, run_dir, config.TrainParams(top_k=K))
    seconds = time.perf_counter() - t0
    d = split_data(spark, tr, te, scale)
    published = ranking.load(RunFolder(run_dir).model)
    metrics = json.loads((RunFolder(run_dir).metrics).read_text())
    test = te[["user_id", "item_id"]]
    return {
        "published": ranking.evaluate(spark, published, d.train, test, K, d.n_catalogue),
        "model": published.describe(),
        "why": metrics["ranking"]["why"],
        "cv_results": metrics["ranking"]["cv_results"],
        "most_popular": train.popularity_baseline(spark, d.train, d.holdout, K, d.n_catalogue),
        "train_seconds": seconds,
    }


def fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def table(results: dict) -> str:
    lines = [
        "| dataset | system | RMSE | MAE | nDCG@10 | P@10 | train wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rp, kp = r["rating"], r["ranking"]
        model = ranking.Candidate.from_dict(kp["model"]).label
        lines += [
            f"| {name} | **reco** (rating: ALS blend {json.dumps(rp['model']['params'])}; "
            f"published top-N: {model}) | **{fmt(rp['model']['rmse'])}** | "
            f"**{fmt(rp['model']['mae'])}** | **{fmt(kp['published']['ndcg'])}** | "
            f"**{fmt(kp['published']['precision'])}** | "
            f"{rp['train_seconds']:.0f} s rating / {kp['train_seconds']:.0f} s train step |",
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
    parser.add_argument(
        "--rating-cv", action="store_true", help="cross-validate the rating model first"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "accuracy.json")
    args = parser.parse_args(argv)

    from reco.spark import get_spark

    spark = get_spark("reco-bench-accuracy")
    results = {}
    for name in args.datasets.split(","):
        df, scale = load(name)
        print(f"[{name}] rating protocol (random 80/20, seed {SEED}) ...", flush=True)
        rating = rating_protocol(spark, df, scale, args.rating_cv)
        print(f"[{name}] ranking protocol (stratified 75/25, k={K}) ...", flush=True)
        ranked = ranking_protocol(spark, df, scale)
        print(f"[{name}] {ranked['why']}", flush=True)
        results[name] = {"rating": rating, "ranking": ranked}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
