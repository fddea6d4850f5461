"""How the default ranking grid was chosen: a wide sweep, scored two ways.

For each shared MovieLens dataset, on the training part of the Microsoft Recommenders
split (per-user stratified 75/25, seed 42):

- **CV**: the train step's own k-fold cross-validation (``train.ranking_cv``), mean
  and spread of nDCG@10 over the folds, and the seconds per fit;
- **test**: the same candidate refit on the whole training part and scored on the 25%
  test part (``train.ranking_holdout``: nDCG@10, P@10) - what a published list of that
  candidate would score; most popular is the train step's baseline
  (``train.popularity_baseline``).

Stage 1 sweeps implicit ALS's regularisation x confidence at a fixed rank; stage 2 sweeps
rank x iterations at stage 1's best pair; EASE sweeps lambda. A good default grid puts
its candidates where CV and test agree, at a cost the run can afford.

    .venv/bin/python -m bench.grid_search [--datasets ml-100k,ml-latest-small]

Writes ``bench/results/grid_search.json`` and prints a markdown table. Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.protocols import ROOT, SEED, K, load, split_data, stratified_split
from reco.instrumentation.timing import read_timings
from reco.modeling import ranking, train, train_data
from reco.modeling.ranking import Candidate

STAGE1 = {"rank": [32], "regParam": [0.05, 0.1, 0.2, 0.3, 0.5], "alpha": [0.25, 0.5, 1.0, 2.0]}
STAGE2 = {"rank": [16, 32, 64], "maxIter": [5, 8, 12]}
EASE = {"lambda": [100.0, 200.0, 300.0, 500.0, 800.0, 1200.0]}
MAX_ITER = 8
FOLDS = 3


def sweep(spark, d: train_data.Data, cands: list[Candidate]) -> list:
    """The train step's ranking CV (``train.ranking_cv``) of ``cands`` on the training
    part, then each one refit on all of it and scored on the test part, as the train step
    scores its winner on its held-out part (``train.ranking_holdout``)."""
    run_dir = Path(tempfile.mkdtemp(prefix="reco-grid-"))
    cv = train.ranking_cv(spark, d, cands, FOLDS, SEED, K, run_dir)
    fit_seconds: dict[str, list[float]] = {}
    for rec in read_timings(run_dir):
        if rec["phase"].startswith("cv_"):  # one per (candidate, fold) fit
            label = Candidate.from_dict(rec["details"]).label
            fit_seconds.setdefault(label, []).append(rec["seconds"])
    out = []
    for cand, res in zip(cands, cv, strict=True):
        t0 = time.perf_counter()
        m = train.ranking_holdout(spark, d, cand, SEED, K)
        out.append(
            {
                **res,
                "cv_seconds_per_fit": sum(fit_seconds[cand.label]) / len(fit_seconds[cand.label]),
                "test_ndcg": m["ndcg"],
                "test_precision": m["precision"],
                "test_fit_and_score_seconds": time.perf_counter() - t0,
            }
        )
        print(
            f"  {cand.label:48} cv {res['mean_ndcg']:.4f} +/- {res['std_ndcg']:.4f}  "
            f"test {m['ndcg']:.4f} / {m['precision']:.4f}",
            flush=True,
        )
    return out


def run_dataset(spark, name: str) -> list[dict]:
    df, scale = load(name)
    d = split_data(spark, *stratified_split(df), scale)
    print(f"[{name}] stage 1: ALS regParam x alpha at rank 32", flush=True)
    stage1 = ranking.grid_candidates("als", {**STAGE1, "maxIter": [MAX_ITER]})
    rows = [{"stage": 1, **r} for r in sweep(spark, d, stage1)]
    best = ranking.best_of(rows).params
    print(f"[{name}] stage 2: rank x maxIter at {best['regParam']}/{best['alpha']}", flush=True)
    stage2 = ranking.grid_candidates(
        "als", {**STAGE2, "regParam": [best["regParam"]], "alpha": [best["alpha"]]}
    )
    rows += [{"stage": 2, **r} for r in sweep(spark, d, stage2)]
    print(f"[{name}] EASE lambda", flush=True)
    ease = ranking.grid_candidates("ease", EASE)
    rows += [{"stage": 3, **r} for r in sweep(spark, d, ease)]
    popular = train.popularity_baseline(spark, d.train, d.holdout, K, d.n_catalogue)
    rows.append({"stage": 0, "family": "most_popular", "test_ndcg": popular["ndcg"]})
    return rows


def table(results: dict[str, list[dict]]) -> str:
    lines = [
        "| dataset | candidate | CV nDCG@10 (sd) | s/fit | test nDCG@10 | test P@10 |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        for r in rows:
            if r["family"] == "most_popular":
                lines.append(f"| {name} | most popular | | | {r['test_ndcg']:.4f} | |")
                continue
            label = Candidate.from_dict(r).label
            lines.append(
                f"| {name} | {label} | {r['mean_ndcg']:.4f} ({r['std_ndcg']:.4f}) | "
                f"{r['cv_seconds_per_fit']:.1f} | {r['test_ndcg']:.4f} | "
                f"{r['test_precision']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "grid_search.json")
    args = parser.parse_args(argv)

    from reco.spark import get_spark

    spark = get_spark("reco-bench-grid")
    results = {name: run_dataset(spark, name) for name in args.datasets.split(",")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
