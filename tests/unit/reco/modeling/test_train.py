"""The train step's named steps on tiny data: exact expected values where a hand or numpy
computation gives them, real Spark where the step is a Spark one."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from reco import config
from reco.data.synthetic import SyntheticSpec, generate_frames
from reco.errors import PipelineError
from reco.modeling import gate, metrics, models, rankers, train, train_data, train_plan
from reco.modeling.ranking import Candidate
from reco.runs import RunFolder
from reco.runtime import write_json

SCALE = (1.0, 5.0)
RATING_POINT = {"rank": 2, "regParam": 0.1, "maxIter": 2}


def phases(run_dir: Path) -> list[dict]:
    path = RunFolder(run_dir).timings
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_run(run_dir: Path, ratings: pd.DataFrame, scale: tuple[float, float] = SCALE) -> Path:
    """A run folder as ingest leaves it: the ratings and the manifest."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ratings.to_parquet(RunFolder(run_dir).ratings, index=False)
    write_json(
        RunFolder(run_dir).manifest,
        {"n_ratings": len(ratings), "source": {"rating_scale": list(scale)}},
    )
    return run_dir


def synthetic(n_users: int = 40, n_items: int = 30, per_user: float = 12.0) -> pd.DataFrame:
    spec = SyntheticSpec(
        n_users=n_users, n_items=n_items, mean_ratings_per_user=per_user, min_ratings_per_user=6
    )
    r, _ = generate_frames(spec)
    return r.rename(columns={"userId": "user_id", "movieId": "item_id"})


@pytest.fixture(scope="module")
def tiny(spark, tmp_path_factory) -> train_data.Data:
    """Read and split once: 40 users, 30 items."""
    run_dir = write_run(tmp_path_factory.mktemp("tiny"), synthetic())
    return train_data.split_holdout(train_data.read_ratings(spark, run_dir), 0.2, 42, run_dir)


# ----------------------------------------------------------------------------------------
# checks and choices (no Spark)
# ----------------------------------------------------------------------------------------
def test_check_enough_ratings_needs_ten_per_fold_and_at_least_twenty() -> None:
    train_data.check_enough_ratings(20, 0)
    train_data.check_enough_ratings(30, 3)
    with pytest.raises(PipelineError, match=r"^only 19 ratings: too few to train on \(at least"):
        train_data.check_enough_ratings(19, 0)
    with pytest.raises(PipelineError, match="too few to cross-validate with 3 folds"):
        train_data.check_enough_ratings(29, 3)


def test_best_rating_point_is_the_lowest_cv_rmse_without_its_scores() -> None:
    cv = [
        {"rank": 4, "regParam": 0.1, "maxIter": 5, "cv_rmse": 0.95, "fold_rmse": [0.9, 1.0]},
        {"rank": 8, "regParam": 0.1, "maxIter": 5, "cv_rmse": 0.91, "fold_rmse": [0.9, 0.92]},
        {"rank": 16, "regParam": 0.1, "maxIter": 5, "cv_rmse": 0.91, "fold_rmse": [0.91, 0.91]},
    ]
    assert train.best_rating_point(cv) == {"rank": 8, "regParam": 0.1, "maxIter": 5}


def test_select_rating_without_rating_cv_takes_the_one_point_untimed(tmp_path: Path) -> None:
    points = [RATING_POINT]
    params = config.TrainParams(folds=3, rating_cv=False)
    assert train.select_rating(None, points, params, tmp_path) == (RATING_POINT, [])
    # rating_cv with fixed parameters (folds 0) has nothing to cross-validate either
    params = config.TrainParams(folds=0, rating_cv=True)
    assert train.select_rating(None, points, params, tmp_path) == (RATING_POINT, [])
    assert phases(tmp_path) == []


def test_search_ranking_with_fixed_parameters_searches_nothing(tmp_path: Path) -> None:
    params = config.TrainParams(folds=0, families=("ease",), ease_grid={"lambda": [7.0]})
    plan_ = train_plan.plan(params)
    best, why, cv = train.search_ranking(None, None, plan_, params, tmp_path)
    assert best == Candidate("ease", {"lambda": 7.0})
    assert why == "fixed parameters (folds 0): no search" and cv == []
    assert phases(tmp_path) == []


