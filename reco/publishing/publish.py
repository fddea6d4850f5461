"""Publish: load the run's recommendations into PostgreSQL atomically.

Everything happens in ONE transaction: take the publish advisory lock, create a staging
table per published table (recommendations, similar items, popular items), ``COPY`` the
rows into them, upsert item titles, then swap staging and live tables by rename
(``sql/publish_table.sql``; every lock taken up front in the readers' order, each try
bounded and retried: :mod:`reco.publishing.swap`), re-point the contract views
(``sql/090_contract.sql``) and drop the old tables; the new tables take the owner, grants
and comments of the ones they replace (``sql/080_table_metadata.sql``). Readers keep
seeing the previous set until the commit and the new set after it, never a mix; a failure
or a killed process rolls everything back, leaving the previous set and no staging table.

The run is recorded in ``reco.model_runs``: status ``publishing`` -> ``published``,
``rejected`` or ``failed``. While at ``publishing`` the attempt's process holds an advisory
lock on a connection of its own; the next run's start marks attempts whose lock nobody holds
(the process was killed, its host lost) ``abandoned`` (:func:`mark_abandoned`).

    reco publish --run-dir var/lake/runs/R
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psycopg2.extensions
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from reco import config
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.publishing import swap, warehouse
from reco.runs import RunFolder
from reco.runtime import read_json, run_identity

if TYPE_CHECKING:
    from reco.steps import StepArgs

STAGE = "publish"
COPY_CHUNK = 1 << 20  # bytes per write to the COPY stream (psycopg2 default: 8 KiB)

# reco.model_runs.status, every value the publish step writes: model_runs.sql binds these
# rather than spelling them. (Readers still compare with the text: report.py's labels,
# the "champion" query, pipeline.announce_publish.)
PUBLISHING = "publishing"  # started; its process holds the attempt lock
PUBLISHED = "published"
REJECTED = "rejected"  # the gate kept the previous model
FAILED = "failed"  # the publish raised and was rolled back
ABANDONED = "abandoned"  # left at 'publishing' by a process that is gone
RUN_STATUSES = (PUBLISHING, PUBLISHED, REJECTED, FAILED, ABANDONED)
# First key of an attempt's advisory lock (two-int4 form, so it never meets the one-key
# locks on PUBLISH_LOCK_KEY and PUBLISH_LOCK_KEY + 1); the second is hashtext(run:attempt).
ATTEMPT_LOCK_CLASS = config.PUBLISH_LOCK_KEY + 2


@dataclass(frozen=True)
class Published:
    """One table a publish replaces: its name, key, and the columns loaded into it
    (``optional`` ones when the input has them; the table's column is nullable)."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    optional: tuple[str, ...] = ()

    def statements(self) -> dict[str, str]:
        """``sql/publish_table.sql`` for this table."""
        return {
            step: text.format(
                table=self.name,
                staging=f"{self.name}_staging",
                previous=f"{self.name}_previous",
                key=", ".join(self.key),
            )
            for step, text in warehouse.named_statements("publish_table.sql").items()
        }

    def loaded(self, data: pa.Table) -> tuple[str, ...]:
        return self.columns + tuple(c for c in self.optional if c in data.column_names)


RECOMMENDATIONS = Published(
    "recommendations",
    ("user_id", "rank"),
    ("user_id", "item_id", "rank", "score", "model_version", "generated_at"),
    optional=("because_item_id", "because_score"),
)
SIMILAR_ITEMS = Published(
    "similar_items",
    ("item_id", "rank"),
    ("item_id", "similar_item_id", "rank", "score", "model_version", "generated_at"),
)
POPULAR_ITEMS = Published(
    "popular_items",
    ("genre", "rank"),
    ("genre", "rank", "item_id", "score", "model_version", "generated_at"),
)
REC_COLUMNS = RECOMMENDATIONS.columns + RECOMMENDATIONS.optional


def read_recommendations(run_dir: Path) -> pa.Table:
    path = RunFolder(run_dir).recommendations
    if not path.exists():
        raise PipelineError(f"no recommendations in {path}: run the recommend step first")
    present = set(pq.ParquetDataset(path).schema.names)
    table = pq.read_table(path, columns=[c for c in REC_COLUMNS if c in present])
    if table.num_rows == 0:
        raise PipelineError(f"{path} holds no rows: refusing to publish an empty table")
    return table


def read_optional(path: Path, spec: Published) -> pa.Table | None:
    """A run's similar or popular items (written by recommend), if it has them."""
    if not path.exists():
        return None
    present = set(pq.ParquetDataset(path).schema.names)
    return pq.read_table(path, columns=[c for c in spec.columns + spec.optional if c in present])


def timestamps_as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO text for a timestamp column with few distinct values (one per publish, as
    ``generated_at``): each value is formatted once. Arrow's CSV writer formats every
    row, which made it the slowest part of a publish (profiled: 8.6 s of 10 per 1M rows).
    Columns with many distinct values are left to the CSV writer."""
    encoded = col.combine_chunks().dictionary_encode()
    if len(encoded.dictionary) > 10_000:
        return col
    texts = pa.array(
        [None if v is None else v.isoformat() for v in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    return pa.chunked_array([texts.take(encoded.indices)])


def table_to_csv(table: pa.Table) -> io.BytesIO:
    """Arrow table -> CSV bytes for COPY (no header; timestamps in ISO form with zone)."""
    cols = []
    for name in table.column_names:
        col = table[name]
        if pa.types.is_timestamp(col.type):
            col = timestamps_as_text(col.cast(pa.timestamp("us", tz="UTC")))
        cols.append(col)
    buf = io.BytesIO()
    pacsv.write_csv(
        pa.table(cols, names=table.column_names),
        buf,
        write_options=pacsv.WriteOptions(include_header=False),
    )
    buf.seek(0)
    return buf


def publish_table(
    url: str,
    table: pa.Table,
    items: pa.Table | None = None,
    *,
    similar: pa.Table | None = None,
    popular: pa.Table | None = None,
    before_swap: Callable[[], None] | None = None,
    policy: swap.SwapPolicy | None = None,
    on_swap: Callable[[swap.SwapOutcome], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Replace ``reco.recommendations`` with ``table`` (and ``reco.similar_items`` with
    ``similar``, ``reco.popular_items`` with ``popular``, when given) in one transaction;
    returns the recommendation rows.

    Every table is loaded into its staging table first; then all are swapped in, the
    contract views (``sql/090_contract.sql``) are pointed at the new tables and the old
    ones dropped, under ``policy`` (:mod:`reco.publishing.swap`: bounded lock waits,
    retried). ``before_swap`` runs after the loads, inside the transaction (used to
    observe or interrupt a publish at its most delicate point); ``on_swap`` gets what the
    swap took.
    """
    loads = [(RECOMMENDATIONS, table), (SIMILAR_ITEMS, similar), (POPULAR_ITEMS, popular)]
    loads = [(spec, data) for spec, data in loads if data is not None]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(RECOMMENDATIONS.statements()["lock"], {"lock_key": config.PUBLISH_LOCK_KEY})
        for spec, data in loads:
            load_staging(cur, spec, data)
        if items is not None and items.num_rows:
            upsert_items(cur, items)
        if before_swap is not None:
            before_swap()

        def renames() -> None:
            for spec, _ in loads:
                cur.execute(spec.statements()["swap"])
            # The views followed the renamed tables: re-point them, then drop the old ones.
            cur.execute("SELECT reco.define_contract_views()")
            for spec, _ in loads:
                cur.execute(spec.statements()["drop_previous"])

        tables = [f"reco.{spec.name}" for spec, _ in loads]
        outcome = swap.swap(cur, tables, renames, policy, log)
        if on_swap is not None:
            on_swap(outcome)
        return table.num_rows


def load_staging(cur: Any, spec: Published, data: pa.Table) -> None:
    """Create ``spec``'s staging table, COPY ``data`` into it, build its key."""
    steps = spec.statements()
    columns = spec.loaded(data)
    cur.execute(steps["create_staging"])
    cur.copy_expert(
        f"COPY reco.{spec.name}_staging ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)",
        table_to_csv(data.select(list(columns))),
        size=COPY_CHUNK,
    )
    cur.execute(steps["index_staging"])


def upsert_items(cur: Any, items: pa.Table) -> None:
    statements = warehouse.named_statements("upsert_items.sql")
    cur.execute(statements["create_temp"])
    cur.copy_expert(
        "COPY items_incoming (item_id, title, genres) FROM STDIN WITH (FORMAT csv)",
        table_to_csv(items.select(["item_id", "title", "genres"])),
    )
    cur.execute(statements["merge"])


@dataclass
class Attempt:
    """One attempt of a run in ``reco.model_runs`` and the connection holding its advisory
    lock. While that connection is open no sweep (:func:`mark_abandoned`, on any host) takes
    the attempt for abandoned; when the process dies the server ends the session and the
    lock with it. Release it once the outcome is recorded (a context manager does)."""

    run_id: str
    number: int
    lock: psycopg2.extensions.connection | None = field(default=None, repr=False)
    abandoned: list[tuple[str, int]] = field(default_factory=list)  # marked at its start

    def release(self) -> None:
        if self.lock is not None:
            with contextlib.suppress(psycopg2.Error):
                self.lock.close()
            self.lock = None

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def sweep_abandoned(cur: Any, found_by: str) -> list[tuple[str, int]]:
    """Mark attempts at 'publishing' whose lock nobody holds as 'abandoned' (in the caller's
    transaction); returns their (run_id, attempt). ``cur`` must not hold an attempt lock
    itself: advisory locks are re-entrant within a session."""
    cur.execute(
        warehouse.named_statements("model_runs.sql")["mark_abandoned"],
        {
            "abandoned": ABANDONED,
            "publishing": PUBLISHING,
            "found_by": found_by,
            "lock_class": ATTEMPT_LOCK_CLASS,
        },
    )
    return sorted((str(run_id), int(attempt)) for run_id, attempt in cur.fetchall())


def mark_abandoned(url: str, found_by: str = "a sweep") -> list[tuple[str, int]]:
    """Mark every attempt left at 'publishing' by a process that is gone as 'abandoned'
    (``status_reason`` says when and by whom it was found, ``finished_at`` is now); an
    attempt whose publisher is alive, here or on another host, is left alone. Every run's
    start does this; returns the (run_id, attempt) pairs marked."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        return sweep_abandoned(cur, found_by)


def record_run_start(
    url: str, run_id: str, run_dir: Path, model_version: str, metrics: dict[str, Any]
) -> Attempt:
    """Mark attempts abandoned by dead processes, then insert this attempt into
    ``reco.model_runs`` at 'publishing' with its lock held; the returned :class:`Attempt`
    keeps the lock until :func:`record_run_end` (or its release)."""
    manifest = read_json(RunFolder(run_dir).manifest)
    params = {
        **metrics["best_params"],
        "cv_folds": metrics.get("cv_folds"),
        "seed": metrics.get("seed"),
        "holdout_fraction": metrics.get("holdout_fraction"),
    }
    summary = metrics_summary(metrics)
    sql = warehouse.named_statements("model_runs.sql")
    conn = warehouse.connect(url)  # the lock connection: open until the outcome is recorded
    try:
        with conn.cursor() as cur:
            cur.execute(sql["attempt_session"])
            abandoned = sweep_abandoned(cur, found_by=f"the start of run {run_id}")
            conn.commit()
            cur.execute(
                sql["insert"],
                {
                    "run_id": run_id,
                    "model_version": model_version,
                    "dataset": manifest["source"]["ratings_path"],
                    "input_format": manifest["source"]["format"],
                    "params": json.dumps(params),
                    "metrics": json.dumps(summary),
                    "n_ratings": manifest["n_ratings"],
                    "n_users": manifest["n_users"],
                    "n_items": manifest["n_items"],
                    "publishing": PUBLISHING,
                },
            )
            number = int(cur.fetchone()[0])
            cur.execute(
                sql["hold_attempt"],
                {"lock_class": ATTEMPT_LOCK_CLASS, "run_id": run_id, "attempt": number},
            )
            conn.commit()
    except BaseException:
        conn.close()  # rolls back: no row without its lock
        raise
    return Attempt(run_id, number, conn, abandoned)


def metrics_summary(m: dict[str, Any]) -> dict[str, Any]:
    """What ``reco.model_runs.metrics`` keeps: every metric beside its baselines, the
    published model's family, parameters and why it was chosen, and every CV candidate's
    per-fold scores."""
    drop = ("params", "cv_results", "selection")
    return {
        "model_family": m.get("model_family", "als"),
        "cv": {
            "folds": m.get("cv_folds"),
            "ranking": m["ranking"].get("cv_results", []),
            "rating": m["rating"].get("cv_results", []),
        },
        "rmse": m["rmse"],
        "mae": m["mae"],
        "mpe": m["mpe"],
        "ndcg_at_k": m["ndcg_at_k"],
        "precision_at_k": m["precision_at_k"],
        "rating": {k: v for k, v in m["rating"].items() if k not in drop},
        "ranking": {k: v for k, v in m["ranking"].items() if k not in drop},
        "baselines": m["baselines"],
        "champion": m.get("champion"),
        "gate": m.get("gate"),
        "n_train": m.get("n_train"),
        "n_holdout": m.get("n_holdout"),
    }


def record_run_end(
    url: str, attempt: Attempt, status: str, reason: str | None, n_published: int | None
) -> None:
    """Record the attempt's outcome, then let go of its lock (in that order: a sweep in
    between would take a finished attempt for abandoned)."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown reco.model_runs status {status!r}: one of {RUN_STATUSES}")
    sql = warehouse.named_statements("model_runs.sql")
    try:
        with warehouse.connection(url) as conn, conn.cursor() as cur:
            cur.execute(
                sql["finish"],
                {
                    "run_id": attempt.run_id,
                    "attempt": attempt.number,
                    "status": status,
                    "reason": reason,
                    "n_published": n_published,
                },
            )
    finally:
        attempt.release()


