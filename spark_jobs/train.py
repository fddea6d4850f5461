"""Train: Spark ALS with k-fold cross-validation, scored on a held-out split.

1. Split the run's ratings into train / held-out (seeded random split).
2. k-fold cross-validation over the grid (rank x regParam x maxIter) on the train part.
3. Score the best model on the held-out part: RMSE and MAE (predictions clipped to the
   rating scale), beside the global-mean baseline.
4. Refit the best parameters on all ratings and save the model for the recommend step.

Writes ``metrics.json`` and ``model/`` into the run folder.

    spark-submit spark_jobs/train.py --run-dir var/lake/runs/R [--folds 3] [--grid JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spark_jobs import config
from spark_jobs.errors import PipelineError
from spark_jobs.runtime import main_for, read_json, run_dir_arg, write_json
from spark_jobs.timing import timer
from spark_jobs.transforms import to_als_types

STAGE = "train"
GRID_KEYS = ("rank", "regParam", "maxIter")


def parse_grid(text: str | None) -> dict[str, list[float | int]]:
    """A JSON object ``{"rank": [...], "regParam": [...], "maxIter": [...]}``; missing keys
    take the default grid's values."""
    grid = dict(config.DEFAULT_GRID)
    if not text:
        return grid
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"--grid is not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(given, dict) or set(given) - set(GRID_KEYS):
        raise PipelineError(f"--grid must be a JSON object with keys among {GRID_KEYS}: {text!r}")
    for key, values in given.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise PipelineError(f"--grid {key} has no values")
        grid[key] = values
    return grid


def build_als(seed: int, **params: Any) -> Any:
    from pyspark.ml.recommendation import ALS

    return ALS(
        userCol=config.COL_USER,
        itemCol=config.COL_ITEM,
        ratingCol=config.COL_RATING,
        coldStartStrategy="drop",
        nonnegative=False,
        checkpointInterval=5,
        seed=seed,
        **params,
    )


def clipped_errors(predictions: Any, scale: tuple[float, float]) -> dict[str, float]:
    """RMSE and MAE of predictions clipped to the rating scale."""
    from pyspark.sql import functions as F

    lo, hi = scale
    pred = F.least(F.greatest(F.col(config.COL_PREDICTION), F.lit(lo)), F.lit(hi))
    err = pred - F.col(config.COL_RATING)
    row = predictions.agg(
        F.sqrt(F.avg(err * err)).alias("rmse"),
        F.avg(F.abs(err)).alias("mae"),
        F.count("*").alias("n"),
    ).first()
    return {"rmse": float(row["rmse"]), "mae": float(row["mae"]), "n": int(row["n"])}


def run(spark: Any, run_dir: Path, params: config.TrainParams) -> dict[str, Any]:
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
    from pyspark.sql import functions as F

    manifest = read_json(run_dir / config.RUN_MANIFEST)
    scale = tuple(manifest["source"]["rating_scale"])
    with timer(run_dir, STAGE, "read") as t:
        ratings = to_als_types(spark.read.parquet(str(run_dir / config.RUN_RATINGS))).cache()
        n = ratings.count()
        t["rows"] = n
    if n < 10 * params.folds:
        raise PipelineError(
            f"only {n} ratings: too few to cross-validate with {params.folds} folds"
        )

    train, test = ratings.randomSplit(
        [1 - params.holdout_fraction, params.holdout_fraction], seed=params.seed
    )
    train = train.cache()
    als = build_als(params.seed)
    builder = ParamGridBuilder()
    for key in GRID_KEYS:
        builder = builder.addGrid(als.getParam(key), params.grid[key])
    grid = builder.build()
    evaluator = RegressionEvaluator(
        metricName="rmse", labelCol=config.COL_RATING, predictionCol=config.COL_PREDICTION
    )
    cv = CrossValidator(
        estimator=als,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=params.folds,
        seed=params.seed,
        parallelism=2,
    )
    with timer(run_dir, STAGE, "cross_validation", folds=params.folds, candidates=len(grid)) as t:
        cv_model = cv.fit(train)
        t["fits"] = params.folds * len(grid) + 1
    cv_results = [
        {**{p.name: v for p, v in pm.items()}, "cv_rmse": float(m)}
        for pm, m in zip(grid, cv_model.avgMetrics, strict=True)
    ]
    best_idx = min(range(len(cv_results)), key=lambda i: cv_results[i]["cv_rmse"])
    best = {k: cv_results[best_idx][k] for k in GRID_KEYS}

    with timer(run_dir, STAGE, "holdout_scoring") as t:
        predictions = cv_model.bestModel.transform(test)
        holdout = clipped_errors(predictions, scale)
        global_mean = float(train.agg(F.avg(config.COL_RATING)).first()[0])
        base = test.select(
            F.sqrt(F.avg((F.lit(global_mean) - F.col(config.COL_RATING)) ** 2)).alias("rmse"),
            F.avg(F.abs(F.lit(global_mean) - F.col(config.COL_RATING))).alias("mae"),
        ).first()
        t["rows"] = holdout["n"]

    with timer(run_dir, STAGE, "refit", **best) as t:
        final = build_als(params.seed, **best).fit(ratings)
        final.write().overwrite().save(str(run_dir / "model"))
        t["rows"] = n
    ratings.unpersist()
    train.unpersist()

    metrics = {
        "best_params": best,
        "cv_folds": params.folds,
        "cv_results": cv_results,
        "holdout_fraction": params.holdout_fraction,
        "seed": params.seed,
        "rating_scale": list(scale),
        "n_ratings": n,
        "n_holdout": holdout["n"],
        "rmse": holdout["rmse"],
        "mae": holdout["mae"],
        "baseline_global_mean": {
            "rmse": float(base["rmse"]),
            "mae": float(base["mae"]),
            "mean": global_mean,
        },
    }
    write_json(run_dir / config.RUN_METRICS, metrics)
    return {"best_params": best, "rmse": round(holdout["rmse"], 4), "mae": round(holdout["mae"], 4)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reco train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run_dir_arg(p)
    p.add_argument(
        "--folds",
        type=int,
        default=config.DEFAULT_CV_FOLDS,
        help=f"cross-validation folds (default {config.DEFAULT_CV_FOLDS})",
    )
    p.add_argument(
        "--grid",
        default="",
        help=f"parameter grid as JSON (default {json.dumps(config.DEFAULT_GRID)})",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=config.DEFAULT_HOLDOUT_FRACTION,
        help="share of ratings held out for RMSE/MAE (default 0.2)",
    )
    p.add_argument("--seed", type=int, default=config.SEED)
    return p


def step(args: argparse.Namespace) -> dict[str, Any]:
    from spark_jobs.spark import get_spark

    if args.folds < 2:
        raise PipelineError(f"--folds must be at least 2, got {args.folds}")
    if not 0.0 < args.holdout < 0.9:
        raise PipelineError(f"--holdout must be between 0 and 0.9, got {args.holdout}")
    params = config.TrainParams(
        folds=args.folds, holdout_fraction=args.holdout, seed=args.seed, grid=parse_grid(args.grid)
    )
    return run(get_spark("reco-train"), args.run_dir, params)


def main(argv: list[str] | None = None) -> int:
    return main_for(STAGE, build_parser, step, argv)


if __name__ == "__main__":
    sys.exit(main())
