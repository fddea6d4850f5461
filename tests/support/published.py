"""Numbered versions of every published table, each list naming its version, and run folders
holding them as the recommend step leaves them: for the publish, rollback and retention
tests. Version k's lists: user u gets items u*100 + rank + k, item i's neighbours
i*100 + rank + k, the popular list 1000*k + rank. And :func:`ranked`, any small ranked
table of (key, item, rank, score) rows."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from reco.data.synthetic import PUBLISHED_AT, published_rows
from reco.runs import RunFolder
from tests.support.readers import USER_PATHS

USERS = 400
ITEMS = 300
POPULAR = 20
KEYS = {
    "recommend()": list(range(1, USERS + 1)),
    "v1_recommendations": list(range(1, USERS + 1)),
    "v1_similar_items": list(range(1, ITEMS + 1)),
    "v1_popular_items": [1],
    "recommendations": list(range(1, USERS + 1)),
}


GENERATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def ranked(
    key: str,
    item: str,
    rows: list[tuple[int, int, int, float]],
    model_version: str,
    generated_at: datetime = GENERATED,
) -> pa.Table:
    """A published list table from (key, item, rank, score) rows: ``ranked("user_id",
    "item_id", ...)`` is reco.recommendations' shape, ``ranked("item_id",
    "similar_item_id", ...)`` reco.similar_items'."""
    return pa.table(
        {
            key: pa.array([r[0] for r in rows], pa.int64()),
            item: pa.array([r[1] for r in rows], pa.int64()),
            "rank": pa.array([r[2] for r in rows], pa.int32()),
            "score": pa.array([r[3] for r in rows], pa.float64()),
            "model_version": pa.array([model_version] * len(rows)),
            "generated_at": pa.array([generated_at] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )


def version(k: int, name: str | None = None) -> dict[str, pa.Table]:
    """Version k of every published table (model_version ``name``, default ``vk``)."""
    tag = name or f"v{k}"
    similar = ranked(
        "item_id",
        "similar_item_id",
        [(i, i * 100 + r + k, r, 1.0 / r) for i in range(1, ITEMS + 1) for r in range(1, 11)],
        tag,
        PUBLISHED_AT,
    )
    popular = pa.table(
        {
            "genre": pa.array([""] * POPULAR),
            "rank": pa.array(list(range(1, POPULAR + 1)), pa.int32()),
            "item_id": pa.array([1000 * k + r for r in range(1, POPULAR + 1)], pa.int64()),
            "score": pa.array([float(POPULAR - r) for r in range(POPULAR)]),
            "model_version": pa.array([tag] * POPULAR),
            "generated_at": pa.array([PUBLISHED_AT] * POPULAR, pa.timestamp("us", tz="UTC")),
        }
    )
    return {
        "table": published_rows(USERS, tag, offset=k),
        "similar": similar,
        "popular": popular,
    }


def expected(path: str, key: int, model_version: str) -> tuple[int, ...]:
    """The list version ``vk`` (or ``als-vk``) published for ``key`` on a read path."""
    k = int(model_version.rsplit("v", 1)[-1])
    if path in USER_PATHS or path == "v1_similar_items":
        return tuple(key * 100 + r + k for r in range(1, 11))
    return tuple(1000 * k + r for r in range(1, 11))  # v1_popular_items


def write_run(path: Path, k: int, *, modified: float | None = None) -> RunFolder:
    """A run folder as a run that published version k leaves it (model version
    ``als-vk``): run.json, manifest, metrics and the three lists, ready for ``reco publish``;
    ``modified`` backdates it (the retention tests' days)."""
    folder = RunFolder(path)
    folder.path.mkdir(parents=True, exist_ok=True)
    tables = version(k, f"als-v{k}")
    pq.write_table(tables["table"], folder.recommendations)
    pq.write_table(tables["similar"], folder.similar_items)
    pq.write_table(tables["popular"], folder.popular_items)
    folder.run_info.write_text(
        json.dumps(
            {
                "run_id": path.name,
                "model_version": f"als-v{k}",
                "version_stamp": f"v{k}",
                "generated_at": PUBLISHED_AT.isoformat(),
            }
        )
    )
    folder.manifest.write_text(
        json.dumps(
            {
                "source": {"ratings_path": f"synthetic/{path.name}", "format": "parquet"},
                "n_ratings": USERS * 20,
                "n_users": USERS,
                "n_items": ITEMS,
            }
        )
    )
    quality = {"rmse": 0.91, "mae": 0.72, "mpe": 0.1, "ndcg_at_k": 0.48, "precision_at_k": 0.42}
    folder.metrics.write_text(
        json.dumps(
            {
                "model_family": "als",
                "best_params": {"rank": 8 + k, "reg_param": 0.1},
                "cv_folds": 0,
                "seed": 42,
                "holdout_fraction": 0.2,
                "ranking": {"ndcg": 0.48, "params": {"rank": 8 + k}},
                "rating": {"rmse": 0.91, "params": {"rank": 8 + k}},
                **quality,
                "baselines": {"most_popular": {"ndcg": 0.25}},
                "gate": {"publish": True, "reason": "beats every baseline"},
            }
        )
    )
    if modified is not None:
        os.utime(folder.path, (modified, modified))
    return folder


def live(url: str) -> dict[str, list[tuple]]:
    """Every published table, whole and sorted (to compare what readers get exactly)."""
    from reco.publishing import warehouse

    queries = {
        "recommendations": "SELECT user_id, item_id, rank, score, model_version, generated_at "
        "FROM reco.recommendations",
        "similar_items": "SELECT item_id, similar_item_id, rank, score, model_version, "
        "generated_at FROM reco.similar_items",
        "popular_items": "SELECT genre, rank, item_id, score, model_version, generated_at "
        "FROM reco.popular_items",
    }
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        out = {}
        for name, sql in queries.items():
            cur.execute(sql)
            out[name] = sorted(cur.fetchall())
        return out
