"""Similar items on the real ML-100K ratings and titles: from ALS item factors, and from
EASE's co-occurrence matrix (whichever family is published provides them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reco import config
from reco.data import formats, ingest
from reco.data.transforms import to_als_types
from reco.modeling import models, rankers, scoring
from reco.runs import RunFolder

K = 10


@pytest.fixture(scope="module")
def ml100k_ratings(spark, ml100k: Path, tmp_path_factory) -> tuple[object, pd.DataFrame]:
    run_dir = tmp_path_factory.mktemp("similar")
    ingest.run(spark, run_dir, formats.detect_source(ml100k))
    ratings = to_als_types(spark.read.parquet(str(RunFolder(run_dir).ratings))).cache()
    return ratings, pd.read_parquet(RunFolder(run_dir).items)


@pytest.fixture(scope="module", params=["als", "ease"])
def ml100k_neighbours(request, spark, ml100k_ratings) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratings, items = ml100k_ratings
    if request.param == "als":
        model = models.fit_ranking_model(
            ratings, {"rank": 32, "regParam": 1.0, "alpha": 5.0, "maxIter": 10}, config.SEED, 2
        )
        _, item_ids, item_vecs = models.als_factors(model)
        similar = scoring.similar_items(spark, item_ids, item_vecs, K).toPandas()
    else:
        gram = rankers.ease_gram(spark, ratings)
        similar = scoring.cosine_neighbours(gram.item_ids, gram.matrix, K)
    return similar, items


def test_every_item_gets_k_ranked_neighbours_not_itself(ml100k_neighbours) -> None:
    similar, items = ml100k_neighbours
    per_item = similar.groupby("item_id")
    assert (per_item.size() == K).all()
    assert per_item["rank"].apply(lambda r: sorted(r) == list(range(1, K + 1))).all()
    assert (similar["item_id"] != similar["similar_item_id"]).all()
    assert similar["score"].between(-1.0 - 1e-9, 1.0 + 1e-9).all()
    assert per_item["score"].apply(lambda s: s.is_monotonic_decreasing).all()


def genre_sets(items: pd.DataFrame) -> dict[int, set[str]]:
    return {
        int(i): {g for g in str(gs).split("|") if g and g != "unknown"}
        for i, gs in zip(items["item_id"], items["genres"], strict=True)
    }


def test_neighbours_of_the_best_known_films_share_their_genres(
    spark, ml100k: Path, ml100k_neighbours
) -> None:
    """Over the ten most-rated films, more of their 10 neighbours share a genre with them
    than other films do by chance. (Per film this does not always hold: implicit factors
    also group films watched in the same era, e.g. Contact with other 1997 releases.)"""
    similar, items = ml100k_neighbours
    genres = genre_sets(items)
    ratings = pd.read_csv(
        ml100k / "u.data", sep="\t", header=None, names=["user", "item", "rating", "ts"]
    )
    shares, chances = [], []
    for film in ratings["item"].value_counts().index[:10]:
        near = similar.loc[similar["item_id"] == film, "similar_item_id"]
        share = np.mean([bool(genres[n] & genres[film]) for n in near])
        chance = np.mean([bool(genres[i] & genres[film]) for i in genres if i != film])
        title = items.set_index("item_id").loc[film, "title"]
        print(f"{title}: {share:.0%} of neighbours share a genre (chance {chance:.0%})")
        shares.append(share)
        chances.append(chance)
    assert np.mean(shares) > np.mean(chances) + 0.1, (np.mean(shares), np.mean(chances))


def test_genre_agreement_above_chance_across_popular_films(ml100k_neighbours) -> None:
    similar, items = ml100k_neighbours
    genres = genre_sets(items)
    ids = np.array(sorted(genres))
    rng = np.random.default_rng(0)
    near = np.mean(
        [
            bool(genres[a] & genres[b])
            for a, b in zip(similar["item_id"], similar["similar_item_id"], strict=True)
        ]
    )
    pairs = rng.choice(ids, size=(20_000, 2))
    chance = np.mean([bool(genres[a] & genres[b]) for a, b in pairs if a != b])
    print(f"all items: {near:.0%} of neighbours share a genre (chance {chance:.0%})")
    assert near > chance + 0.1, (near, chance)
