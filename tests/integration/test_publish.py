"""Atomic publish against the real (embedded) PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import psycopg2
import pyarrow as pa
import pytest

from reco.publishing import warehouse
from reco.publishing.publish import publish_table

GENERATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def recs(users: range, n: int, version: str, score=lambda u, r: 10.0 - r) -> pa.Table:
    rows = [(u, 1000 + u * 10 + r, r, score(u, r)) for u in users for r in range(1, n + 1)]
    return pa.table(
        {
            "user_id": pa.array([r[0] for r in rows], pa.int64()),
            "item_id": pa.array([r[1] for r in rows], pa.int64()),
            "rank": pa.array([r[2] for r in rows], pa.int32()),
            "score": pa.array([r[3] for r in rows], pa.float64()),
            "model_version": pa.array([version] * len(rows)),
            "generated_at": pa.array([GENERATED] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )


def live(url: str) -> list[tuple]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT user_id, item_id, rank, score, model_version, generated_at "
            "FROM reco.recommendations ORDER BY user_id, rank"
        )
        return cur.fetchall()


def staging_tables(url: str) -> list[str]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'reco' "
            "AND tablename LIKE 'recommendations_%%'"
        )
        return [r[0] for r in cur.fetchall()]


@pytest.fixture()
def published_v1(warehouse_url: str) -> list[tuple]:
    publish_table(warehouse_url, recs(range(1, 4), 5, "v1"))
    rows = live(warehouse_url)
    assert len(rows) == 15 and {r[4] for r in rows} == {"v1"}
    return rows


def test_publish_replaces_the_whole_set(warehouse_url: str, published_v1) -> None:
    publish_table(warehouse_url, recs(range(10, 12), 5, "v2"))
    rows = live(warehouse_url)
    assert len(rows) == 10 and {r[0] for r in rows} == {10, 11} and {r[4] for r in rows} == {"v2"}
    assert rows[0][5] == GENERATED
    assert staging_tables(warehouse_url) == []


def test_republishing_the_same_rows_gives_the_same_table(warehouse_url, published_v1) -> None:
    publish_table(warehouse_url, recs(range(1, 4), 5, "v1"))
    assert live(warehouse_url) == published_v1


def test_copy_failure_leaves_previous_rows(warehouse_url: str, published_v1) -> None:
    bad = recs(range(20, 22), 3, "broken")
    bad = pa.concat_tables([bad, bad.slice(0, 1)])  # duplicate (user_id, rank)
    with pytest.raises(psycopg2.errors.UniqueViolation):
        publish_table(warehouse_url, bad)
    assert live(warehouse_url) == published_v1
    assert staging_tables(warehouse_url) == []


def test_nan_score_is_refused_and_previous_rows_stay(warehouse_url, published_v1) -> None:
    with pytest.raises(psycopg2.errors.CheckViolation):
        publish_table(warehouse_url, recs(range(20, 22), 3, "nan", score=lambda u, r: math.nan))
    assert live(warehouse_url) == published_v1


def test_failure_just_before_the_swap_leaves_previous_rows(warehouse_url, published_v1) -> None:
    def crash() -> None:
        raise RuntimeError("process died between COPY and swap")

    with pytest.raises(RuntimeError, match="between COPY and swap"):
        publish_table(warehouse_url, recs(range(30, 40), 5, "v3"), before_swap=crash)
    assert live(warehouse_url) == published_v1
    assert staging_tables(warehouse_url) == []


def test_readers_see_old_set_until_commit_then_new_set(warehouse_url, published_v1) -> None:
    seen_during: list[tuple] = []

    def read_from_another_session() -> None:
        # The new rows are fully loaded into staging at this point, uncommitted.
        seen_during.extend(live(warehouse_url))

    publish_table(
        warehouse_url, recs(range(50, 53), 5, "v4"), before_swap=read_from_another_session
    )
    assert seen_during == published_v1
    after = live(warehouse_url)
    assert len(after) == 15 and {r[4] for r in after} == {"v4"}


def test_item_titles_are_upserted(warehouse_url: str) -> None:
    items = pa.table(
        {
            "item_id": pa.array([1, 2], pa.int64()),
            "title": ["Toy Story (1995)", 'Heat, "the" (1995)'],
            "genres": ["Animation|Comedy", None],
        }
    )
    publish_table(warehouse_url, recs(range(1, 2), 2, "v5"), items)
    renamed = items.set_column(1, "title", pa.array(["Toy Story (1995)", "Heat (1995)"]))
    publish_table(warehouse_url, recs(range(1, 2), 2, "v6"), renamed)
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT item_id, title, genres FROM reco.items WHERE item_id IN (1, 2) ORDER BY item_id"
        )
        assert cur.fetchall() == [
            (1, "Toy Story (1995)", "Animation|Comedy"),
            (2, "Heat (1995)", None),
        ]


def test_schema_is_idempotent(warehouse_url: str, published_v1) -> None:
    warehouse.apply_schema(warehouse_url)
    warehouse.apply_schema(warehouse_url)
    assert live(warehouse_url) == published_v1


def similar(items: range, k: int, version: str) -> pa.Table:
    rows = [(i, i + r, r, 1.0 - r / 10) for i in items for r in range(1, k + 1)]
    return pa.table(
        {
            "item_id": pa.array([r[0] for r in rows], pa.int64()),
            "similar_item_id": pa.array([r[1] for r in rows], pa.int64()),
            "rank": pa.array([r[2] for r in rows], pa.int32()),
            "score": pa.array([r[3] for r in rows], pa.float64()),
            "model_version": pa.array([version] * len(rows)),
            "generated_at": pa.array([GENERATED] * len(rows), pa.timestamp("us", tz="UTC")),
        }
    )


def similar_live(url: str) -> list[tuple]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT item_id, similar_item_id, rank, model_version FROM reco.similar_items")
        return sorted(cur.fetchall())


def test_similar_items_swap_with_the_recommendations(warehouse_url: str) -> None:
    publish_table(warehouse_url, recs(range(1, 3), 2, "s1"), similar=similar(range(1, 4), 2, "s1"))
    assert {r[3] for r in similar_live(warehouse_url)} == {"s1"}
    before = (live(warehouse_url), similar_live(warehouse_url))

    def boom() -> None:
        raise RuntimeError("killed before the swap")

    with pytest.raises(RuntimeError):
        publish_table(
            warehouse_url,
            recs(range(1, 3), 2, "s2"),
            similar=similar(range(1, 4), 2, "s2"),
            before_swap=boom,
        )
    assert (live(warehouse_url), similar_live(warehouse_url)) == before
    publish_table(warehouse_url, recs(range(1, 3), 2, "s2"), similar=similar(range(5, 7), 3, "s2"))
    rows = similar_live(warehouse_url)
    assert len(rows) == 6 and {r[3] for r in rows} == {"s2"} and {r[0] for r in rows} == {5, 6}
    # A self-neighbour is refused by the table's CHECK: the transaction rolls back.
    bad = similar(range(1, 2), 1, "s3")
    bad = bad.set_column(1, "similar_item_id", pa.array([1], pa.int64()))
    with pytest.raises(psycopg2.Error):
        publish_table(warehouse_url, recs(range(1, 3), 2, "s3"), similar=bad)
    assert {r[3] for r in similar_live(warehouse_url)} == {"s2"}
