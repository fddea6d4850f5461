"""How ``make test`` shares the suite between its pytest-xdist workers.

``make test`` runs ``pytest -n 2 --dist loadgroup --no-loadscope-reorder``: xdist's own
grouping, where every test carries an ``xdist_group`` mark (added at collection, see
``tests/conftest.py``) and a group's tests all run on one worker, in the order collected.

- A group is a test file: its module fixtures (a trained model, an Airflow home) are built
  once. The Airflow stack's files (``tests/e2e/stack/``) are one group: they share one
  stack, a package-scoped fixture.
- The stack goes first, then `reco airflow-ui`'s test (it kill -9s Airflow on its worker's
  Airflow home, so it runs there before any DAG run), then every other file longest first,
  by the durations of the last full run kept in ``tests/durations.json``
  (``make test-durations`` refreshes it). A file it does not know yet goes after the ones
  it does, in collection order.
- A name used for grouping or ordering that matches no file fails the collection, as does
  ``-n`` without ``--dist loadgroup`` (plain ``-n`` would split the stack's files, and with
  them the stack, across the workers).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DURATIONS_FILE = ROOT / "tests" / "durations.json"
STACK_DIR = "tests/e2e/stack/"  # one group: the stack is a package-scoped fixture
# Runs on its worker before any DAG run there: it kill -9s Airflow on that Airflow home.
KILLS_AIRFLOW_HARD = "tests/e2e/test_airflow_ui_standalone.py"
PINNED = (STACK_DIR, KILLS_AIRFLOW_HARD)  # the head of the queue, in this order
REFRESH = "make test-durations"


def group_of(path: str) -> str:
    """The xdist group of a test file (its path relative to the repository)."""
    return STACK_DIR if path.startswith(STACK_DIR) else path


def load_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """Seconds per group of the last full run; empty when none is recorded."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc}); refresh it: {REFRESH}") from exc
    return {str(k): float(v) for k, v in data.get("seconds", {}).items()}


def unknown_names(names: Iterable[str], root: Path = ROOT) -> list[str]:
    """The grouping or ordering names that match no file or folder under ``root``."""
    return sorted(name for name in names if not (root / name).exists())


def check_names(durations: dict[str, float], root: Path = ROOT) -> None:
    """Refuse a pinned name or a recorded duration that names no file: a renamed test file
    would otherwise lose its place in the queue without a word."""
    missing = unknown_names([*PINNED, *durations], root)
    if missing:
        raise ValueError(
            "test scheduling names files that do not exist: "
            + ", ".join(missing)
            + f" (renamed or deleted?). Update tests/support/scheduling.py or run {REFRESH}"
        )


def queue_position(group: str, durations: dict[str, float]) -> tuple[int, float]:
    """The sort key of a group: pinned groups first, then longest recorded first, then the
    groups with no record (a stable sort keeps their collection order)."""
    if group in PINNED:
        return (PINNED.index(group), 0.0)
    if group in durations:
        return (len(PINNED), -durations[group])
    return (len(PINNED) + 1, 0.0)


def group_seconds(durations: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Seconds per group, summed from (test file, seconds) pairs (setup, call, teardown)."""
    total: dict[str, float] = defaultdict(float)
    for path, seconds in durations:
        total[group_of(path)] += seconds
    return {group: round(total[group], 1) for group in sorted(total)}


def write_durations(seconds: dict[str, float], path: Path = DURATIONS_FILE) -> None:
    payload = {
        "about": f"seconds per test group of the last full run; refresh: {REFRESH}",
        "seconds": dict(sorted(seconds.items(), key=lambda kv: -kv[1])),
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
