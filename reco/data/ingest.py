"""Ingest: raw ratings -> typed, deduplicated Parquet in the run's lake folder.

Writes ``ratings.parquet`` (user_id, item_id, rating, timestamp), ``quarantine.parquet``
(every rejected line: raw text + reason code), ``items.parquet`` (titles, when the
dataset has them) and ``manifest.json`` (source, scale, counts per reason, and ``notes``:
one short sentence per optional input that was missing or damaged and left out).

    spark-submit spark_jobs/ingest.py --run-dir var/lake/runs/R --dataset PATH [--format F]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config
from reco.data import feedback, formats, parsing, titles
from reco.data.transforms import deduplicate_latest, split_rejected
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.runs import RunFolder
from reco.runtime import write_json
from reco.spark import size_shuffle

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from reco.steps import StepArgs

STAGE = "ingest"


@dataclass(frozen=True)
class Written:
    """What the write phase stored and counted."""

    stats: Any  # Row: n, users, items, mean of the stored ratings
    reasons: dict[str, int]  # quarantined lines per reason
    seen: Any  # Row: lo, hi of every finite rating read, kept or not
    stored: DataFrame  # the stored ratings, read back


def run(
    spark: SparkSession, run_dir: Path, source: formats.Source, feedback_inbox: Path | None = None
) -> dict[str, Any]:
    """Parse, split rejected lines, deduplicate and write the run's ingest outputs."""
    parsed = None  # cached while in use; released on every way out (a refusal too)
    try:
        with timer(run_dir, STAGE, "read", source=str(source.ratings_path)) as t:
            parsed = parsing.read_ratings(spark, source).cache()
            lines = parsed.count()
            t["rows"] = lines
            t["shuffle_partitions"] = size_shuffle(spark, lines)
        refuse_empty(source, lines)
        written = write_ratings(spark, run_dir, parsed)
    finally:
        if parsed is not None:
            parsed.unpersist()
    quarantine = RunFolder(run_dir).quarantine
    refuse_all_rejected(source, lines, written, quarantine)
    n_titles, item_notes = write_items(run_dir, source)
    events = ingest_feedback(spark, run_dir, feedback_inbox, written.stored)
    manifest = manifest_of(source, lines, written, quarantine, (n_titles, item_notes), events)
    write_json(RunFolder(run_dir).manifest, manifest)
    out = {k: manifest[k] for k in ("n_ratings", "n_users", "n_items", "n_rejected")}
    if events:
        out["feedback_applied"] = events.get("applied", 0)
    return out


def refuse_empty(source: formats.Source, lines: int) -> None:
    if lines == 0:
        raise PipelineError(
            f"dataset file {source.ratings_path} has no rating lines (only a header or blank "
            "lines): nothing to ingest; check that the export finished writing, or point the "
            "dataset at the file with the ratings"
        )


def write_ratings(spark: SparkSession, run_dir: Path, parsed: DataFrame) -> Written:
    """Split off rejected and superseded lines, write ``ratings.parquet`` and
    ``quarantine.parquet``, and count what was stored."""
    from pyspark.sql import functions as F

    accepted, rejected = split_rejected(parsed)
    kept, superseded = deduplicate_latest(accepted)
    quarantine = rejected.unionByName(superseded.select("raw", "reason"))
    with timer(run_dir, STAGE, "write") as t:
        ratings = kept.drop("raw")
        ratings.coalesce(4).write.mode("overwrite").parquet(str(RunFolder(run_dir).ratings))
        quarantine.coalesce(1).write.mode("overwrite").parquet(str(RunFolder(run_dir).quarantine))
        stored = spark.read.parquet(str(RunFolder(run_dir).ratings))
        stats = stored.agg(
            F.count("*").alias("n"),
            F.countDistinct(config.COL_USER).alias("users"),
            F.countDistinct(config.COL_ITEM).alias("items"),
            F.avg(config.COL_RATING).alias("mean"),
        ).first()
        reasons = {r["reason"]: r["count"] for r in quarantine.groupBy("reason").count().collect()}
        # The range of every numeric rating read, kept or not: tells a mislabelled scale.
        # Finite ones only: NaN and Infinity are no scale, and no JSON either.
        finite = F.when(
            ~F.isnan(F.col(config.COL_RATING)) & (F.abs(F.col(config.COL_RATING)) < float("inf")),
            F.col(config.COL_RATING),
        )
        seen = parsed.agg(F.min(finite).alias("lo"), F.max(finite).alias("hi")).first()
        t["rows"] = stats["n"]
    return Written(stats, reasons, seen, stored)


