"""What downstream readers see when a publish races them, is killed, or loses the database;
and that publishers never interleave. All against the real (embedded) PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import psycopg2
import pyarrow.parquet as pq
import pytest

from reco import config
from reco.data.synthetic import PUBLISHED_AT as GENERATED  # noqa: F401
from reco.data.synthetic import PUBLISHED_N as N
from reco.data.synthetic import published_rows as big_recs
from reco.errors import PipelineError
from reco.publishing import publish, warehouse
from reco.publishing.publish import publish_table
from reco.runs import RunFolder

ROOT = Path(__file__).resolve().parents[2]
WATCHED_USER = 4242


def expected_items(version_offset: int, user: int = WATCHED_USER) -> list[int]:
    return [user * 100 + r + version_offset for r in range(1, N + 1)]


def fingerprint(url: str) -> tuple:
    """Row count, versions and a content hash of the published table."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), array_agg(DISTINCT model_version), "
            "md5(string_agg(user_id || ':' || item_id || ':' || rank || ':' || score, ',' "
            "ORDER BY user_id, rank)) FROM reco.recommendations"
        )
        return cur.fetchone()


def leftover_tables(url: str) -> list[str]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'reco' "
            "AND (tablename LIKE '%%_staging' OR tablename LIKE '%%_previous')"
        )
        return [r[0] for r in cur.fetchall()]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def advisory_waiters(url: str) -> int:
    """Sessions waiting for the publish lock (pg_advisory_xact_lock(PUBLISH_LOCK_KEY))."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = %s",
            (config.PUBLISH_LOCK_KEY,),
        )
        return cur.fetchone()[0]


def backend(url: str, app: str) -> tuple[str, str | None, str] | None:
    """(state, wait_event_type, query) of the session with this application_name."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT state, wait_event_type, query FROM pg_stat_activity "
            "WHERE application_name = %s",
            (app,),
        )
        row = cur.fetchone()
        return row if row else None


@pytest.fixture()
def v1(warehouse_url: str) -> tuple:
    publish_table(warehouse_url, big_recs(30_000, "v1"))
    return fingerprint(warehouse_url)


# --------------------------------------------------------------------------------------
# Concurrent readers
# --------------------------------------------------------------------------------------


def test_readers_during_a_full_publish_see_old_or_new_never_a_mix(
    warehouse_url, v1, capsys
) -> None:
    """8 threads query one user's top-N in a loop while 300K rows are published."""
    new = big_recs(30_000, "v2", offset=50)
    answers: list[tuple[str, ...]] = []
    errors: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    publishing = threading.Event()
    done = threading.Event()

    def reader() -> None:
        conn = psycopg2.connect(warehouse_url)
        conn.autocommit = True
        cur = conn.cursor()
        try:
            while not done.is_set():
                t0 = time.perf_counter()
                cur.execute(
                    "SELECT item_id, rank, model_version FROM reco.recommendations "
                    "WHERE user_id = %s ORDER BY rank",
                    (WATCHED_USER,),
                )
                rows = cur.fetchall()
                dt = time.perf_counter() - t0
                versions = {r[2] for r in rows}
                items = [r[0] for r in rows]
                ok = len(rows) == N and [r[1] for r in rows] == list(range(1, N + 1))
                ok = ok and (
                    (versions == {"v1"} and items == expected_items(0))
                    or (versions == {"v2"} and items == expected_items(50))
                )
                with lock:
                    if publishing.is_set():
                        latencies.append(dt)
                    answers.append(tuple(sorted(versions)))
                    if not ok:
                        errors.append(f"partial or mixed answer: {rows}")
        except Exception as exc:  # any error is a failure of the guarantee
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(answers) >= 200 or bool(errors), "the readers' first answers")
    publishing.set()
    publish_table(warehouse_url, new)
    publishing.clear()
    read_before = len(answers)
    wait_for(lambda: len(answers) >= read_before + 200 or bool(errors), "answers after it")
    done.set()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert ("v1",) in answers and ("v2",) in answers
    assert answers[-1] == ("v2",)
    assert fingerprint(warehouse_url)[0] == 300_000
    lat = np.array(latencies) * 1000
    with capsys.disabled():  # shown in every test run's output, not only on failure
        print(
            f"\nreader latency during publish: {len(lat)} queries, "
            f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms, "
            f"max {lat.max():.1f} ms"
        )


