"""Training and top-N on a small synthetic dataset with real Spark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spark_jobs import config, formats, ingest, recommend, train
from spark_jobs.synthetic import SyntheticSpec, write_dataset

GRID = {"rank": [4, 8], "regParam": [0.1], "maxIter": [5]}


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("synthetic")
    write_dataset(data, SyntheticSpec(n_users=150, n_items=200, mean_ratings_per_user=30))
    run_dir = tmp_path_factory.mktemp("run")
    ingest.run(spark, run_dir, formats.detect_source(data))
    train.run(spark, run_dir, config.TrainParams(folds=2, grid=GRID))
    return run_dir


def test_metrics_cover_grid_and_beat_global_mean(trained: Path) -> None:
    m = json.loads((trained / config.RUN_METRICS).read_text())
    assert len(m["cv_results"]) == 2 and m["cv_folds"] == 2
    assert m["best_params"]["rank"] in (4, 8)
    assert 0 < m["rmse"] < m["baseline_global_mean"]["rmse"]
    assert 0 < m["mae"] < m["baseline_global_mean"]["mae"]
    best = min(m["cv_results"], key=lambda r: r["cv_rmse"])
    assert best["rank"] == m["best_params"]["rank"]
    assert (trained / "model" / "metadata").exists()


def test_top_n_per_user_excludes_rated_items(spark, trained: Path) -> None:
    out = recommend.run(spark, trained, top_n=7)
    recs = pd.read_parquet(trained / config.RUN_RECOMMENDATIONS)
    ratings = pd.read_parquet(trained / config.RUN_RATINGS)
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


def test_grid_too_small_data_is_refused(spark, tmp_path: Path) -> None:
    from spark_jobs.errors import PipelineError

    f = tmp_path / "u.data"
    f.write_text("1\t1\t3\t100\n1\t2\t4\t100\n")
    ingest.run(spark, tmp_path, formats.detect_source(f))
    with pytest.raises(PipelineError, match="too few to cross-validate"):
        train.run(spark, tmp_path, config.TrainParams(folds=3, grid=GRID))