def refuse_all_rejected(
    source: formats.Source, lines: int, written: Written, quarantine_path: Path
) -> None:
    if written.stats["n"] != 0:
        return
    reasons = written.reasons
    hint = ""
    if reasons.get(parsing.REASON_FIELD_COUNT, 0) > lines / 2:
        sep = {"\t": "TAB", "::": "'::'"}.get(source.delimiter, repr(source.delimiter))
        hint = (
            f" Most lines do not split into the expected fields with the {sep} separator "
            f"of format {source.format}: check the delimiter (--format, --delimiter)."
        )
    raise PipelineError(
        f"no usable ratings in {source.ratings_path}: all {lines} lines were rejected "
        f"({reasons}).{hint} The lines and reasons are in {quarantine_path}: fix the "
        "export (or --format / --rating-scale) and run again"
    )


def write_items(run_dir: Path, source: formats.Source) -> tuple[int, list[str]]:
    """``items.parquet`` when the dataset has titles: (how many, notes on what was left out)."""
    with timer(run_dir, STAGE, "items") as t:
        items, item_notes = titles.read_items(source)
        n_items_titles = 0
        if items is not None:
            items.to_parquet(RunFolder(run_dir).items, index=False)
            n_items_titles = len(items)
        else:  # a re-run without titles must not leave an earlier run's behind
            RunFolder(run_dir).items.unlink(missing_ok=True)
        t["rows"] = n_items_titles
    return n_items_titles, item_notes


def ingest_feedback(
    spark: SparkSession, run_dir: Path, inbox: Path | None, stored: DataFrame
) -> dict[str, Any] | None:
    if inbox is None or not inbox.exists():
        return None
    with timer(run_dir, STAGE, "feedback", inbox=str(inbox)) as t:
        events = feedback.ingest(spark, run_dir, inbox, stored)
        t["rows"] = events["lines"]
    return events


def manifest_of(
    source: formats.Source,
    lines: int,
    written: Written,
    quarantine: Path,
    titles: tuple[int, list[str]],
    events: dict[str, Any] | None,
) -> dict[str, Any]:
    """``manifest.json``: the source, the counts per reason, the rating range seen and
    ``notes`` on optional inputs left out."""
    stats, reasons = written.stats, written.reasons
    n_titles, item_notes = titles
    return {
        "source": source.to_json(),
        "feedback": events,
        "lines_read": lines,
        "n_ratings": stats["n"],
        "n_users": stats["users"],
        "n_items": stats["items"],
        "rating_mean": stats["mean"],
        "n_rejected": sum(reasons.values()),
        "n_malformed": sum(n for r, n in reasons.items() if r != parsing.REASON_DUPLICATE),
        "n_superseded": reasons.get(parsing.REASON_DUPLICATE, 0),
        "rejected_by_reason": reasons,
        "rating_seen_min": written.seen["lo"],
        "rating_seen_max": written.seen["hi"],
        "quarantine_path": str(quarantine),
        "n_item_titles": n_titles,
        # Optional inputs that were missing or damaged and left out, one sentence each.
        "notes": [*source.notes, *item_notes],
    }


def step(args: StepArgs) -> dict[str, Any]:
    from reco.spark import get_spark

    source = formats.detect_source(
        args.dataset,
        args.format,
        columns=formats.parse_mapping(args.columns),
        rating_scale=formats.parse_scale(args.rating_scale),
        delimiter=args.delimiter,
    )
    spark = get_spark("reco-ingest")
    inbox = Path(args.feedback).expanduser() if args.feedback else None
    return run(spark, args.run_dir, source, inbox)
