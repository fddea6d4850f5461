"""All names, paths and defaults of the pipeline, in one place.

Everything environment-dependent is resolved here: the embedded defaults
(PostgreSQL data directory, data lake, Airflow home) live under ``var/`` in the
project, and each can be overridden with an environment variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

# --- locations -------------------------------------------------------------------------
PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RECO_VAR_DIR", PROJECT_ROOT / "var")).resolve()
LAKE_DIR = Path(os.environ.get("RECO_LAKE_DIR", VAR_DIR / "lake")).resolve()
RUNS_DIR = LAKE_DIR / "runs"
# Spark's event logs (one file per application; the Spark History Server reads them too).
SPARK_EVENTS_DIR = LAKE_DIR / "spark-events"
# Event logs older than this are deleted when a run starts (0 = keep them all); a run's
# report reads its logs during the run, so only older runs' Spark stage pages are lost.
SPARK_EVENTS_KEEP_DAYS = float(os.environ.get("RECO_SPARK_EVENTS_KEEP_DAYS", "14"))
REPORTS_DIR = Path(os.environ.get("RECO_REPORTS_DIR", VAR_DIR / "reports")).resolve()
DATA_DOCS_DIR = REPORTS_DIR / "data_docs"  # Great Expectations Data Docs, one site per run
# Data Docs' CSS/JS/fonts from pinned npm tarballs (reco/validation/data_docs_assets.json),
# fetched once by `reco init`, and the folder of DATA_DOCS_DIR the pages load them from.
DATA_DOCS_ASSETS_DIR = VAR_DIR / "cache" / "data_docs_assets"
DATA_DOCS_STATIC = "_static"
PGDATA_DIR = Path(os.environ.get("RECO_PGDATA", VAR_DIR / "pgdata")).resolve()
AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", VAR_DIR / "airflow")).resolve()
SYNTHETIC_DIR = VAR_DIR / "datasets" / "synthetic"
# The MovieLens downloads (ml-100k/, ml-latest-small/, ...) the benchmarks and the tests
# read; the pipeline itself reads whatever dataset it is given.
MOVIELENS_DIR = Path(
    os.environ.get("RECO_MOVIELENS_DIR", PROJECT_ROOT.parent / "shared" / "datasets")
).resolve()
# Where `reco datasets fetch NAME` unpacks the MovieLens archives (ml-100k/, ml-1m/, ...);
# `reco run --dataset NAME` looks in MOVIELENS_DIR first, then here, then fetches.
DATASETS_DIR = Path(os.environ.get("RECO_DATASETS_DIR", VAR_DIR / "datasets")).resolve()
# GroupLens's folder of MovieLens archives: NAME.zip beside its checksum NAME.zip.md5. A
# mirror with the same layout may replace it (or `reco datasets fetch --mirror URL`).
MOVIELENS_URL = os.environ.get(
    "RECO_MOVIELENS_URL", "https://files.grouplens.org/datasets/movielens/"
)
# Feedback events (like / dislike / watched) are dropped here as JSON Lines or CSV files.
FEEDBACK_DIR = Path(os.environ.get("RECO_FEEDBACK_DIR", VAR_DIR / "inbox" / "feedback")).resolve()
# New ratings exports (a file, or a MovieLens folder) dropped here start a retraining run
# (the Airflow Asset `ratings_inbox`, watched by the triggerer). Move finished files in
# (write elsewhere, then `mv`): an entry counts once its size and mtime stop changing.
RATINGS_INBOX = Path(os.environ.get("RECO_RATINGS_INBOX", VAR_DIR / "inbox" / "ratings")).resolve()
# Seconds between two looks at the inbox, and how long an entry must stay unchanged.
RATINGS_INBOX_POLL_SECONDS = float(os.environ.get("RECO_RATINGS_INBOX_POLL_SECONDS", "10"))
# A/B experiment data (assignments.csv + events.csv) for the scheduled analysis.
AB_INBOX = Path(os.environ.get("RECO_AB_INBOX", VAR_DIR / "inbox" / "experiment")).resolve()
SQL_DIR = PROJECT_ROOT / "sql"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DAGS_DIR = PROJECT_ROOT / "dags"
PLUGINS_DIR = PROJECT_ROOT / "plugins"  # Airflow UI plugin: the reports under "Reports"
SPARK_JOBS_DIR = PROJECT_ROOT / "spark_jobs"

# --- column names (every transform takes these as keyword defaults) ---------------------
COL_USER = "user_id"
COL_ITEM = "item_id"
COL_RATING = "rating"
COL_TIMESTAMP = "timestamp"
COL_PREDICTION = "prediction"
COL_RANK = "rank"
COL_SCORE = "score"
COL_TITLE = "title"
COL_GENRES = "genres"

# --- warehouse ----------------------------------------------------------------------------
WAREHOUSE_CONN_ID = "warehouse"
SPARK_CONN_ID = "spark_default"
# The Airflow pool every Spark step takes a slot of: how many Spark applications the DAGs
# run at once (reco init creates it; an operator may resize it in Admin -> Pools).
SPARK_POOL = "spark"
SPARK_POOL_SLOTS = int(os.environ.get("RECO_SPARK_POOL_SLOTS", "1"))
PUBLISH_LOCK_KEY = 727_001  # pg_advisory_xact_lock key serialising publishes
# The publish swap under live readers (reco/publishing/swap.py): one attempt waits at most
# this long for all its locks (kept below the server's deadlock_timeout, so a lock cycle
# with a reader always ends with the swap giving up, never the reader), retries with
# backoff until the budget is spent, then fails naming the session in the way. With
# TERMINATE_BLOCKERS set, it ends those sessions instead (pg_terminate_backend) and tries
# once more; off by default: readers are never cancelled unless an operator says so.
PUBLISH_LOCK_TIMEOUT_MS = int(os.environ.get("RECO_PUBLISH_LOCK_TIMEOUT_MS", "500"))
PUBLISH_SWAP_BUDGET_S = float(os.environ.get("RECO_PUBLISH_SWAP_BUDGET_S", "300"))
PUBLISH_TERMINATE_BLOCKERS = os.environ.get("RECO_PUBLISH_TERMINATE_BLOCKERS", "").lower() in (
    "1",
    "true",
    "yes",
)

# --- defaults -------------------------------------------------------------------------------
SEED = 42
DEFAULT_TOP_N = 10
DEFAULT_SIMILAR_K = 10  # neighbours per item in reco.similar_items
POPULAR_N = 100  # items per list in reco.popular_items (overall and per genre)
POPULAR_ALL = ""  # reco.popular_items.genre of the overall list
DEFAULT_HOLDOUT_FRACTION = 0.2
# Folds of the CV that picks the published model, for runs that do not say (scheduled and
# Asset-triggered runs, the Trigger form's default); 0 = fixed parameters, a cheaper run.
DEFAULT_CV_FOLDS = int(os.environ.get("RECO_CV_FOLDS", "3"))
# Ranking models (publish the top-N), chosen by k-fold CV on mean nDCG@k. Which families
# compete, and each one's grid; see bench/grid_search.py for how these were chosen.
MODEL_FAMILIES = ("als", "ease")
DEFAULT_FAMILIES: tuple[str, ...] = ("als", "ease")
# regParam is the value of the fit on all of a run's ratings (fits on a part rescale it).
DEFAULT_RANKING_GRID: dict[str, list[float | int]] = {  # implicit ALS
    "rank": [32],
    "regParam": [0.2],
    "alpha": [0.5],
    "maxIter": [8],
}
DEFAULT_EASE_GRID: dict[str, list[float | int]] = {"lambda": [300.0]}
# Rating model (RMSE; its predictions are reported, not published): one fit at these
# parameters unless its own CV is asked for (rating_cv), which searches DEFAULT_GRID.
# regParam is the plain ALS's, residualRegParam the bias-aware ALS's (see models.py).
DEFAULT_RATING_PARAMS: dict[str, float | int] = {
    "rank": 50,
    "regParam": 0.08,
    "residualRegParam": 0.15,
    "maxIter": 6,
}
DEFAULT_GRID: dict[str, list[float | int]] = {
    "rank": [30, 50],
    "regParam": [0.08, 0.1],
    "residualRegParam": [0.1, 0.15],
    "maxIter": [8],
}
DEFAULT_GATE_TOLERANCE = 0.02
# Data-quality gate (validate step).
DEFAULT_MIN_ROWS = 100  # fewest ratings a batch may have
DEFAULT_MAX_QUARANTINE_SHARE = 0.01  # share of malformed lines that fails the batch
DEFAULT_MAX_ROW_DROP = 0.5  # largest shrink vs the previous accepted batch (0.5 = half)
# A/B test business-impact assumptions (DAG params of ab_test_analysis override them).
AB_ACTIVE_CUSTOMERS = 1_000_000
AB_ANNUAL_REVENUE_PER_CUSTOMER = 120.0
AB_BASELINE_RETENTION = 0.80
AB_RETENTION_PER_CTR_LIFT = 0.10  # relative retention change per relative CTR lift
DEFAULT_RATING_SCALE: tuple[float, float] = (1.0, 5.0)
INPUT_FORMATS = ("auto", "ml-100k", "ml-1m", "ml-latest", "csv", "parquet")


@dataclass(frozen=True)
class TrainParams:
    """What the train job needs to know; the DAG builds it from trigger-time params."""

    folds: int = DEFAULT_CV_FOLDS
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
    seed: int = SEED
    # Rating-model grid: searched by CV when rating_cv, else one point (None = default).
    grid: dict[str, list[float | int]] | None = None
    rating_cv: bool = False
    ranking_grid: dict[str, list[float | int]] = field(
        default_factory=lambda: dict(DEFAULT_RANKING_GRID)
    )
    ease_grid: dict[str, list[float | int]] = field(default_factory=lambda: dict(DEFAULT_EASE_GRID))
    families: tuple[str, ...] = DEFAULT_FAMILIES
    top_k: int = DEFAULT_TOP_N
    gate_tolerance: float = DEFAULT_GATE_TOLERANCE

    def rating_grid(self) -> dict[str, list[float | int]]:
        if self.grid is not None:
            return self.grid
        if self.rating_cv:
            return dict(DEFAULT_GRID)
        return {k: [v] for k, v in DEFAULT_RATING_PARAMS.items()}


def spark_conf_defaults() -> dict[str, str]:
    """Spark settings used by every job, local or on a cluster."""
    conf = {
        # Sized to each job's data by spark.size_shuffle unless RECO_SHUFFLE_PARTITIONS
        # is set; this is the starting value.
        "spark.sql.shuffle.partitions": os.environ.get("RECO_SHUFFLE_PARTITIONS", "8"),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": os.environ.get("RECO_DRIVER_MEMORY", "4g"),
        # Stage metrics for the performance report, in Spark's standard event log.
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": str(SPARK_EVENTS_DIR),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        # The driver's web UI (port 4040 up): what an operator watches a long job in.
        "spark.ui.enabled": os.environ.get("RECO_SPARK_UI", "true"),
    }
    if os.environ.get("RECO_EXECUTOR_JAVA_OPTIONS"):
        conf["spark.executor.extraJavaOptions"] = os.environ["RECO_EXECUTOR_JAVA_OPTIONS"]
    return conf


# Every DAG's task defaults: a transient failure (the warehouse unreachable) is retried
# twice with exponential backoff from 5 s; bad input fails at once (pipeline.task_errors).
# --- scheduling -----------------------------------------------------------------------------
# When `recommendations` retrains on its own, besides a new export in RATINGS_INBOX: a cron
# expression or preset ("@daily", "0 3 * * *"); "none" = only when new data lands.
RETRAIN_SCHEDULE = os.environ.get("RECO_RETRAIN_SCHEDULE", "@daily")
# --- retention (reco/maintenance/retention.py, the `maintenance` DAG) ----------------------
# A run's files (run folder, Data Docs, report) are deleted once it is none of: the newest
# RETAIN_RUNS runs, younger than RETAIN_DAYS days, the run readers see now, the last
# RETAIN_PUBLISHED published runs (what `reco rollback` can restore). Measured: one ML-100K
# run leaves about 23 MiB (18 of them Spark event logs); 30 daily runs stay at 227 MiB with
# these defaults against 706 MiB without (bench/retention.py).
RETAIN_RUNS = int(os.environ.get("RECO_RETAIN_RUNS", "10"))
RETAIN_DAYS = float(os.environ.get("RECO_RETAIN_DAYS", "7"))
RETAIN_PUBLISHED = int(os.environ.get("RECO_RETAIN_PUBLISHED", "5"))
MAINTENANCE_SCHEDULE = os.environ.get("RECO_MAINTENANCE_SCHEDULE", "@daily")
SCHEDULE_TIMEZONE = os.environ.get("RECO_SCHEDULE_TIMEZONE", "UTC")

# --- alerts (reco/orchestration/alerts.py) ------------------------------------------------
# The connections of the alert channels: e-mail (type smtp, extras `to`, `from_email`) and a
# webhook (type http: the URL a JSON alert is POSTed to). Without them, alerts go to the log.
ALERT_EMAIL_CONN_ID = "reco_alerts_email"
ALERT_WEBHOOK_CONN_ID = "reco_alerts_webhook"
# A run that finds the published recommendations older than this alerts (0 = never).
ALERT_STALE_HOURS = float(os.environ.get("RECO_ALERT_STALE_HOURS", "48"))
# A `recommendations` run not finished this long after it was queued alerts (Airflow's
# Deadline Alerts); dagrun_timeout fails it after RUN_TIMEOUT.
RUN_DEADLINE = timedelta(minutes=float(os.environ.get("RECO_RUN_DEADLINE_MINUTES", "240")))
RUN_TIMEOUT = timedelta(minutes=float(os.environ.get("RECO_RUN_TIMEOUT_MINUTES", "720")))

# --- timeouts per task --------------------------------------------------------------------
# Measured (2 cores): ML-100K steps take 1-50 s; the 20M-rating shape took ingest 81 s,
# validate 30 s, train 363 s, recommend 93 s. These give each step about 10x its 20M time,
# for a cluster that is busier or data that grew; RECO_TASK_TIMEOUTS overrides any of them
# in minutes, e.g. '{"train": 480}'. A step past its timeout fails (and is retried).
TASK_TIMEOUT_MINUTES = {
    "prepare": 15,
    "ingest": 60,
    "validate": 60,
    "train": 240,
    "recommend": 120,
    "publish": 60,
    "record_quality": 15,
    "report": 30,
    "aggregate": 60,
    "analyse": 30,
    "rebuild": 60,  # pipeline_report: waits for the publishing run to end (up to 30 min)
    "prune": 30,  # maintenance: deletes files (seconds here)
    "rollback": 60,  # a publish of stored lists (ML-100K: about 1 s)
}


def task_timeout(task_id: str) -> timedelta:
    """``execution_timeout`` of a task: TASK_TIMEOUT_MINUTES, overridden per task by the
    JSON object in RECO_TASK_TIMEOUTS (minutes)."""
    import json

    raw = os.environ.get("RECO_TASK_TIMEOUTS", "").strip()
    try:
        overrides = json.loads(raw) if raw else {}
        minutes = float(overrides.get(task_id, TASK_TIMEOUT_MINUTES.get(task_id, 60)))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(
            f"RECO_TASK_TIMEOUTS must be a JSON object of minutes per task, e.g. "
            f'{{"train": 480}}; got {raw!r}'
        ) from None
    return timedelta(minutes=minutes)


DAG_DEFAULT_ARGS = {
    "owner": "reco",
    "retries": 2,
    "retry_delay": timedelta(seconds=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=2),
}


def airflow_env() -> dict[str, str]:
    """Environment under which Airflow runs this project's DAGs (SQLite, no examples)."""
    return {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": os.environ.get("AIRFLOW__CORE__UNIT_TEST_MODE", "False"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get(
            "AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"
        ),
        "AIRFLOW__API__EXPOSE_CONFIG": "False",
        # The schedule and the inbox watcher work from the first start; pause in the UI.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": os.environ.get(
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False"
        ),
        "GX_ANALYTICS_ENABLED": "False",
    }