# --------------------------------------------------------------------------------------
# SIGKILL of the publishing process
# --------------------------------------------------------------------------------------

PUBLISHER = """
import sys
from reco.data.synthetic import published_rows as big_recs
from reco.publishing.publish import publish_table
publish_table(sys.argv[1], big_recs(int(sys.argv[2]), "killed", offset=7))
print("published")
"""


def start_publisher(
    url: str, users: int, app: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    env = {**os.environ, "PGAPPNAME": app, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, url, str(users)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_during_copy_leaves_the_table_and_no_staging(warehouse_url, v1) -> None:
    app = "reco-test-kill-copy"
    proc = start_publisher(warehouse_url, 400_000, app)

    def copying() -> bool:
        b = backend(warehouse_url, app)
        assert proc.poll() is None, f"publisher ended before the COPY: {proc.communicate()}"
        return b is not None and b[0] == "active" and b[2].startswith("COPY")

    wait_for(copying, "the publisher's COPY")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: backend(warehouse_url, app) is None, "the killed session to end")
    assert fingerprint(warehouse_url) == v1
    assert leftover_tables(warehouse_url) == []
    # A re-run succeeds and publishes the whole new set.
    publish_table(warehouse_url, big_recs(30_000, "v2", offset=50))
    assert fingerprint(warehouse_url)[:2] == (300_000, ["v2"])


def test_sigkill_during_the_swap_leaves_the_table_and_no_staging(warehouse_url, v1) -> None:
    app = "reco-test-kill-swap"
    # A reader in an open transaction holds the table: the swap's ACCESS EXCLUSIVE lock
    # waits for it, holding the views it already locked, for as long as we need: the
    # publisher's lock timeout is long (30 s; its deadlock_timeout raised to allow it), and
    # the reader's transaction younger than that when the swap looks, so the swap tries.
    reader = psycopg2.connect(warehouse_url)
    rcur = reader.cursor()
    rcur.execute("SELECT count(*) FROM reco.recommendations")
    long_wait = {"PGOPTIONS": "-c deadlock_timeout=60s", "RECO_PUBLISH_LOCK_TIMEOUT_MS": "30000"}
    proc = start_publisher(warehouse_url, 20_000, app, long_wait)
    try:

        def in_swap() -> bool:
            b = backend(warehouse_url, app)
            assert proc.poll() is None, f"publisher ended before the swap: {proc.communicate()}"
            return b is not None and b[1] == "Lock" and "define_contract_views" in b[2]

        wait_for(in_swap, "the publisher to wait inside the swap")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        reader.rollback()  # the swap now gets its lock, but its client is gone: no COMMIT
        reader.close()
    wait_for(lambda: backend(warehouse_url, app) is None, "the killed session to end")
    assert fingerprint(warehouse_url) == v1
    assert leftover_tables(warehouse_url) == []
    publish_table(warehouse_url, big_recs(30_000, "v2", offset=50))
    assert fingerprint(warehouse_url)[:2] == (300_000, ["v2"])


# --------------------------------------------------------------------------------------
# One publisher at a time
# --------------------------------------------------------------------------------------


def test_a_second_publisher_waits_for_the_first_and_never_interleaves(warehouse_url, v1) -> None:
    holder = psycopg2.connect(warehouse_url)
    hcur = holder.cursor()
    hcur.execute("SELECT pg_advisory_xact_lock(%s)", (config.PUBLISH_LOCK_KEY,))
    result: dict[str, object] = {}

    def second() -> None:
        try:
            result["rows"] = publish_table(warehouse_url, big_recs(5_000, "second", offset=3))
        except Exception as exc:
            result["error"] = exc

    t = threading.Thread(target=second)
    t.start()
    try:
        # The second publisher waits on the publish lock (seen in pg_locks, not timed).
        wait_for(
            lambda: advisory_waiters(warehouse_url) == 1 or not t.is_alive(),
            "the second publish to wait for the publish lock",
        )
        assert t.is_alive(), f"the second publish did not wait: {result}"
        assert fingerprint(warehouse_url) == v1  # nothing of it is visible meanwhile
    finally:
        holder.rollback()  # the first publisher finishes
        holder.close()
    t.join(timeout=60)
    assert result.get("rows") == 50_000, result
    count, versions, _ = fingerprint(warehouse_url)
    assert (count, versions) == (50_000, ["second"])


# --------------------------------------------------------------------------------------
# The database goes away mid-publish
# --------------------------------------------------------------------------------------


class CuttableProxy:
    """A TCP front for the warehouse that can be cut like a network or server outage."""

    def __init__(self, url: str) -> None:
        p = urlparse(url)
        q = parse_qs(p.query)
        if "host" in q and q["host"][0].startswith("/"):
            port = p.port or 5432
            self.target: tuple = (socket.AF_UNIX, f"{q['host'][0]}/.s.PGSQL.{port}")
        else:
            self.target = (socket.AF_INET, (p.hostname or "127.0.0.1", p.port or 5432))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        user = p.username or "postgres"
        db = (p.path or "/postgres").lstrip("/") or "postgres"
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/{db}"
        if p.password:
            self.url = f"postgresql://{user}:{p.password}@127.0.0.1:{self.port}/{db}"
        self.sockets: list[socket.socket] = []
        self.cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(self.target[0], socket.SOCK_STREAM)
            upstream.connect(self.target[1])
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def outage(self) -> None:
        """Refuse new connections and drop the open ones."""
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() and stops listening
        self.server.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.fixture()
def proxy(warehouse_url: str) -> Iterator[CuttableProxy]:
    p = CuttableProxy(warehouse_url)
    yield p
    p.outage()


def test_outage_mid_copy_fails_naming_the_server_and_publishes_nothing(
    warehouse_url, v1, proxy, tmp_path
) -> None:
    from reco.publishing import publish

    def copying_seen() -> bool:
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE 'COPY reco.recommendations_staging%%'"
            )
            return cur.fetchone()[0] > 0

    def cut_when_copying() -> None:
        wait_for(copying_seen, "a COPY through the proxy")
        proxy.outage()

    cutter = threading.Thread(target=cut_when_copying)
    cutter.start()
    # The publish step as the task runs it: its one error names the server, says nothing
    # was published, and keeps the driver's own cause.
    run_dir = write_run_folder(tmp_path, "outage-mid-copy", 40_000, "lost")
    with pytest.raises(PipelineError) as err:
        publish.run(proxy.url, run_dir, "outage-mid-copy")
    cutter.join(timeout=30)
    message = str(err.value)
    assert message.startswith(
        f"publishing to 127.0.0.1:{proxy.port}/{urlparse(warehouse_url).path.lstrip('/')} "
        "failed and was rolled back (the previous recommendations are unchanged): "
    ), message
    cause = message.split("unchanged): ", 1)[1]
    assert cause.startswith(("OperationalError: ", "InterfaceError: ")), cause
    assert isinstance(err.value.__cause__, psycopg2.Error)
    wait_for(lambda: not copying_seen(), "the cut session to end")
    assert fingerprint(warehouse_url) == v1
    assert leftover_tables(warehouse_url) == []
    # The next attempt (the task's retry) reports the host and the cause, then nothing.
    with pytest.raises(PipelineError) as again:
        publish.publish_table(proxy.url, big_recs(10, "lost"))
    assert f"127.0.0.1:{proxy.port}" in str(again.value)
    assert "refused" in str(again.value).lower()
    print(f"\nerror seen when the database went away mid-COPY: {err.value}")


