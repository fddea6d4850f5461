"""Shared fixtures. Tests run against an isolated state folder (``var/test``): their own
embedded PostgreSQL, lake and Airflow home, never the developer's ``var/``."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import scheduling

ROOT = Path(__file__).resolve().parent.parent
# Generated examples of the "ci" profile, besides one explicit example per damage kind
# (docs/testing.md): the explicit ones cover every kind, these add combinations.
FUZZ_CI_EXAMPLES = 12
FUZZ_DEEP_EXAMPLES = 400
# RECO_TEST_VAR lets two test sessions run side by side, each with its own state folder.
TEST_ROOT = Path(os.environ.get("RECO_TEST_VAR", ROOT / "var" / "test")).resolve()
# `make test` runs the suite on pytest-xdist workers (-n): each worker is a whole test
# session of its own (its PostgreSQL, Airflow home, lake, Spark driver) in TEST_ROOT/gwN.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_VAR = TEST_ROOT / WORKER if WORKER else TEST_ROOT
os.environ["RECO_VAR_DIR"] = str(TEST_VAR)
os.environ["AIRFLOW_HOME"] = str(TEST_VAR / "airflow")
for _name in ("RECO_LAKE_DIR", "RECO_REPORTS_DIR", "RECO_PGDATA"):
    os.environ.pop(_name, None)
# Tests use the embedded warehouse unless RECO_TEST_WAREHOUSE_URL names another server.
os.environ.pop("WAREHOUSE_URL", None)
if os.environ.get("RECO_TEST_WAREHOUSE_URL"):
    os.environ["WAREHOUSE_URL"] = os.environ["RECO_TEST_WAREHOUSE_URL"]

from reco import config  # noqa: E402  (must follow the environment set-up)

os.environ.update({k: v for k, v in config.airflow_env().items()})
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# Test data is small: 2 shuffle partitions (the default 8 only adds task overhead here).
os.environ.setdefault("RECO_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# Test jobs are short-lived JVMs on small data: the C1 compiler alone finishes them sooner
# (train on 2 cores: 66-72 s -> 46 s) and the JIT tier does not change any result. C1
# frames are larger: deep ALS lineages need a bigger thread stack to deserialise.
os.environ.setdefault("RECO_DRIVER_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -Xss16m")
# The same for the executors of the standalone cluster test; and no Spark web UI per job.
os.environ.setdefault("RECO_EXECUTOR_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -Xss16m")
os.environ.setdefault("RECO_SPARK_UI", "false")

# Hypothesis profiles (the ingest fuzz test, tests/integration/test_ingest_fuzz.py). Each
# example is a real Spark ingest (about 2 s here), so: no deadline, no too-slow checks, and
# the session's SparkSession reused across examples. "ci", the default, is bounded and
# derandomised: `make test` runs the same examples every time and keeps no database.
# "deep" (`pytest --hypothesis-profile=deep tests/integration/test_ingest_fuzz.py`) searches
# at random and keeps its failures in .hypothesis/ (git-ignored) to replay them first.
_FUZZ_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
    "print_blob": True,
}
settings.register_profile(
    "ci", max_examples=FUZZ_CI_EXAMPLES, derandomize=True, database=None, **_FUZZ_SETTINGS
)
settings.register_profile("deep", max_examples=FUZZ_DEEP_EXAMPLES, **_FUZZ_SETTINGS)
settings.load_profile("ci")  # --hypothesis-profile=NAME loads NAME after this


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations",
        action="store_true",
        help="write each test file's seconds to tests/durations.json (make test-durations)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """``-n`` needs ``--dist loadgroup`` (tests/support/scheduling.py says why)."""
    workers = config.getoption("numprocesses", default=None)
    if workers and config.getoption("dist", default="no") != "loadgroup":
        raise pytest.UsageError(
            "run the suite on workers with xdist's grouping: -n N --dist loadgroup "
            "--no-loadscope-reorder (make test does); plain -n splits the Airflow stack's "
            f"files across workers ({scheduling.STACK_DIR})"
        )


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    durations = scheduling.load_durations()
    try:
        scheduling.check_names(durations)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None

    def group(item: pytest.Item) -> str:
        return scheduling.group_of(Path(str(item.fspath)).relative_to(ROOT).as_posix())

    items.sort(key=lambda item: scheduling.queue_position(group(item), durations))
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
        path = str(item.fspath)
        if "/integration/" in path or "/e2e/" in path or "/dags/" in path:
            item.add_marker(pytest.mark.integration)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.slow)


_SECONDS: list[tuple[str, float]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SECONDS.append((report.nodeid.split("::", 1)[0], report.duration))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """``--record-durations``: keep this run's seconds per group, from the controller (or
    the only session) of a whole run, passed or with failing tests (the times still
    order the queue); not of an interrupted or unusable one."""
    if not session.config.getoption("record_durations") or WORKER:
        return
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        print("\nnot recording durations: the run did not complete", file=sys.stderr)
        return
    scheduling.write_durations(scheduling.group_seconds(_SECONDS))


# --- the session's Spark driver: say when it died, and in or after which test ------------
class SparkDriverDied(UserWarning):
    """The in-process Spark driver JVM was found dead (reco.spark replaces it at the next
    session, so without this nothing would tell)."""


_REPORTED: set[int] = set()


@pytest.fixture(autouse=True)
def _spark_driver_watch() -> Iterator[None]:
    from reco import spark as reco_spark

    replaced = len(reco_spark.DEAD_DRIVERS)
    yield
    for dead in reco_spark.DEAD_DRIVERS[replaced:]:
        _REPORTED.add(dead.pid)
        warnings.warn(
            f"Spark driver pid {dead.pid} had exited ({dead.exit_code}); replaced",
            SparkDriverDied,
            stacklevel=1,
        )
    proc = reco_spark.exited_driver()
    if proc is not None and proc.pid not in _REPORTED:
        _REPORTED.add(proc.pid)
        warnings.warn(
            f"Spark driver pid {proc.pid} exited ({proc.returncode}) during this test",
            SparkDriverDied,
            stacklevel=1,
        )


@pytest.fixture(scope="session", autouse=True)
def _fresh_test_state() -> Iterator[None]:
    """Start from an empty test state folder; stop the test PostgreSQL at the end."""
    from reco.publishing import warehouse

    if TEST_VAR.exists():
        if (config.PGDATA_DIR / "postmaster.pid").exists():
            warehouse.stop_embedded()
        shutil.rmtree(TEST_VAR)
    TEST_VAR.mkdir(parents=True)
    yield
    if (config.PGDATA_DIR / "postmaster.pid").exists():
        warehouse.stop_embedded()


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole run: 2 cores, few partitions, no UI."""
    from reco.spark import get_spark

    os.environ["RECO_SHUFFLE_PARTITIONS"] = "2"
    session = get_spark("reco-tests", master="local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def warehouse_url() -> str:
    """The test warehouse (embedded PostgreSQL), with the schema applied."""
    from reco.publishing import warehouse

    url = warehouse.resolve_url()
    warehouse.apply_schema(url)
    return url


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    return d


def movielens(name: str) -> Path:
    """A MovieLens dataset for the tests: the configured folder's copy
    (``RECO_MOVIELENS_DIR``), else the project's data folder's (``RECO_DATASETS_DIR``, by
    default the developer's ``var/datasets``, which the test state folder does not wipe),
    else fetched there once (short timeout, no retry). When none of that works, the whole
    session stops at once with one line saying how to get the data."""
    from reco.data import movielens as catalogue
    from reco.errors import PipelineError

    data_dir = Path(os.environ.get("RECO_DATASETS_DIR", ROOT / "var" / "datasets")).resolve()
    try:
        return catalogue.ensure(
            name,
            datasets_dir=data_dir,
            timeout=10.0,
            retries=0,
            progress=False,
            log=lambda line: print(line, file=sys.stderr),
        )
    except PipelineError as exc:
        reason = getattr(exc, "cause", str(exc))
        pytest.exit(
            f"MovieLens {name} is not in {config.MOVIELENS_DIR} nor {data_dir} and could not "
            f"be fetched ({reason}): run `reco datasets fetch {name}` (or set "
            "RECO_MOVIELENS_DIR to a folder holding it)",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    """``make test`` (the workers' controller) finds or fetches MovieLens before any test
    runs: without it, the whole run stops at once with one line, not at the first test of
    each worker that needs it."""
    controller = not hasattr(session.config, "workerinput")
    if controller and session.config.getoption("numprocesses", default=None):
        for name in ("ml-100k", "ml-latest-small"):
            movielens(name)


@pytest.fixture(scope="session")
def ml100k() -> Path:
    return movielens("ml-100k")


@pytest.fixture(scope="session")
def ml_latest() -> Path:
    return movielens("ml-latest-small")


@pytest.fixture(scope="session")
def vendored_data_docs_assets() -> Path:
    """Data Docs' CSS/JS/fonts in the test state folder, as `reco init` puts them in var/:
    copied from the project's own cache when `make setup` filled it, else downloaded;
    ``ensure_vendored`` verifies every file against the lock either way."""
    from reco.validation import data_docs_assets

    project_cache = ROOT / "var" / config.DATA_DOCS_ASSETS_DIR.relative_to(config.VAR_DIR)
    if project_cache.is_dir() and not config.DATA_DOCS_ASSETS_DIR.exists():
        shutil.copytree(project_cache, config.DATA_DOCS_ASSETS_DIR)
    return data_docs_assets.ensure_vendored()
