"""How ``make test`` shares the suite between its workers (tests/support/scheduling.py):
xdist's own grouping, the queue order from the recorded durations, and a refusal at
collection for a name that matches no file or for ``-n`` without the grouping."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import scheduling

ROOT = scheduling.ROOT


def pytest_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        # A session of its own: not taken for a worker of the session running this test.
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
            **(env or {}),
        },
    )


def test_groups_keep_the_stack_together_and_a_file_whole() -> None:
    assert scheduling.group_of("tests/e2e/stack/test_production_stack.py") == "tests/e2e/stack/"
    assert scheduling.group_of("tests/e2e/stack/test_airflow_ui_browser.py") == "tests/e2e/stack/"
    assert scheduling.group_of("tests/integration/test_ease.py") == "tests/integration/test_ease.py"


def test_queue_pinned_first_then_longest_then_unrecorded() -> None:
    durations = {"tests/a.py": 10.0, "tests/b.py": 200.0, scheduling.STACK_DIR: 5.0}
    groups = ["tests/new.py", "tests/a.py", scheduling.KILLS_AIRFLOW_HARD, "tests/b.py"]
    groups.append(scheduling.STACK_DIR)
    ordered = sorted(groups, key=lambda g: scheduling.queue_position(g, durations))
    assert ordered == [
        scheduling.STACK_DIR,
        scheduling.KILLS_AIRFLOW_HARD,
        "tests/b.py",
        "tests/a.py",
        "tests/new.py",
    ]


def test_recorded_durations_and_pins_name_existing_files() -> None:
    durations = scheduling.load_durations()
    assert durations, f"no durations recorded in {scheduling.DURATIONS_FILE}: make test-durations"
    scheduling.check_names(durations)  # raises on a renamed file


def test_a_name_matching_no_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"tests/integration/test_renamed\.py .*make test-durations"
    ):
        scheduling.check_names({"tests/integration/test_renamed.py": 12.0})
    (tmp_path / "tests").mkdir()
    assert scheduling.unknown_names(["tests", "nope.py"], tmp_path) == ["nope.py"]


def test_group_seconds_sum_per_group_and_round_trip(tmp_path: Path) -> None:
    seconds = scheduling.group_seconds(
        [
            ("tests/e2e/stack/test_production_stack.py", 100.0),
            ("tests/e2e/stack/test_airflow_ui_browser.py", 50.04),
            ("tests/unit/test_layout.py", 1.0),
            ("tests/unit/test_layout.py", 0.5),
        ]
    )
    assert seconds == {"tests/e2e/stack/": 150.0, "tests/unit/test_layout.py": 1.5}
    scheduling.write_durations(seconds, tmp_path / "d.json")
    assert scheduling.load_durations(tmp_path / "d.json") == seconds
    assert list(json.loads((tmp_path / "d.json").read_text())["seconds"]) == [
        "tests/e2e/stack/",
        "tests/unit/test_layout.py",
    ]


def test_plain_n_is_refused_at_collection() -> None:
    done = pytest_run("-n", "2", "tests/unit/test_layout.py")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "--dist loadgroup" in done.stderr


def test_a_real_run_keeps_each_group_on_one_worker_in_queue_order() -> None:
    """Two workers as ``make test`` runs them, on three small files: each test carries its
    group as xdist's loadgroup writes it, and each group runs whole on one worker. This
    fails when a pytest or xdist upgrade silently loses the grouping."""
    files = ["tests/unit/test_layout.py", "tests/unit/test_dependencies.py"]
    files.append("tests/unit/reco/test_runtime.py")
    done = pytest_run(
        "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-v", "--timeout=300",
        *files, env={"RECO_TEST_VAR": str(ROOT / "var" / "test-scheduling")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = re.findall(r"^\[(gw\d)\] .*?PASSED (\S+)::\S+@(\S+)", done.stdout, re.M)
    assert len(ran) == len(re.findall(r" PASSED ", done.stdout)) > len(files), done.stdout
    workers: dict[str, set[str]] = {}
    for worker, path, group in ran:
        assert group == scheduling.group_of(path)
        workers.setdefault(group, set()).add(worker)
    assert sorted(workers) == sorted(files)
    assert all(len(on) == 1 for on in workers.values()), workers


def test_without_movielens_make_test_stops_at_once_with_one_line(tmp_path: Path) -> None:
    """No configured folder, nothing fetched, GroupLens unreachable: the workers'
    controller stops before any test runs, saying how to get the data."""
    done = pytest_run(
        "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "tests/unit/test_layout.py",
        env={
            "RECO_MOVIELENS_DIR": str(tmp_path / "none"),
            "RECO_DATASETS_DIR": str(tmp_path / "empty"),
            "RECO_MOVIELENS_URL": "http://127.0.0.1:9/",
            "RECO_TEST_VAR": str(ROOT / "var" / "test-scheduling"),
        },
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "passed" not in done.stdout and "created: 2/2 workers" not in done.stdout
    assert (
        f"MovieLens ml-100k is not in {tmp_path / 'none'} nor {tmp_path / 'empty'} and could "
        "not be fetched (cannot reach http://127.0.0.1:9/ml-100k.zip.md5: Connection refused): "
        "run `reco datasets fetch ml-100k`"
    ) in done.stdout + done.stderr