# --------------------------------------------------------------------------------------
# The run history after a kill -9: no attempt is left at 'publishing' by a dead process,
# and a live one is never taken for dead
# --------------------------------------------------------------------------------------


def write_run_folder(root: Path, run_id: str, users: int, version: str) -> Path:
    """A run folder as the recommend step leaves it, ready for ``reco publish``."""
    folder = RunFolder(root / run_id)
    folder.path.mkdir(parents=True)
    pq.write_table(big_recs(users, version, offset=11), folder.recommendations)
    folder.manifest.write_text(
        json.dumps(
            {
                "source": {"ratings_path": f"synthetic/{run_id}", "format": "parquet"},
                "n_ratings": users * 20,
                "n_users": users,
                "n_items": 1_700,
            }
        )
    )
    quality = {"rmse": 0.91, "mae": 0.72, "mpe": 0.1, "ndcg_at_k": 0.48, "precision_at_k": 0.42}
    folder.metrics.write_text(
        json.dumps(
            {
                "model_family": "als",
                "best_params": {"rank": 32, "reg_param": 0.1},
                "cv_folds": 0,
                "seed": 42,
                "holdout_fraction": 0.2,
                "ranking": {"ndcg": 0.48},
                "rating": {"rmse": 0.91},
                **quality,
                "baselines": {"most_popular": {"ndcg": 0.25}},
                "gate": {"publish": True, "reason": "beats every baseline"},
            }
        )
    )
    return folder.path


