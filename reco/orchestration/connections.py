"""The Airflow connections the pipeline reads: the warehouse and the Spark master."""

from __future__ import annotations

import re

from reco import config
from reco.publishing import warehouse


def airflow_connection_url(conn_id: str = config.WAREHOUSE_CONN_ID) -> str | None:
    """The URI of an Airflow connection, if Airflow is importable and the connection exists."""
    try:
        from airflow.sdk import BaseHook
    except Exception:  # not running under Airflow
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        return None
    uri = conn.get_uri()
    # Airflow spells the scheme "postgres"; psycopg2 accepts both, keep the canonical one.
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", uri)


def warehouse_url() -> str:
    """Inside an Airflow task: ``WAREHOUSE_URL``, else the ``warehouse`` connection, else
    the embedded server."""
    return warehouse.resolve_url(connection=airflow_connection_url)
