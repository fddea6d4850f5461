"""Where a run's files live: the folder-safe key of an Airflow run id and its run folder.

A leaf (config only), so the steps, the report and the DAG helpers can all find a run's
folder without importing one another.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from reco import config

# A saved model folder's description (family, parameters) beside its factors.
MODEL_META = "model.json"


def run_key(run_id: str) -> str:
    """A folder-safe, stable key for an Airflow run id."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_.")
    return safe[:80] or hashlib.sha1(run_id.encode()).hexdigest()[:12]


def run_dir_for(run_id: str) -> Path:
    """The run folder of an Airflow run id, under ``config.RUNS_DIR``."""
    return config.RUNS_DIR / run_key(run_id)


@dataclass(frozen=True)
class RunFolder:
    """One run's folder in the lake (``var/lake/runs/<run>/``): every file in it, by role.

    The only place that names those files; steps, the report, the DAG helpers and the tests
    ask it for paths: ``RunFolder(run_dir).ratings``.
    """

    path: Path

    @classmethod
    def of(cls, run_id: str) -> RunFolder:
        """The folder of an Airflow run id."""
        return cls(run_dir_for(run_id))

    @classmethod
    def of_experiment(cls, run_id: str) -> RunFolder:
        """The folder of an ``ab_test_analysis`` run (its Spark counts)."""
        return cls(config.RUNS_DIR / "ab" / run_key(run_id))

    def __truediv__(self, name: str) -> Path:  # for the GX project and tests' part files
        return self.path / name

    # -- what prepare writes -----------------------------------------------------------
    @property
    def run_info(self) -> Path:
        """``run.json``: run id, dataset, format, model version, previous batch size."""
        return self.path / "run.json"

    @property
    def champion(self) -> Path:
        """The published model's parameters, for train's champion comparison."""
        return self.path / "champion.json"

    # -- ingest --------------------------------------------------------------------------
    @property
    def ratings(self) -> Path:
        return self.path / "ratings.parquet"

    @property
    def items(self) -> Path:
        return self.path / "items.parquet"

    @property
    def quarantine(self) -> Path:
        """Unusable input lines, each with a reason code."""
        return self.path / "quarantine.parquet"

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.json"

    @property
    def feedback(self) -> Path:
        return self.path / "feedback.parquet"

    @property
    def feedback_pending(self) -> Path:
        return self.path / "feedback_pending.parquet"

    @property
    def feedback_quarantine(self) -> Path:
        return self.path / "feedback_quarantine.parquet"

    # -- validate, train, recommend --------------------------------------------------------
    @property
    def gx(self) -> Path:
        """The run's Great Expectations project."""
        return self.path / "gx"

    @property
    def validation(self) -> Path:
        return self.path / "validation.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def model(self) -> Path:
        """The ranking model the recommend step publishes from."""
        return self.path / "model"

    @property
    def model_meta(self) -> Path:
        """The model's family and parameters, beside its factors."""
        return self.model / MODEL_META

    @property
    def popular_items(self) -> Path:
        """The fallback lists: most-rated items overall and per genre."""
        return self.path / "popular_items.parquet"

    @property
    def recommendations(self) -> Path:
        return self.path / "recommendations.parquet"

    @property
    def similar_items(self) -> Path:
        return self.path / "similar_items.parquet"

    @property
    def output_validation(self) -> Path:
        return self.path / "validation_recommendations.json"

    @property
    def ab_counts(self) -> Path:
        """An A/B analysis run's per-arm Spark counts."""
        return self.path / "ab_counts.json"

    # -- every step ------------------------------------------------------------------------
    @property
    def timings(self) -> Path:
        return self.path / "timings.jsonl"

    @property
    def error(self) -> Path:
        """What the failed step said (``stage``, ``message``)."""
        return self.path / "error.json"

    @property
    def log(self) -> Path:
        """``reco run``'s log of the run: Airflow's and Spark's lines, kept off the terminal."""
        return self.path / "run.log"
