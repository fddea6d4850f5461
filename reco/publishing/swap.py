"""The swap of a publish under live readers: every lock in one bounded wait, retried.

After the staging tables are loaded, :func:`swap` takes the locks of the swap in one
statement (the contract views, then the live tables: the order readers take them; why, in
``sql/publish_swap.sql``) that waits at most the policy's lock timeout, then runs the
renames. A lock timeout or a deadlock rolls the swap back to its savepoint, which releases
those locks at once and keeps the loaded staging tables, and the swap is tried again after
a backoff. Before each try it looks at who holds the relations: while a session that has
kept a transaction open longer than the lock timeout holds one (an analyst's open ``BEGIN``),
a try would only make every reader queue behind it for nothing, so it waits without
locking. Past the budget the step fails naming that session, its query and how long its
transaction has been open; the previous tables stay live. With ``terminate_blockers`` it
ends those sessions instead and tries once more, saying so in the run's log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.errors

from reco import config
from reco.errors import PipelineError
from reco.publishing import warehouse

SAVEPOINT = "reco_swap"
# The contract views (sql/090_contract.sql), which every swap re-points: locked first.
CONTRACT_VIEWS = ("reco.v1_recommendations", "reco.v1_similar_items", "reco.v1_popular_items")
# Seconds between tries, then the last one again until the budget is spent.
BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
# The swap's share of deadlock_timeout: its whole lock wait ends before any reader's
# deadlock check can run.
DEADLOCK_SHARE = 0.8
LOG_EVERY_S = 30.0


@dataclass(frozen=True)
class SwapPolicy:
    """How long one try may wait for its locks, how long to keep trying, and whether to end
    the sessions in the way once that is spent."""

    lock_timeout_ms: int = config.PUBLISH_LOCK_TIMEOUT_MS
    budget_s: float = config.PUBLISH_SWAP_BUDGET_S
    terminate_blockers: bool = config.PUBLISH_TERMINATE_BLOCKERS

    def __post_init__(self) -> None:
        if self.lock_timeout_ms < 1 or self.budget_s < 0:
            raise PipelineError(
                f"the publish swap needs a lock timeout of at least 1 ms and a budget of at "
                f"least 0 s, got {self.lock_timeout_ms} ms and {self.budget_s} s: fix "
                "RECO_PUBLISH_LOCK_TIMEOUT_MS / RECO_PUBLISH_SWAP_BUDGET_S"
            )


@dataclass(frozen=True)
class Holder:
    """A session holding a lock on a relation the swap needs."""

    pid: int
    user: str
    application: str
    client: str
    state: str
    xact_age_s: float | None  # None: this login may not see it
    query: str
    relations: str

    def outlasts(self, seconds: float) -> bool:
        """Its transaction has been open longer than ``seconds``: a lock wait of that long
        would most likely end in a timeout."""
        return self.xact_age_s is not None and self.xact_age_s > seconds

    @property
    def unknown_age(self) -> bool:
        """Another role's session this login may not look into (state and age hidden)."""
        return self.xact_age_s is None and self.state == "?"

    def describe(self) -> str:
        age = "of unknown age" if self.xact_age_s is None else f"open {self.xact_age_s:.0f} s"
        return (
            f"pid {self.pid} (user {self.user}, application {self.application}, "
            f"{self.client}) holds {self.relations} in a transaction {age}, "
            f"state '{self.state}', last query: {self.query}"
        )


@dataclass
class SwapOutcome:
    """What the swap took: tries, its seconds from the first try to the renames done, and
    the sessions it waited for."""

    tries: int = 0
    lock_timeouts: int = 0
    deadlocks: int = 0
    seconds: float = 0.0
    lock_timeout_ms: int = 0
    waited_for: list[str] = field(default_factory=list)  # one line per session, first seen
    terminated: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "tries": self.tries,
            "lock_timeouts": self.lock_timeouts,
            "deadlocks": self.deadlocks,
            "seconds": round(self.seconds, 3),
            "lock_timeout_ms": self.lock_timeout_ms,
            "waited_for": self.waited_for,
            "terminated": self.terminated,
        }


def statements(tables: list[str]) -> dict[str, str]:
    """``sql/publish_swap.sql`` with the live tables to lock (``reco.X``, in this order)."""
    return {
        name: text.replace("{tables}", ", ".join(tables))
        for name, text in warehouse.named_statements("publish_swap.sql").items()
    }


def effective_timeout_ms(cur: Any, policy: SwapPolicy, sql: dict[str, str]) -> int:
    """The policy's lock timeout, capped below the server's deadlock_timeout."""
    cur.execute(sql["deadlock_timeout"])
    deadlock_ms = int(cur.fetchone()[0])
    return max(1, min(policy.lock_timeout_ms, int(deadlock_ms * DEADLOCK_SHARE)))


def holders(cur: Any, relations: list[str], sql: dict[str, str]) -> list[Holder]:
    cur.execute(sql["holders"], {"relations": relations})
    return [Holder(*row) for row in cur.fetchall()]


