"""Training and top-N on a small synthetic dataset with real Spark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reco import config
from reco.data import formats, ingest
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.modeling import ranking, recommend, train
from reco.runs import RunFolder

GRID = {"rank": [4, 8], "regParam": [0.3], "maxIter": [8]}
RANKING_GRID = {"rank": [16], "regParam": [0.1, 0.5], "alpha": [1.0], "maxIter": [6]}
EASE_GRID = {"lambda": [20.0]}


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("synthetic")
    write_dataset(data, SyntheticSpec(n_users=150, n_items=200, mean_ratings_per_user=30))
    run_dir = tmp_path_factory.mktemp("run")
    ingest.run(spark, run_dir, formats.detect_source(data))
    params = config.TrainParams(
        folds=2,
        grid=GRID,
        rating_cv=True,
        ranking_grid=RANKING_GRID,
        ease_grid=EASE_GRID,
        top_k=5,
    )
    train.run(spark, run_dir, params)
    return run_dir


@pytest.fixture(scope="module")
def recommended(spark, trained: Path, tmp_path_factory) -> Path:
    """A copy of ``trained`` after a top-5 recommend step (lists, popular items)."""
    import shutil

    run_dir = tmp_path_factory.mktemp("recommended") / "run"
    shutil.copytree(trained, run_dir)
    recommend.run(spark, run_dir, top_n=5)
    return run_dir


def test_metrics_cover_grid_and_beat_baselines(trained: Path) -> None:
    m = json.loads((RunFolder(trained).metrics).read_text())
    rating, ranked, base = m["rating"], m["ranking"], m["baselines"]
    assert len(rating["cv_results"]) == 2 and m["cv_folds"] == 2 and m["rating_cv"]
    assert all(len(r["fold_rmse"]) == 2 for r in rating["cv_results"])
    best = min(rating["cv_results"], key=lambda r: r["cv_rmse"])
    assert best["rank"] == rating["params"]["rank"]
    assert 0 < rating["rmse"] < base["bias"]["rmse"] < base["global_mean"]["rmse"]
    assert 0 < rating["mae"] < base["global_mean"]["mae"]
    assert ranked["ndcg"] > base["most_popular"]["ndcg"] > 0
    assert ranked["k"] == 5 and 0 < ranked["catalogue_coverage"] <= 1
    assert ranked["user_coverage"] == 1.0
    assert m["gate"]["publish"] and m["champion"] is None


def test_ranking_cv_scores_every_candidate_of_every_family_per_fold(trained: Path) -> None:
    """Both families entered the same CV; the published one is the best mean nDCG."""
    m = json.loads((RunFolder(trained).metrics).read_text())
    cv = m["ranking"]["cv_results"]
    assert [r["family"] for r in cv] == ["als", "als", "ease"]
    assert sorted(r["regParam"] for r in cv if r["family"] == "als") == [0.1, 0.5]
    for r in cv:
        assert len(r["fold_ndcg"]) == 2 and len(r["fold_precision"]) == 2
        assert r["mean_ndcg"] == pytest.approx(sum(r["fold_ndcg"]) / 2)
        assert r["std_ndcg"] == pytest.approx(abs(r["fold_ndcg"][0] - r["fold_ndcg"][1]) / 2)
        assert 0 < r["mean_ndcg"] < 1
    winner = max(cv, key=lambda r: r["mean_ndcg"])
    assert m["ranking"]["params"]["family"] == winner["family"] == m["model_family"]
    assert m["ranking"]["params"] == ranking.Candidate.from_dict(winner).as_dict()
    assert "won the 2-fold CV of 3 candidates" in m["ranking"]["why"]
    meta = json.loads((RunFolder(trained).model_meta).read_text())
    assert meta == m["ranking"]["params"]
    # Every fit of the CV is its own timed phase.
    phases = {
        json.loads(line)["phase"] for line in (RunFolder(trained).timings).read_text().splitlines()
    }
    for fam, i in (("als", 0), ("als", 1), ("ease", 2)):
        assert {f"cv_{fam}_c{i}_fold0", f"cv_{fam}_c{i}_fold1"} <= phases
    assert {"rating_cv_p0_fold0", "rating_cv_p1_fold1", "final_refit"} <= phases


def test_holdout_split_is_deterministic_and_per_user(spark, trained: Path) -> None:
    from reco.modeling import models

    ratings = spark.read.parquet(str(RunFolder(trained).ratings))
    a_train, a_hold = models.split_by_user(ratings, 0.2, 42)
    _, b_hold = models.split_by_user(ratings.repartition(3), 0.2, 42)
    key = ["user_id", "item_id"]
    assert sorted(map(tuple, a_hold.select(key).collect())) == sorted(
        map(tuple, b_hold.select(key).collect())
    )
    assert a_train.count() + a_hold.count() == ratings.count()
    # Each user's own count decides their share (reco/modeling/models.py: the ratings whose
    # hash percent-rank within the user is at least 1 - 0.2, users with 5+ ratings only):
    # k of a user's n ratings, ranked 0..n-1, is held out when k / (n - 1) >= 0.8.
    totals = ratings.groupBy("user_id").count().toPandas().set_index("user_id")["count"]
    held = a_hold.groupBy("user_id").count().toPandas().set_index("user_id")["count"]
    held = held.reindex(totals.index, fill_value=0)

    def own_share(n: int) -> int:
        if n < models.MIN_RATINGS_FOR_HOLDOUT:
            return 0
        return sum(1 for k in range(n) if k / (n - 1) >= 1.0 - 0.2)

    expected = totals.map(own_share)
    assert totals.nunique() > 10 and expected.min() >= 1  # users of many different sizes
    assert held.to_dict() == expected.to_dict()
    assert ((held - 0.2 * totals).abs() <= 1).all()  # about a fifth of each user's own


def recommend_cosines(ids: np.ndarray, vecs: np.ndarray, kind: str):
    """cos(i, j) straight from the definition, independent of the scoring code."""
    pos = {int(i): k for k, i in enumerate(ids)}

    def cos(i: int, j: int) -> float:
        a, b = pos[int(i)], pos[int(j)]
        if kind == "gram":
            return float(vecs[a, b] / np.sqrt(vecs[a, a] * vecs[b, b]))
        return float(vecs[a] @ vecs[b] / (np.linalg.norm(vecs[a]) * np.linalg.norm(vecs[b])))

    return cos


def test_top_n_per_user_excludes_rated_items(spark, trained: Path) -> None:
    out = recommend.run(spark, trained, top_n=7)
    recs = pd.read_parquet(RunFolder(trained).recommendations)
    ratings = pd.read_parquet(RunFolder(trained).ratings)
    assert out["rows"] == len(recs) == 7 * ratings["user_id"].nunique()
    assert recs.groupby("user_id")["rank"].apply(sorted).map(lambda r: r == list(range(1, 8))).all()
    assert recs.merge(ratings, on=["user_id", "item_id"]).empty
    assert np.isfinite(recs["score"]).all()
    # best first within each user
    assert (
        recs.sort_values(["user_id", "rank"])
        .groupby("user_id")["score"]
        .apply(lambda s: s.is_monotonic_decreasing)
        .all()
    )
    assert recs["model_version"].nunique() == 1
    # Every recommendation has a reason: one of the user's own liked items (rated at or
    # above their mean), the closest to it by the published model's item cosine.
    assert recs["because_item_id"].notna().all()
    mean = ratings.groupby("user_id")["rating"].transform("mean")
    liked = ratings[ratings["rating"] >= mean].groupby("user_id")["item_id"].apply(set)
    assert all(b in liked[u] for u, b in zip(recs["user_id"], recs["because_item_id"], strict=True))
    ranker = ranking.load(RunFolder(trained).model)
    ids, vecs = ranker.item_vectors_for_similarity()
    kind = "vectors" if ranker.family == "als" else "gram"
    unit = recommend_cosines(ids, vecs, kind)
    for row in recs.sample(40, random_state=1).itertuples():
        cos = {j: unit(row.item_id, j) for j in liked[row.user_id] if j != row.item_id}
        assert row.because_score == pytest.approx(max(cos.values()))
        assert cos[row.because_item_id] == pytest.approx(row.because_score)
    # The output suite ran on it and passed.
    summary = json.loads((RunFolder(trained).output_validation).read_text())
    assert summary["success"] and summary["suites"][0]["evaluated"] == 8


def test_popular_items_are_the_most_rated_overall_and_per_genre(recommended: Path) -> None:
    popular = pd.read_parquet(RunFolder(recommended).popular_items)
    ratings = pd.read_parquet(RunFolder(recommended).ratings)
    items = pd.read_parquet(RunFolder(recommended).items)
    counts = ratings.groupby("item_id").size()

    def expected(ids: pd.Index) -> list[int]:
        top = counts[counts.index.isin(ids)].reset_index(name="n")
        top = top.sort_values(["n", "item_id"], ascending=[False, True])
        return top["item_id"].head(config.POPULAR_N).tolist()

    overall = popular[popular["genre"] == config.POPULAR_ALL].sort_values("rank")
    assert overall["rank"].tolist() == list(range(1, min(config.POPULAR_N, len(counts)) + 1))
    assert overall["item_id"].tolist() == expected(counts.index)
    assert overall["score"].tolist() == [float(counts[i]) for i in overall["item_id"]]
    genres = items.assign(genre=items["genres"].str.split("|")).explode("genre")
    assert set(popular["genre"]) - {config.POPULAR_ALL} == set(genres["genre"])
    for genre, group in genres.groupby("genre"):
        listed = popular[popular["genre"] == genre].sort_values("rank")["item_id"].tolist()
        assert listed == expected(pd.Index(group["item_id"])), genre
    assert popular["model_version"].nunique() == 1


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (
            "drop_user",
            "expect_column_pair_values_to_be_equal(column_A=n, column_B=expected_n): "
            "observed 1 unexpected values, e.g. [(0, 5)]",
        ),
        ("rated_item", "expect_column_values_to_be_between(column=n_rated): observed 1 unexpected"),
        ("rank_gap", "expect_column_pair_values_to_be_equal(column_A=max_rank, column_B=n)"),
        ("nan_score", "expect_column_values_to_be_between(column=n_nonfinite)"),
    ],
)
def test_output_suite_refuses_broken_recommendations(
    spark, recommended: Path, tmp_path: Path, breakage: str, expected: str
) -> None:
    """A defect in the written top-N fails the recommend step, before publish."""
    import shutil

    from reco.errors import PipelineError

    run_dir = tmp_path / "run"
    shutil.copytree(recommended, run_dir)
    recs = pd.read_parquet(RunFolder(run_dir).recommendations)
    ratings = pd.read_parquet(RunFolder(run_dir).ratings)
    first = recs["user_id"].min()
    if breakage == "drop_user":
        recs = recs[recs["user_id"] != first]
    elif breakage == "rated_item":
        rated = ratings.loc[ratings["user_id"] == first, "item_id"].iloc[0]
        recs.loc[(recs["user_id"] == first) & (recs["rank"] == 5), "item_id"] = rated
    elif breakage == "rank_gap":
        recs.loc[(recs["user_id"] == first) & (recs["rank"] == 5), "rank"] = 9
    else:
        recs.loc[(recs["user_id"] == first) & (recs["rank"] == 1), "score"] = np.nan
    shutil.rmtree(RunFolder(run_dir).recommendations)
    (RunFolder(run_dir).recommendations).mkdir()
    recs.to_parquet(
        RunFolder(run_dir).recommendations / "part-0.parquet",
        index=False,
        coerce_timestamps="us",
        allow_truncated_timestamps=True,
    )
    item_ids = ranking.load(RunFolder(run_dir).model).item_side().item_ids
    with pytest.raises(PipelineError) as info:
        recommend.validate_output(spark, run_dir, item_ids, 5)
    msg = str(info.value)
    assert "data-quality gate failed at recommend (output suite)" in msg
    assert expected in msg, msg
    assert "published recommendations are unchanged" in msg


def test_grid_too_small_data_is_refused(spark, tmp_path: Path) -> None:
    from reco.errors import PipelineError

    f = tmp_path / "u.data"
    f.write_text("1\t1\t3\t100\n1\t2\t4\t100\n")
    ingest.run(spark, tmp_path, formats.detect_source(f))
    with pytest.raises(PipelineError, match="too few to cross-validate"):
        train.run(spark, tmp_path, config.TrainParams(folds=3, grid=GRID, rating_cv=True))


def test_spark_rating_metrics_match_the_pandas_definitions(spark) -> None:
    """RMSE/MAE/MPE exist twice (Spark for big held-out sets, pandas for the metrics
    module): they must agree."""
    from pyspark.sql import functions as F

    from reco.modeling import metrics, models

    actual = [4.0, 2.0, 5.0, 1.0, 3.5]
    predicted = [3.0, 2.0, 4.0, 2.0, 3.9]
    df = spark.createDataFrame(list(zip(actual, predicted, strict=True)), ["rating", "p"])
    got = models.spark_rating_metrics(df, F.col("p"))
    want = metrics.rating_metrics(np.array(actual), np.array(predicted))
    for key in ("rmse", "mae", "mpe"):
        assert got[key] == pytest.approx(want[key])
    assert got["n"] == 5


def test_fixed_parameters_refuse_a_grid_with_several_points(spark, tmp_path: Path) -> None:
    """folds 0 means no search: a grid with several candidates is refused before any work."""
    from reco.errors import PipelineError

    params = config.TrainParams(folds=0, grid={"rank": [5, 10], "regParam": [0.1], "maxIter": [2]})
    with pytest.raises(PipelineError, match="one value per grid key, got 2 rating"):
        train.run(spark, tmp_path, params)
    assert not (RunFolder(tmp_path).timings).exists()
