"""The Airflow Assets that link the DAGs, and the watcher that notices new ratings exports.

Lineage, as the UI's Assets view draws it::

    ratings_inbox -> recommendations -> reco.recommendations -> pipeline_report -> reco.run_report
                                                          \\-> ab_test_analysis

* ``ratings_inbox`` (``config.RATINGS_INBOX``) is watched by the triggerer with
  :class:`NewExportTrigger`: an entry that appears (or changes) there and then stays
  unchanged for one poll interval starts a ``recommendations`` run, which reads it.
* ``reco.recommendations`` gets an event when a run publishes (not when its model is
  rejected); the report and the A/B analysis run from it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from reco import config
from reco.data.watch import pick_new, scan

WATERMARK_KEY = "last_seen"


# ------------------------------------------------------------------------------------------
# the watcher
# ------------------------------------------------------------------------------------------
class NewExportTrigger(BaseEventTrigger):
    """Fires once per new ratings export in ``directory`` (newest first), with its path.

    The mtime of the last export it fired for is kept in the asset's state store, so a
    restarted triggerer does not fire again for the same file."""

    def __init__(self, directory: str, poll_seconds: float = 10.0) -> None:
        super().__init__()
        self.directory = directory
        self.poll_seconds = poll_seconds
        self._memory_watermark = 0  # without a state store (a trigger run outside Airflow)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"directory": self.directory, "poll_seconds": self.poll_seconds},
        )

    async def _watermark(self) -> int:
        if self.asset_state_store is None:
            return self._memory_watermark
        return int(await self.asset_state_store.aget(WATERMARK_KEY, 0) or 0)

    async def _set_watermark(self, value: int) -> None:
        self._memory_watermark = value
        if self.asset_state_store is not None:
            await self.asset_state_store.aset(WATERMARK_KEY, value)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        directory = Path(self.directory)
        before = await asyncio.to_thread(scan, directory)
        while True:
            await asyncio.sleep(self.poll_seconds)
            now = await asyncio.to_thread(scan, directory)
            entry = pick_new(before, now, await self._watermark())
            before = now
            if entry is None:
                continue
            await self._set_watermark(entry.mtime_ns)
            self.log.info("new ratings export %s (%d bytes)", entry.path, entry.size)
            yield TriggerEvent(
                {"path": entry.path, "size": entry.size, "seen_at": round(time.time())}
            )
            return


def export_path(events: Any) -> str | None:
    """The ratings export a run should read, from its ``triggering_asset_events`` (the
    newest event of ``ratings_inbox``), else None."""
    try:
        found = list(events[RATINGS_INBOX]) if events else []
    except KeyError:
        return None
    for event in reversed(found):
        payload = (event.extra or {}).get("payload") or {}
        if isinstance(payload, str):
            payload = json.loads(payload)
        if payload.get("path"):
            return str(payload["path"])
    return None


def publishing_run(events: Any) -> str | None:
    """The ``recommendations`` run whose publish started this run, else None."""
    try:
        found = list(events[RECOMMENDATIONS]) if events else []
    except KeyError:
        return None
    runs = [e.source_run_id for e in found if getattr(e, "source_run_id", None)]
    return str(runs[-1]) if runs else None


RATINGS_INBOX = Asset(
    name="ratings_inbox",
    uri=config.RATINGS_INBOX.as_uri(),
    group="ratings",
    watchers=[
        AssetWatcher(
            name="new_ratings_export",
            trigger=NewExportTrigger(
                directory=str(config.RATINGS_INBOX),
                poll_seconds=config.RATINGS_INBOX_POLL_SECONDS,
            ),
        )
    ],
)
RECOMMENDATIONS = Asset(
    name="reco.recommendations",
    uri="postgres://warehouse/reco/reco/recommendations",
    group="warehouse",
)
RUN_REPORT = Asset(
    name="reco.run_report",
    uri=(config.REPORTS_DIR / "latest.html").as_uri(),
    group="reports",
)
