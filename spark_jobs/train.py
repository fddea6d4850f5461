"""Train: the rating model (k-fold CV), the ranking model, baselines, and the gate.

1. Split the run's ratings, per user and by a seeded hash, into train / held-out.
2. Baselines on the held-out part: global mean, user+item bias, most-popular top-N.
3. Rating model (bias-aware ALS blend, see ``models.py``): k-fold cross-validation over
   the grid (rank x regParam x maxIter) on the train part, best parameters refit on all
   of it, RMSE/MAE/MPE on the held-out part.
4. Ranking model (implicit ALS): parameters chosen by nDCG@k on a validation split of the
   train part, refit on all of it, precision/recall/nDCG/MAP@k and coverage on held-out.
5. Champion: the parameters behind the published recommendations (``champion.json``),
   refit on the same train part and scored on the same held-out part.
6. Gate (``gate.py``): publish only if the challenger beats the baselines and is not
   worse than the champion beyond the tolerance.
7. Refit the ranking model on all ratings, adjusted by the run's feedback events (likes
   and watches as positive signals, dislikes removed; see ``feedback.py``), and save it
   for the recommend step.

Writes ``metrics.json`` and ``model/`` into the run folder.

    spark-submit spark_jobs/train.py --run-dir var/lake/runs/R [--folds 3] [--grid JSON]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from spark_jobs import config, feedback, gate, models
from spark_jobs.errors import PipelineError
from spark_jobs.runtime import main_for, read_json, run_dir_arg, write_json
from spark_jobs.timing import timer
from spark_jobs.transforms import to_als_types

STAGE = "train"
GRID_KEYS = ("rank", "regParam", "maxIter")
RANKING_GRID_KEYS = ("rank", "regParam", "alpha", "maxIter")
CV_PARALLELISM = 2


def parse_grid(
    text: str | None,
    default: dict[str, list[float | int]] | None = None,
    keys: tuple[str, ...] = GRID_KEYS,
    flag: str = "--grid",
) -> dict[str, list[float | int]]:
    """A JSON object of parameter lists; missing keys take the default grid's values."""
    grid = dict(default or config.DEFAULT_GRID)
    if not text:
        return grid
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{flag} is not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(given, dict) or set(given) - set(keys):
        raise PipelineError(f"{flag} must be a JSON object with keys among {keys}: {text!r}")
    for key, values in given.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise PipelineError(f"{flag} {key} has no values")
        grid[key] = values
    return grid


def grid_points(grid: dict[str, list[float | int]], keys: tuple[str, ...]) -> list[dict]:
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def cross_validate(
    folded: Any,
    points: list[dict],
    folds: int,
    seed: int,
    scale: tuple[float, float],
    run_dir: Path | None = None,
) -> list[dict]:
    """Mean held-out-fold RMSE of the rating model for each grid point. Each fold's fit
    and scoring is its own timed phase (``cv_p<point>_fold<fold>``) when ``run_dir`` is
    given, with its Spark stages attributed to it."""
    from pyspark.sql import functions as F

    def score(indexed: tuple[int, dict]) -> dict:
        i, point = indexed
        rmses = []
        for f in range(folds):
            with timer(run_dir, STAGE, f"cv_p{i}_fold{f}", fold=f, **point) as t:
                fit_on = folded.where(F.col("_fold") != f).drop("_fold")
                check = folded.where(F.col("_fold") == f).drop("_fold")
                model = models.fit_rating_model(fit_on, point, seed, scale)
                rmses.append(
                    models.spark_rating_metrics(
                        models.predict_ratings(model, check), F.col(config.COL_PREDICTION)
                    )["rmse"]
                )
                t["rmse"] = rmses[-1]
        return {**point, "cv_rmse": sum(rmses) / len(rmses), "fold_rmse": rmses}

    with ThreadPoolExecutor(max_workers=CV_PARALLELISM) as pool:
        return list(pool.map(score, enumerate(points)))


def rating_scores(
    spark: Any, train: Any, holdout: Any, params: dict, seed: int, scale: tuple[float, float]
) -> dict:
    from pyspark.sql import functions as F

    model = models.fit_rating_model(train, params, seed, scale)
    return models.spark_rating_metrics(
        models.predict_ratings(model, holdout), F.col(config.COL_PREDICTION)
    )


def ranking_scores(
    spark: Any, train: Any, holdout: Any, params: dict, seed: int, k: int, n_catalogue: int
) -> dict:
    model = models.fit_ranking_model(train, params, seed)
    users, item_ids, item_vecs = models.als_factors(model)
    users = users.join(holdout.select(config.COL_USER).distinct(), config.COL_USER)
    recs = models.top_n(spark, users, item_ids, item_vecs, train, k)
    return models.ranking_metrics_spark(recs, holdout, k, n_catalogue)


