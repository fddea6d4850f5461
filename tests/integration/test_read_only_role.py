"""Least privilege: an application login in ``reco_reader`` (sql/060_roles.sql) can read the
published tables, across publishes, and can change nothing; a login a DBA granted directly
on the tables keeps reading them across publishes too (checked through psql, as that
login); a pipeline login that may not create roles still applies the schema, skipping the
role with a NOTICE."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pyarrow as pa
import pytest
from psycopg2 import errors

from reco.data.synthetic import published_rows as big_recs
from reco.publishing import warehouse
from reco.publishing.publish import publish_table
from tests.support.psql import login_url, psql
from tests.support.published import ranked

APP = "reco_test_app"
ANALYST = "reco_test_analyst"  # a login outside reco_reader, granted on the tables directly
ANALYST_PASSWORD = "analyst-secret"


def app_url(url: str) -> str:
    return url.replace("postgresql://postgres:@", f"postgresql://{APP}@", 1)


@pytest.fixture(scope="module")
def app_login(warehouse_url: str) -> str:
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {APP}")
        cur.execute(f"CREATE ROLE {APP} LOGIN IN ROLE reco_reader")
    publish_table(warehouse_url, big_recs(50, "ro-v1"))
    return app_url(warehouse_url)


def app_query(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def test_reader_role_exists_without_login(warehouse_url: str) -> None:
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'reco_reader'")
        assert cur.fetchone() == (False, False)


def test_app_reads_published_tables_and_keeps_access_after_a_publish(
    app_login: str, warehouse_url: str
) -> None:
    assert app_query(app_login, "SELECT count(*) FROM reco.recommendations") == [(500,)]
    app_query(app_login, "SELECT count(*) FROM reco.similar_items")
    app_query(app_login, "SELECT count(*) FROM reco.items")
    # The swap installs a new table: the grant must come with it.
    publish_table(warehouse_url, big_recs(60, "ro-v2"))
    assert app_query(
        app_login, "SELECT count(*), min(model_version) FROM reco.recommendations"
    ) == [(600, "ro-v2")]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO reco.recommendations (user_id, item_id, rank, score, model_version, "
        "generated_at) VALUES (1, 1, 99, 1.0, 'x', now())",
        "UPDATE reco.recommendations SET score = 0",
        "DELETE FROM reco.recommendations",
        "TRUNCATE reco.recommendations",
        "DROP TABLE reco.recommendations",
        "DELETE FROM reco.similar_items",
        "UPDATE reco.items SET title = 'x'",
        "CREATE TABLE reco.mine (x int)",
        "SELECT * FROM reco.model_runs",
    ],
)
def test_app_cannot_write_or_read_beyond_the_published_tables(
    app_login: str, warehouse_url: str, statement: str
) -> None:
    before = app_query(app_login, "SELECT count(*) FROM reco.recommendations")
    with pytest.raises(errors.InsufficientPrivilege):
        app_query(app_login, statement)
    assert app_query(app_login, "SELECT count(*) FROM reco.recommendations") == before


# --------------------------------------------------------------------------------------
# A DBA's direct grant and comments, through two publishes
# --------------------------------------------------------------------------------------


def similar_rows(version: str) -> pa.Table:
    """Three neighbours for each of items 1..4."""
    rows = [(i, 100 + i * 10 + r, r, 1.0 - r / 10) for i in range(1, 5) for r in range(1, 4)]
    return ranked("item_id", "similar_item_id", rows, version)


DBA_COMMENTS = {
    "reco.recommendations": ("Owned by the data team; ask #reco", "0-100, not a probability"),
    "reco.similar_items": ("Neighbours; see the wiki", "cosine in [-1, 1]"),
}


@pytest.fixture()
def analyst(warehouse_url: str) -> Iterator[str]:
    """A login a DBA made by hand: no reco_reader membership, SELECT granted directly on the
    two swapped tables, and the DBA's own table and column comments on them."""
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {ANALYST}")
        cur.execute(f"CREATE ROLE {ANALYST} LOGIN PASSWORD %s", (ANALYST_PASSWORD,))
        cur.execute(f"GRANT USAGE ON SCHEMA reco TO {ANALYST}")
        cur.execute(f"GRANT SELECT ON reco.recommendations, reco.similar_items TO {ANALYST}")
        before = {}
        for table, (table_comment, score_comment) in DBA_COMMENTS.items():
            cur.execute(
                "SELECT obj_description(%s::regclass, 'pg_class'), col_description("
                "%s::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = "
                "%s::regclass AND attname = 'score'))",
                (table, table, table),
            )
            before[table] = cur.fetchone()
            cur.execute(f"COMMENT ON TABLE {table} IS %s", (table_comment,))
            cur.execute(f"COMMENT ON COLUMN {table}.score IS %s", (score_comment,))
    yield login_url(warehouse_url, ANALYST, ANALYST_PASSWORD)
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        for table, (comment, score_comment) in before.items():  # ours, put back
            cur.execute(f"COMMENT ON TABLE {table} IS %s", (comment,))
            cur.execute(f"COMMENT ON COLUMN {table}.score IS %s", (score_comment,))
        cur.execute(f"DROP OWNED BY {ANALYST}")  # its grants
        cur.execute(f"DROP ROLE {ANALYST}")


