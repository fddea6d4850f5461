"""EASE on real Spark: the Gram matrix Spark computes, the catalogue cap, and a run that
publishes an EASE model end to end (train -> recommend)."""

from __future__ import annotations

import json
import os
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


# --- the catalogue cap on real data ---------------------------------------------------------
CAP = 150  # a small RECO_EASE_MAX_ITEMS: ML-100K has 1,682 items


@pytest.fixture(scope="module")
def ml100k_signals(spark, ml100k: Path):
    from reco.data.transforms import to_als_types

    pdf = pd.read_csv(
        ml100k / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"]
    )
    return pdf, to_als_types(spark.createDataFrame(pdf)).cache()


def ease_lists(spark, signals, max_items: int) -> pd.DataFrame:
    """Every user's EASE top-10 (rated items excluded) over a catalogue of ``max_items``."""
    gram = rankers.ease_gram(spark, signals, max_items=max_items)
    model = ranking.fit(spark, signals, ranking.Candidate("ease", {"lambda": 300.0}), 42, 1, gram)
    return model.recommend(spark, signals, signals, 10).toPandas()


def test_ease_never_recommends_items_beyond_its_cap(spark, ml100k_signals) -> None:
    """README ("EASE is bounded"): EASE scores only the RECO_EASE_MAX_ITEMS most-rated items
    and never recommends the others. With a larger cap the same fit does recommend others."""
    pdf, signals = ml100k_signals
    counts = pdf.groupby("item_id").size()
    ranked = sorted(counts.index, key=lambda i: (-counts[i], i))
    top = set(ranked[:CAP])

    capped = ease_lists(spark, signals, CAP)
    assert set(capped["item_id"]) <= top
    assert capped["user_id"].nunique() == pdf["user_id"].nunique()
    # Each user gets 10, or every capped item they have not rated.
    rated_in_top = pdf[pdf["item_id"].isin(top)].groupby("user_id").size()
    rated_in_top = rated_in_top.reindex(pdf["user_id"].unique(), fill_value=0)
    expected = (CAP - rated_in_top).clip(upper=10)
    assert capped.groupby("user_id").size().sort_index().equals(expected.sort_index())

    wider = ease_lists(spark, signals, 3 * CAP)
    beyond = wider[~wider["item_id"].isin(top)]
    assert beyond["user_id"].nunique() > 100  # the cap is what keeps those items out


def test_ease_cap_comes_from_the_environment_and_the_report_says_so() -> None:
    """RECO_EASE_MAX_ITEMS sets the cap every EASE fit of the train step uses (the default of
    ease_gram / ease_catalogue, which the CV folds and the refits call without one)."""
    import inspect
    import subprocess
    import sys

    script = (
        "import inspect, json; from reco.modeling import rankers, ranking; "
        "print(json.dumps([rankers.EASE_MAX_ITEMS, "
        "inspect.signature(rankers.ease_gram).parameters['max_items'].default, "
        "inspect.signature(rankers.ease_catalogue).parameters['max_items'].default, "
        "ranking.catalogue_note(ranking.Candidate('ease', {'lambda': 1.0}), 1682)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "RECO_EASE_MAX_ITEMS": str(CAP)},
        cwd=str(config.PROJECT_ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *defaults, note = json.loads(done.stdout.splitlines()[-1])
    assert defaults == [CAP, CAP, CAP]
    assert note == (
        f"EASE scores the {CAP:,} most-rated of 1,682 items (RECO_EASE_MAX_ITEMS); "
        "the others are not recommended"
    )
    # In this process (no RECO_EASE_MAX_ITEMS): the documented default, 3,000 items.
    assert inspect.signature(rankers.ease_gram).parameters["max_items"].default == 3000
