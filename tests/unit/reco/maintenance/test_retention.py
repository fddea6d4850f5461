"""Which runs retention keeps, and why (reco/maintenance/retention.py, pure)."""

from __future__ import annotations

import pytest

from reco.maintenance.retention import Policy, RunOnDisk, decide

DAY = 86400.0
NOW = 100 * DAY


def runs(n: int) -> list[RunOnDisk]:
    """Daily runs d00 (oldest) .. d<n-1> (yesterday)."""
    return [RunOnDisk(f"d{i:02d}", NOW - (n - i) * DAY) for i in range(n)]


def kept(verdicts: dict[str, str | None]) -> set[str]:
    return {k for k, why in verdicts.items() if why}


def test_the_newest_runs_and_the_recent_days_are_kept() -> None:
    out = decide(runs(20), [], Policy(keep_runs=3, keep_days=5.5, keep_published=1), NOW)
    assert kept(out) == {f"d{i}" for i in range(15, 20)}
    assert out["d19"] == "one of the newest 3 runs"
    assert out["d15"] == "younger than 5.5 days"
    assert out["d14"] is None


def test_the_champion_and_the_last_published_survive_any_age() -> None:
    published = ["d03", "d03", "d07", "d01", "d00"]  # current first; d03 published twice
    out = decide(runs(20), published, Policy(keep_runs=2, keep_days=0, keep_published=3), NOW)
    assert out["d03"] == "published now (the champion)"
    assert out["d07"] == out["d01"] == "one of the last 3 published runs (a rollback target)"
    assert out["d00"] is None  # the 4th distinct published run
    assert kept(out) == {"d03", "d07", "d01", "d18", "d19"}


def test_a_policy_that_would_delete_the_run_under_way_is_refused() -> None:
    with pytest.raises(ValueError, match="RECO_RETAIN_RUNS must be at least 1"):
        Policy(keep_runs=0)
    with pytest.raises(ValueError, match="RECO_RETAIN_PUBLISHED must be at least 1"):
        Policy(keep_published=0)
