"""Stage timings: one JSON line per phase, failures marked."""

from __future__ import annotations

from pathlib import Path

import pytest

from reco.instrumentation.timing import read_timings, timer


def test_timer_records_phases_and_failures(tmp_path: Path) -> None:
    with timer(tmp_path, "train", "fit", rank=10) as rec:
        rec["rows"] = 5
    with pytest.raises(RuntimeError), timer(tmp_path, "train", "refit"):
        raise RuntimeError("boom")
    rows = {(r["stage"], r["phase"]): r for r in read_timings(tmp_path)}
    assert rows[("train", "fit")]["details"] == {"rank": 10, "rows": 5}
    assert rows[("train", "refit")]["details"] == {"failed": True}
    assert rows[("train", "fit")]["seconds"] >= 0
