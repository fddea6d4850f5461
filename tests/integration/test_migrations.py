"""Versioned schema against the real embedded PostgreSQL: a warehouse created and filled by
the previous release's code (checked out from git) upgrades in place keeping its rows,
grants and comments; an up-to-date warehouse gets no DDL; a newer one is refused."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from reco.errors import PipelineError
from reco.publishing import migrations, warehouse
from reco.publishing.publish import publish_table
from tests.support.published import version

ROOT = Path(__file__).resolve().parents[2]
# The last release before the schema was versioned: its warehouse has no
# reco.schema_migrations and no reco.model_runs.restored_from.
PREVIOUS_RELEASE = "3efc277549931d01d659c3fc8c9d09507408177a"
DATABASE = "reco_upgrade_test"
APP = "reco_test_app"  # an app's login, a member of reco_reader
DBA_COMMENT = "DBA: the lists the shop reads"

OLD_RELEASE_FILLS = r"""
import sys
from reco.publishing import warehouse
from reco.data.synthetic import published_rows
from reco.publishing.publish import publish_table

url = sys.argv[1]
warehouse.apply_schema(url)
v = {"table": published_rows(50, "als-old", offset=3)}
publish_table(url, v["table"])
with warehouse.connection(url) as conn, conn.cursor() as cur:
    cur.execute(
        "INSERT INTO reco.model_runs (run_id, model_version, status, n_published) "
        "VALUES ('old-run', 'als-old', 'published', %s)", (v["table"].num_rows,)
    )
"""


def database_url(url: str, name: str) -> str:
    from urllib.parse import urlparse, urlunparse

    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def checkout(commit: str, dest: Path) -> Path:
    """The code as of ``commit`` (its reco/ and sql/), from this clone's history."""
    archive = dest / "release.tar"
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "reco", "sql"],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(
            f"cannot check out the previous release {commit[:10]} from {ROOT}: "
            f"{exc.stderr.strip()} (the upgrade test needs the clone's history)"
        )
    tree = dest / commit[:10]
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def published(url: str) -> dict[str, object]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        out: dict[str, object] = {}
        for table in ("recommendations", "similar_items", "popular_items"):
            cur.execute(f"SELECT * FROM reco.{table} ORDER BY 1, 2, 3")
            out[table] = cur.fetchall()
        cur.execute("SELECT run_id, model_version, status, n_published FROM reco.model_runs")
        out["model_runs"] = cur.fetchall()
        cur.execute(
            "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.relnamespace = 'reco'::regnamespace AND c.relkind IN ('r', 'v') "
            "AND c.relname <> 'schema_migrations' ORDER BY 1"
        )
        out["comments"] = cur.fetchall()
        cur.execute(
            "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) FROM pg_class c "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE c.relnamespace = 'reco'::regnamespace AND c.relkind IN ('r', 'v') "
            "AND c.relname <> 'schema_migrations' AND a.attname <> 'restored_from' ORDER BY 1, 2"
        )
        out["column_comments"] = cur.fetchall()
        cur.execute(
            "SELECT table_name, grantee, privilege_type FROM information_schema.table_privileges "
            "WHERE table_schema = 'reco' AND grantee NOT IN ('postgres', 'PUBLIC') "
            "ORDER BY 1, 2, 3"
        )
        out["grants"] = cur.fetchall()
    return out


@pytest.fixture()
def old_warehouse(warehouse_url: str, tmp_path: Path) -> Iterator[str]:
    """A database created and published to by the previous release, with a DBA's comment
    and an app's grant on top."""
    admin = psycopg2.connect(warehouse_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DATABASE}")
        cur.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP}') THEN "
            f"CREATE ROLE {APP} LOGIN; END IF; END $$"
        )
    url = database_url(warehouse_url, DATABASE)
    tree = checkout(PREVIOUS_RELEASE, tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", OLD_RELEASE_FILLS, url],
        cwd=tree,
        env={**__import__("os").environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('reco.schema_migrations')")
        assert cur.fetchone()[0] is None, "the previous release already kept a version"
        cur.execute(f"COMMENT ON TABLE reco.recommendations IS '{DBA_COMMENT}'")
        cur.execute(f"GRANT reco_reader TO {APP}")
        cur.execute(f"GRANT SELECT ON reco.model_runs TO {APP}")
    yield url
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin.close()


def test_the_previous_release_warehouse_upgrades_in_place(old_warehouse: str) -> None:
    before = published(old_warehouse)
    assert before["recommendations"] and ("reco_test_app", "SELECT") in {
        (g[1], g[2]) for g in before["grants"]
    }
    applied = warehouse.apply_schema(old_warehouse)
    assert applied == [m.name for m in migrations.known()]  # every file, once
    after = published(old_warehouse)
    assert after == before  # rows, run history, comments (the DBA's too) and grants
    assert ("recommendations", DBA_COMMENT) in after["comments"]
    status = warehouse.schema_status(old_warehouse)
    assert status["warehouse_version"] == status["code_version"] == migrations.known()[-1].version
    assert status["pending"] == [] and status["refused"] is None
    with warehouse.connection(old_warehouse) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reco.model_runs WHERE restored_from IS NULL")
        assert cur.fetchone()[0] == 1  # the new column, on the old row
    # At the code's version: nothing is applied, no DDL is run.
    assert warehouse.apply_schema(old_warehouse) == []
    # The app still reads through its group after a publish by the new code.
    v = version(4, "als-new")
    publish_table(old_warehouse, v["table"], similar=v["similar"], popular=v["popular"])
    with psycopg2.connect(old_warehouse) as conn, conn.cursor() as cur:
        cur.execute(f"SET ROLE {APP}")
        cur.execute("SELECT DISTINCT model_version FROM reco.v1_recommendations")
        assert cur.fetchall() == [("als-new",)]
    assert ("recommendations", DBA_COMMENT) in published(old_warehouse)["comments"]


def test_a_changed_file_is_applied_again_and_recorded(old_warehouse: str) -> None:
    warehouse.apply_schema(old_warehouse)
    with warehouse.connection(old_warehouse) as conn, conn.cursor() as cur:
        cur.execute("UPDATE reco.schema_migrations SET checksum = 'older' WHERE version = 95")
    assert warehouse.apply_schema(old_warehouse) == ["095_comments.sql"]
    assert warehouse.apply_schema(old_warehouse) == []


def test_a_newer_schema_is_refused_with_both_versions(old_warehouse: str) -> None:
    warehouse.apply_schema(old_warehouse)
    latest = migrations.known()[-1].version
    with warehouse.connection(old_warehouse) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO reco.schema_migrations (version, name, checksum) "
            "VALUES (999, '999_from_the_future.sql', 'x')"
        )
    before = published(old_warehouse)
    with pytest.raises(PipelineError) as err:
        warehouse.apply_schema(old_warehouse)
    message = str(err.value)
    assert "schema is at version 999 (999_from_the_future.sql" in message
    assert f"newer than this code's {latest}" in message and "does not downgrade" in message
    assert published(old_warehouse) == before
    assert warehouse.schema_status(old_warehouse)["refused"] == message
