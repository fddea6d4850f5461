"""Atomic publish against the real (embedded) PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pyarrow as pa
import pytest

from reco.publishing import warehouse
from reco.publishing.publish import publish_table
from tests.support.published import GENERATED, ranked


def recs(users: range, n: int, version: str, score=lambda u, r: 10.0 - r) -> pa.Table:
    rows = [(u, 1000 + u * 10 + r, r, score(u, r)) for u in users for r in range(1, n + 1)]
    return ranked("user_id", "item_id", rows, version)


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
    warehouse.apply_schema(warehouse_url, reapply=True)
    assert warehouse.apply_schema(warehouse_url) == []
    assert live(warehouse_url) == published_v1


def similar(items: range, k: int, version: str) -> pa.Table:
    rows = [(i, i + r, r, 1.0 - r / 10) for i in items for r in range(1, k + 1)]
    return ranked("item_id", "similar_item_id", rows, version)


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


# --------------------------------------------------------------------------------------
# What the swapped-in tables keep: owner, grants, comments (sql/080_table_metadata.sql)
# --------------------------------------------------------------------------------------

LEAD, MEMBER, WRITER, OWNERS = (
    "reco_test_lead",
    "reco_test_member",
    "reco_test_writer",
    "reco_test_owners",
)
WRITER_PASSWORD = "writer-secret"


def table_metadata(url: str, table: str) -> dict[str, object]:
    """Owner, every privilege entry (table and column level, with grantor) and every
    comment of ``table``, by name."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pg_get_userbyid(relowner), obj_description(oid, 'pg_class') "
            "FROM pg_class WHERE oid = %s::regclass",
            (table,),
        )
        owner, comment = cur.fetchone()
        cur.execute(
            "SELECT '', pg_get_userbyid(a.grantor), "
            "CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, "
            "a.privilege_type, a.is_grantable "
            "FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %(t)s::regclass "
            "UNION ALL "
            "SELECT t.attname, pg_get_userbyid(a.grantor), "
            "CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, "
            "a.privilege_type, a.is_grantable "
            "FROM pg_attribute t, aclexplode(t.attacl) a WHERE t.attrelid = %(t)s::regclass",
            {"t": table},
        )
        acl = sorted(cur.fetchall())
        cur.execute(
            "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND col_description(attrelid, attnum) IS NOT NULL ORDER BY attname",
            (table,),
        )
        return {"owner": owner, "comment": comment, "acl": acl, "columns": cur.fetchall()}


@pytest.fixture()
def dba_roles(warehouse_url: str) -> Iterator[None]:
    """Roles a DBA made; afterwards the tables go back to the test login and the roles and
    their grants are dropped."""
    names = (LEAD, MEMBER, WRITER, OWNERS)
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP ROLE IF EXISTS {name}")
        cur.execute(f"CREATE ROLE {LEAD} NOLOGIN")
        cur.execute(f"CREATE ROLE {MEMBER} NOLOGIN")
        cur.execute(f"CREATE ROLE {OWNERS} NOLOGIN")
        cur.execute(f"CREATE ROLE {WRITER} LOGIN IN ROLE {OWNERS}")
        cur.execute(f"GRANT USAGE ON SCHEMA reco TO {LEAD}, {MEMBER}")
        cur.execute("SELECT obj_description('reco.recommendations'::regclass, 'pg_class')")
        comment = cur.fetchone()[0]
    yield
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        for table in ("reco.recommendations", "reco.similar_items"):
            cur.execute(f"ALTER TABLE {table} OWNER TO CURRENT_USER")
            cur.execute(f"COMMENT ON COLUMN {table}.score IS NULL")
            cur.execute(f"REVOKE ALL (item_id, rank) ON {table} FROM PUBLIC")
        cur.execute("COMMENT ON TABLE reco.recommendations IS %s", (comment,))
        for name in names:
            cur.execute(f"DROP OWNED BY {name}")  # grants (it owns nothing any more)
            cur.execute(f"DROP ROLE {name}")
    warehouse.apply_schema(warehouse_url, reapply=True)  # our comments on score, again


