"""Publishing while apps read, the way they read (reco.recommend(), the v1 views, the
tables), against the real embedded PostgreSQL: no reader ever errors or sees a partial or
mixed list, an open transaction holds the swap but not the readers, a lock cycle with a
reader ends with the swap giving up, and a swap that cannot get its locks in its budget
fails naming the session in the way, with the previous lists kept.

Every wait is on state (pg_locks, pg_stat_activity, reads counted), never on time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest

from reco import config
from reco.errors import PipelineError
from reco.publishing import swap, warehouse
from reco.publishing.publish import publish_table
from reco.publishing.swap import SwapOutcome, SwapPolicy
from tests.support.psql import login_url
from tests.support.published import KEYS, USERS, expected, version
from tests.support.readers import READER_APPLICATION, Readers, tally

ANALYST = "reco-test-analyst"


def publish(url: str, k: int, **kwargs: Any) -> SwapOutcome:
    outcomes: list[SwapOutcome] = []
    v = version(k)
    tables = {"similar": v["similar"], "popular": v["popular"]}
    publish_table(url, v["table"], **tables, on_swap=outcomes.append, **kwargs)
    return outcomes[0]


def live_versions(url: str) -> set[str]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT model_version FROM reco.recommendations UNION "
            "SELECT model_version FROM reco.similar_items UNION "
            "SELECT model_version FROM reco.popular_items"
        )
        return {r[0] for r in cur.fetchall()}


@pytest.fixture()
def v1(warehouse_url: str) -> str:
    publish(warehouse_url, 1)
    return warehouse_url


@pytest.fixture()
def analyst(v1: str) -> Iterator[Any]:
    """A session that read reco.recommendations and keeps its transaction open."""
    conn = psycopg2.connect(v1, application_name=ANALYST)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM reco.recommendations")
    cur.fetchone()
    yield conn
    if not conn.closed:
        conn.rollback()
        conn.close()


def wait_until_older_than(url: str, pid: int, seconds: float) -> None:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cur.execute(
                "SELECT clock_timestamp() - xact_start > make_interval(secs => %s) "
                "FROM pg_stat_activity WHERE pid = %s",
                (seconds, pid),
            )
            if cur.fetchone()[0]:
                return
            conn.commit()
        raise AssertionError(f"session {pid} never got {seconds} s old")


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # the test asserts on it
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_readers_of_every_path_during_repeated_publishes_never_fail(v1: str, capsys) -> None:
    """Six publishes in a row while two readers per path query: 0 errors, 0 partial or
    mixed lists, every answer exactly what its version published."""
    outcomes = []
    with Readers(v1, KEYS, per_path=2) as readers:
        readers.wait_for_reads(500)
        for k in range(2, 8):
            outcomes.append(publish(v1, k))
            readers.wait_for_reads(300)  # readers on the new version before the next one
        results = readers.stop()
    t = tally(results, expected)
    with capsys.disabled():
        print(f"\n6 publishes under readers: {t.line()}; swap tries {[o.tries for o in outcomes]}")
    assert t.errors == [] and t.malformed == [] and t.wrong == []
    assert all(n > 0 for n in t.by_path.values()), t.by_path
    # README: a read waits at most about the swap's lock timeout (it gives up rather than
    # keep readers queued). Twice that leaves room for a loaded machine, not for a read
    # queued behind a second try.
    assert t.max_ms <= 2 * SwapPolicy().lock_timeout_ms, t.line()
    seen = {v for r in results for (_, v) in r.answers}
    assert {"v1", "v7"} <= seen and live_versions(v1) == {"v7"}


def test_an_open_transaction_holds_the_swap_not_the_readers(v1: str, analyst, capsys) -> None:
    """The analyst's transaction keeps the swap waiting; reads through recommend() and the
    views go on at their usual speed, and the publish lands once the transaction ends."""
    policy = SwapPolicy(lock_timeout_ms=500, budget_s=120)
    logged: list[str] = []
    waiting = threading.Event()

    def log(line: str) -> None:
        logged.append(line)
        waiting.set()

    keys = {p: KEYS[p] for p in ("recommend()", "v1_recommendations", "v1_popular_items")}
    # As an analyst's session would be: open longer than a lock wait of the swap.
    wait_until_older_than(v1, analyst.get_backend_pid(), policy.lock_timeout_ms / 1000)
    with Readers(v1, keys) as readers:
        thread, box = in_background(lambda: publish(v1, 2, policy=policy, log=log))
        assert waiting.wait(60), "the swap never said it was waiting"
        readers.wait_for_reads(2000)  # the swap waits through all of these
        assert thread.is_alive() and live_versions(v1) == {"v1"}
        analyst.rollback()
        thread.join(60)
        readers.wait_for_reads(300)
        results = readers.stop()
    assert "error" not in box, box.get("error")
    outcome: SwapOutcome = box["value"]
    t = tally(results, expected)
    with capsys.disabled():
        print(f"\nopen transaction during a publish: {t.line()}; swap {outcome.summary()}")
    assert t.errors == [] and t.malformed == [] and t.wrong == []
    assert live_versions(v1) == {"v2"}
    # The swap named who it waited for, the analyst first, and did not try while the
    # transaction was open: no read waited for it. On a loaded machine a reader's read can
    # itself outlast the lock timeout while the swap looks; it is then named too, rightly,
    # but never a session that is neither the analyst nor one of the readers.
    # Reads go on while the swap waits: none waits longer than the README's bound (about
    # the lock timeout; twice it leaves room for a loaded machine). The swap's single try
    # below says it never queued readers behind a try of its own.
    assert t.max_ms <= 2 * policy.lock_timeout_ms, t.line()
    assert ANALYST in outcome.waited_for[0], outcome.waited_for
    others = outcome.waited_for[1:]
    assert all(f"application {READER_APPLICATION} " in line for line in others), outcome.waited_for
    assert outcome.tries == 1, outcome
    assert any(ANALYST in line for line in logged), logged
    assert t.max_ms < policy.lock_timeout_ms + 500, t.line()


@pytest.mark.parametrize("repeat", range(3))
def test_a_lock_cycle_with_a_reader_ends_with_the_swap_giving_up(v1: str, repeat: int) -> None:
    """A reader that holds a table and then asks for a view, while the swap holds the view
    and waits for the table: the swap's bounded wait ends first, the reader's query
    succeeds, and the swap's next try publishes."""
    reader = psycopg2.connect(v1, application_name="reco-test-odd-reader")
    rcur = reader.cursor()
    asked = threading.Event()
    answer: dict[str, Any] = {"saw the swap wait": False}

    def odd_reader() -> None:
        # Begun inside the publish's transaction, just before its swap: young enough that
        # the swap tries (it only waits out transactions older than its lock timeout).
        rcur.execute("SELECT count(*) FROM reco.popular_items")
        pid = reader.get_backend_pid()
        threading.Thread(target=ask_for_the_view, args=(pid,), daemon=True).start()

    def ask_for_the_view(pid: int) -> None:
        with warehouse.connection(v1) as conn, conn.cursor() as cur:
            # The swap waiting for the table this reader holds.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                cur.execute(
                    "SELECT count(*) FROM pg_locks w JOIN pg_locks h ON h.relation = w.relation "
                    "WHERE NOT w.granted AND h.granted AND h.pid = %s "
                    "AND w.relation = 'reco.popular_items'::regclass",
                    (pid,),
                )
                if cur.fetchone()[0]:
                    answer["saw the swap wait"] = True
                    break
                conn.commit()
        asked.set()
        try:
            rcur.execute("SELECT count(*) FROM reco.v1_recommendations")
            answer["rows"] = rcur.fetchone()[0]
        except psycopg2.Error as exc:
            answer["error"] = exc
        finally:
            reader.rollback()

    policy = SwapPolicy(lock_timeout_ms=500, budget_s=60)
    try:
        outcome = publish(v1, 2, policy=policy, before_swap=odd_reader)
    finally:
        reader.close()
    assert asked.is_set() and answer["saw the swap wait"]
    assert "error" not in answer, answer.get("error")
    assert answer["rows"] == USERS * 10
    assert outcome.tries >= 2 and outcome.lock_timeouts + outcome.deadlocks >= 1, outcome
    assert live_versions(v1) == {"v2"}