def swap(
    cur: Any,
    tables: list[str],
    renames: Callable[[], None],
    policy: SwapPolicy | None = None,
    log: Callable[[str], None] | None = None,
) -> SwapOutcome:
    """Lock ``tables`` (``reco.X``) and the contract views, then run ``renames``; retried
    as the module says. ``cur`` is inside the publish's transaction."""
    policy = policy or SwapPolicy()
    log = log or (lambda line: print(f"[publish] {line}", flush=True))
    sql = statements(tables)
    relations = [*CONTRACT_VIEWS, *tables]
    outcome = SwapOutcome(lock_timeout_ms=effective_timeout_ms(cur, policy, sql))
    if outcome.lock_timeout_ms < policy.lock_timeout_ms:
        log(
            f"lock timeout {outcome.lock_timeout_ms} ms, not {policy.lock_timeout_ms}: kept "
            "below the server's deadlock_timeout"
        )
    timeout_s = outcome.lock_timeout_ms / 1000
    started = time.monotonic()
    deadline = started + policy.budget_s
    last_log = started - LOG_EVERY_S
    step = 0
    terminated = False
    while True:
        long_holders = [h for h in holders(cur, relations, sql) if h.outlasts(timeout_s)]
        if not long_holders and try_once(cur, sql, renames, outcome, timeout_s, log):
            outcome.seconds = time.monotonic() - started
            return outcome
        now = time.monotonic()
        # Who kept the try from its locks: sessions busy or idle in a transaction, not the
        # autocommit readers whose lock was already gone when their state was read.
        in_the_way = long_holders or [
            h for h in holders(cur, relations, sql) if h.outlasts(timeout_s) or h.unknown_age
        ]
        for h in in_the_way:
            line = h.describe()
            if not any(line.startswith(f"pid {h.pid} ") for line in outcome.waited_for):
                outcome.waited_for.append(line)
        if now >= deadline:
            if policy.terminate_blockers and not terminated and in_the_way:
                outcome.terminated = end_sessions(cur, sql, in_the_way, policy, log)
                terminated = True
                deadline = now + max(10.0, 20 * timeout_s)  # the tries that follow
                continue
            raise budget_spent(tables, in_the_way, policy, outcome)
        if now - last_log >= LOG_EVERY_S:
            last_log = now
            who = "; ".join(h.describe() for h in in_the_way) or "short readers"
            log(
                f"swap waiting ({outcome.tries} tries, {now - started:.0f} s of the "
                f"{policy.budget_s:.0f} s budget): {who}"
            )
        pause = BACKOFF_S[min(step, len(BACKOFF_S) - 1)]
        step += 1
        time.sleep(min(pause, max(0.0, deadline - now)))


def try_once(
    cur: Any,
    sql: dict[str, str],
    renames: Callable[[], None],
    outcome: SwapOutcome,
    timeout_s: float,
    log: Callable[[str], None],
) -> bool:
    """One try: locks in one bounded wait, then the renames. False when it gave up on a
    lock (rolled back to the savepoint: no lock of the swap is held any more)."""
    outcome.tries += 1
    ms = max(1, round(timeout_s * 1000))
    cur.execute(f"SAVEPOINT {SAVEPOINT}")
    try:
        # statement_timeout bounds the lock statement's waits in all, lock_timeout each
        # one, here and in the renames.
        cur.execute(f"SET LOCAL lock_timeout = {ms}; SET LOCAL statement_timeout = {ms}")
        cur.execute(sql["lock_for_swap"])
        cur.execute("SET LOCAL statement_timeout = 0")
        renames()
    except (psycopg2.errors.LockNotAvailable, psycopg2.errors.DeadlockDetected) as exc:
        if isinstance(exc, psycopg2.errors.DeadlockDetected):
            outcome.deadlocks += 1
        else:
            outcome.lock_timeouts += 1
        cur.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        return False
    except psycopg2.errors.QueryCanceled as exc:
        # Our own statement_timeout gives up like a lock timeout; a cancel from someone
        # else (pg_cancel_backend) stops the publish.
        if "statement timeout" not in str(exc):
            raise
        outcome.lock_timeouts += 1
        cur.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        return False
    cur.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
    return True


def end_sessions(
    cur: Any,
    sql: dict[str, str],
    sessions: list[Holder],
    policy: SwapPolicy,
    log: Callable[[str], None],
) -> list[str]:
    """pg_terminate_backend for each session in the way (the opt-in), logged one by one."""
    ended = []
    for h in sessions:
        try:
            cur.execute(f"SAVEPOINT {SAVEPOINT}_end")
            cur.execute(sql["terminate"], {"pid": h.pid})
            done = bool(cur.fetchone()[0])
            cur.execute(f"RELEASE SAVEPOINT {SAVEPOINT}_end")
        except psycopg2.Error as exc:
            cur.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}_end")
            done, why = False, str(exc).strip().splitlines()[0]
        else:
            why = "" if done else "pg_terminate_backend returned false"
        line = h.describe()
        if done:
            ended.append(line)
            log(
                f"ended session {line} after the swap's {policy.budget_s:.0f} s budget "
                "(RECO_PUBLISH_TERMINATE_BLOCKERS is set)"
            )
        else:
            log(f"could not end session pid {h.pid}: {why}")
    return ended


def budget_spent(
    tables: list[str], in_the_way: list[Holder], policy: SwapPolicy, outcome: SwapOutcome
) -> PipelineError:
    who = (
        "; ".join(h.describe() for h in in_the_way)
        or "no session holds them now: readers came and went faster than the lock timeout"
    )
    pids = ", ".join(str(h.pid) for h in in_the_way) or "<pid>"
    return PipelineError(
        f"the publish swap could not lock {', '.join(tables)} and the v1 views within its "
        f"{policy.budget_s:.0f} s budget ({outcome.tries} tries of at most "
        f"{outcome.lock_timeout_ms} ms; nothing was published and the previous "
        f"recommendations are still live). In the way: {who}. End that transaction "
        f"(COMMIT or ROLLBACK in its session, or SELECT pg_terminate_backend({pids})), then "
        "retry the task; or raise RECO_PUBLISH_SWAP_BUDGET_S, or set "
        "RECO_PUBLISH_TERMINATE_BLOCKERS=1 to end such sessions after the budget.",
        retryable=True,
    )
