"""Readers that query the warehouse in a loop while something else (a publish) runs, each
in a process of its own (no GIL shared with the publisher or each other), as apps do:
through ``reco.recommend()``, the v1 views and the tables, one short statement per read.

Each reader keeps every distinct answer it saw per (key, model_version), every error, and
each read's latency; the caller checks the answers against what each version published.
Used by tests/integration/test_publish_concurrency.py and bench/publish_concurrency.py.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

READER_APPLICATION = "reco-test-reader"  # each reader session: this, then its read path

# The ways an app reads a list, each returning (rank, item, model_version) rows for one
# key: a user, an item, or (popular) anything.
READ_PATHS = {
    "recommend()": "SELECT rank, item_id, model_version FROM reco.recommend(%(key)s, 10)",
    "v1_recommendations": (
        "SELECT rank, item_id, model_version FROM reco.v1_recommendations "
        "WHERE user_id = %(key)s ORDER BY rank"
    ),
    "v1_similar_items": (
        "SELECT rank, similar_item_id, model_version FROM reco.v1_similar_items "
        "WHERE item_id = %(key)s ORDER BY rank"
    ),
    "v1_popular_items": (
        "SELECT rank, item_id, model_version FROM reco.v1_popular_items "
        "WHERE genre = '' AND %(key)s IS NOT NULL ORDER BY rank LIMIT 10"
    ),
    "recommendations": (
        "SELECT rank, item_id, model_version FROM reco.recommendations "
        "WHERE user_id = %(key)s ORDER BY rank"
    ),
}
USER_PATHS = ("recommend()", "v1_recommendations", "recommendations")
Answer = tuple[int, ...]  # the items of one list, in rank order


@dataclass
class ReaderResult:
    path: str
    reads: int = 0
    errors: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # ranks not 1..n, or mixed versions
    latencies_s: list[float] = field(default_factory=list)
    answers: dict[tuple[int, str], set[Answer]] = field(default_factory=dict)


def read_loop(url: str, path: str, keys: list[int], stop: Any, counter: Any, out: Any) -> None:
    """One reader process: read ``path`` for random keys until ``stop`` is set."""
    import psycopg2

    result = ReaderResult(path)
    rng = random.Random(hash(path) ^ multiprocessing.current_process().pid)
    conn = psycopg2.connect(url, application_name=f"{READER_APPLICATION} {path}")
    conn.autocommit = True
    cur = conn.cursor()
    try:
        while not stop.is_set():
            key = rng.choice(keys)
            t0 = time.perf_counter()
            try:
                cur.execute(READ_PATHS[path], {"key": key})
                rows = cur.fetchall()
            except psycopg2.Error as exc:
                result.errors.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
                continue
            finally:
                with counter.get_lock():
                    counter.value += 1
            result.latencies_s.append(time.perf_counter() - t0)
            result.reads += 1
            versions = {r[2] for r in rows}
            if [r[0] for r in rows] != list(range(1, len(rows) + 1)) or len(versions) > 1:
                result.malformed.append(f"key {key}: {rows}")
                continue
            version = rows[0][2] if rows else ""
            result.answers.setdefault((key, version), set()).add(tuple(r[1] for r in rows))
    finally:
        conn.close()
        out.put(result)


class Readers:
    """``per_path`` reader processes for each path, started on enter, stopped by
    :meth:`stop` (or on exit)."""

    def __init__(self, url: str, keys: dict[str, list[int]], per_path: int = 1) -> None:
        # fork: the readers need nothing of the parent but these arguments, and spawn would
        # re-import the test runner's main module.
        self.ctx = multiprocessing.get_context("fork")
        self.stop_event = self.ctx.Event()
        self.counter = self.ctx.Value("q", 0)
        self.out = self.ctx.Queue()
        self.procs = [
            self.ctx.Process(
                target=read_loop,
                args=(url, path, keys[path], self.stop_event, self.counter, self.out),
                daemon=True,
            )
            for path in keys
            for _ in range(per_path)
        ]
        self.results: list[ReaderResult] | None = None

    def __enter__(self) -> Readers:
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def reads(self) -> int:
        return int(self.counter.value)

    def wait_for_reads(self, more: int, timeout: float = 60) -> None:
        """Until ``more`` reads (errors included) were done from now on."""
        target = self.reads + more
        deadline = time.monotonic() + timeout
        while self.reads < target:
            assert time.monotonic() < deadline, f"the readers did {self.reads}/{target} reads"
            assert all(p.is_alive() for p in self.procs), "a reader process died"
            time.sleep(0.01)

    def stop(self) -> list[ReaderResult]:
        if self.results is None:
            self.stop_event.set()
            self.results = [self.out.get(timeout=60) for _ in self.procs]
            for p in self.procs:
                p.join(timeout=30)
        return self.results


@dataclass(frozen=True)
class Tally:
    reads: int
    errors: list[str]
    malformed: list[str]
    wrong: list[str]  # answers that are not what their version published
    max_ms: float
    p99_ms: float
    p50_ms: float
    by_path: dict[str, int]

    def line(self) -> str:
        return (
            f"{self.reads} reads ({', '.join(f'{k} {v}' for k, v in self.by_path.items())}), "
            f"{len(self.errors)} errors, {len(self.malformed) + len(self.wrong)} partial or "
            f"mixed; wait p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"max {self.max_ms:.0f} ms"
        )


def tally(results: list[ReaderResult], expected: Callable[[str, int, str], Answer | None]) -> Tally:
    """Every answer checked against ``expected(path, key, version)``: the list that version
    published for that key (None: that version is unknown)."""
    wrong = []
    by_path: dict[str, int] = {}
    for r in results:
        by_path[r.path] = by_path.get(r.path, 0) + r.reads
        for (key, version), seen in r.answers.items():
            want = expected(r.path, key, version)
            wrong += [f"{r.path} key {key} {version}: {a} != {want}" for a in seen if a != want]
    lat = np.array([x for r in results for x in r.latencies_s] or [0.0]) * 1000
    return Tally(
        reads=sum(r.reads for r in results),
        errors=[f"{r.path}: {e}" for r in results for e in r.errors],
        malformed=[f"{r.path}: {m}" for r in results for m in r.malformed],
        wrong=wrong,
        max_ms=float(lat.max()),
        p99_ms=float(np.percentile(lat, 99)),
        p50_ms=float(np.percentile(lat, 50)),
        by_path=by_path,
    )
