"""EASE on real Spark: the Gram matrix Spark computes, the catalogue cap, and a run that
publishes an EASE model end to end (train -> recommend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reco import config
from reco.data import formats, ingest
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.modeling import rankers, ranking, recommend, train
from reco.runs import RunFolder
from reco.runtime import run_identity


def test_gram_by_spark_equals_xtx_and_keeps_the_most_rated_items(spark) -> None:
    rng = np.random.default_rng(1)
    pairs = {(int(u), int(i)) for u, i in rng.integers(1, 40, size=(400, 2))}
    pdf = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"]).assign(rating=4.0)
    signals = spark.createDataFrame(pdf)
    gram = rankers.ease_gram(spark, signals)
    items = np.sort(pdf["item_id"].unique())
    x = pd.crosstab(pdf["user_id"], pdf["item_id"]).reindex(columns=items, fill_value=0)
    assert gram.item_ids.tolist() == items.tolist()
    assert np.array_equal(gram.matrix, x.to_numpy().T @ x.to_numpy())
    # Capped: the 10 most-rated items (ties: lower id), sorted by id.
    counts = pdf["item_id"].value_counts()
    top = sorted(
        sorted(counts.index, key=lambda i: (-counts[i], i))[:10],
    )
    capped = rankers.ease_gram(spark, signals, max_items=10)
    assert capped.item_ids.tolist() == top
    assert np.array_equal(capped.matrix, x[top].to_numpy().T @ x[top].to_numpy())


@pytest.fixture(scope="module")
def ease_run(spark, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("ease-data")
    write_dataset(data, SyntheticSpec(n_users=90, n_items=120, mean_ratings_per_user=20, seed=4))
    run_dir = tmp_path_factory.mktemp("ease-run")
    ingest.run(spark, run_dir, formats.detect_source(data))
    params = config.TrainParams(folds=0, families=("ease",), ease_grid={"lambda": [10.0]}, top_k=5)
    train.run(spark, run_dir, params)
    recommend.run(spark, run_dir, top_n=5, similar_k=4)
    return run_dir


def test_an_ease_run_publishes_ease_lists(ease_run: Path) -> None:
    m = json.loads((RunFolder(ease_run).metrics).read_text())
    assert m["model_family"] == "ease" and m["ranking"]["params"] == {
        "family": "ease",
        "lambda": 10.0,
    }
    assert m["ranking"]["why"] == "fixed parameters (folds 0): no search"
    assert m["ranking"]["ndcg"] > m["baselines"]["most_popular"]["ndcg"]
    assert run_identity(ease_run)[0] == f"ease-{ease_run.name}"
    recs = pd.read_parquet(RunFolder(ease_run).recommendations)
    ratings = pd.read_parquet(RunFolder(ease_run).ratings)
    assert (recs.groupby("user_id").size() == 5).all()
    assert set(recs["user_id"]) == set(ratings["user_id"])
    assert recs.merge(ratings, on=["user_id", "item_id"]).empty
    assert set(recs["model_version"]) == {f"ease-{ease_run.name}"}
    validation = json.loads((RunFolder(ease_run).output_validation).read_text())
    assert validation["success"]


def test_ease_lists_are_the_closed_form_scores(ease_run: Path) -> None:
    """A user's published scores are their history times B, recomputed here by numpy."""
    model = ranking.load(RunFolder(ease_run).model)
    ratings = pd.read_parquet(RunFolder(ease_run).ratings)
    recs = pd.read_parquet(RunFolder(ease_run).recommendations)
    user = int(recs["user_id"].min())
    history = ratings.loc[ratings["user_id"] == user, "item_id"].to_numpy()
    pos = np.searchsorted(model.item_ids, history)
    scores = model.weights[pos].sum(axis=0).astype(float)
    scores[pos] = -np.inf
    best = model.item_ids[np.argsort(-scores, kind="stable")[:5]]
    mine = recs[recs["user_id"] == user].sort_values("rank")
    assert mine["item_id"].tolist() == best.tolist()
    assert mine["score"].to_numpy() == pytest.approx(np.sort(scores)[::-1][:5], rel=1e-5)


def test_ease_similar_items_are_cooccurrence_neighbours(ease_run: Path) -> None:
    model = ranking.load(RunFolder(ease_run).model)
    similar = pd.read_parquet(RunFolder(ease_run).similar_items)
    assert (similar.groupby("item_id").size() == 4).all()
    assert (similar["item_id"] != similar["similar_item_id"]).all()
    g = model.gram
    d = np.sqrt(np.diag(g))
    item = int(similar["item_id"].min())
    i = int(np.searchsorted(model.item_ids, item))
    cos = g[i] / (d[i] * d)
    cos[i] = -np.inf
    got = similar[similar["item_id"] == item].sort_values("rank")
    assert got["score"].to_numpy() == pytest.approx(np.sort(cos)[::-1][:4], rel=1e-5)
