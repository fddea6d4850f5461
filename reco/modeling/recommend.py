"""Recommend: top-N items per user from the ranking model, rated items excluded.

Scores every (user, item) pair with the model the train step chose (``ranking.py``): the
implicit-ALS affinity ``user . item`` factors, or EASE's ``history . B``, in numpy blocks
on the executors (the item side broadcast once; ``scoring.top_n``), masks the items each
user has already rated, watched or disliked (feedback events), and keeps the best N,
ranked 1..N. Writes
``recommendations.parquet`` (user_id, item_id, rank, score, model_version, generated_at),
then runs the output suite ``expectations/recommendations.json`` on it (N per user, ranks
1..N, no rated item, finite scores, every known user served): a failure fails the step,
so nothing reaches publish. Results: ``validation_recommendations.json``. Also writes
``similar_items.parquet``: each item's K nearest items by cosine similarity, of the ALS
model's item factors or, for EASE, of the items' co-occurrence ("because you watched X").

    spark-submit spark_jobs/recommend.py --run-dir var/lake/runs/R [--top-n 10]
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config
from reco.data import feedback
from reco.data.transforms import recommendation_summary
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.modeling import rankers, ranking, scoring
from reco.runs import RunFolder
from reco.runtime import read_json, run_identity, write_json
from reco.validation import quality

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from reco.steps import StepArgs

STAGE = "recommend"


def run(
    spark: SparkSession, run_dir: Path, top_n: int, similar_k: int = config.DEFAULT_SIMILAR_K
) -> dict[str, Any]:
    from reco.data.transforms import to_als_types
    from reco.spark import size_shuffle

    if top_n < 1:
        raise PipelineError(f"top-N must be at least 1, got {top_n}")
    identity = run_identity(run_dir)  # (model_version, generated_at), once for every list
    model_version = identity[0]
    with timer(run_dir, STAGE, "load", source=RunFolder(run_dir).model) as t:
        ranker = ranking.load(RunFolder(run_dir).model)
        manifest = read_json(RunFolder(run_dir).manifest)
        size_shuffle(spark, int(manifest.get("n_ratings") or 0))
        ratings = to_als_types(spark.read.parquet(str(RunFolder(run_dir).ratings)))
        signals = feedback.ranking_signals(
            spark, run_dir, ratings, tuple(manifest["source"]["rating_scale"])
        )
        side = ranker.item_side()
        t.update(items=len(side.item_ids), family=ranker.family)

    with timer(run_dir, STAGE, "top_n", n=top_n) as t:
        seen = seen_pairs(spark, run_dir)
        recs = ranker.recommend(spark, signals, seen, top_n).cache()
        t["rows"] = recs.count()
    with timer(run_dir, STAGE, "because") as t:
        reasons = because_frame(spark, ranker, recs, signals).cache()
        t["rows"] = reasons.count()
    stats = write_recommendations(spark, run_dir, recs.join(reasons, REC_KEY, "left"), identity)
    reasons.unpersist()
    recs.unpersist()
    validate_output(spark, run_dir, side.item_ids, top_n)
    similar_rows = write_lists(spark, run_dir, (ranker, signals), similar_k, identity)
    return {
        "similar_items": similar_rows,
        "rows": stats["rows"],
        "users": stats["users"],
        "top_n": top_n,
        "model_version": model_version,
    }


def stamped(frame: DataFrame, identity: tuple[str, datetime]) -> DataFrame:
    """``frame`` with the run's ``model_version`` and ``generated_at`` columns."""
    from pyspark.sql import functions as F

    model_version, generated_at = identity
    return frame.select(
        "*",
        F.lit(model_version).alias("model_version"),
        F.lit(generated_at).cast("timestamp").alias("generated_at"),
    )


