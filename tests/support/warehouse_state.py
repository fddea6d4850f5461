"""What readers of the warehouse see, as values a test can compare before and after a
command: the published lists' content (not only their row count) and reco.model_runs; and
the processes a command leaves behind."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import psutil

from reco.publishing import warehouse

# Every column of every row, in key order: a table rewritten with the same number of rows
# but other scores, items, versions or times gets another fingerprint.
FINGERPRINTS = {
    "recommendations": "SELECT count(*), md5(coalesce(string_agg(t::text, '\n' "
    "ORDER BY t.user_id, t.rank), '')) FROM reco.recommendations t",
    "model_runs": "SELECT count(*), md5(coalesce(string_agg(t::text, '\n' "
    "ORDER BY t.run_id, t.attempt), '')) FROM reco.model_runs t",
}


def fetch(url: str, sql: str, params: Any = None) -> list[tuple]:
    """The rows of one query on the warehouse at ``url``."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def published_state(url: str) -> dict[str, tuple[int, str]]:
    """``{"recommendations": (rows, md5 of the rows), "model_runs": (rows, md5)}``."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        state = {}
        for name, sql in FINGERPRINTS.items():
            cur.execute(sql)
            state[name] = tuple(cur.fetchone())
    return state


def session_processes(sid: int) -> list[psutil.Process]:
    """Every live process of session ``sid`` (a command started with
    ``start_new_session=True`` and everything it started that did not leave the session)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                proc.info = {"name": proc.name()}  # kept: it names the process once gone
                found.append(proc)
    return found


def describe(procs: list[psutil.Process]) -> list[str]:
    """``pid name: command line`` of each process still there, for an assertion message."""
    out = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            out.append(f"{proc.pid} {proc.name()}: {' '.join(proc.cmdline())[:200]}")
    return out


def names(procs: list[psutil.Process]) -> list[str]:
    """The names of ``procs`` as :func:`session_processes` found them (also once gone)."""
    return [getattr(proc, "info", {}).get("name", "?") for proc in procs]