def test_a_swap_past_its_budget_names_the_session_and_keeps_the_old_lists(v1, analyst) -> None:
    policy = SwapPolicy(lock_timeout_ms=200, budget_s=1.0)
    with pytest.raises(PipelineError) as raised:
        publish(v1, 2, policy=policy)
    message = str(raised.value)
    pid = analyst.get_backend_pid()
    assert f"pid {pid} (user " in message and ANALYST in message
    assert "SELECT count(*) FROM reco.recommendations" in message
    assert "idle in transaction" in message and "open " in message
    assert f"pg_terminate_backend({pid})" in message and "previous recommendations" in message
    assert raised.value.retryable
    assert live_versions(v1) == {"v1"}
    # The analyst was not cancelled: its transaction goes on.
    cur = analyst.cursor()
    cur.execute("SELECT count(*) FROM reco.recommendations")
    assert cur.fetchone()[0] == USERS * 10


def test_ending_the_blockers_is_opt_in_and_logged(v1, analyst) -> None:
    logged: list[str] = []
    policy = SwapPolicy(lock_timeout_ms=200, budget_s=0.5, terminate_blockers=True)
    outcome = publish(v1, 2, policy=policy, log=logged.append)
    pid = analyst.get_backend_pid()
    assert live_versions(v1) == {"v2"}
    assert [line for line in outcome.terminated if line.startswith(f"pid {pid} ")]
    assert any(f"ended session pid {pid} " in line for line in logged), logged
    with pytest.raises(psycopg2.OperationalError):
        analyst.cursor().execute("SELECT 1")