def run(spark: Any, run_dir: Path, params: config.TrainParams) -> dict[str, Any]:
    from pyspark.sql import functions as F

    points = grid_points(params.grid, GRID_KEYS)
    rank_points = grid_points(params.ranking_grid, RANKING_GRID_KEYS)
    fixed = params.folds == 0  # fixed parameters: no search, one point per grid
    if fixed and (len(points) > 1 or len(rank_points) > 1):
        raise PipelineError(
            f"folds 0 (fixed parameters) needs one value per grid key, got {len(points)} rating "
            f"and {len(rank_points)} ranking candidates: give single values or folds >= 2"
        )
    manifest = read_json(run_dir / config.RUN_MANIFEST)
    scale = tuple(manifest["source"]["rating_scale"])
    seed, k = params.seed, params.top_k
    with timer(run_dir, STAGE, "read") as t:
        ratings = to_als_types(spark.read.parquet(str(run_dir / config.RUN_RATINGS))).cache()
        n = ratings.count()
        t["rows"] = n
    if n < 10 * max(params.folds, 2):
        raise PipelineError(
            f"only {n} ratings: too few to cross-validate with {params.folds} folds"
        )

    with timer(run_dir, STAGE, "split") as t:
        train, holdout = models.split_by_user(ratings, params.holdout_fraction, seed)
        train, holdout = train.cache(), holdout.cache()
        n_train, n_holdout = train.count(), holdout.count()
        n_catalogue = train.select(config.COL_ITEM).distinct().count()
        t.update(train=n_train, holdout=n_holdout)
    if n_holdout == 0:
        raise PipelineError("no user has the 5+ ratings needed to hold some out for evaluation")

    with timer(run_dir, STAGE, "baselines"):
        mu, bu, bi = models.fit_biases(train)
        with_base = models.with_baseline(holdout, mu, bu, bi)
        baselines = {
            "global_mean": models.spark_rating_metrics(holdout, F.lit(mu)),
            "bias": models.spark_rating_metrics(
                with_base, models.clip_column(F.col("_base"), scale)
            ),
            "most_popular": models.ranking_metrics_spark(
                models.most_popular_top_n(spark, train, holdout, k), holdout, k, n_catalogue
            ),
        }

    if fixed:
        cv_results: list[dict] = []
        best_rating = points[0]
    else:
        with timer(
            run_dir, STAGE, "cross_validation", folds=params.folds, candidates=len(points)
        ) as t:
            folded = models.with_folds(train, params.folds, seed).cache()
            cv_results = cross_validate(folded, points, params.folds, seed, scale, run_dir)
            folded.unpersist()
            t["fits"] = 2 * params.folds * len(points)
        best_rating = {key: min(cv_results, key=lambda r: r["cv_rmse"])[key] for key in GRID_KEYS}

    with timer(run_dir, STAGE, "rating_refit_and_holdout", **best_rating):
        rating = {
            **rating_scores(spark, train, holdout, best_rating, seed, scale),
            "params": best_rating,
            "cv_results": cv_results,
        }

    if fixed:
        selection: list[dict] = []
        best_ranking = rank_points[0]
    else:
        with timer(run_dir, STAGE, "ranking_selection", candidates=len(rank_points)):
            fit_part, validation = models.split_by_user(train, params.holdout_fraction, seed + 7)
            fit_part, validation = fit_part.cache(), validation.cache()
            selection = [
                {
                    **p,
                    "validation_ndcg": ranking_scores(
                        spark, fit_part, validation, p, seed, k, n_catalogue
                    )["ndcg"],
                }
                for p in rank_points
            ]
            fit_part.unpersist()
            validation.unpersist()
        best_ranking = {
            key: max(selection, key=lambda r: r["validation_ndcg"])[key]
            for key in RANKING_GRID_KEYS
        }
    with timer(run_dir, STAGE, "ranking_refit_and_holdout", **best_ranking):
        ranking = {
            **ranking_scores(spark, train, holdout, best_ranking, seed, k, n_catalogue),
            "params": best_ranking,
            "selection": selection,
        }

    champion = None
    champ_path = run_dir / "champion.json"
    if champ_path.exists():
        champ = read_json(champ_path)
        with timer(run_dir, STAGE, "champion", version=champ.get("model_version")):
            same_rating = champ.get("rating") == best_rating
            same_ranking = champ.get("ranking") == best_ranking
            champion = {
                "model_version": champ.get("model_version"),
                "rating": rating
                if same_rating or not champ.get("rating")
                else rating_scores(spark, train, holdout, champ["rating"], seed, scale),
                "ranking": ranking
                if same_ranking or not champ.get("ranking")
                else ranking_scores(spark, train, holdout, champ["ranking"], seed, k, n_catalogue),
            }

    result: dict[str, Any] = {
        "rating": rating,
        "ranking": ranking,
        "baselines": baselines,
        "champion": champion,
        "cv_folds": params.folds,
        "holdout_fraction": params.holdout_fraction,
        "seed": seed,
        "rating_scale": list(scale),
        "n_ratings": n,
        "n_train": n_train,
        "n_holdout": n_holdout,
        # flat copies of the headline numbers
        "rmse": rating["rmse"],
        "mae": rating["mae"],
        "mpe": rating["mpe"],
        "ndcg_at_k": ranking["ndcg"],
        "precision_at_k": ranking["precision"],
        "best_params": {"rating": best_rating, "ranking": best_ranking},
    }
    result["gate"] = gate.decide(result, params.gate_tolerance)

    with timer(run_dir, STAGE, "final_refit", **best_ranking) as t:
        signals = ratings
        if (run_dir / config.RUN_FEEDBACK).exists():
            # Likes and watches add positive signals, dislikes remove them (feedback.py).
            events = spark.read.parquet(str(run_dir / config.RUN_FEEDBACK))
            signals = feedback.apply_to_ranking_data(ratings, events, scale)
        final = models.fit_ranking_model(signals, best_ranking, seed)
        final.write().overwrite().save(str(run_dir / "model"))
        t["rows"] = n
    for df in (ratings, train, holdout):
        df.unpersist()
    write_json(run_dir / config.RUN_METRICS, result)
    return {
        "rmse": round(rating["rmse"], 4),
        "ndcg_at_k": round(ranking["ndcg"], 4),
        "gate": result["gate"]["reason"],
        "publish": result["gate"]["publish"],
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reco train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run_dir_arg(p)
    p.add_argument(
        "--folds",
        type=int,
        default=config.DEFAULT_CV_FOLDS,
        help=f"cross-validation folds (default {config.DEFAULT_CV_FOLDS}); 0 = fixed "
        "parameters: no search, each grid key must have one value",
    )
    p.add_argument(
        "--grid",
        default="",
        help=f"rating-model grid as JSON (default {json.dumps(config.DEFAULT_GRID)})",
    )
    p.add_argument(
        "--ranking-grid",
        default="",
        help=f"ranking-model grid as JSON (default {json.dumps(config.DEFAULT_RANKING_GRID)})",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=config.DEFAULT_HOLDOUT_FRACTION,
        help="share of each user's ratings held out for evaluation (default 0.2)",
    )
    p.add_argument(
        "--top-n",
        type=int,
        default=config.DEFAULT_TOP_N,
        help="k of the ranking metrics (default: the top-N size)",
    )
    p.add_argument(
        "--gate-tolerance",
        type=float,
        default=config.DEFAULT_GATE_TOLERANCE,
        help="how much worse than the champion a new model may be and still publish "
        "(relative, default 0.02)",
    )
    p.add_argument("--seed", type=int, default=config.SEED)
    return p


def step(args: argparse.Namespace) -> dict[str, Any]:
    from spark_jobs.spark import get_spark

    if args.folds < 2 and args.folds != 0:
        raise PipelineError(
            f"--folds must be at least 2 (or 0 for fixed parameters), got {args.folds}"
        )
    if not 0.0 < args.holdout < 0.9:
        raise PipelineError(f"--holdout must be between 0 and 0.9, got {args.holdout}")
    if args.gate_tolerance < 0:
        raise PipelineError(f"--gate-tolerance must be >= 0, got {args.gate_tolerance}")
    params = config.TrainParams(
        folds=args.folds,
        holdout_fraction=args.holdout,
        seed=args.seed,
        grid=parse_grid(args.grid),
        ranking_grid=parse_grid(
            args.ranking_grid, config.DEFAULT_RANKING_GRID, RANKING_GRID_KEYS, "--ranking-grid"
        ),
        top_k=args.top_n,
        gate_tolerance=args.gate_tolerance,
    )
    return run(get_spark("reco-train"), args.run_dir, params)


def main(argv: list[str] | None = None) -> int:
    return main_for(STAGE, build_parser, step, argv)


if __name__ == "__main__":
    sys.exit(main())
