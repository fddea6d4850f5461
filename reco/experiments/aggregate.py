"""A/B test aggregation (Spark): users, impressions and clicks per arm.

Input folder (written by the platform, or by ``reco simulate-ab``):

- ``assignments.csv``: ``user_id,arm``: which arm each user was in;
- ``events.csv``: ``user_id,event,ts`` with ``event`` in ``impression`` / ``click``.

Joins the events to the arms and counts users, impressions and clicks per arm into a JSON
file; rows it cannot use are counted by reason (``invalid_assignment``,
``conflicting_assignment``, ``conflicting_assignment_event``, ``unassigned_user``,
``invalid_event``, ``invalid_user_id``) and reported, never silently dropped. The
statistics on these counts are ``reco.experiments.stats``.

    spark-submit spark_jobs/ab_aggregate.py --input DIR --out counts.json
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco.errors import PipelineError
from reco.experiments.stats import ArmCounts

if TYPE_CHECKING:
    from reco.steps import StepArgs

STAGE = "ab_aggregate"
EVENTS = ("impression", "click")


def aggregate(spark: Any, input_dir: Path) -> dict[str, Any]:
    """Per-arm users/impressions/clicks, plus counts of the rows that could not be used."""
    assign, events = read_inputs(spark, input_dir)
    clean, conflicting, rejected = assignments(assign)
    tagged = tag_events(events, clean, conflicting).cache()
    try:
        for row in tagged.where("reason IS NOT NULL").groupBy("reason").count().collect():
            rejected[row["reason"]] = row["count"]
        arms = arm_counts(tagged.where("reason IS NULL"), clean)
    finally:
        tagged.unpersist()
    bad_clicks = [a["arm"] for a in arms if a["clicks"] > a["impressions"]]
    if bad_clicks:
        raise PipelineError(
            f"arms {bad_clicks} have more clicks than impressions: the events file is "
            "missing impressions; check the export"
        )
    return {
        "input": str(input_dir),
        "arms": arms,
        "rejected": {k: int(v) for k, v in rejected.items() if v},
    }


def read_inputs(spark: Any, input_dir: Path) -> tuple[Any, Any]:
    """``assignments.csv`` as (user_id, arm) and ``events.csv`` as (user_id, event), typed
    and trimmed; an id that is no integer becomes NULL."""
    from pyspark.sql import functions as F

    assign_path, events_path = input_dir / "assignments.csv", input_dir / "events.csv"
    for p in (assign_path, events_path):
        if not p.exists():
            raise PipelineError(
                f"A/B input {p} is missing: the input folder needs assignments.csv "
                "(user_id,arm) and events.csv (user_id,event,ts)"
            )
    read = spark.read.option("header", True).option("inferSchema", False).csv
    assign = read(str(assign_path)).select(
        F.trim("user_id").try_cast("bigint").alias("user_id"), F.trim("arm").alias("arm")
    )
    events = read(str(events_path)).select(
        F.trim("user_id").try_cast("bigint").alias("user_id"),
        F.lower(F.trim("event")).alias("event"),
    )
    return assign, events


def assignments(assign: Any) -> tuple[Any, Any, dict[str, int]]:
    """Users in exactly one arm, users in several, and the rejected assignment counts."""
    from pyspark.sql import functions as F

    arms_per_user = (
        assign.where("user_id IS NOT NULL AND arm IS NOT NULL")
        .groupBy("user_id")
        .agg(F.countDistinct("arm").alias("n_arms"), F.first("arm").alias("arm"))
    )
    clean = arms_per_user.where("n_arms = 1").select("user_id", "arm")
    conflicting = arms_per_user.where("n_arms > 1").select("user_id")
    rejected = {
        "invalid_assignment": assign.where("user_id IS NULL OR arm IS NULL").count(),
        "conflicting_assignment": conflicting.count(),
    }
    return clean, conflicting, rejected


def tag_events(events: Any, clean: Any, conflicting: Any) -> Any:
    """Each event with its user's arm and ``reason``: why it cannot be used, or NULL."""
    from pyspark.sql import functions as F

    tagged = events.join(clean, "user_id", "left").join(
        conflicting.withColumn("_conflict", F.lit(True)), "user_id", "left"
    )
    reason = (
        F.when(F.col("user_id").isNull(), "invalid_user_id")
        .when(~F.col("event").isin(*EVENTS) | F.col("event").isNull(), "invalid_event")
        .when(F.col("_conflict"), "conflicting_assignment_event")
        .when(F.col("arm").isNull(), "unassigned_user")
    )
    return tagged.withColumn("reason", reason)


def arm_counts(good: Any, clean: Any) -> list[dict[str, Any]]:
    """Users, impressions and clicks per arm, arms in name order."""
    from pyspark.sql import functions as F

    per_arm = {
        r["arm"]: r
        for r in good.groupBy("arm")
        .agg(
            F.sum(F.when(F.col("event") == "impression", 1).otherwise(0)).alias("impressions"),
            F.sum(F.when(F.col("event") == "click", 1).otherwise(0)).alias("clicks"),
        )
        .collect()
    }
    users = {r["arm"]: r["count"] for r in clean.groupBy("arm").count().collect()}
    return [
        asdict(
            ArmCounts(
                arm=arm,
                users=int(users.get(arm, 0)),
                impressions=int(per_arm[arm]["impressions"]) if arm in per_arm else 0,
                clicks=int(per_arm[arm]["clicks"]) if arm in per_arm else 0,
            )
        )
        for arm in sorted(users)
    ]


def step(args: StepArgs) -> dict[str, Any]:
    from reco.spark import get_spark

    counts = aggregate(get_spark("reco-ab-aggregate"), args.input)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(counts, indent=2))
    return {"arms": len(counts["arms"]), "rejected": counts["rejected"]}