def test_the_schema_step_takes_no_lock_a_reader_would_wait_for(v1: str) -> None:
    """Every run applies sql/ before it publishes: on an existing warehouse, that must not
    take a lock stronger than a reader's on anything a reader reads."""
    conn = psycopg2.connect(v1)
    try:
        with conn.cursor() as cur:
            for path in sorted(config.SQL_DIR.glob("[0-9][0-9][0-9]_*.sql")):
                cur.execute(path.read_text(encoding="utf-8"))
            cur.execute(
                "SELECT relation::regclass::text, mode FROM pg_locks WHERE pid = pg_backend_pid() "
                "AND locktype = 'relation' AND relation::regclass::text LIKE 'reco.%%' "
                "AND mode <> 'AccessShareLock'"
            )
            assert cur.fetchall() == []
    finally:
        conn.rollback()
        conn.close()


def test_a_login_without_stats_rights_sees_a_holder_of_unknown_age(v1: str, analyst) -> None:
    """A publisher that may not look into other roles' sessions cannot tell an old
    transaction from a short read: it does not wait such a holder out (it tries, bounded by
    the lock timeout), and names it as of unknown age."""
    role = "reco_test_no_stats"
    with warehouse.connection(v1) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {role}")
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'x' IN ROLE reco_reader")
    tables = ["reco.recommendations"]
    try:
        with warehouse.connection(login_url(v1, role, "x")) as conn, conn.cursor() as cur:
            sql = swap.statements(tables)
            [holder] = swap.holders(cur, [*swap.CONTRACT_VIEWS, *tables], sql)
    finally:
        with warehouse.connection(v1) as conn, conn.cursor() as cur:
            cur.execute(f"DROP ROLE {role}")
    assert holder.pid == analyst.get_backend_pid()
    assert holder.unknown_age and not holder.outlasts(0.0)
    assert "of unknown age" in holder.describe() and "reco.recommendations" in holder.describe()
