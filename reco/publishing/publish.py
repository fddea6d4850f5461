"""Publish: load the run's recommendations into PostgreSQL atomically.

Everything happens in ONE transaction: take the publish advisory lock, create a staging
table, ``COPY`` the rows into it (and the similar items into theirs), upsert item titles,
then swap staging and live tables by rename (``sql/publish_recommendations.sql``,
``sql/publish_similar_items.sql``). Readers keep seeing the previous set
until the commit and the new set after it, never a mix; a failure or a killed process
rolls everything back, leaving the previous set and no staging table. The run is recorded
in ``reco.model_runs`` (status ``publishing`` -> ``published`` or ``failed``).

    reco publish --run-dir var/lake/runs/R
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from reco import config
from reco.errors import PipelineError
from reco.publishing import warehouse
from reco.reporting.timing import timer
from reco.runs import RunFolder
from reco.runtime import main_for, read_json, run_dir_arg, run_identity

STAGE = "publish"
COPY_CHUNK = 1 << 20  # bytes per write to the COPY stream (psycopg2 default: 8 KiB)

REC_COLUMNS = ("user_id", "item_id", "rank", "score", "model_version", "generated_at")
SIMILAR_COLUMNS = (
    "item_id",
    "similar_item_id",
    "rank",
    "score",
    "model_version",
    "generated_at",
)


def read_recommendations(run_dir: Path) -> pa.Table:
    path = RunFolder(run_dir).recommendations
    if not path.exists():
        raise PipelineError(f"no recommendations in {path}: run the recommend step first")
    table = pq.read_table(path, columns=list(REC_COLUMNS))
    if table.num_rows == 0:
        raise PipelineError(f"{path} holds no rows: refusing to publish an empty table")
    return table


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
    before_swap: Callable[[], None] | None = None,
) -> int:
    """Replace ``reco.recommendations`` with ``table`` (and ``reco.similar_items`` with
    ``similar``, when given) in one transaction; returns the recommendation rows.

    ``before_swap`` runs after the COPY, inside the transaction (used to observe or
    interrupt a publish at its most delicate point).
    """
    steps = warehouse.named_statements("publish_recommendations.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(steps["lock"], {"lock_key": config.PUBLISH_LOCK_KEY})
        cur.execute(steps["create_staging"])
        cur.copy_expert(
            f"COPY reco.recommendations_staging ({', '.join(REC_COLUMNS)}) "
            "FROM STDIN WITH (FORMAT csv)",
            table_to_csv(table.select(list(REC_COLUMNS))),
            size=COPY_CHUNK,
        )
        cur.execute(steps["index_staging"])
        if similar is not None:
            similar_steps = warehouse.named_statements("publish_similar_items.sql")
            cur.execute(similar_steps["create_staging"])
            cur.copy_expert(
                f"COPY reco.similar_items_staging ({', '.join(SIMILAR_COLUMNS)}) "
                "FROM STDIN WITH (FORMAT csv)",
                table_to_csv(similar.select(list(SIMILAR_COLUMNS))),
                size=COPY_CHUNK,
            )
            cur.execute(similar_steps["index_staging"])
        if items is not None and items.num_rows:
            upsert_items(cur, items)
        if before_swap is not None:
            before_swap()
        cur.execute(steps["swap"])
        if similar is not None:
            cur.execute(similar_steps["swap"])
        return table.num_rows


def upsert_items(cur: Any, items: pa.Table) -> None:
    statements = warehouse.named_statements("upsert_items.sql")
    cur.execute(statements["create_temp"])
    cur.copy_expert(
        "COPY items_incoming (item_id, title, genres) FROM STDIN WITH (FORMAT csv)",
        table_to_csv(items.select(["item_id", "title", "genres"])),
    )
    cur.execute(statements["merge"])


def record_run_start(
    url: str, run_id: str, run_dir: Path, model_version: str, metrics: dict[str, Any]
) -> int:
    """Insert this attempt into ``reco.model_runs``; returns the attempt number."""
    manifest = read_json(RunFolder(run_dir).manifest)
    params = {
        **metrics["best_params"],
        "cv_folds": metrics.get("cv_folds"),
        "seed": metrics.get("seed"),
        "holdout_fraction": metrics.get("holdout_fraction"),
    }
    summary = metrics_summary(metrics)
    sql = warehouse.named_statements("model_runs.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
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
            },
        )
        return int(cur.fetchone()[0])


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
    url: str, run_id: str, attempt: int, status: str, reason: str | None, n_published: int | None
) -> None:
    sql = warehouse.named_statements("model_runs.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            sql["finish"],
            {
                "run_id": run_id,
                "attempt": attempt,
                "status": status,
                "reason": reason,
                "n_published": n_published,
            },
        )


def run(url: str, run_dir: Path, run_id: str | None = None) -> dict[str, Any]:
    run_id = run_id or run_dir.name
    model_version, _ = run_identity(run_dir)
    with timer(run_dir, STAGE, "schema"):
        warehouse.apply_schema(url)
    table = read_recommendations(run_dir)
    items_path = RunFolder(run_dir).items
    items = pq.read_table(items_path) if items_path.exists() else None
    similar_path = RunFolder(run_dir).similar_items
    similar = (
        pq.read_table(similar_path, columns=list(SIMILAR_COLUMNS))
        if similar_path.exists()
        else None
    )
    metrics = read_json(RunFolder(run_dir).metrics)
    attempt = record_run_start(url, run_id, run_dir, model_version, metrics)
    decision = metrics.get("gate") or {"publish": True}
    if not decision["publish"]:
        record_run_end(url, run_id, attempt, "rejected", decision["reason"], 0)
        return {
            "rows": 0,
            "status": "rejected",
            "reason": decision["reason"],
            "model_version": model_version,
            "attempt": attempt,
        }
    try:
        with timer(run_dir, STAGE, "copy_and_swap", rows=table.num_rows):
            rows = publish_table(url, table, items, similar=similar)
    except Exception as exc:
        # When the warehouse itself went away the status stays 'publishing'; the cause is
        # in the error raised below.
        with contextlib.suppress(PipelineError):
            record_run_end(url, run_id, attempt, "failed", f"{type(exc).__name__}: {exc}", None)
        if isinstance(exc, PipelineError):
            raise
        raise PipelineError(
            f"publishing to {warehouse.describe(url)} failed and was rolled back (the previous "
            f"recommendations are unchanged): {type(exc).__name__}: {exc}"
        ) from exc
    record_run_end(url, run_id, attempt, "published", None, rows)
    return {
        "rows": rows,
        "model_version": model_version,
        "attempt": attempt,
        "warehouse": warehouse.describe(url),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reco publish",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_dir_arg(p)
    p.add_argument("--run-id", default=None, help="run id to record (default: run folder name)")
    p.add_argument(
        "--warehouse-url",
        default=None,
        help="PostgreSQL URL (default: $WAREHOUSE_URL, else the embedded server)",
    )
    return p


def step(args: argparse.Namespace) -> dict[str, Any]:
    return run(warehouse.resolve_url(args.warehouse_url), args.run_dir, args.run_id)


def main(argv: list[str] | None = None) -> int:
    return main_for(STAGE, build_parser, step, argv)


if __name__ == "__main__":
    sys.exit(main())
