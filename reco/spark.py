"""The SparkSession every job uses, locally or under ``spark-submit`` on a cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reco import config, interrupts

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def launched_by_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway already open."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(app_name: str, master: str | None = None) -> SparkSession:
    """Build (or reuse) the session.

    Under ``spark-submit`` the master and settings come from the submit command; in an
    Airflow task on ``local[*]`` (``spark_submit.run_spark_step``) and run by hand, the job uses
    ``SPARK_MASTER`` (the task sets it from the ``spark_default`` connection) or
    ``local[*]``. A session already running in the process is reused: under ``make run``
    the four Spark steps share one. The checkpoint directory is always set: ALS overflows
    its stack after ~20 iterations without one.
    """
    from pyspark.sql import SparkSession

    forget_dead_driver()
    # Python workers must use this interpreter (it has numpy/pandas and this package).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    config.SPARK_EVENTS_DIR.mkdir(parents=True, exist_ok=True)  # Spark will not create it
    builder = SparkSession.builder.appName(app_name)
    if not launched_by_spark_submit():
        builder = builder.master(master or os.environ.get("SPARK_MASTER", "local[*]"))
        for key, value in config.spark_conf_defaults().items():
            builder = builder.config(key, value)
        builder = builder.config("spark.driver.extraJavaOptions", driver_java_options())
    spark = builder.getOrCreate()
    # A new SparkContext installs PySpark's SIGINT handler: Ctrl-C is recorded before it.
    interrupts.remember()
    if launched_by_spark_submit():
        for key, value in config.spark_conf_defaults().items():
            if key.startswith("spark.sql.") and spark.conf.get(key, None) is None:
                spark.conf.set(key, value)
    spark.sparkContext.setLogLevel(os.environ.get("RECO_SPARK_LOG_LEVEL", "WARN"))
    checkpoint_dir = config.LAKE_DIR / "checkpoints"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    return spark


@dataclass(frozen=True)
class DeadDriver:
    """A driver JVM found dead under a process that still held its session."""

    pid: int
    exit_code: int


# Every dead driver this process replaced, oldest first (a test session reports them).
DEAD_DRIVERS: list[DeadDriver] = []


def driver_process() -> subprocess.Popen | None:
    """The driver JVM this process started through PySpark, or None (none started yet,
    or the driver belongs to ``spark-submit``)."""
    context = sys.modules.get("pyspark.core.context")  # not imported: no driver yet
    gateway = getattr(getattr(context, "SparkContext", None), "_gateway", None)
    return getattr(gateway, "proc", None)


def exited_driver() -> subprocess.Popen | None:
    """The driver JVM this process started, if it has exited (killed, crashed, stopped)."""
    proc = driver_process()
    return proc if proc is not None and proc.poll() is not None else None


SPARK_PROCESS = ("org.apache.spark", "spark-submit", "spark-class", "pyspark.daemon")


def stop_local_drivers() -> list[int]:
    """Kill every Spark process this process started (the driver JVM, one still starting
    up, its launcher and its Python workers) and forget the session; the ids killed.

    A step stopped half-way (its ``execution_timeout``) may have interrupted PySpark while it
    launched the driver: that JVM never gets its gateway, and lives on after this process
    without one (PySpark's handle on it is lost), so the recorded driver is not enough."""
    import psutil

    ours = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(mark in " ".join(child.cmdline()) for mark in SPARK_PROCESS):
                ours.append(child)
    for child in ours:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(ours, timeout=30)
    if exited_driver() is not None:
        drop_driver_handles()  # ended on purpose: no warning, not one of DEAD_DRIVERS
    return [c.pid for c in ours]


def forget_dead_driver() -> DeadDriver | None:
    """Drop PySpark's handles on a driver JVM that has exited, so the next session starts
    a new one; the dead driver, or None when there was none.

    A long-lived process (``make run``'s ``dag.test``, a test session) keeps one driver for
    every step. Should that JVM die (the OOM killer, a fatal JVM error, its stdin pipe
    closed), PySpark still holds its gateway, and every later step would fail with py4j's
    bare ``Connection refused``. Under ``spark-submit`` the driver is not ours to replace.
    """
    if launched_by_spark_submit():
        return None
    proc = exited_driver()
    if proc is None:
        return None
    dead = DeadDriver(pid=proc.pid, exit_code=proc.returncode)
    drop_driver_handles()
    DEAD_DRIVERS.append(dead)
    log.warning(
        "the Spark driver JVM (pid %d) had exited with code %d; starting a new one",
        dead.pid,
        dead.exit_code,
    )
    return dead


def drop_driver_handles() -> None:
    """Forget the session and gateway of a driver JVM that has exited: the next
    :func:`get_spark` starts a new one."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with contextlib.suppress(Exception):
        SparkContext._gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    SparkContext._active_spark_context = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None


ROWS_PER_SHUFFLE_PARTITION = 250_000
MAX_SHUFFLE_PARTITIONS = 200


def parallelism(spark: SparkSession) -> int:
    """Cores the job can use at once (local[*]: the machine's; a cluster: its executors')."""
    return max(1, int(spark.sparkContext.defaultParallelism))


def size_shuffle(spark: SparkSession, n_rows: int) -> int:
    """Size ``spark.sql.shuffle.partitions`` to the data: one partition per core, more
    when each would hold over ``ROWS_PER_SHUFFLE_PARTITION`` rows. An explicit
    ``RECO_SHUFFLE_PARTITIONS`` wins. Returns the value set."""
    if os.environ.get("RECO_SHUFFLE_PARTITIONS"):
        n = int(os.environ["RECO_SHUFFLE_PARTITIONS"])
    else:
        by_size = -(-max(n_rows, 1) // ROWS_PER_SHUFFLE_PARTITION)
        n = min(MAX_SHUFFLE_PARTITIONS, max(parallelism(spark), by_size))
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    return n


# --- faster driver start: a class-data-sharing archive of Spark's classes ---------------
# A Spark driver JVM loads ~15,000 classes from ~300 jars before its first job: measured
# here, 9 s to a session and 5 s more to a first trivial job. A dynamic CDS archive
# (JDK 13+) maps those classes pre-parsed from one file: 5 s and 2 s. The archive belongs
# to this venv's jars and this JVM; a JVM that cannot use it ignores it and starts as
# usual. `reco init` (make setup) builds it; RECO_SPARK_CDS=0 turns it off.
CDS_ARCHIVE = Path(sys.prefix) / "share" / "reco" / "spark-driver.jsa"


def cds_enabled() -> bool:
    return os.environ.get("RECO_SPARK_CDS", "1") != "0"


def driver_java_options() -> str:
    """``spark.driver.extraJavaOptions`` of every job: the project's log4j settings and,
    when built, the class-data-sharing archive."""
    log4j = config.SPARK_JOBS_DIR / "log4j2.properties"
    opts = [f"-Dlog4j.configurationFile=file:{log4j}"]
    if os.environ.get("RECO_SPARK_CDS_DUMP"):  # build_cds_archive's warm-up run
        opts += [f"-XX:ArchiveClassesAtExit={os.environ['RECO_SPARK_CDS_DUMP']}", "-Xlog:cds=off"]
    elif cds_enabled() and CDS_ARCHIVE.exists():
        opts += [f"-XX:SharedArchiveFile={CDS_ARCHIVE}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    opts += os.environ.get("RECO_DRIVER_JAVA_OPTIONS", "").split()
    return " ".join(opts)


WARM_UP = """
import sys
from reco.modeling import models
from reco.spark import get_spark
from pyspark.sql import functions as F
spark = get_spark("reco-cds-warm-up", master="local[2]")
df = spark.createDataFrame(
    [(u, i, float((u * i) % 5 + 1)) for u in range(1, 40) for i in range(1, 30) if (u + i) % 3],
    "user_id int, item_id int, rating float",
)
out = sys.argv[1]
df.write.mode("overwrite").parquet(out)
df = spark.read.parquet(out).cache()
df.groupBy("user_id").agg(F.collect_list("item_id")).count()
model = models.fit_ranking_model(df, {"rank": 4, "maxIter": 2}, 1, 2)
model.userFactors.toPandas()
df.mapInPandas(lambda it: it, df.schema).count()
spark.stop()
"""


def build_cds_archive(archive: Path = CDS_ARCHIVE) -> Path | None:
    """Run a small representative Spark job (SQL, Parquet, ALS, pandas UDFs) with
    ``-XX:ArchiveClassesAtExit`` to write the archive; None (and no archive) on failure."""
    import tempfile

    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(".tmp.jsa")
    tmp.unlink(missing_ok=True)
    env = dict(os.environ)
    env["RECO_SPARK_CDS_DUMP"] = str(tmp)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="reco-cds-") as work:
        proc = subprocess.run(
            [sys.executable, "-c", WARM_UP, str(Path(work) / "data.parquet")],
            env=env,
            cwd=str(config.PROJECT_ROOT),
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(archive)
    return archive
