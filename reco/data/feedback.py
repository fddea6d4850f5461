"""Feedback events: like / dislike / watched, dropped as files into an inbox folder.

Files are JSON Lines (``*.jsonl``, ``*.json``: one object per line with ``user_id``,
``item_id``, ``event``, ``ts``) or CSV (``*.csv`` with the header
``user_id,item_id,event,ts``). ``ts`` is epoch seconds or an ISO-8601 time.

Every run reads the whole inbox (files are never moved or deleted), so nothing is lost:

- unusable lines go to ``feedback_quarantine.parquet`` with a reason code;
- repeated (user, item, event) keep the latest; older copies are quarantined as
  ``duplicate_superseded``;
- events for users or items the ratings do not know yet are written to
  ``feedback_pending.parquet`` and counted, and apply in a later run once the user or
  item appears in the ratings;
- the rest is ``feedback.parquet``, validated by ``expectations/feedback.json``.

How events shape the next run (the latest event per user and item wins):

==========  ==========================================  ==========================
event       ranking model (implicit ALS, the top-N)     top-N of that user
==========  ==========================================  ==========================
like        a positive signal at the top of the scale   may still be recommended
            (raises a lower rating of the same item)    if not rated
watched     a positive signal at mid-scale, if unrated  excluded
dislike     the pair is removed from training           excluded
==========  ==========================================  ==========================

The rating model (RMSE) trains on explicit ratings only, so its error stays comparable
between runs; the ranking evaluation also uses ratings only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config
from reco.data.formats import MAX_ID
from reco.data.parsing import (
    CLOCK_SKEW_S,
    REASON_DUPLICATE,
    REASON_FIELD_COUNT,
    REASON_FUTURE,
    REASON_ITEM_ID,
    REASON_TIMESTAMP,
    REASON_USER_ID,
)
from reco.errors import PipelineError
from reco.runs import RunFolder

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EVENTS = ("like", "dislike", "watched")
EXCLUDED_EVENTS = ("watched", "dislike")
CSV_HEADER = "user_id,item_id,event,ts"
REASON_EVENT = "invalid_event"
REASON_JSON = "malformed_json"
FILE_SUFFIXES = (".jsonl", ".json", ".csv")
COL_EVENT = "event"
COL_TS = "ts"


def inbox_files(folder: Path) -> list[Path]:
    """The event files of an inbox folder (or a single file), sorted."""
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in FILE_SUFFIXES)


def parse_events(spark: SparkSession, files: list[Path], now_epoch_s: int) -> DataFrame:
    """``raw, user_id, item_id, event, ts, reason`` for every non-blank line (reason null
    = usable), parsed with ``try_cast`` so no value can make Spark raise."""
    from pyspark.sql import functions as F

    lines = spark.read.text([str(f) for f in files]).select(
        F.regexp_replace("value", r"\r$", "").alias("raw"),
        F.input_file_name().alias("_file"),
    )
    lines = lines.where((F.trim("raw") != "") & (F.trim("raw") != CSV_HEADER))
    is_csv = F.lower(F.col("_file")).endswith(".csv")
    parts = F.split("raw", ",", -1)

    def field(name: str, pos: int) -> Any:
        return F.trim(
            F.when(is_csv, F.get(parts, pos)).otherwise(F.get_json_object("raw", f"$.{name}"))
        )

    ts_text = field(COL_TS, 3)
    ts = F.coalesce(ts_text.try_cast("bigint"), F.unix_timestamp(F.try_to_timestamp(ts_text)))
    typed = lines.select(
        "raw",
        is_csv.alias("_csv"),
        F.size(parts).alias("_n"),
        F.get_json_object("raw", "$").isNull().alias("_bad_json"),
        field("user_id", 0).try_cast("bigint").alias(config.COL_USER),
        field("item_id", 1).try_cast("bigint").alias(config.COL_ITEM),
        F.lower(field(COL_EVENT, 2)).alias(COL_EVENT),
        ts.alias(COL_TS),
    )
    u, i, e, t = (F.col(c) for c in (config.COL_USER, config.COL_ITEM, COL_EVENT, COL_TS))
    reason = (
        F.when(F.col("_csv") & (F.col("_n") != 4), F.lit(REASON_FIELD_COUNT))
        .when(~F.col("_csv") & F.col("_bad_json"), F.lit(REASON_JSON))
        .when(u.isNull() | (u <= 0) | (u > MAX_ID), F.lit(REASON_USER_ID))
        .when(i.isNull() | (i <= 0) | (i > MAX_ID), F.lit(REASON_ITEM_ID))
        .when(e.isNull() | ~e.isin(*EVENTS), F.lit(REASON_EVENT))
        .when(t.isNull() | (t < 0), F.lit(REASON_TIMESTAMP))
        .when(t > now_epoch_s + CLOCK_SKEW_S, F.lit(REASON_FUTURE))
    )
    return typed.withColumn("reason", reason).drop("_csv", "_n", "_bad_json")


def ingest(spark: SparkSession, run_dir: Path, inbox: Path, ratings: DataFrame) -> dict[str, Any]:
    """Parse the inbox into the run's feedback files; returns counts for the manifest."""
    import time

    from pyspark.sql import functions as F

    files = inbox_files(inbox)
    if not files:
        return {"inbox": str(inbox), "files": 0, "lines": 0}
    parsed = parse_events(spark, files, int(time.time())).cache()
    lines = parsed.count()
    latest, quarantine = split_superseded(parsed)
    users = ratings.select(config.COL_USER).distinct().withColumn("_ku", F.lit(True))
    items = ratings.select(config.COL_ITEM).distinct().withColumn("_ki", F.lit(True))
    marked = latest.join(users, config.COL_USER, "left").join(items, config.COL_ITEM, "left")
    known = F.col("_ku").isNotNull() & F.col("_ki").isNotNull()
    cols = [config.COL_USER, config.COL_ITEM, COL_EVENT, COL_TS]
    marked.where(known).select(*cols).coalesce(1).write.mode("overwrite").parquet(
        str(RunFolder(run_dir).feedback)
    )
    marked.where(~known).select("raw", *cols).coalesce(1).write.mode("overwrite").parquet(
        str(RunFolder(run_dir).feedback_pending)
    )
    quarantine.coalesce(1).write.mode("overwrite").parquet(
        str(RunFolder(run_dir).feedback_quarantine)
    )
    applied = spark.read.parquet(str(RunFolder(run_dir).feedback))
    by_event = {r[COL_EVENT]: r["count"] for r in applied.groupBy(COL_EVENT).count().collect()}
    reasons = {r["reason"]: r["count"] for r in quarantine.groupBy("reason").count().collect()}
    pending = spark.read.parquet(str(RunFolder(run_dir).feedback_pending)).count()
    parsed.unpersist()
    if lines and not by_event and not pending and sum(reasons.values()) == lines:
        raise PipelineError(
            f"no usable feedback events in {inbox}: all {lines} lines were rejected "
            f"({reasons}); expected JSON Lines or CSV with user_id, item_id, event "
            f"({'/'.join(EVENTS)}), ts. The lines and reasons are in "
            f"{RunFolder(run_dir).feedback_quarantine}"
        )
    return {
        "inbox": str(inbox),
        "files": len(files),
        "lines": lines,
        "applied": sum(by_event.values()),
        "applied_by_event": by_event,
        "pending_unknown_user_or_item": pending,
        "n_rejected": sum(reasons.values()),
        "n_malformed": sum(n for r, n in reasons.items() if r != REASON_DUPLICATE),
        "rejected_by_reason": reasons,
        "quarantine_path": str(RunFolder(run_dir).feedback_quarantine),
    }


