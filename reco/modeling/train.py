"""Train: the ranking model that is published, chosen by k-fold CV, and the rating model.

1. Split the run's ratings, per user and by a seeded hash, into train / held-out.
2. Baselines on the held-out part: global mean, user+item bias, most-popular top-N.
3. Rating model (bias-aware ALS blend, ``models.py``; judged by RMSE, reported, never
   published): one fit on the train part at documented parameters, RMSE/MAE/MPE on the
   held-out part. With ``rating_cv`` its grid is searched by k-fold CV first.
4. Ranking model (publishes the top-N; ``ranking.py``): every candidate of every model
   family (implicit ALS; EASE) is scored by nDCG@k on each of k per-user folds of the
   train part; the best mean wins. It is refit on the train part and scored on the
   held-out part (precision/recall/nDCG/MAP@k, coverage).
5. Champion: the configuration behind the published recommendations
   (``champion.json``), refit on the same train part and scored on the same held-out part.
6. Gate (``gate.py``): publish only if the challenger beats the baselines and is not
   worse than the champion beyond the tolerance.
7. Refit the chosen ranking model on all ratings, adjusted by the run's feedback events
   (likes and watches as positive signals, dislikes removed; ``feedback.py``), and save
   it for the recommend step.

Writes ``metrics.json`` and ``model/`` into the run folder.

    spark-submit spark_jobs/train.py --run-dir var/lake/runs/R [--folds 3] [--ranking-grid JSON]
"""

from __future__ import annotations

import statistics
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config
from reco.data import feedback
from reco.instrumentation.timing import timer
from reco.modeling import gate, models, ranking
from reco.modeling.ranking import Candidate
from reco.modeling.train_data import Data, check_enough_ratings, read_ratings, split_holdout
from reco.modeling.train_plan import GRID_KEYS, STAGE, Plan, params_from_args, plan
from reco.runs import RunFolder
from reco.runtime import read_json, write_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from reco.steps import StepArgs


# ----------------------------------------------------------------------------------------
# the steps of a training run
# ----------------------------------------------------------------------------------------
def rating_baselines(
    train: DataFrame, holdout: DataFrame, scale: tuple[float, float]
) -> tuple[dict[str, dict], tuple]:
    """Global mean and user+item bias, fitted on ``train``, scored on ``holdout``; the
    fitted biases, which the rating model reuses."""
    from pyspark.sql import functions as F

    biases = models.fit_biases(train)
    with_base = models.with_baseline(holdout, *biases)
    scores = {
        "global_mean": models.spark_rating_metrics(holdout, F.lit(biases[0])),
        "bias": models.spark_rating_metrics(with_base, models.clip_column(F.col("_base"), scale)),
    }
    return scores, biases


def popularity_baseline(
    spark: SparkSession, train: DataFrame, holdout: DataFrame, k: int, n_catalogue: int
) -> dict[str, float]:
    """Most-popular top-``k`` (items by ratings in ``train``, seen ones excluded), scored
    on ``holdout``."""
    recs = models.most_popular_top_n(spark, train, holdout, k)
    return models.ranking_metrics_spark(recs, holdout, k, n_catalogue)


def baselines(spark: SparkSession, run_dir: Path | None, d: Data, k: int) -> tuple[dict, tuple]:
    """The three baselines on the held-out part; the fitted biases."""
    with timer(run_dir, STAGE, "baselines"):
        scores, biases = rating_baselines(d.train, d.holdout, d.scale)
        scores["most_popular"] = popularity_baseline(spark, d.train, d.holdout, k, d.n_catalogue)
    return scores, biases


def rating_holdout(
    train: DataFrame,
    holdout: DataFrame,
    point: dict,
    seed: int,
    scale: tuple[float, float],
    blocks: int,
    biases: tuple | None = None,
) -> dict[str, float]:
    """The rating model at ``point`` fitted on ``train``: RMSE/MAE/MPE on ``holdout``."""
    from pyspark.sql import functions as F

    model = models.fit_rating_model(train, point, seed, scale, blocks, biases)
    predicted = models.predict_ratings(model, holdout)
    return models.spark_rating_metrics(predicted, F.col(config.COL_PREDICTION))


