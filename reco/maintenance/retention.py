"""Retention: delete old runs' files so the lake and the reports stay bounded.

A run leaves its folder in the lake (``var/lake/runs/<run>/``: ratings, model, lists), its
Great Expectations Data Docs (``var/reports/data_docs/<run>/``) and its report
(``var/reports/<run>.html``); Spark leaves an event log per application
(``var/lake/spark-events/``). :func:`prune`, run daily by the ``maintenance`` DAG and by
``reco prune``, deletes all three for every run that is none of:

- one of the newest ``RECO_RETAIN_RUNS`` runs (default 10), the one under way included;
- younger than ``RECO_RETAIN_DAYS`` days (default 7);
- the run whose lists readers see now (the champion), or one of the last
  ``RECO_RETAIN_PUBLISHED`` published runs (default 5): what ``reco rollback`` restores.

Event logs older than the oldest of the newest runs kept and than ``RECO_RETAIN_DAYS`` go
too (they are per Spark application, not per run); one still being written is kept.
Nothing in the warehouse is deleted: ``reco.model_runs`` and the timings keep every run.

    reco prune --dry-run   # what would go, and why each kept run stays
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reco import config
from reco.runs import run_key

NEWEST = "one of the newest {n} runs"
RECENT = "younger than {d:g} days"
CURRENT = "published now (the champion)"
PUBLISHED = "one of the last {n} published runs (a rollback target)"


@dataclass(frozen=True)
class Policy:
    keep_runs: int = 10
    keep_days: float = 7.0
    keep_published: int = 5

    def __post_init__(self) -> None:
        if self.keep_runs < 1:
            raise ValueError("RECO_RETAIN_RUNS must be at least 1 (the run under way)")
        if self.keep_published < 1:
            raise ValueError("RECO_RETAIN_PUBLISHED must be at least 1 (the lists readers see)")
        if self.keep_days < 0:
            raise ValueError("RECO_RETAIN_DAYS must be 0 or more")

    @classmethod
    def from_config(cls) -> Policy:
        return cls(config.RETAIN_RUNS, config.RETAIN_DAYS, config.RETAIN_PUBLISHED)


@dataclass(frozen=True)
class RunOnDisk:
    key: str
    modified: float  # the run folder's last change (its last step's write)


def decide(
    runs: Iterable[RunOnDisk], published: list[str], policy: Policy, now: float
) -> dict[str, str | None]:
    """For each run key, why it is kept, or None when it goes. ``published`` holds the run
    keys of the published attempts, the current one first (a key may repeat)."""
    newest = sorted(runs, key=lambda r: r.modified, reverse=True)
    last_published = list(dict.fromkeys(published))[: policy.keep_published]
    cutoff = now - policy.keep_days * 86400
    out: dict[str, str | None] = {}
    for i, run in enumerate(newest):
        if last_published and run.key == last_published[0]:
            out[run.key] = CURRENT
        elif run.key in last_published:
            out[run.key] = PUBLISHED.format(n=policy.keep_published)
        elif i < policy.keep_runs:
            out[run.key] = NEWEST.format(n=policy.keep_runs)
        elif policy.keep_days and run.modified >= cutoff:
            out[run.key] = RECENT.format(d=policy.keep_days)
        else:
            out[run.key] = None
    return out


def runs_on_disk(runs_dir: Path) -> list[RunOnDisk]:
    """Run folders (a folder with ``run.json``); the A/B analyses' ``ab/`` is not one."""
    if not runs_dir.is_dir():
        return []
    return [
        RunOnDisk(p.name, p.stat().st_mtime)
        for p in runs_dir.iterdir()
        if p.is_dir() and (p / "run.json").exists()
    ]


def run_files(key: str) -> list[Path]:
    """Everything of one run outside the warehouse."""
    return [
        config.RUNS_DIR / key,
        config.DATA_DOCS_DIR / key,
        config.REPORTS_DIR / f"{key}.html",
    ]


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def remove(path: Path) -> int:
    freed = size_of(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return freed


def stale_event_logs(events_dir: Path, before: float) -> list[Path]:
    if not events_dir.is_dir():
        return []
    return [
        p
        for p in events_dir.iterdir()
        if p.is_file() and not p.name.endswith(".inprogress") and p.stat().st_mtime < before
    ]


def prune(
    published: list[str],
    policy: Policy | None = None,
    *,
    dry_run: bool = False,
    now: float | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Delete the files of every run the policy does not keep (see the module docstring);
    ``published`` are the published attempts' run ids, the current one first. Returns the
    runs kept (with why), the runs pruned, the event logs removed and the bytes freed."""
    policy = policy or Policy.from_config()
    now = time.time() if now is None else now
    say = log or (lambda _msg: None)
    runs = runs_on_disk(config.RUNS_DIR)
    verdicts = decide(runs, [run_key(r) for r in published], policy, now)
    gone = sorted(k for k, why in verdicts.items() if why is None)
    freed = 0
    for key in gone:
        for path in run_files(key):
            freed += size_of(path) if dry_run else remove(path)
        say(f"{'would prune' if dry_run else 'pruned'} run {key}")
    newest_kept = sorted((r.modified for r in runs), reverse=True)[: policy.keep_runs]
    before = min([*newest_kept, now - policy.keep_days * 86400]) if newest_kept else 0.0
    logs = stale_event_logs(config.SPARK_EVENTS_DIR, before)
    for path in logs:
        freed += size_of(path) if dry_run else remove(path)
    return {
        "dry_run": dry_run,
        "policy": vars(policy),
        "kept": {k: why for k, why in sorted(verdicts.items()) if why is not None},
        "pruned": gone,
        "event_logs_pruned": len(logs),
        "bytes_freed": freed,
    }


def published_run_ids(url: str) -> list[str]:
    """The run folders of the published attempts, the current one first (a rollback's
    lists live in the folder of the run it restored)."""
    from reco.publishing import rollback

    return [p.source_run for p in rollback.history(url)]


def disk_use() -> dict[str, int]:
    """Bytes under the lake's runs, the reports and the event logs."""
    return {
        "runs": size_of(config.RUNS_DIR),
        "reports": size_of(config.REPORTS_DIR),
        "spark_events": size_of(config.SPARK_EVENTS_DIR),
    }