def scores(rmse: float, ndcg: float) -> tuple[dict, dict]:
    rating = {"rmse": rmse, "mae": rmse * 0.8, "mpe": -3.0, "n": 10}
    ranked = {"ndcg": ndcg, "precision": ndcg / 2, "k": 5}
    return rating, ranked


def test_metrics_record_and_summary_carry_the_headline_numbers() -> None:
    d = train_data.Data(None, None, None, 100, 80, 20, 30, (0.5, 5.0), 1, 2)
    params = config.TrainParams(folds=3, holdout_fraction=0.2, seed=7)
    rating_scores, rank_scores = scores(0.9123456, 0.3456789)
    rating = {**rating_scores, "params": RATING_POINT, "cv_results": []}
    cand = Candidate("ease", {"lambda": 50.0})
    ranked = {**rank_scores, "family": "ease", "params": cand.as_dict(), "cv_results": [{}]}
    base = {
        "global_mean": {"rmse": 1.1},
        "bias": {"rmse": 0.95},
        "most_popular": {"ndcg": 0.2},
    }
    plan_ = train_plan.Plan([RATING_POINT], [cand, Candidate("ease", {"lambda": 9.0})])
    m = train.metrics_record(d, plan_, params, base, rating, ranked, None)
    assert list(m) == [
        "rating",
        "ranking",
        "baselines",
        "champion",
        "cv_folds",
        "rating_cv",
        "holdout_fraction",
        "seed",
        "rating_scale",
        "n_ratings",
        "n_train",
        "n_holdout",
        "rmse",
        "mae",
        "mpe",
        "ndcg_at_k",
        "precision_at_k",
        "model_family",
        "best_params",
    ]
    assert (m["cv_folds"], m["rating_cv"], m["seed"], m["rating_scale"]) == (3, False, 7, [0.5, 5])
    assert (m["n_ratings"], m["n_train"], m["n_holdout"]) == (100, 80, 20)
    assert (m["rmse"], m["ndcg_at_k"], m["precision_at_k"]) == (0.9123456, 0.3456789, 0.3456789 / 2)
    assert m["model_family"] == "ease"
    assert m["best_params"] == {"rating": RATING_POINT, "ranking": {"family": "ease", "lambda": 50}}
    # one candidate is fixed parameters: no CV folds whatever params.folds says
    one = train_plan.Plan([RATING_POINT], [cand])
    assert train.metrics_record(d, one, params, base, rating, ranked, None)["cv_folds"] == 0

    m["gate"] = gate.decide(m, 0.02)
    assert train.summary(m) == {
        "rmse": 0.9123,
        "ndcg_at_k": 0.3457,
        "model": "ease lambda=50",
        "gate": "beats the baselines",
        "publish": True,
    }


# ----------------------------------------------------------------------------------------
# read and split (Spark)
# ----------------------------------------------------------------------------------------
def test_read_and_split_hold_out_a_fifth_of_each_user_with_five_or_more(
    spark, tmp_path: Path
) -> None:
    rows = [(u, i, float(1 + (u + i) % 5)) for u in range(1, 7) for i in range(1, 11)]
    rows += [(7, i, 3.0) for i in (1, 2, 3)]  # too few ratings to hold any out
    pdf = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    run_dir = write_run(tmp_path / "run", pdf, (0.5, 5.0))
    r = train_data.read_ratings(spark, run_dir)
    assert (r.n, r.scale, r.blocks) == (63, (0.5, 5.0), 1)
    d = train_data.split_holdout(r, 0.2, 42, run_dir)
    held = d.holdout.toPandas()
    assert held.groupby("user_id").size().to_dict() == {u: 2 for u in range(1, 7)}
    assert (d.n, d.n_train, d.n_holdout, d.n_catalogue) == (63, 51, 12, 10)
    fit = d.train.toPandas()
    assert fit.merge(held, on=["user_id", "item_id"]).empty
    assert len(fit[fit["user_id"] == 7]) == 3
    recs = {p["phase"]: p["details"] for p in phases(run_dir)}
    assert recs["read"]["rows"] == 63 and recs["read"]["als_blocks"] == 1
    assert recs["split"] == {"train": 51, "holdout": 12}


