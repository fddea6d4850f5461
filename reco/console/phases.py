"""The phases a run's steps time, as the person at the terminal reads them.

Which phases are train's cross-validation fits (:data:`CV_FIT`, :data:`RATING_CV_FIT`), how
many of them a run will time (:class:`Plan`, known before it starts), when a timing record
began and ended, and one finished phase in words (:func:`describe_phase`, with
:func:`fmt_seconds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Train's cross-validation fits, one timed phase each (reco/modeling/ranking.py, train.py).
CV_FIT = re.compile(r"^cv_(?P<family>[a-z]+)_c(?P<i>\d+)_fold(?P<f>\d+)$")
RATING_CV_FIT = re.compile(r"^rating_cv_p(?P<i>\d+)_fold(?P<f>\d+)$")


def fmt_seconds(seconds: float) -> str:
    """``2.3 s``, ``23 s``, ``1m05s``, ``1h02m``: short enough for a status line."""
    s = max(0.0, seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, rest = divmod(int(round(s)), 60)
        return f"{m}m{rest:02d}s"
    h, rest = divmod(int(round(s)) // 60, 60)
    return f"{h}h{rest:02d}m"


@dataclass(frozen=True)
class Plan:
    """The cross-validation fits the train step will time, known from the run parameters
    before it starts (the counter's total)."""

    folds: int = 0
    candidates: int = 0  # ranking candidates searched by CV (0: fixed parameters)
    rating_points: int = 0  # rating-model grid points searched by CV (0: no rating CV)

    @property
    def fits(self) -> int:
        return self.folds * (self.candidates + self.rating_points)


def phase_times(rec: dict[str, Any]) -> tuple[float, float]:
    """A timing record's start and end, in epoch seconds."""
    return (
        datetime.fromisoformat(rec["started_at"]).timestamp(),
        datetime.fromisoformat(rec["finished_at"]).timestamp(),
    )


def describe_phase(
    phase: str, details: dict[str, Any], seconds: Any, plan: Plan, fits_done: int
) -> str:
    """One finished phase, for a person: ``CV fit 3/6: als candidate 1/2, fold 3/3, nDCG
    0.281 (20 s)`` or ``read: 35,030 rows (6.1 s)``."""
    took = f" ({fmt_seconds(float(seconds))})" if isinstance(seconds, int | float) else ""
    failed = " FAILED" if details.get("failed") is True else ""
    of_folds = f"/{plan.folds}" if plan.folds else ""
    if m := CV_FIT.match(phase):
        of = f"/{plan.candidates}" if plan.candidates else ""
        score = f", nDCG {details['ndcg']:.3f}" if isinstance(details.get("ndcg"), float) else ""
        return (
            f"CV fit {fits_done}{'/' + str(plan.fits) if plan.fits else ''}: {m['family']} "
            f"candidate {int(m['i']) + 1}{of}, fold {int(m['f']) + 1}{of_folds}{score}"
            f"{failed}{took}"
        )
    if m := RATING_CV_FIT.match(phase):
        of = f"/{plan.rating_points}" if plan.rating_points else ""
        score = f", RMSE {details['rmse']:.3f}" if isinstance(details.get("rmse"), float) else ""
        return (
            f"CV fit {fits_done}{'/' + str(plan.fits) if plan.fits else ''}: rating point "
            f"{int(m['i']) + 1}{of}, fold {int(m['f']) + 1}{of_folds}{score}{failed}{took}"
        )
    facts = []
    if isinstance(details.get("rows"), int):
        facts.append(f"{details['rows']:,} rows")
    if isinstance(details.get("expectations"), int):
        bad = details.get("failed")
        facts.append(
            f"{details['expectations']} checks"
            + (f", {bad} failed" if isinstance(bad, int) and not isinstance(bad, bool) else "")
        )
    said = f": {', '.join(facts)}" if facts else ""
    return f"{phase.replace('_', ' ')}{said}{failed}{took}"
