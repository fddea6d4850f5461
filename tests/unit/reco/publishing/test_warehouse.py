"""The warehouse: named SQL statements, URLs without credentials, clear errors."""

from __future__ import annotations

import pytest

from reco.errors import PipelineError
from reco.publishing import warehouse


def test_named_statements_split_in_order() -> None:
    steps = warehouse.named_statements("publish_table.sql")
    assert list(steps) == ["lock", "create_staging", "index_staging", "swap", "drop_previous"]
    assert "PRIMARY KEY" in steps["index_staging"] and "PRIMARY KEY" not in steps["create_staging"]
    assert "pg_advisory_xact_lock" in steps["lock"]


def test_describe_hides_credentials() -> None:
    text = warehouse.describe("postgresql://bob:s3cret@db.example:5433/wh")
    assert text == "db.example:5433/wh" and "s3cret" not in text


def test_unreachable_warehouse_names_host_and_cause() -> None:
    with pytest.raises(
        PipelineError,
        match=r"cannot reach the warehouse PostgreSQL at "
        r"127\.0\.0\.1:1/wh: .*",
    ) as info:
        warehouse.connect("postgresql://u:p@127.0.0.1:1/wh")
    assert info.value.retryable


def test_the_url_comes_from_warehouse_url_then_the_connection_then_the_embedded_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", "postgresql://env/wh")
    conn = "postgresql://conn/wh"
    assert warehouse.resolve_url("postgresql://given/wh", connection=lambda: conn).endswith(
        "given/wh"
    )
    assert warehouse.resolve_url(connection=lambda: conn) == "postgresql://env/wh"
    monkeypatch.delenv("WAREHOUSE_URL")
    assert warehouse.resolve_url(connection=lambda: conn) == conn


def test_each_published_table_gets_its_own_statements() -> None:
    from reco.publishing.publish import POPULAR_ITEMS

    steps = POPULAR_ITEMS.statements()
    assert (
        "CREATE TABLE reco.popular_items_staging (LIKE reco.popular_items"
        in steps["create_staging"]
    )
    assert "PRIMARY KEY (genre, rank)" in steps["index_staging"]
    assert "RENAME TO popular_items_previous" in steps["swap"]
    assert steps["drop_previous"].endswith("DROP TABLE reco.popular_items_previous;")
    assert "{" not in "".join(steps.values())