def rating_cross_validate(
    d: Data, points: list[dict], folds: int, seed: int, run_dir: Path | None
) -> list[dict]:
    """Mean held-out-fold RMSE of the rating model for each grid point (``rating_cv``)."""
    from pyspark.sql import functions as F

    folded = models.with_folds(d.train, folds, seed).cache()
    parts = [
        (
            folded.where(F.col("_fold") != f).drop("_fold").cache(),
            folded.where(F.col("_fold") == f).drop("_fold").cache(),
        )
        for f in range(folds)
    ]

    def score(job: tuple[int, dict, int]) -> tuple[int, int, float]:
        i, point, f = job
        with timer(run_dir, STAGE, f"rating_cv_p{i}_fold{f}", fold=f, **point) as t:
            fit_on, check = parts[f]
            t["rmse"] = rating_holdout(fit_on, check, point, seed, d.scale, d.blocks)["rmse"]
        return i, f, t["rmse"]

    jobs = [(i, p, f) for i, p in enumerate(points) for f in range(folds)]
    with ThreadPoolExecutor(max_workers=ranking.cv_threads(d.cores)) as pool:
        got = {(i, f): r for i, f, r in pool.map(score, jobs)}
    for fit_on, check in parts:
        fit_on.unpersist()
        check.unpersist()
    folded.unpersist()
    return [
        {
            **p,
            "cv_rmse": statistics.fmean(got[(i, f)] for f in range(folds)),
            "fold_rmse": [got[(i, f)] for f in range(folds)],
        }
        for i, p in enumerate(points)
    ]


def best_rating_point(cv_results: list[dict]) -> dict:
    """The grid point of the lowest mean CV RMSE (ties: the earlier one)."""
    best = min(cv_results, key=lambda r: r["cv_rmse"])
    return {k: v for k, v in best.items() if k in GRID_KEYS}


def select_rating(
    d: Data, points: list[dict], params: config.TrainParams, run_dir: Path | None
) -> tuple[dict, list[dict]]:
    """The rating model's parameters and the CV behind them (none without ``rating_cv``:
    the first point)."""
    if not (params.rating_cv and params.folds >= 2):
        return points[0], []
    with timer(run_dir, STAGE, "rating_cross_validation", candidates=len(points)):
        cv_results = rating_cross_validate(d, points, params.folds, params.seed, run_dir)
    return best_rating_point(cv_results), cv_results


def rating_model(
    d: Data, points: list[dict], params: config.TrainParams, biases: tuple, run_dir: Path | None
) -> dict:
    """One rating-model fit on the train part (after its CV when asked), scored held-out."""
    best, cv_results = select_rating(d, points, params, run_dir)
    with timer(run_dir, STAGE, "rating_fit_and_holdout", **best):
        scores = rating_holdout(d.train, d.holdout, best, params.seed, d.scale, d.blocks, biases)
    return {**scores, "params": best, "cv_results": cv_results}


def baselines_and_rating(
    spark: SparkSession, d: Data, plan_: Plan, params: config.TrainParams, run_dir: Path
) -> tuple[dict, tuple, dict]:
    """The baselines, then the rating model on their fitted biases."""
    base, biases = baselines(spark, run_dir, d, params.top_k)
    return base, biases, rating_model(d, plan_.rating_points, params, biases, run_dir)


def ranking_holdout(spark: SparkSession, d: Data, cand: Candidate, seed: int, k: int) -> dict:
    """``cand`` fitted on the train part, scored on the held-out part."""
    ranker = ranking.fit(spark, d.train, cand, seed, d.blocks, share=d.n_train / d.n)
    truth = d.holdout.select(config.COL_USER, config.COL_ITEM).toPandas()
    return ranking.evaluate(spark, ranker, d.train, truth, k, d.n_catalogue, d.holdout)