def write_recommendations(
    spark: SparkSession, run_dir: Path, recs: DataFrame, identity: tuple[str, datetime]
) -> Any:
    """``recommendations.parquet``; its rows, users and rows with a reason."""
    from pyspark.sql import functions as F

    with timer(run_dir, STAGE, "write") as t:
        out = RunFolder(run_dir).recommendations
        stamped(recs.select(*REC_OUTPUT), identity).coalesce(2).write.mode("overwrite").parquet(
            str(out)
        )
        stats = (
            spark.read.parquet(str(out))
            .agg(
                F.count("*").alias("rows"),
                F.countDistinct(config.COL_USER).alias("users"),
                F.count("because_item_id").alias("with_reason"),
            )
            .first()
        )
        t.update(rows=stats["rows"], with_reason=stats["with_reason"])
    return stats


def write_lists(
    spark: SparkSession,
    run_dir: Path,
    model: tuple[rankers.Ranker, DataFrame],
    k: int,
    identity: tuple[str, datetime],
) -> int:
    """``popular_items.parquet`` (from the ranking signals) and ``similar_items.parquet``
    (from the ranker); the similar items' rows."""
    ranker, signals = model
    with timer(run_dir, STAGE, "popular_items", n=config.POPULAR_N) as t:
        out = RunFolder(run_dir).popular_items
        stamped(popular_frame(spark, run_dir, signals), identity).coalesce(1).write.mode(
            "overwrite"
        ).parquet(str(out))
        t["rows"] = spark.read.parquet(str(out)).count()
    with timer(run_dir, STAGE, "similar_items", k=k) as t:
        out = RunFolder(run_dir).similar_items
        stamped(similar_frame(spark, ranker, k), identity).coalesce(2).write.mode(
            "overwrite"
        ).parquet(str(out))
        t["rows"] = spark.read.parquet(str(out)).count()
    return t["rows"]


REC_KEY = [config.COL_USER, config.COL_ITEM]
REC_OUTPUT = (
    config.COL_USER,
    config.COL_ITEM,
    config.COL_RANK,
    config.COL_SCORE,
    "because_item_id",
    "because_score",
)


