"""What earlier runs took: the estimate of a ``reco run``'s time.

The median time of the latest comparable earlier runs (:func:`estimate`: same dataset, as
many cross-validation fits, ran to the report without an error), read from their folders'
``timings.jsonl``, in total and per stage (:class:`Estimate`).
"""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reco.console.phases import CV_FIT, RATING_CV_FIT, phase_times
from reco.runs import RunFolder

# Earlier runs read for the estimate: the newest folders, and at most this many alike.
HISTORY_SCAN = 200
HISTORY_RUNS = 5


@dataclass(frozen=True)
class Estimate:
    """What comparable earlier runs took: ``total`` from their first phase's start to their
    last phase's end, and each stage's span, in seconds (medians over ``runs`` runs)."""

    total: float
    stages: dict[str, float]
    runs: int


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a ``timings.jsonl`` (unlike ``timing.read_timings``, repeats kept)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict) and "stage" in rec:
                out.append(rec)
    return out


def span(records: Iterable[dict[str, Any]], stage: str | None = None) -> float | None:
    """Seconds from the first start to the last end of the records (of one ``stage``)."""
    times = [phase_times(r) for r in records if stage is None or r.get("stage") == stage]
    if not times:
        return None
    return max(t[1] for t in times) - min(t[0] for t in times)


def cv_fits(records: Iterable[dict[str, Any]]) -> int:
    """How many cross-validation fits a run's train step timed."""
    return len(
        {
            r["phase"]
            for r in records
            if r.get("stage") == "train"
            and (CV_FIT.match(str(r.get("phase"))) or RATING_CV_FIT.match(str(r.get("phase"))))
        }
    )


def comparable_records(run_dir: Path, dataset: str, fits: int) -> list[dict[str, Any]] | None:
    """An earlier run's timings when it ran to its report without an error, on the same
    dataset with as many CV fits; else None."""
    folder = RunFolder(run_dir)
    if folder.error.exists() or not folder.timings.exists() or not folder.run_info.exists():
        return None
    info = json.loads(folder.run_info.read_text(encoding="utf-8"))
    if info.get("dataset") != dataset:
        return None
    records = read_records(folder.timings)
    if not any(r.get("stage") == "report" for r in records) or cv_fits(records) != fits:
        return None
    return records


def estimate(
    runs_dir: Path,
    dataset: str,
    fits: int,
    exclude: Path | None = None,
    limit: int = HISTORY_RUNS,
) -> Estimate | None:
    """The median time of the latest ``limit`` earlier runs like this one (same dataset,
    as many CV fits, ran to the report without an error), or None when there is none."""
    try:
        folders = [d for d in runs_dir.iterdir() if d.is_dir() and d != exclude]
        folders.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    except OSError:
        return None
    picked: list[list[dict[str, Any]]] = []
    for folder in folders[:HISTORY_SCAN]:
        try:
            records = comparable_records(folder, dataset, fits)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if records:
            picked.append(records)
            if len(picked) >= limit:
                break
    if not picked:
        return None
    try:
        totals = [span(r) or 0.0 for r in picked]
        stages: dict[str, float] = {}
        for stage in {r["stage"] for records in picked for r in records}:
            spans = [s for records in picked if (s := span(records, stage)) is not None]
            stages[stage] = statistics.median(spans)
    except (ValueError, KeyError, TypeError):
        return None
    return Estimate(statistics.median(totals), stages, len(picked))
