"""Stage timings: a ``Timer`` context manager that appends one JSON line per phase.

Every job writes to ``<run_dir>/timings.jsonl``; the report stage loads the file into
``reco.stage_timings``. A phase that raises is still recorded, with ``failed: true``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reco.instrumentation import eventlog
from reco.runs import RunFolder


@contextmanager
def timer(run_dir: Path | None, stage: str, phase: str = "", **details: Any) -> Iterator[dict]:
    """Time the block; ``details`` (and keys the block adds to the yielded dict) are kept."""
    record: dict[str, Any] = dict(details)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    failed = False
    # Spark jobs started inside the block carry the phase, for the event-log metrics.
    previous_tag = eventlog.tag_phase(run_dir, f"{stage}/{phase}")
    try:
        yield record
    except BaseException as exc:
        failed = True
        mark_where(exc, stage, phase, details)
        raise
    finally:
        eventlog.restore(previous_tag)
        seconds = time.perf_counter() - t0
        if failed:
            record["failed"] = True
        if run_dir is not None:
            append_timing(run_dir, stage, phase, started, seconds, record)


# Details whose value names the input a phase works on (a file, a folder, an inbox).
WHERE_KEYS = ("source", "path", "file", "inbox")


def mark_where(exc: BaseException, stage: str, phase: str, details: dict[str, Any]) -> None:
    """Note on ``exc`` the innermost phase it came through (``read (path/to/file)``), so
    the step's error message can say what it was working on; outer phases keep it."""
    if getattr(exc, "reco_where", None) or not phase or phase == "total":
        return
    what = next((str(details[k]) for k in WHERE_KEYS if details.get(k)), None)
    where = f"{phase} ({what})" if what else phase
    with contextlib.suppress(AttributeError):  # an exception type without a __dict__
        exc.reco_where = where  # type: ignore[attr-defined]


def append_timing(
    run_dir: Path,
    stage: str,
    phase: str,
    started: datetime,
    seconds: float,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one timing record to the run's timings file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    finished = datetime.fromtimestamp(started.timestamp() + seconds, tz=UTC)
    line = {
        "stage": stage,
        "phase": phase,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "seconds": round(seconds, 4),
        "details": details or {},
    }
    with open(RunFolder(run_dir).timings, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, default=str) + "\n")


def read_timings(run_dir: Path) -> list[dict[str, Any]]:
    """All timing records of a run; the last record wins for a repeated (stage, phase)."""
    path = RunFolder(run_dir).timings
    if not path.exists():
        return []
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            merged[(rec["stage"], rec["phase"])] = rec
    return list(merged.values())