def liked_items(signals: DataFrame) -> DataFrame:
    """Per user, the items they rated at or above their own mean rating (with feedback
    applied): what "because you liked X" may name. Spark: ``user_id, liked``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    mean = F.avg(config.COL_RATING).over(Window.partitionBy(config.COL_USER))
    return (
        signals.withColumn("_mean", mean)
        .where(F.col(config.COL_RATING) >= F.col("_mean"))
        .groupBy(config.COL_USER)
        .agg(F.collect_list(F.col(config.COL_ITEM).cast("long")).alias("liked"))
    )


def because_frame(
    spark: SparkSession, ranker: rankers.Ranker, recs: DataFrame, signals: DataFrame
) -> DataFrame:
    """Each recommendation's reason: the user's liked item closest to it by the model's
    item-item cosine (the same similarity as ``reco.similar_items``). Costs one grouping of
    the ratings and, per user, a (liked x N) block of cosines."""
    from pyspark.sql import functions as F

    item_ids, vectors = ranker.item_vectors_for_similarity()
    cosine = scoring.ItemCosine.of(
        item_ids, vectors, "vectors" if ranker.family == "als" else "gram"
    )
    lists = (
        recs.groupBy(config.COL_USER)
        .agg(F.collect_list(F.col(config.COL_ITEM).cast("long")).alias("items"))
        .join(liked_items(signals), config.COL_USER, "left")
    )
    bc = spark.sparkContext.broadcast(cosine)

    def body(batches: Any) -> Any:
        return scoring.because_batches(batches, bc.value)

    return lists.mapInPandas(body, scoring.BECAUSE_SCHEMA)


def popular_frame(
    spark: SparkSession, run_dir: Path, signals: DataFrame, n: int = config.POPULAR_N
) -> DataFrame:
    """The fallback lists for users without personalised ones: the ``n`` most-rated items
    of the batch (feedback applied, dislikes removed) overall (genre ``POPULAR_ALL``) and
    per genre when the dataset names genres; ties by item id. Spark: ``genre, rank,
    item_id, score`` (score = the item's ratings in the batch)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = signals.groupBy(config.COL_ITEM).agg(F.count("*").cast("double").alias("score"))
    lists = counts.withColumn("genre", F.lit(config.POPULAR_ALL))
    items_path = RunFolder(run_dir).items
    if items_path.exists():
        genres = (
            spark.read.parquet(str(items_path))
            .select(
                config.COL_ITEM,
                F.explode(F.split(F.coalesce(F.col(config.COL_GENRES), F.lit("")), r"\|")).alias(
                    "genre"
                ),
            )
            .where((F.col("genre") != "") & (F.col("genre") != "(no genres listed)"))
            .distinct()
        )
        lists = lists.unionByName(counts.join(genres, config.COL_ITEM))
    order = Window.partitionBy("genre").orderBy(F.desc("score"), F.asc(config.COL_ITEM))
    return (
        lists.withColumn(config.COL_RANK, F.row_number().over(order))
        .where(F.col(config.COL_RANK) <= n)
        .select(
            "genre",
            config.COL_RANK,
            F.col(config.COL_ITEM).cast("long").alias(config.COL_ITEM),
            "score",
        )
    )


def similar_frame(spark: SparkSession, ranker: rankers.Ranker, k: int) -> DataFrame:
    """Each item's ``k`` nearest items for the published model (Spark frame)."""
    import pandas as pd

    item_ids, vectors = ranker.item_vectors_for_similarity()
    if ranker.family == "als":
        return scoring.similar_items(spark, item_ids, vectors, k)
    pdf = scoring.cosine_neighbours(item_ids, vectors, k)
    return spark.createDataFrame(
        pd.DataFrame(pdf), schema="item_id long, similar_item_id long, rank int, score double"
    )


def seen_pairs(spark: SparkSession, run_dir: Path) -> DataFrame:
    """(user, item) pairs never to recommend: rated, watched or disliked."""
    ratings = spark.read.parquet(str(RunFolder(run_dir).ratings)).select(
        config.COL_USER, config.COL_ITEM
    )
    if not (RunFolder(run_dir).feedback).exists():
        return ratings
    events = spark.read.parquet(str(RunFolder(run_dir).feedback))
    return ratings.unionByName(feedback.excluded_pairs(events)).distinct()


def validate_output(
    spark: SparkSession, run_dir: Path, item_ids: Any, top_n: int
) -> dict[str, Any]:
    """Run the recommendations suite on the written output; raise if any check fails."""
    import pandas as pd

    with timer(run_dir, STAGE, "output_suite") as t:
        recs = spark.read.parquet(str(RunFolder(run_dir).recommendations))
        ratings = seen_pairs(spark, run_dir)
        items = spark.createDataFrame(pd.DataFrame({config.COL_ITEM: item_ids}))
        summary_df = recommendation_summary(recs, ratings, items, top_n).cache()
        n_users = ratings.select(config.COL_USER).distinct().count()
        result = quality.run_suite(
            run_dir, "recommendations", summary_df, {"n_users": n_users}, n_users
        )
        summary_df.unpersist()
        t["expectations"] = result["evaluated"]
        t["failed"] = len(result["failed"])
    path = RunFolder(run_dir).output_validation
    write_json(
        path,
        {
            "success": result["success"],
            "failed": [f"[recommendations] {f}" for f in result["failed"]],
            "suites": [result],
            "data_docs": result["data_docs"],
        },
    )
    if not result["success"]:
        raise PipelineError(
            quality.gate_message(
                "recommend (output suite)",
                result["failed"],
                path,
                "Nothing was published: the published recommendations are unchanged",
            )
        )
    return result


def step(args: StepArgs) -> dict[str, Any]:
    from reco.spark import get_spark

    quality.start_import()  # overlaps the Spark session start

    return run(get_spark("reco-recommend"), args.run_dir, args.top_n, args.similar_k)
