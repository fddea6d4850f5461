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

import itertools
import json
import statistics
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config
from reco.data import feedback
from reco.data.transforms import to_als_types
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.modeling import gate, models, ranking
from reco.modeling.ranking import Candidate
from reco.runs import RunFolder
from reco.runtime import read_json, write_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from reco.steps import StepArgs

STAGE = "train"
GRID_KEYS = ("rank", "regParam", "residualRegParam", "maxIter")
RANKING_GRID_KEYS = ranking.KEYS["als"]
EASE_GRID_KEYS = ranking.KEYS["ease"]


# ----------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------
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
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise PipelineError(f"{flag} {key} must be numbers, got {values!r}")
        grid[key] = values
    return grid


def parse_families(text: str | None) -> tuple[str, ...]:
    """``"als,ease"`` -> ``("als", "ease")``; empty = the default families."""
    if not text or not str(text).strip():
        return config.DEFAULT_FAMILIES
    names = tuple(dict.fromkeys(n.strip().lower() for n in str(text).split(",") if n.strip()))
    unknown = [n for n in names if n not in config.MODEL_FAMILIES]
    if unknown or not names:
        raise PipelineError(
            f"--families {text!r}: unknown model family {unknown}; choose among "
            f"{', '.join(config.MODEL_FAMILIES)} (comma-separated)"
        )
    return names


def grid_points(grid: dict[str, list[float | int]], keys: tuple[str, ...]) -> list[dict]:
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def ranking_candidates(params: config.TrainParams) -> list[Candidate]:
    """Every ranking candidate the CV scores (ALS first: it wins ties, it is the default)."""
    grids = {"als": params.ranking_grid, "ease": params.ease_grid}
    out: list[Candidate] = []
    for family in params.families:
        out += ranking.grid_candidates(family, grids[family])
    return out


@dataclass(frozen=True)
class Plan:
    """What this run fits, decided before any Spark work so bad parameters fail at once."""

    rating_points: list[dict]
    candidates: list[Candidate]

    @property
    def fixed(self) -> bool:
        return len(self.candidates) == 1


def plan(params: config.TrainParams) -> Plan:
    rating_grid = params.rating_grid()
    missing = [k for k in GRID_KEYS if k != "residualRegParam" and not rating_grid.get(k)]
    if missing:
        raise PipelineError(f"the rating grid has no values for {missing}")
    rating_points = grid_points(rating_grid, tuple(k for k in GRID_KEYS if k in rating_grid))
    candidates = ranking_candidates(params)
    if params.folds == 0:
        # Fixed parameters: the first family listed, which must have one point.
        first = [c for c in candidates if c.family == params.families[0]]
        if len(first) > 1 or len(rating_points) > 1:
            raise PipelineError(
                f"folds 0 (fixed parameters) needs one value per grid key, got "
                f"{len(rating_points)} rating and {len(first)} ranking candidates: give "
                "single values or folds >= 2"
            )
        candidates = first
    if len(rating_points) > 1 and not params.rating_cv:
        raise PipelineError(
            f"the rating grid has {len(rating_points)} candidates but its CV is off: pass "
            "rating_cv (reco run --rating-cv) to search it, or give one value per key"
        )
    return Plan(rating_points, candidates)


# ----------------------------------------------------------------------------------------
# the steps of a training run
# ----------------------------------------------------------------------------------------
@dataclass
class Ratings:
    """The run's ratings as read (a cached Spark frame), and how fits on them are sized."""

    frame: DataFrame
    n: int
    scale: tuple[float, float]
    blocks: int  # ALS user and item blocks of every fit
    cores: int

    @classmethod
    def sized(cls, frame: DataFrame, n: int, scale: tuple[float, float], cores: int) -> Ratings:
        return cls(frame, n, scale, models.als_blocks(n, cores), cores)


@dataclass
class Data:
    """Every model is fitted on ``train`` and scored on ``holdout``; ``ratings`` (all of
    them) feed the final refit."""

    ratings: DataFrame
    train: DataFrame
    holdout: DataFrame
    n: int
    n_train: int
    n_holdout: int
    n_catalogue: int
    scale: tuple[float, float]
    blocks: int
    cores: int

    def unpersist(self) -> None:
        for df in (self.ratings, self.train, self.holdout):
            df.unpersist()