def ranking_cv(
    spark: SparkSession,
    d: Data,
    candidates: list[Candidate],
    folds: int,
    seed: int,
    k: int,
    run_dir: Path | None,
) -> list[dict]:
    """Every candidate's nDCG@k on each of ``folds`` per-user folds of the train part."""
    with timer(run_dir, STAGE, "cross_validation", folds=folds, candidates=len(candidates)) as t:
        cv = ranking.cross_validate(
            spark,
            d.train,
            candidates,
            folds,
            seed,
            k,
            d.n_catalogue,
            d.blocks,
            run_dir,
            STAGE,
            n_total=d.n,
        )
        t["fits"] = folds * len(candidates)
    return cv


def search_ranking(
    spark: SparkSession, d: Data, plan_: Plan, params: config.TrainParams, run_dir: Path | None
) -> tuple[Candidate, str, list[dict]]:
    """The ranking candidate to publish, why, and the CV behind it (none when fixed)."""
    if plan_.fixed:
        return plan_.candidates[0], "fixed parameters (folds 0): no search", []
    k = params.top_k
    cv = ranking_cv(spark, d, plan_.candidates, params.folds, params.seed, k, run_dir)
    best = ranking.best_of(cv)
    return best, choice_reason(cv, best, params.folds, k), cv


def select_ranking(
    spark: SparkSession, d: Data, plan_: Plan, params: config.TrainParams, run_dir: Path
) -> dict:
    """k-fold CV over the candidates (unless fixed), then the winner refit on the train
    part and scored on the held-out part."""
    best, why, cv = search_ranking(spark, d, plan_, params, run_dir)
    with timer(run_dir, STAGE, "ranking_refit_and_holdout", **best.as_dict()):
        scores = ranking_holdout(spark, d, best, params.seed, params.top_k)
    note = ranking.catalogue_note(best, d.n_catalogue)
    return {
        **scores,
        "family": best.family,
        "params": best.as_dict(),
        "why": why + (f"; {note}" if note else ""),
        "cv_results": cv,
    }


def choice_reason(cv: list[dict], best: Candidate, folds: int, k: int) -> str:
    """``als rank=64 ... won the 3-fold CV: nDCG@10 0.4903 +/- 0.0041, next best ...``."""
    ordered = sorted(cv, key=lambda r: -r["mean_ndcg"])
    top = ordered[0]
    text = (
        f"{best.label} won the {folds}-fold CV of {len(cv)} candidates: mean nDCG@{k} "
        f"{top['mean_ndcg']:.4f} (sd {top['std_ndcg']:.4f})"
    )
    others = [r for r in ordered[1:] if r["family"] != best.family]
    if others:
        text += (
            f"; best {others[0]['family']}: {Candidate.from_dict(others[0]).label} at "
            f"{others[0]['mean_ndcg']:.4f}"
        )
    return text


def champion_scores(
    spark: SparkSession,
    d: Data,
    run_dir: Path,
    params: config.TrainParams,
    rating: dict,
    ranked: dict,
    biases: tuple,
) -> dict | None:
    """The published model's configuration, refit on the same train part and scored on the
    same held-out part (its scores are reused where its configuration is the same)."""
    champ_path = RunFolder(run_dir).champion
    if not champ_path.exists():
        return None
    champ = read_json(champ_path)
    with timer(run_dir, STAGE, "champion", version=champ.get("model_version")):
        rating_scores = rating
        if champ.get("rating") and champ["rating"] != rating["params"]:
            rating_scores = rating_holdout(
                d.train, d.holdout, champ["rating"], params.seed, d.scale, d.blocks, biases
            )
        ranking_scores = ranked
        if champ.get("ranking"):
            cand = Candidate.from_dict(champ["ranking"])
            if cand.as_dict() != ranked["params"]:
                ranking_scores = ranking_holdout(spark, d, cand, params.seed, params.top_k)
    return {
        "model_version": champ.get("model_version"),
        "rating": rating_scores,
        "ranking": ranking_scores,
    }