def test_split_refuses_data_where_no_user_can_hold_ratings_out(spark, tmp_path: Path) -> None:
    rows = [(u, i, 4.0) for u in range(1, 11) for i in (1, 2, 3)]
    run_dir = write_run(
        tmp_path / "run", pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    )
    r = train_data.read_ratings(spark, run_dir)
    train_data.check_enough_ratings(r.n, 2)  # 30 ratings are enough to try
    with pytest.raises(PipelineError, match="^no user has the 5\\+ ratings needed to hold some"):
        train_data.split_holdout(r, 0.2, 42, run_dir)


# ----------------------------------------------------------------------------------------
# baselines (Spark against numpy / hand-computed values)
# ----------------------------------------------------------------------------------------
def numpy_biases(fit: pd.DataFrame) -> tuple[float, dict, dict]:
    """Surprise BaselineOnly by alternating regularised means, as models.fit_biases."""
    mu = fit["rating"].mean()
    bu = dict.fromkeys(fit["user_id"].unique(), 0.0)
    bi: dict = {}
    for _ in range(models.BIAS_ITERATIONS):
        resid = fit["rating"] - mu - fit["user_id"].map(bu)
        g = resid.groupby(fit["item_id"])
        bi = (g.sum() / (models.BIAS_REG_ITEM + g.count())).to_dict()
        resid = fit["rating"] - mu - fit["item_id"].map(bi)
        g = resid.groupby(fit["user_id"])
        bu = (g.sum() / (models.BIAS_REG_USER + g.count())).to_dict()
    return mu, bu, bi


def test_rating_baselines_match_numpy(spark, tiny: train_data.Data) -> None:
    got, biases = train.rating_baselines(tiny.train, tiny.holdout, tiny.scale)
    fit, held = tiny.train.toPandas(), tiny.holdout.toPandas()
    mu, bu, bi = numpy_biases(fit)
    assert biases[0] == pytest.approx(mu)
    actual = held["rating"].to_numpy(dtype=float)
    want_mean = metrics.rating_metrics(actual, np.full(len(held), mu))
    base = mu + held["user_id"].map(bu).fillna(0.0) + held["item_id"].map(bi).fillna(0.0)
    want_bias = metrics.rating_metrics(actual, np.clip(base.to_numpy(), *tiny.scale))
    for key in ("rmse", "mae", "mpe"):
        assert got["global_mean"][key] == pytest.approx(want_mean[key], rel=1e-6)
        assert got["bias"][key] == pytest.approx(want_bias[key], rel=1e-6)
    assert got["global_mean"]["n"] == got["bias"]["n"] == tiny.n_holdout
    assert got["bias"]["rmse"] < got["global_mean"]["rmse"]