def start_run_publisher(url: str, run_dir: Path, app: str) -> subprocess.Popen:
    """``reco publish --run-dir`` in its own process, as the Airflow task runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "reco.cli", "publish", "--run-dir", str(run_dir)]
        + ["--warehouse-url", url],
        env={**os.environ, "PGAPPNAME": app},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sessions(url: str, app: str) -> list[tuple[str, str | None, str]]:
    """(state, wait_event_type, query) of every session of this application_name: a
    publisher has several (its attempt lock, the publish transaction)."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT state, wait_event_type, query FROM pg_stat_activity "
            "WHERE application_name = %s",
            (app,),
        )
        return cur.fetchall()


def attempts_of(url: str, run_id: str) -> list[tuple]:
    """(attempt, status, status_reason, finished_at) of one run, oldest first."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT attempt, status, status_reason, finished_at FROM reco.model_runs "
            "WHERE run_id = %s ORDER BY attempt",
            (run_id,),
        )
        return cur.fetchall()


def count_publishing(url: str) -> int:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reco.model_runs WHERE status = %s", (publish.PUBLISHING,))
        return cur.fetchone()[0]


def test_sigkill_of_a_run_then_a_new_run_leaves_no_publishing_row(
    warehouse_url, v1, tmp_path
) -> None:
    killed = write_run_folder(tmp_path, "kill9-run", 400_000, "killed")
    app = "reco-test-kill-run"
    proc = start_run_publisher(warehouse_url, killed, app)

    def copying() -> bool:
        assert proc.poll() is None, f"publisher ended before the COPY: {proc.communicate()}"
        return any(
            s[0] == "active" and s[2].startswith("COPY") for s in sessions(warehouse_url, app)
        )

    wait_for(copying, "the run's COPY")
    assert [a[:2] for a in attempts_of(warehouse_url, "kill9-run")] == [(1, "publishing")]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: sessions(warehouse_url, app) == [], "the killed sessions to end")
    assert fingerprint(warehouse_url) == v1
    assert leftover_tables(warehouse_url) == []
    # Until another run starts, the row still says what it said when the process died.
    assert [a[:2] for a in attempts_of(warehouse_url, "kill9-run")] == [(1, "publishing")]

    after = write_run_folder(tmp_path, "after-kill9", 2_000, "after")
    result = publish.run(warehouse_url, after)

    assert ["kill9-run", 1] in result["abandoned"]
    [(attempt, status, reason, finished_at)] = attempts_of(warehouse_url, "kill9-run")
    assert (attempt, status) == (1, "abandoned")
    assert finished_at is not None
    assert reason.startswith("found abandoned at 2")
    assert "by the start of run after-kill9" in reason
    assert "no process held this attempt's publish lock" in reason
    assert [a[:2] for a in attempts_of(warehouse_url, "after-kill9")] == [(1, "published")]
    assert count_publishing(warehouse_url) == 0
    assert fingerprint(warehouse_url)[:2] == (20_000, ["after"])


def test_a_live_publisher_is_not_marked_abandoned(warehouse_url, v1, tmp_path) -> None:
    """A run held inside its swap (a reader keeps the table) while another process sweeps,
    and while a second run starts: both see its lock held and leave it at 'publishing'."""
    live_dir = write_run_folder(tmp_path, "live-run", 20_000, "live")
    second_dir = write_run_folder(tmp_path, "second-run", 3_000, "second")
    app = "reco-test-live-run"
    reader = psycopg2.connect(warehouse_url)
    reader.cursor().execute("SELECT count(*) FROM reco.recommendations")
    proc = start_run_publisher(warehouse_url, live_dir, app)
    try:

        def in_swap() -> bool:
            assert proc.poll() is None, f"publisher ended before the swap: {proc.communicate()}"
            # The swap waits between tries while the reader's transaction is open (its
            # last query the look at who holds the tables), or inside a try for its locks.
            return any(
                (s[0] == "idle in transaction" and "FROM pg_locks" in s[2])
                or (s[1] == "Lock" and "define_contract_views" in s[2])
                for s in sessions(warehouse_url, app)
            )

        wait_for(in_swap, "the run to wait inside its swap")
        assert ("live-run", 1) not in publish.mark_abandoned(warehouse_url, "the test's sweep")
        assert [a[:2] for a in attempts_of(warehouse_url, "live-run")] == [(1, "publishing")]
        # A second run starts meanwhile (publish.run's own start: it sweeps, then inserts).
        # (Not the whole publish.run: its apply_schema GRANTs on reco.recommendations, which
        # queues behind the held swap until the reader lets go.)
        metrics = json.loads(RunFolder(second_dir).metrics.read_text())
        second = publish.record_run_start(
            warehouse_url, "second-run", second_dir, "als-second", metrics
        )
        assert ("live-run", 1) not in second.abandoned
        assert [a[:2] for a in attempts_of(warehouse_url, "live-run")] == [(1, "publishing")]
    finally:
        reader.rollback()
        reader.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with second:
        rows = publish_table(warehouse_url, pq.read_table(RunFolder(second_dir).recommendations))
        publish.record_run_end(warehouse_url, second, publish.PUBLISHED, None, rows)
    assert [a[:2] for a in attempts_of(warehouse_url, "live-run")] == [(1, "published")]
    assert [a[:2] for a in attempts_of(warehouse_url, "second-run")] == [(1, "published")]
    assert fingerprint(warehouse_url)[:2] == (30_000, ["second"])


def test_an_attempt_is_abandoned_once_its_lock_is_gone(warehouse_url, tmp_path) -> None:
    run_dir = write_run_folder(tmp_path, "let-go", 10, "let-go")
    metrics = json.loads(RunFolder(run_dir).metrics.read_text())
    attempt = publish.record_run_start(warehouse_url, "let-go", run_dir, "als-let-go", metrics)
    try:
        assert ("let-go", attempt.number) not in publish.mark_abandoned(warehouse_url)
        assert [a[:2] for a in attempts_of(warehouse_url, "let-go")] == [(1, "publishing")]
    finally:
        attempt.release()  # its session ends, as when the process dies
    wait_for(
        lambda: ("let-go", 1) in publish.mark_abandoned(warehouse_url, "the test's sweep"),
        "the released attempt to be marked",
        timeout=10,
    )
    [(_, status, reason, finished_at)] = attempts_of(warehouse_url, "let-go")
    assert status == "abandoned" and finished_at is not None
    assert "by the test's sweep" in reason


def test_a_new_runs_prepare_marks_a_dead_publishers_attempt_abandoned(
    warehouse_url, tmp_path
) -> None:
    """The sweep runs at the very start of a run (prepare), not only at its publish: a run
    that fails before publishing still corrects the history."""
    from datetime import UTC, datetime

    from reco.data.synthetic import SyntheticSpec, write_dataset
    from reco.orchestration import pipeline

    # What a publisher killed before it could take its lock (or whose host vanished)
    # leaves: a row at 'publishing' that no session holds.
    with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO reco.model_runs (run_id, attempt, model_version, status) "
            "VALUES ('dead-before-prepare', 1, 'als-x', %s)",
            (publish.PUBLISHING,),
        )
    data = tmp_path / "data"
    write_dataset(data, SyntheticSpec(n_users=30, n_items=40, mean_ratings_per_user=10))
    params = {"dataset": str(data), "format": "auto", "folds": 0}
    info = pipeline.prepare_run(
        params, "manual__sweep-at-prepare", datetime.now(UTC), warehouse_url
    )
    assert "dead-before-prepare#1" in info["abandoned_attempts"]
    [(attempt, status, reason, finished_at)] = attempts_of(warehouse_url, "dead-before-prepare")
    assert status == publish.ABANDONED and finished_at is not None
    assert "by the start of run manual__sweep-at-prepare" in reason
    assert count_publishing(warehouse_url) == 0
