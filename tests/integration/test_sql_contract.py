"""The SQL contract apps read: versioned views and ``reco.recommend()``.

The views' columns and types, and the function's signature, are pinned in
``tests/fixtures/sql_contract.json``: changing a v1 object fails here; a change ships as a
new version (``v2_...``), added to that file. The function is called as an app calls it:
through psql, logged in as a member of the read-only role."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from reco.publishing import warehouse
from reco.publishing.publish import publish_table
from tests.support.psql import login_url, psql, run_psql

CONTRACT = Path(__file__).resolve().parent.parent / "fixtures" / "sql_contract.json"
APP, APP_PASSWORD = "reco_test_contract_app", "contract-secret"
AT = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
VERSION = "als-contract"
KNOWN = {1: [11, 12, 13, 14, 15], 2: [21, 22, 23, 24, 25]}  # user -> published list
BECAUSE = {11: 40, 12: 41, 13: 40, 14: None, 15: 42}  # item -> the liked item behind it
POPULAR = list(range(101, 121))  # the overall list, best first (20 items)


def ts(n: int) -> pa.Array:
    return pa.array([AT] * n, pa.timestamp("us", tz="UTC"))


def recommendations() -> pa.Table:
    rows = [(u, i, r) for u, items in KNOWN.items() for r, i in enumerate(items, start=1)]
    because = [BECAUSE.get(i) if u == 1 else 40 for u, i, _ in rows]
    return pa.table(
        {
            "user_id": pa.array([u for u, _, _ in rows], pa.int64()),
            "item_id": pa.array([i for _, i, _ in rows], pa.int64()),
            "rank": pa.array([r for _, _, r in rows], pa.int32()),
            "score": pa.array([1.0 - r / 10 for _, _, r in rows]),
            "because_item_id": pa.array(because, pa.int64()),
            "because_score": pa.array([None if b is None else 0.9 for b in because]),
            "model_version": pa.array([VERSION] * len(rows)),
            "generated_at": ts(len(rows)),
        }
    )


def popular() -> pa.Table:
    lists = [("", POPULAR), ("Drama", [103, 107, 111])]
    rows = [(g, r, i) for g, items in lists for r, i in enumerate(items, start=1)]
    return pa.table(
        {
            "genre": pa.array([g for g, _, _ in rows]),
            "rank": pa.array([r for _, r, _ in rows], pa.int32()),
            "item_id": pa.array([i for _, _, i in rows], pa.int64()),
            "score": pa.array([float(500 - 10 * r) for _, r, _ in rows]),
            "model_version": pa.array([VERSION] * len(rows)),
            "generated_at": ts(len(rows)),
        }
    )


def items() -> pa.Table:
    ids = [*range(11, 16), *range(21, 26), 40, 41, 42, *POPULAR]
    return pa.table(
        {
            "item_id": pa.array(ids, pa.int64()),
            "title": pa.array([f"Title {i}" for i in ids]),
            "genres": pa.array(["Drama"] * len(ids)),
        }
    )


@pytest.fixture(scope="module")
def app(warehouse_url: str) -> Iterator[str]:
    """An app's login in reco_reader, after a publish of the lists above."""
    warehouse.apply_schema(warehouse_url)
    publish_table(warehouse_url, recommendations(), items(), popular=popular())
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {APP}")
        cur.execute(f"CREATE ROLE {APP} LOGIN PASSWORD %s IN ROLE reco_reader", (APP_PASSWORD,))
    yield login_url(warehouse_url, APP, APP_PASSWORD)
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE {APP}")


def owner_count(url: str, view: str) -> int:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {view}")
        return int(cur.fetchone()[0])


def recommend(app: str, call: str) -> list[tuple[str, ...]]:
    rows = psql(
        app,
        "SELECT rank, item_id, coalesce(title, ''), source, coalesce(because_item_id::text, ''),"
        f" coalesce(because_title, ''), model_version FROM {call}",
    )
    return [tuple(r.split("|")) for r in rows]


# ----------------------------------------------------------------------------------------
# The contract itself
# ----------------------------------------------------------------------------------------
def catalog(url: str) -> dict[str, object]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema || '.' || table_name, column_name, data_type "
            "FROM information_schema.columns WHERE table_schema = 'reco' "
            "AND table_name ~ '^v[0-9]+_' ORDER BY table_name, ordinal_position"
        )
        views: dict[str, list[list[str]]] = {}
        for name, column, kind in cur.fetchall():
            views.setdefault(name, []).append([column, kind])
        cur.execute(
            "SELECT 'reco.' || proname || '(' || pg_get_function_identity_arguments(oid) || ')', "
            "pg_get_function_result(oid) FROM pg_proc "
            "WHERE pronamespace = 'reco'::regnamespace AND proname ~ '^(recommend|v[0-9]+_)'"
        )
        functions = dict(cur.fetchall())
    return {"views": views, "functions": functions}


