"""What the run report shows, gathered: the run's timings loaded into the warehouse and
read back, its ``reco.model_runs`` row, the users its recommendations file serves, and the
links to dig deeper (its Data Docs, the Spark History Server on its event logs).

Everything here reads the run folder or the warehouse; the page is built from what it
returns by :mod:`reco.reporting.sections` and rendered by :mod:`reco.reporting.report`.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reco import config
from reco.instrumentation import eventlog
from reco.instrumentation.timing import read_timings
from reco.publishing import warehouse
from reco.reporting import performance
from reco.runs import RunFolder
from reco.validation import quality

HISTORY_SERVER_URL = "http://localhost:18080"  # the History Server's default port


def load_timings(url: str, run_id: str, run_dir: Path) -> int:
    """The run's timing records (with each phase's Spark metrics from the event log) into
    ``reco.stage_timings``, and its Spark stages into ``reco.spark_stages``."""
    records = read_timings(run_dir)
    stages = performance.spark_rows(run_dir)
    performance.attach_phase_sums(records, stages)
    sql = warehouse.named_statements("stage_timings.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        # One loader per run at a time (the run's report task and a pipeline_report run
        # can overlap): the second waits, then replaces the rows.
        cur.execute(sql["lock_run"], {"run_id": run_id})
        cur.execute(sql["delete_run"], {"run_id": run_id})
        for rec in records:
            cur.execute(
                sql["insert"],
                {**rec, "run_id": run_id, "details": json.dumps(rec.get("details", {}))},
            )
        performance.load_spark_stages(cur, run_id, stages)
    return len(records)


def fetch_timings(url: str, run_id: str) -> list[dict[str, Any]]:
    sql = warehouse.named_statements("stage_timings.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["for_run"], {"run_id": run_id})
        return warehouse.fetch_dicts(cur)


def history_server_command(events_dir: Path, python: str = sys.executable) -> str:
    """The shell lines that start a Spark History Server on ``events_dir`` (README)."""
    find_home = "import os, pyspark; print(os.path.dirname(pyspark.__file__))"
    opts = f"-Dspark.history.fs.logDirectory={events_dir}"
    return (
        f"SPARK_HOME=$({shlex.quote(python)} -c {shlex.quote(find_home)})\n"
        f"SPARK_HISTORY_OPTS={shlex.quote(opts)} \\\n"
        '  "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.history.HistoryServer'
    )


def links_for(
    run_dir: Path, *, data_docs: bool | None = None, python: str = sys.executable
) -> dict[str, Any]:
    """Where to dig deeper: the run's Data Docs (relative to the report, so the link works
    from ``var/reports`` on disk and under ``/reco-reports/``) and the History Server
    command for its Spark event logs. ``data_docs`` overrides the check that they exist."""
    index = quality.data_docs_dir(run_dir) / "index.html"
    if data_docs is None:
        data_docs = index.exists()
    try:
        href = quote(index.relative_to(config.REPORTS_DIR).as_posix())
    except ValueError:
        href = index.as_uri()
    return {
        "data_docs": href if data_docs else None,
        "events_dir": str(config.SPARK_EVENTS_DIR),
        "apps": eventlog.run_apps(run_dir),
        "history_server": history_server_command(config.SPARK_EVENTS_DIR, python),
        "history_url": HISTORY_SERVER_URL,
    }


def count_users_served(run_dir: Path) -> int | None:
    """Distinct users in the run's recommendations file (None when it is gone)."""
    path = RunFolder(run_dir).recommendations
    if not path.exists():
        return None
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    users = pq.read_table(path, columns=[config.COL_USER]).column(0)
    return int(pc.count_distinct(users).as_py())


def fetch_model_run(url: str, run_id: str) -> dict[str, Any] | None:
    """The run's latest attempt in ``reco.model_runs`` (however old the run), or None."""
    sql = warehouse.named_statements("model_runs.sql")["for_run"]
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql, {"run_id": run_id})
        attempts = warehouse.fetch_dicts(cur)
    return attempts[0] if attempts else None