def read_ratings(spark: SparkSession, run_dir: Path) -> Ratings:
    """The run's ratings, cached; the shuffle partitions and ALS blocks sized to them."""
    from reco.spark import parallelism, size_shuffle

    manifest = read_json(RunFolder(run_dir).manifest)
    scale = tuple(manifest["source"]["rating_scale"])
    with timer(run_dir, STAGE, "read", source=RunFolder(run_dir).ratings) as t:
        partitions = size_shuffle(spark, int(manifest.get("n_ratings") or 0))
        frame = to_als_types(spark.read.parquet(str(RunFolder(run_dir).ratings))).cache()
        ratings = Ratings.sized(frame, frame.count(), scale, parallelism(spark))
        t.update(rows=ratings.n, shuffle_partitions=partitions, als_blocks=ratings.blocks)
    return ratings


def check_enough_ratings(n: int, folds: int) -> None:
    """Refuse a run with fewer than 10 ratings per fold (at least 20)."""
    if n < 10 * max(folds, 2):
        what = f"cross-validate with {folds} folds" if folds else "train on"
        raise PipelineError(f"only {n} ratings: too few to {what} (at least 20 are needed)")


def split_holdout(r: Ratings, fraction: float, seed: int, run_dir: Path | None) -> Data:
    """Per user, by a seeded hash, ``fraction`` of each user's ratings held out."""
    with timer(run_dir, STAGE, "split") as t:
        train, holdout = models.split_by_user(r.frame, fraction, seed)
        d = holdout_data(r, train.cache(), holdout.cache())
        t.update(train=d.n_train, holdout=d.n_holdout)
    if d.n_holdout == 0:
        raise PipelineError("no user has the 5+ ratings needed to hold some out for evaluation")
    return d


def holdout_data(r: Ratings, train: DataFrame, holdout: DataFrame) -> Data:
    """``r`` split into ``train`` and ``holdout`` (cached frames), with their sizes."""
    n_train, n_holdout = train.count(), holdout.count()
    n_catalogue = train.select(config.COL_ITEM).distinct().count()
    return Data(
        r.frame, train, holdout, r.n, n_train, n_holdout, n_catalogue, r.scale, r.blocks, r.cores
    )


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
def params_from_args(args: StepArgs) -> config.TrainParams:
    """The step's typed parameters (checked by type and bounds by the schema's parse,
    reco/params.py) as the train job's; what their schema cannot say is checked here."""
    if args.folds < 2 and args.folds != 0:
        raise PipelineError(
            f"--folds must be at least 2 (or 0 for fixed parameters), got {args.folds}"
        )
    if not 0.0 < args.holdout < 0.9:
        raise PipelineError(f"--holdout must be between 0 and 0.9, got {args.holdout}")
    rating_cv = bool(args.rating_cv)
    default_rating = (
        config.DEFAULT_GRID
        if rating_cv
        else {k: [v] for k, v in config.DEFAULT_RATING_PARAMS.items()}
    )
    return config.TrainParams(
        folds=args.folds,
        holdout_fraction=args.holdout,
        seed=args.seed,
        grid=parse_grid(args.grid, default_rating),
        rating_cv=rating_cv,
        ranking_grid=parse_grid(
            args.ranking_grid,
            config.DEFAULT_RANKING_GRID,
            RANKING_GRID_KEYS,
            "ranking_grid (--ranking-grid)",
        ),
        ease_grid=parse_grid(
            args.ease_grid, config.DEFAULT_EASE_GRID, EASE_GRID_KEYS, "ease_grid (--ease-grid)"
        ),
        families=parse_families(args.families),
        top_k=args.top_n,
        gate_tolerance=args.gate_tolerance,
    )


def check(args: StepArgs) -> config.TrainParams:
    """What train refuses before any Spark work: its parameters, and its plan (several
    grid values without their CV, ...); ``prepare`` runs it on the run conf."""
    params = params_from_args(args)
    plan(params)
    return params


def step(args: StepArgs) -> dict[str, Any]:
    from reco.spark import get_spark

    params = params_from_args(args)
    return run(get_spark("reco-train"), args.run_dir, params)