def metrics_record(
    d: Data,
    plan_: Plan,
    params: config.TrainParams,
    base: dict,
    rating: dict,
    ranked: dict,
    champion: dict | None,
) -> dict[str, Any]:
    """``metrics.json`` but for the gate's verdict: every score, and flat copies of the
    headline numbers."""
    return {
        "rating": rating,
        "ranking": ranked,
        "baselines": base,
        "champion": champion,
        "cv_folds": 0 if plan_.fixed else params.folds,
        "rating_cv": bool(rating["cv_results"]),
        "holdout_fraction": params.holdout_fraction,
        "seed": params.seed,
        "rating_scale": list(d.scale),
        "n_ratings": d.n,
        "n_train": d.n_train,
        "n_holdout": d.n_holdout,
        # flat copies of the headline numbers
        "rmse": rating["rmse"],
        "mae": rating["mae"],
        "mpe": rating["mpe"],
        "ndcg_at_k": ranked["ndcg"],
        "precision_at_k": ranked["precision"],
        "model_family": ranked["family"],
        "best_params": {
            "rating": rating["params"],
            "ranking": Candidate.from_dict(ranked["params"]).as_dict(),
        },
    }


def final_refit(spark: SparkSession, d: Data, best: Candidate, seed: int, run_dir: Path) -> None:
    """The chosen model refit on all ratings, adjusted by the run's feedback; saved."""
    with timer(run_dir, STAGE, "final_refit", **best.as_dict()) as t:
        signals = feedback.ranking_signals(spark, run_dir, d.ratings, d.scale)
        ranker = ranking.fit(spark, signals, best, seed, d.blocks)
        model_dir = RunFolder(run_dir).model
        if model_dir.exists():
            import shutil

            shutil.rmtree(model_dir)
        ranker.save(model_dir)
        t["rows"] = d.n


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """What the step reports: the headline numbers, the model, the gate's verdict."""
    return {
        "rmse": round(result["rmse"], 4),
        "ndcg_at_k": round(result["ndcg_at_k"], 4),
        "model": Candidate.from_dict(result["best_params"]["ranking"]).label,
        "gate": result["gate"]["reason"],
        "publish": result["gate"]["publish"],
    }


def run(spark: SparkSession, run_dir: Path, params: config.TrainParams) -> dict[str, Any]:
    """Train, judge and save the run's models (the steps of the module doc, in order)."""
    plan_ = plan(params)  # bad parameters fail here, before any Spark work
    ratings = read_ratings(spark, run_dir)
    check_enough_ratings(ratings.n, params.folds)
    d = split_holdout(ratings, params.holdout_fraction, params.seed, run_dir)
    # The baselines and the rating model run in a second thread while the ranking CV runs.
    with ThreadPoolExecutor(max_workers=1) as side:
        side_job: Future = side.submit(baselines_and_rating, spark, d, plan_, params, run_dir)
        ranked = select_ranking(spark, d, plan_, params, run_dir)
        base, biases, rating = side_job.result()
    champion = champion_scores(spark, d, run_dir, params, rating, ranked, biases)
    result = metrics_record(d, plan_, params, base, rating, ranked, champion)
    result["gate"] = gate.decide(result, params.gate_tolerance)
    final_refit(spark, d, Candidate.from_dict(ranked["params"]), params.seed, run_dir)
    d.unpersist()
    write_json(RunFolder(run_dir).metrics, result)
    return summary(result)


# ----------------------------------------------------------------------------------------
# the step (reco/steps.py)
# ----------------------------------------------------------------------------------------
def step(args: StepArgs) -> dict[str, Any]:
    from reco.spark import get_spark

    params = params_from_args(args)
    return run(get_spark("reco-train"), args.run_dir, params)
