"""Least privilege: an application login in ``reco_reader`` (sql/060_roles.sql) can read the
published tables, across publishes, and can change nothing."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import errors

from reco.data.synthetic import published_rows as big_recs
from reco.publishing import warehouse
from reco.publishing.publish import publish_table

APP = "reco_test_app"


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
