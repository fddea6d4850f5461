"""
### Pipeline report

Rebuilds a run's HTML report from the warehouse: the run's Spark stage metrics (from
Spark's event log) into `reco.spark_stages`, its stage and phase timings into
`reco.stage_timings`, then the page: stage timeline, average and p90 per stage over the
last runs, trends of wall time, data volume, RMSE and nDCG, the slowest Spark stages, the
model metrics beside their baselines, and the latest A/B experiment.

`run_id` empty = the latest run in `reco.model_runs`. The `recommendations` DAG builds
the same report in its last task (`report`). Open the reports from the Airflow UI menu
**Reports** (or `var/reports/`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from spark_jobs import config


@dag(
    dag_id="pipeline_report",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["reco", "report"],
    default_args=dict(config.DAG_DEFAULT_ARGS),
    params={
        "run_id": Param(
            "", type="string", description="recommendations run id; empty = the latest run"
        ),
    },
)
def pipeline_report():
    @task
    def rebuild(params=None, run_id=None) -> str:
        from spark_jobs import pipeline
        from spark_jobs import report as report_job

        with pipeline.warehouse_task("pipeline_report", run_id) as url:
            return report_job.rebuild(url, params.get("run_id") or None)["report"]

    rebuild()


dag = pipeline_report()

if __name__ == "__main__":
    dag.test()
