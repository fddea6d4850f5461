"""Where a run's files live: the folder-safe key of an Airflow run id and its run folder.

A leaf (config only), so the steps, the report and the DAG helpers can all find a run's
folder without importing one another.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from reco import config


def run_key(run_id: str) -> str:
    """A folder-safe, stable key for an Airflow run id."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_.")
    return safe[:80] or hashlib.sha1(run_id.encode()).hexdigest()[:12]


def run_dir_for(run_id: str) -> Path:
    """The run folder of an Airflow run id, under ``config.RUNS_DIR``."""
    return config.RUNS_DIR / run_key(run_id)