def split_superseded(parsed: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(the latest usable event per user, item and kind; every rejected line with its
    reason, an earlier event of the same kind as ``duplicate``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    good = parsed.where(F.col("reason").isNull()).drop("reason")
    w = Window.partitionBy(config.COL_USER, config.COL_ITEM, COL_EVENT).orderBy(
        F.col(COL_TS).desc(), F.col("raw")
    )
    ranked = good.withColumn("_k", F.row_number().over(w))
    latest = ranked.where("_k = 1").drop("_k")
    quarantine = (
        parsed.where(F.col("reason").isNotNull())
        .select("raw", "reason")
        .unionByName(ranked.where("_k > 1").select("raw", F.lit(REASON_DUPLICATE).alias("reason")))
    )
    return latest, quarantine


def latest_event(events: DataFrame) -> DataFrame:
    """One row per (user, item): the most recent event."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(config.COL_USER, config.COL_ITEM).orderBy(F.col(COL_TS).desc())
    return events.withColumn("_k", F.row_number().over(w)).where("_k = 1").drop("_k")


def apply_to_ranking_data(
    ratings: DataFrame, events: DataFrame, scale: tuple[float, float]
) -> DataFrame:
    """Ratings (ALS types) adjusted by feedback for the ranking model (see the module doc)."""
    from pyspark.sql import functions as F

    lo, hi = scale
    mid = (lo + hi) / 2
    ev = latest_event(events).select(
        F.col(config.COL_USER).cast("int").alias(config.COL_USER),
        F.col(config.COL_ITEM).cast("int").alias(config.COL_ITEM),
        COL_EVENT,
    )
    r = F.col(config.COL_RATING)
    joined = ratings.join(ev, [config.COL_USER, config.COL_ITEM], "full_outer")
    rating = (
        F.when(F.col(COL_EVENT) == "like", F.greatest(F.coalesce(r, F.lit(hi)), F.lit(hi)))
        .when(F.col(COL_EVENT) == "watched", F.coalesce(r, F.lit(mid)))
        .otherwise(r)
    )
    return joined.where(F.coalesce(F.col(COL_EVENT), F.lit("")) != "dislike").select(
        config.COL_USER, config.COL_ITEM, rating.cast("float").alias(config.COL_RATING)
    )


def excluded_pairs(events: DataFrame) -> DataFrame:
    """(user, item) pairs that must not be recommended: watched or disliked."""
    from pyspark.sql import functions as F

    return (
        events.where(F.col(COL_EVENT).isin(*EXCLUDED_EVENTS))
        .select(config.COL_USER, config.COL_ITEM)
        .distinct()
    )


def ranking_signals(
    spark: SparkSession, run_dir: Path, ratings: DataFrame, scale: tuple[float, float]
) -> DataFrame:
    """All ratings adjusted by the run's feedback events: what the published model is fit
    on (likes and watches add positive signals, dislikes remove them)."""
    if not (RunFolder(run_dir).feedback).exists():
        return ratings
    events = spark.read.parquet(str(RunFolder(run_dir).feedback))
    return apply_to_ranking_data(ratings, events, scale)
