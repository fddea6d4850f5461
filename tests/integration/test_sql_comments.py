"""Every object the pipeline creates in schema ``reco`` says what it is (``\\d+`` in psql):
each table, view and column, and each function, has a comment (``sql/095_comments.sql``).
Our descriptions are set only where an object has none, so a DBA's own comment survives
the schema being applied again on the next run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reco.publishing import warehouse

# Relations that exist only inside a publish transaction (sql/publish_table.sql).
TRANSIENT = r"_(staging|previous)$"

UNDESCRIBED = """
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                      ELSE 'table' END || ' reco.' || c.relname
FROM pg_class c
WHERE c.relnamespace = 'reco'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm')
  AND c.relname !~ %(transient)s
  AND coalesce(btrim(obj_description(c.oid, 'pg_class')), '') = ''
UNION ALL
SELECT 'column reco.' || c.relname || '.' || a.attname
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'reco'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm')
  AND c.relname !~ %(transient)s
  AND coalesce(btrim(col_description(c.oid, a.attnum)), '') = ''
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'reco'::regnamespace
  AND coalesce(btrim(obj_description(p.oid, 'pg_proc')), '') = ''
ORDER BY 1
"""


def undescribed(url: str) -> list[str]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(UNDESCRIBED, {"transient": TRANSIENT})
        return [r[0] for r in cur.fetchall()]


def test_every_table_view_column_and_function_in_reco_has_a_comment(warehouse_url: str) -> None:
    warehouse.apply_schema(warehouse_url)
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'reco'::regnamespace "
            "AND relkind IN ('r', 'v') AND relname IN ('recommendations', 'v1_recommendations')"
        )
        assert cur.fetchone()[0] == 2  # the query below looks at the right schema
    missing = undescribed(warehouse_url)
    assert not missing, (
        f"{len(missing)} object(s) in schema reco without a comment (describe them in "
        "sql/095_comments.sql):\n  " + "\n  ".join(missing)
    )


# One object of each kind a DBA may comment on: (COMMENT ON target, how to read it back).
DBA_TARGETS = {
    "COLUMN reco.recommendations.because_item_id": (
        "SELECT col_description('reco.recommendations'::regclass, attnum) FROM pg_attribute "
        "WHERE attrelid = 'reco.recommendations'::regclass AND attname = 'because_item_id'"
    ),
    "COLUMN reco.v1_recommendations.score": (
        "SELECT col_description('reco.v1_recommendations'::regclass, attnum) FROM pg_attribute "
        "WHERE attrelid = 'reco.v1_recommendations'::regclass AND attname = 'score'"
    ),
    "TABLE reco.items": "SELECT obj_description('reco.items'::regclass, 'pg_class')",
    "VIEW reco.v1_popular_items": (
        "SELECT obj_description('reco.v1_popular_items'::regclass, 'pg_class')"
    ),
    "FUNCTION reco.recommend(bigint, integer, bigint[])": (
        "SELECT obj_description('reco.recommend(bigint, integer, bigint[])'::regprocedure, "
        "'pg_proc')"
    ),
}


@pytest.fixture()
def dba_comments(warehouse_url: str) -> Iterator[dict[str, str]]:
    """A DBA's own comment on each of ``DBA_TARGETS``; ours are put back afterwards."""
    warehouse.apply_schema(warehouse_url)
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        ours = {}
        for target, read in DBA_TARGETS.items():
            cur.execute(read)
            ours[target] = cur.fetchone()[0]
        assert all(ours.values()), f"no comment of ours to replace: {ours}"
        theirs = {t: f"DBA note on {t.split()[1]}: ask data-eng before relying on it" for t in ours}
        for target, text in theirs.items():
            cur.execute(f"COMMENT ON {target} IS %s", (text,))
    try:
        yield theirs
    finally:
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            for target, text in ours.items():
                cur.execute(f"COMMENT ON {target} IS %s", (text,))


def test_a_dba_comment_survives_the_schema_being_applied_again(
    warehouse_url: str, dba_comments: dict[str, str]
) -> None:
    # Every file applied again, as an upgrade re-applies a file whose text changed.
    warehouse.apply_schema(warehouse_url, reapply=True)
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        kept = {}
        for target, read in DBA_TARGETS.items():
            cur.execute(read)
            kept[target] = cur.fetchone()[0]
    assert kept == dba_comments