def test_every_grant_and_comment_of_the_live_tables_carries_over(
    warehouse_url: str, dba_roles
) -> None:
    publish_table(warehouse_url, recs(range(1, 3), 2, "m1"), similar=similar(range(1, 4), 2, "m1"))
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        for table in ("reco.recommendations", "reco.similar_items"):
            cur.execute(f"GRANT SELECT, UPDATE ON {table} TO {LEAD} WITH GRANT OPTION")
            cur.execute(f"GRANT SELECT (item_id, rank) ON {table} TO PUBLIC")
            cur.execute(f"GRANT UPDATE (score) ON {table} TO {MEMBER}")
            cur.execute(f"COMMENT ON COLUMN {table}.score IS 'DBA: how sure we are'")
            # A grant made by the lead, not the owner: it is re-made by the lead.
            cur.execute(f"SET ROLE {LEAD}")
            cur.execute(f"GRANT SELECT ON {table} TO {MEMBER}")
            cur.execute("RESET ROLE")
        cur.execute("COMMENT ON TABLE reco.recommendations IS 'DBA: the shop reads this'")
    before = {
        t: table_metadata(warehouse_url, t) for t in ("reco.recommendations", "reco.similar_items")
    }
    assert (LEAD, "", MEMBER, "SELECT", False) in [
        (r[1], r[0], r[2], r[3], r[4]) for r in before["reco.recommendations"]["acl"]
    ]
    for version in ("m2", "m3"):
        publish_table(
            warehouse_url, recs(range(1, 3), 2, version), similar=similar(range(1, 4), 2, version)
        )
        assert {r[4] for r in live(warehouse_url)} == {version}
        assert {r[3] for r in similar_live(warehouse_url)} == {version}
        for table, expected in before.items():
            assert table_metadata(warehouse_url, table) == expected, table


def test_the_owner_carries_over_or_the_publish_fails_saying_why(
    warehouse_url: str, dba_roles, published_v1
) -> None:
    """A DBA hands reco.recommendations to a group role; the pipeline publishes as a login
    in that group (not a superuser)."""
    p = urlsplit(warehouse_url)
    netloc = f"{WRITER}:{WRITER_PASSWORD}@{p.netloc.rpartition('@')[2]}"
    writer_url = urlunsplit(p._replace(netloc=netloc))
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER ROLE {WRITER} PASSWORD %s", (WRITER_PASSWORD,))
        cur.execute(f"GRANT USAGE, CREATE ON SCHEMA reco TO {WRITER}")
        cur.execute(f"ALTER TABLE reco.recommendations OWNER TO {OWNERS}")
    with warehouse.connection(writer_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (WRITER, False)
    # The group may not own tables in the schema: the publisher may not give the new table
    # to it. Silently keeping the publisher as owner is what this refuses.
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as refused:
        publish_table(writer_url, recs(range(7, 9), 5, "by-writer"))
    message = str(refused.value)
    assert f"reco.recommendations is owned by role {OWNERS}" in message
    assert f"{WRITER} (the publisher) may not make {OWNERS} the owner" in message
    assert "nothing was published" in message
    assert f"ALTER TABLE reco.recommendations OWNER TO {WRITER}" in refused.value.diag.message_hint
    assert live(warehouse_url) == published_v1
    assert staging_tables(warehouse_url) == []
    # Once the group may own tables there, the new table is the group's.
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(f"GRANT CREATE ON SCHEMA reco TO {OWNERS}")
    publish_table(writer_url, recs(range(7, 9), 5, "by-writer"))
    assert {r[4] for r in live(warehouse_url)} == {"by-writer"}
    assert table_metadata(warehouse_url, "reco.recommendations")["owner"] == OWNERS


def test_our_table_comments_are_set_once_and_a_dbas_own_is_kept(
    warehouse_url: str, published_v1
) -> None:
    ours = {
        "reco.recommendations": "Per-user top-N recommendations (rank 1 = best). "
        "Replaced atomically by each published run.",
        "reco.similar_items": "Top-K similar items per item (rank 1 = most similar; "
        "score = cosine of the model's item vectors: ALS item factors, or EASE "
        "co-occurrence).",
    }

    def comments() -> dict[str, str | None]:
        return {t: table_metadata(warehouse_url, t)["comment"] for t in ours}

    def set_comments(text: str | None) -> None:
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            for table in ours:
                cur.execute(f"COMMENT ON TABLE {table} IS %s", (text,))

    try:
        set_comments(None)  # as on a fresh install
        warehouse.apply_schema(warehouse_url, reapply=True)
        assert comments() == ours
        publish_table(
            warehouse_url, recs(range(1, 3), 2, "c1"), similar=similar(range(1, 3), 1, "c1")
        )
        assert comments() == ours
        set_comments("DBA: ours now")
        warehouse.apply_schema(warehouse_url, reapply=True)
        publish_table(
            warehouse_url, recs(range(1, 3), 2, "c2"), similar=similar(range(1, 3), 1, "c2")
        )
        assert comments() == dict.fromkeys(ours, "DBA: ours now")
    finally:
        set_comments(None)
        warehouse.apply_schema(warehouse_url, reapply=True)