def test_views_and_functions_match_the_pinned_contract(app: str, warehouse_url: str) -> None:
    pinned = json.loads(CONTRACT.read_text())
    found = catalog(warehouse_url)
    for kind in ("views", "functions"):
        new = sorted(set(found[kind]) - set(pinned[kind]))
        gone = sorted(set(pinned[kind]) - set(found[kind]))
        assert not new, f"{kind} {new} are not in {CONTRACT.name}: add a new version there"
        assert not gone, f"contract {kind} {gone} are gone: apps still read them"
        for name, shape in pinned[kind].items():
            assert found[kind][name] == shape, (
                f"{name} changed: a published version never changes; ship the change as a "
                f"new version (e.g. {re.sub(r'v1_', 'v2_', name)}) and keep this one"
            )


def test_the_read_only_role_may_read_every_view_and_call_recommend(
    app: str, warehouse_url: str
) -> None:
    for view in json.loads(CONTRACT.read_text())["views"]:
        assert psql(app, f"SELECT has_table_privilege('{view}', 'SELECT')") == ["t"]
        # The role reads every row the owner sees (no view hides rows from it) ...
        [seen] = psql(app, f"SELECT count(*) FROM {view}")
        assert int(seen) == owner_count(warehouse_url, view), view
    # ... and the lists published above are there to read.
    for view, rows in (("recommendations", 10), ("popular_items", 23)):
        [seen] = psql(app, f"SELECT count(*) FROM reco.v1_{view}")
        assert int(seen) == rows, view
    assert psql(
        app, "SELECT has_function_privilege('reco.recommend(bigint, integer, bigint[])', 'EXECUTE')"
    ) == ["t"]
    # ... and nothing more: no writing through a view, no re-pointing them.
    for view in json.loads(CONTRACT.read_text())["views"]:
        write = f"SELECT has_table_privilege('{view}', 'INSERT, UPDATE, DELETE, TRUNCATE')"
        assert psql(app, write) == ["f"]
    refused = run_psql(app, "SELECT reco.define_contract_views()")
    assert refused.returncode != 0
    assert "only the owner of reco.recommendations" in refused.stderr


# ----------------------------------------------------------------------------------------
# reco.recommend(), as an app calls it
# ----------------------------------------------------------------------------------------
def test_a_new_user_gets_the_popular_list(app: str) -> None:
    rows = recommend(app, "reco.recommend(987654, 10)")
    assert [(r[0], r[1], r[3]) for r in rows] == [
        (str(k), str(i), "popular") for k, i in enumerate(POPULAR[:10], start=1)
    ]
    assert all(r[2] == f"Title {r[1]}" and r[4] == "" and r[6] == VERSION for r in rows)


def test_a_known_user_gets_their_own_list_with_reasons(app: str) -> None:
    rows = recommend(app, "reco.recommend(1, 10)")
    # n beyond the list: the whole published list, and no popular rows mixed in (the
    # warehouse does not know which popular items the user has already rated).
    assert [r[1] for r in rows] == [str(i) for i in KNOWN[1]]
    assert {r[3] for r in rows} == {"personalised"}
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    reasons = {int(r[1]): (r[4], r[5]) for r in rows}
    assert reasons[11] == ("40", "Title 40") and reasons[12] == ("41", "Title 41")
    assert reasons[14] == ("", "")  # no liked item close to it: no reason shown
    assert [r[1] for r in recommend(app, "reco.recommend(1, 2)")] == ["11", "12"]


def test_items_the_app_knows_were_seen_are_left_out_and_ranks_close_up(app: str) -> None:
    rows = recommend(app, "reco.recommend(2, 10, ARRAY[21, 23]::bigint[])")
    assert [(r[0], r[1]) for r in rows] == [("1", "22"), ("2", "24"), ("3", "25")]
    rows = recommend(app, f"reco.recommend(987654, 3, ARRAY[{POPULAR[0]}]::bigint[])")
    assert [r[1] for r in rows] == [str(i) for i in POPULAR[1:4]]
    # Never an empty shelf: a user whose whole list was seen since gets the popular list.
    everything = ",".join(str(i) for i in KNOWN[2])
    rows = recommend(app, f"reco.recommend(2, 3, ARRAY[{everything}]::bigint[])")
    assert [(r[1], r[3]) for r in rows] == [(str(i), "popular") for i in POPULAR[:3]]


def test_n_beyond_the_popular_list_returns_all_of_it(app: str) -> None:
    rows = recommend(app, "reco.recommend(987654, 500)")
    assert len(rows) == len(POPULAR) and rows[-1][0] == str(len(POPULAR))


def test_the_views_carry_titles_and_the_genre_lists(app: str) -> None:
    assert psql(
        app,
        "SELECT item_id, title, because_item_id, because_title FROM reco.v1_recommendations "
        "WHERE user_id = 1 AND rank = 1",
    ) == ["11|Title 11|40|Title 40"]
    assert psql(
        app, "SELECT rank, item_id FROM reco.v1_popular_items WHERE genre = 'Drama' ORDER BY rank"
    ) == ["1|103", "2|107", "3|111"]
