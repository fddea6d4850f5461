"""A real Spark job's phase metrics, read back from Spark's own event log."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import functions as F

from reco import config
from reco.instrumentation import eventlog
from reco.instrumentation.timing import timer


def test_phase_metrics_come_from_the_real_event_log(spark, run_dir: Path) -> None:
    assert spark.conf.get("spark.eventLog.enabled") == "true"
    with timer(run_dir, "train", "demo"):
        counts = (
            spark.range(0, 50_000, numPartitions=4)
            .groupBy((F.col("id") % 7).alias("k"))
            .count()
            .collect()
        )
    assert sum(r["count"] for r in counts) == 50_000
    app = spark.sparkContext.applicationId
    assert eventlog.run_apps(run_dir) == [app]
    assert spark.sparkContext.getLocalProperty(eventlog.PHASE_PROPERTY) is None  # restored
    path = eventlog.log_path(app)
    assert path is not None and path.parent == config.SPARK_EVENTS_DIR
    demo = [s for s in eventlog.read_app(app) if (s["step"], s["phase"]) == ("train", "demo")]
    assert len(demo) >= 2  # the map side and the reduce side of the shuffle
    assert sum(s["tasks"] for s in demo) >= 4
    assert sum(s["shuffle_write_bytes"] for s in demo) > 0
    assert sum(s["shuffle_read_bytes"] for s in demo) > 0
    sums = eventlog.by_phase(demo)[("train", "demo")]
    assert sums["stages"] == len(demo) and sums["tasks"] == sum(s["tasks"] for s in demo)


def test_phases_tagged_from_worker_threads(spark, run_dir: Path) -> None:
    """CV fits run in a thread pool; each thread's jobs carry that thread's phase."""
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> int:
        with timer(run_dir, "train", f"thread{i}"):
            return spark.range(0, 10_000, numPartitions=2).groupBy(F.col("id") % 3).count().count()

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(work, range(2))) == [3, 3]
    stages = eventlog.read_app(spark.sparkContext.applicationId)
    sums = eventlog.by_phase(stages)
    assert sums[("train", "thread0")]["tasks"] > 0 and sums[("train", "thread1")]["tasks"] > 0
