"""The SparkSession every job uses, locally or under ``spark-submit`` on a cluster."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from spark_jobs import config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def launched_by_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway already open."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(app_name: str, master: str | None = None) -> SparkSession:
    """Build (or reuse) the session.

    Under ``spark-submit`` the master and settings come from the submit command (the
    Airflow ``spark_default`` connection); run by hand, the job uses ``SPARK_MASTER`` or
    ``local[*]``. The checkpoint directory is always set: ALS overflows its stack after
    ~20 iterations without one.
    """
    from pyspark.sql import SparkSession

    # Python workers must use this interpreter (it has numpy/pandas and this package).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    config.SPARK_EVENTS_DIR.mkdir(parents=True, exist_ok=True)  # Spark will not create it
    builder = SparkSession.builder.appName(app_name)
    if not launched_by_spark_submit():
        builder = builder.master(master or os.environ.get("SPARK_MASTER", "local[*]"))
        for key, value in config.spark_conf_defaults().items():
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if launched_by_spark_submit():
        for key, value in config.spark_conf_defaults().items():
            if key.startswith("spark.sql.") and spark.conf.get(key, None) is None:
                spark.conf.set(key, value)
    spark.sparkContext.setLogLevel(os.environ.get("RECO_SPARK_LOG_LEVEL", "WARN"))
    checkpoint_dir = config.LAKE_DIR / "checkpoints"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    return spark