def test_a_direct_grant_and_a_dbas_comments_survive_two_publishes(
    analyst: str, warehouse_url: str
) -> None:
    assert psql(analyst, "SELECT current_user, pg_has_role('reco_reader', 'MEMBER')") == [
        f"{ANALYST}|f"
    ]
    for version in ("direct-v1", "direct-v2"):
        publish_table(warehouse_url, big_recs(40, version), similar=similar_rows(version))
        # The analyst reads the new tables, as itself, through psql.
        assert psql(analyst, "SELECT count(*), min(model_version) FROM reco.recommendations") == [
            f"400|{version}"
        ]
        assert psql(analyst, "SELECT count(*), min(model_version) FROM reco.similar_items") == [
            f"12|{version}"
        ]
        for table, (table_comment, score_comment) in DBA_COMMENTS.items():
            # The grant is on the table itself (not inherited), as the DBA made it.
            assert psql(
                analyst,
                "SELECT a.privilege_type, a.is_grantable, has_table_privilege("
                f"'{table}', 'SELECT') FROM pg_class c, aclexplode(c.relacl) a "
                f"WHERE c.oid = '{table}'::regclass AND a.grantee = current_user::regrole",
            ) == ["SELECT|f|t"]
            assert psql(
                analyst,
                f"SELECT obj_description(c.oid, 'pg_class') || '|' || col_description(c.oid, "
                f"a.attnum) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                f"WHERE c.oid = '{table}'::regclass AND a.attname = 'score'",
            ) == [f"{table_comment}|{score_comment}"]


# --------------------------------------------------------------------------------------
# A pipeline login without CREATEROLE
# --------------------------------------------------------------------------------------
NO_CREATEROLE = "reco_test_no_createrole"
NO_CREATEROLE_DB = "reco_test_no_createrole_db"
ROLE_NOTICE = (
    "NOTICE:  reco_reader role not created (needs CREATEROLE): run sql/060_roles.sql as a DBA"
)


def as_login_on(url: str, role: str, database: str) -> str:
    """``url`` (the embedded server, trust authentication) as ``role`` on ``database``."""
    p = urlsplit(url)
    return urlunsplit(p._replace(netloc=f"{role}@{p.netloc.split('@', 1)[1]}", path=f"/{database}"))


@pytest.fixture()
def login_without_createrole(warehouse_url: str) -> Iterator[str]:
    """A login that owns an empty database and may not create roles, on a server where
    ``reco_reader`` does not exist yet: roles are server-wide, so the one this session's
    schema step made is renamed for the test and renamed back after it."""
    admin = psycopg2.connect(warehouse_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {NO_CREATEROLE_DB} WITH (FORCE)")
        cur.execute(f"DROP ROLE IF EXISTS {NO_CREATEROLE}")
        cur.execute(f"CREATE ROLE {NO_CREATEROLE} LOGIN NOCREATEROLE NOSUPERUSER")
        cur.execute(f"CREATE DATABASE {NO_CREATEROLE_DB} OWNER {NO_CREATEROLE}")
        cur.execute("ALTER ROLE reco_reader RENAME TO reco_reader_set_aside")
    try:
        yield as_login_on(warehouse_url, NO_CREATEROLE, NO_CREATEROLE_DB)
    finally:
        with admin.cursor() as cur:
            cur.execute("ALTER ROLE reco_reader_set_aside RENAME TO reco_reader")
            cur.execute(f"DROP DATABASE IF EXISTS {NO_CREATEROLE_DB} WITH (FORCE)")
            cur.execute(f"DROP ROLE IF EXISTS {NO_CREATEROLE}")
        admin.close()


def test_a_login_that_cannot_create_roles_skips_the_role_with_a_notice(
    login_without_createrole: str, monkeypatch
) -> None:
    """README ("Read-only access for apps"): when the pipeline's login may not create
    roles, the role step is skipped with a NOTICE; the rest of the schema is applied, and
    publishes work."""
    from reco.publishing import migrations

    url = login_without_createrole
    connections = []
    connect = warehouse.connect

    def keeping(u: str):
        conn = connect(u)
        connections.append(conn)
        return conn

    monkeypatch.setattr(warehouse, "connect", keeping)
    applied = warehouse.apply_schema(url)
    notices = [n.strip() for conn in connections for n in conn.notices]
    assert ROLE_NOTICE in notices, notices

    every = migrations.known()
    assert applied == [m.name for m in every]  # every file, 060 included, in one transaction
    rows = app_query(
        url,
        "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'reco_reader'), "
        "(SELECT array_agg(version ORDER BY version) FROM reco.schema_migrations), "
        "to_regclass('reco.recommendations') IS NOT NULL, "
        "to_regclass('reco.v1_recommendations') IS NOT NULL, "
        "to_regprocedure('reco.recommend(bigint, integer, bigint[])') IS NOT NULL",
    )
    assert rows == [(0, [m.version for m in every], True, True, True)]
    assert warehouse.apply_schema(url) == []  # at the code's version: nothing to do
    publish_table(url, big_recs(5, "no-createrole-v1"))
    assert app_query(url, "SELECT count(*), min(model_version) FROM reco.recommend(1, 3)") == [
        (3, "no-createrole-v1")
    ]