def test_popularity_baseline_recommends_the_most_rated_unseen_items(spark) -> None:
    # item i is rated by users 1..(6 - i): counts 5, 4, 3, 2, 1 for items 1..5
    fit = pd.DataFrame(
        [(u, i, 4.0) for i in range(1, 6) for u in range(1, 7 - i)],
        columns=["user_id", "item_id", "rating"],
    )
    held = pd.DataFrame([(3, 4, 5.0), (3, 6, 5.0), (5, 2, 5.0), (5, 5, 5.0)], columns=fit.columns)
    got = train.popularity_baseline(
        spark, spark.createDataFrame(fit), spark.createDataFrame(held), 2, 5
    )
    # user 3 has seen 1-3: gets 4, 5 (hit at 1); user 5 has seen 1: gets 2, 3 (hit at 1)
    assert got["precision"] == pytest.approx(0.5)
    assert got["recall"] == pytest.approx(0.5)
    assert got["ndcg"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert got["catalogue_coverage"] == pytest.approx(4 / 5)


# ----------------------------------------------------------------------------------------
# model selection (Spark)
# ----------------------------------------------------------------------------------------
def test_rating_model_cross_validates_and_refits_the_best_point(
    spark, tiny: train_data.Data, tmp_path: Path
) -> None:
    points = [RATING_POINT, {**RATING_POINT, "regParam": 5.0}]
    params = config.TrainParams(folds=2, rating_cv=True)
    _, biases = train.rating_baselines(tiny.train, tiny.holdout, tiny.scale)
    got = train.rating_model(tiny, points, params, biases, tmp_path)
    cv = got["cv_results"]
    assert [{k: r[k] for k in RATING_POINT} for r in cv] == points
    for r in cv:
        assert len(r["fold_rmse"]) == 2
        assert r["cv_rmse"] == pytest.approx(statistics.fmean(r["fold_rmse"]))
    assert got["params"] == train.best_rating_point(cv)
    assert got["n"] == tiny.n_holdout and 0 < got["rmse"] < 4
    timed = {p["phase"]: p["details"] for p in phases(tmp_path)}
    assert timed["rating_cross_validation"] == {"candidates": 2}
    for i in (0, 1):
        for f in (0, 1):
            assert timed[f"rating_cv_p{i}_fold{f}"]["rmse"] == cv[i]["fold_rmse"][f]
    assert timed["rating_fit_and_holdout"] == got["params"]


def test_search_ranking_picks_the_best_mean_ndcg_of_the_cv(
    spark, tiny: train_data.Data, tmp_path: Path
) -> None:
    params = config.TrainParams(folds=2, families=("ease",), ease_grid={"lambda": [1.0, 500.0]})
    plan_ = train_plan.plan(params)
    best, why, cv = train.search_ranking(spark, tiny, plan_, params, tmp_path)
    assert [r["lambda"] for r in cv] == [1.0, 500.0]
    winner = max(cv, key=lambda r: r["mean_ndcg"])
    assert best == Candidate.from_dict(winner)
    assert why.startswith(f"{best.label} won the 2-fold CV of 2 candidates: mean nDCG@10 ")
    assert f"{winner['mean_ndcg']:.4f}" in why
    timed = {p["phase"]: p["details"] for p in phases(tmp_path)}
    assert timed["cross_validation"] == {"folds": 2, "candidates": 2, "fits": 4}
    assert {"cv_ease_c0_fold0", "cv_ease_c0_fold1", "cv_ease_c1_fold0", "cv_ease_c1_fold1"} <= set(
        timed
    )


def test_als_regparam_is_divided_by_the_share_of_ratings_each_fit_sees(
    spark, tiny: train_data.Data, tmp_path: Path, monkeypatch
) -> None:
    """README ("ALS's regParam is the final fit's"): a candidate's regParam is the value of
    the fit on all ratings, and a fit on a share f of them hands Spark's ALS regParam / f.
    Checked on what Spark's ALS itself receives, in the CV folds, the held-out refit and the
    final refit."""
    from pyspark.ml.recommendation import ALS

    given: list[tuple[int, float]] = []  # (ratings fitted on, regParam ALS was given)
    fit = ALS._fit

    def recording_fit(self, dataset):
        if self.getImplicitPrefs():  # the ranking model (the rating model is explicit)
            given.append((dataset.count(), self.getRegParam()))
        return fit(self, dataset)

    monkeypatch.setattr(ALS, "_fit", recording_fit)
    reg = 0.2
    cand = Candidate("als", {"rank": 2, "regParam": reg, "alpha": 1.0, "maxIter": 2})
    train.ranking_cv(spark, tiny, [cand], 2, 42, 5, tmp_path)
    train.ranking_holdout(spark, tiny, cand, 42, 5)
    train.final_refit(spark, tiny, cand, 42, tmp_path)

    rows = sorted(n for n, _ in given)
    assert len(rows) == 4 and rows[0] + rows[1] == tiny.n_train  # the two CV folds' parts
    assert rows[2:] == [tiny.n_train, tiny.n]  # the held-out refit, the final refit
    for n, reg_param in given:
        assert reg_param == pytest.approx(reg / (n / tiny.n)), (n, reg_param)
    assert dict(given)[tiny.n] == reg  # on all ratings: the grid's value itself


def test_ranking_holdout_scores_the_closed_form_ease_lists(spark, tiny: train_data.Data) -> None:
    """EASE refit on the train part and scored on the held-out part equals numpy's EASE."""
    lam, k = 20.0, 5
    got = train.ranking_holdout(spark, tiny, Candidate("ease", {"lambda": lam}), 42, k)
    fit, held = tiny.train.toPandas(), tiny.holdout.toPandas()
    items = np.sort(fit["item_id"].unique())
    x = pd.crosstab(fit["user_id"], fit["item_id"]).reindex(columns=items, fill_value=0)
    x = (x.to_numpy() > 0).astype(float)
    b = rankers.ease_weights(x.T @ x, lam)  # float32, as the published model holds it
    users = np.sort(fit["user_id"].unique())
    scores = np.asarray(sparse.csr_matrix(x.astype(np.float32)) @ b, dtype=np.float64)
    scores[x > 0] = -np.inf
    rows = []
    for u, s in zip(users, scores, strict=True):
        if u in set(held["user_id"]):
            top = np.argsort(-s, kind="stable")[:k]
            rows += [(u, items[j], r + 1) for r, j in enumerate(top)]
    want = metrics.ranking_metrics(
        held[["user_id", "item_id"]],
        pd.DataFrame(rows, columns=["user_id", "item_id", "rank"]),
        k,
        n_catalogue=tiny.n_catalogue,
    )
    for key in ("precision", "recall", "ndcg", "map"):
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


def test_champion_scores_reuse_or_refit_the_champions_configuration(
    spark, tiny: train_data.Data, tmp_path: Path
) -> None:
    params = config.TrainParams(top_k=5)
    rating_scores, rank_scores = scores(0.9, 0.3)
    rating = {**rating_scores, "params": RATING_POINT}
    ranked = {**rank_scores, "params": {"family": "ease", "lambda": 50.0}}
    assert train.champion_scores(spark, tiny, tmp_path, params, rating, ranked, ()) is None
    # the same configuration: the challenger's own scores, nothing refit
    write_json(
        RunFolder(tmp_path).champion,
        {"model_version": "v1", "rating": RATING_POINT, "ranking": ranked["params"]},
    )
    same = train.champion_scores(spark, tiny, tmp_path, params, rating, ranked, ())
    assert same == {"model_version": "v1", "rating": rating, "ranking": ranked}
    assert same["rating"] is rating and same["ranking"] is ranked
    # another ranking configuration: refit on the same split, scored on the same holdout
    write_json(
        RunFolder(tmp_path).champion,
        {
            "model_version": "v2",
            "rating": RATING_POINT,
            "ranking": {"family": "ease", "lambda": 3.0},
        },
    )
    other = train.champion_scores(spark, tiny, tmp_path, params, rating, ranked, ())
    want = train.ranking_holdout(spark, tiny, Candidate("ease", {"lambda": 3.0}), 42, 5)
    assert other["model_version"] == "v2" and other["rating"] is rating
    assert other["ranking"] == want and other["ranking"]["k"] == 5
    versions = [p["details"]["version"] for p in phases(tmp_path) if p["phase"] == "champion"]
    assert versions == ["v1", "v2"]


# ----------------------------------------------------------------------------------------
# the whole step, on tiny data
# ----------------------------------------------------------------------------------------
def test_run_goes_through_the_named_steps_and_writes_metrics_and_model(
    spark, tmp_path: Path
) -> None:
    run_dir = write_run(tmp_path / "run", synthetic(n_users=30, n_items=25, per_user=10.0))
    params = config.TrainParams(
        folds=0,
        grid={k: [v] for k, v in RATING_POINT.items()},
        families=("ease",),
        ease_grid={"lambda": [10.0]},
        top_k=5,
    )
    out = train.run(spark, run_dir, params)
    m = json.loads((RunFolder(run_dir).metrics).read_text())
    assert out == train.summary(m)
    assert m["gate"] == gate.decide({k: v for k, v in m.items() if k != "gate"}, 0.02)
    assert m["ranking"]["params"] == {"family": "ease", "lambda": 10.0}
    assert m["rating"]["params"] == RATING_POINT and m["cv_folds"] == 0
    meta = json.loads((RunFolder(run_dir).model_meta).read_text())
    assert meta == m["ranking"]["params"]
    names = [p["phase"] for p in phases(run_dir)]
    assert names[:2] == ["read", "split"] and names[-1] == "final_refit"
    # the baselines and the rating model run beside the ranking model, in another thread
    assert sorted(names[2:-1]) == [
        "baselines",
        "ranking_refit_and_holdout",
        "rating_fit_and_holdout",
    ]


def test_parse_grid_defaults_and_errors() -> None:
    assert train_plan.parse_grid("") == config.DEFAULT_GRID
    with pytest.raises(PipelineError, match="must be numbers"):
        train_plan.parse_grid('{"rank": ["ten"]}')
    g = train_plan.parse_grid('{"rank": [5], "maxIter": 3}')
    assert g["rank"] == [5] and g["maxIter"] == [3]
    assert g["regParam"] == config.DEFAULT_GRID["regParam"]
    with pytest.raises(PipelineError, match="not valid JSON"):
        train_plan.parse_grid("{rank")
    with pytest.raises(PipelineError, match="keys among"):
        train_plan.parse_grid('{"alpha": [1]}')
