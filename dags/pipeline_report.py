"""
### Pipeline report

Rebuilds a run's HTML report from the warehouse: the run's Spark stage metrics (from
Spark's event log) into `reco.spark_stages`, its stage and phase timings into
`reco.stage_timings`, then the page: stage timeline, average and p90 per stage over the
last runs, trends of wall time, data volume, RMSE and nDCG, the slowest Spark stages, the
model metrics beside their baselines, and the latest A/B experiment.

**When it runs:** after every publish of `reco.recommendations` (Asset), for the run that
published, so the page also holds the scheduler's queue and task times, which arrive just
after that run ends; it updates the Asset `reco.run_report`.

`run_id` empty = the run that published (Asset-triggered), else the latest run in
`reco.model_runs`. The `recommendations` DAG builds
the same report in its last task (`report`). Open the reports from the Airflow UI menu
**Reports** (or `var/reports/`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from reco import config
from reco.orchestration import assets


@dag(
    dag_id="pipeline_report",
    schedule=assets.RECOMMENDATIONS,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["reco", "report"],
    default_args=dict(config.DAG_DEFAULT_ARGS),
    params={
        "run_id": Param(
            None,
            type=["null", "string"],
            title="Run id",
            description="A `recommendations` run id; empty = the run that published, else "
            "the latest run",
        ),
    },
)
def pipeline_report():
    @task(outlets=[assets.RUN_REPORT])
    def rebuild(params=None, run_id=None, triggering_asset_events=None, ti=None) -> str:
        from reco.orchestration import pipeline
        from reco.reporting import report as report_job

        target = params.get("run_id") or assets.publishing_run(triggering_asset_events)
        if target and not params.get("run_id"):
            # The publish that started this run is not its last task: wait for the end.
            state_of = lambda rid: ti.get_dagrun_state("recommendations", rid)  # noqa: E731
            pipeline.wait_for_run_end(state_of, target)
        with pipeline.warehouse_task("pipeline_report", run_id) as url:
            return report_job.rebuild(url, target)["report"]

    rebuild()


dag = pipeline_report()

if __name__ == "__main__":
    dag.test()