def run(url: str, run_dir: Path, run_id: str | None = None) -> dict[str, Any]:
    run_id = run_id or run_dir.name
    model_version, _ = run_identity(run_dir)
    with timer(run_dir, STAGE, "schema"):
        warehouse.apply_schema(url)
    table = read_recommendations(run_dir)
    items_path = RunFolder(run_dir).items
    items = pq.read_table(items_path) if items_path.exists() else None
    similar = read_optional(RunFolder(run_dir).similar_items, SIMILAR_ITEMS)
    popular = read_optional(RunFolder(run_dir).popular_items, POPULAR_ITEMS)
    metrics = read_json(RunFolder(run_dir).metrics)
    # The lock is released however this ends; an outcome not recorded (the warehouse went
    # away) leaves the attempt at 'publishing' until the next run marks it abandoned.
    with record_run_start(url, run_id, run_dir, model_version, metrics) as attempt:
        abandoned = [list(a) for a in attempt.abandoned]
        decision = metrics.get("gate") or {"publish": True}
        if not decision["publish"]:
            record_run_end(url, attempt, REJECTED, decision["reason"], 0)
            return {
                "rows": 0,
                "status": REJECTED,
                "reason": decision["reason"],
                "model_version": model_version,
                "attempt": attempt.number,
                "abandoned": abandoned,
            }
        swapped: list[swap.SwapOutcome] = []
        try:
            with timer(run_dir, STAGE, "copy_and_swap", rows=table.num_rows):
                rows = publish_table(
                    url, table, items, similar=similar, popular=popular, on_swap=swapped.append
                )
        except Exception as exc:
            # The cause is in the error raised below, whether or not the warehouse is still
            # there to record it.
            with contextlib.suppress(PipelineError):
                record_run_end(url, attempt, FAILED, f"{type(exc).__name__}: {exc}", None)
            if isinstance(exc, PipelineError):
                raise
            raise PipelineError(
                f"publishing to {warehouse.describe(url)} failed and was rolled back (the "
                f"previous recommendations are unchanged): {type(exc).__name__}: {exc}"
            ) from exc
        record_run_end(url, attempt, PUBLISHED, None, rows)
        return {
            "rows": rows,
            "model_version": model_version,
            "attempt": attempt.number,
            "abandoned": abandoned,
            "warehouse": warehouse.describe(url),
            "swap": swapped[0].summary(),
        }


def step(args: StepArgs) -> dict[str, Any]:
    return run(warehouse.resolve_url(args.warehouse_url), args.run_dir, args.run_id)
