"""
### Pipeline report

Rebuilds a run's HTML report from the warehouse: the run's Spark stage metrics (from
Spark's event log) into `reco.spark_stages`, its stage and phase timings into
`reco.stage_timings`, then the page: stage timeline, average and p90 per stage over the
last runs, trends of wall time, data volume, RMSE and nDCG, the slowest Spark stages, the
model metrics beside their baselines, and the latest A/B experiment.

**When it runs:** after every publish of `reco.recommendations` (Asset), for the run that
published: it waits for that run to end and for the scheduler's listener to store the
run's queue and task times (they exist only once the run has ended), then renders the
page once more with them; it updates the Asset `reco.run_report`. This is the only render
of a run's report after the run's own (its last task, `report`, renders the first).

`run_id` empty = the run that published (Asset-triggered), else the latest run in
`reco.model_runs`; a given `run_id` is rendered at once. Open the reports from the
Airflow UI menu **Reports** (or `var/reports/`).
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import Param, dag, task

from reco import config
from reco.orchestration import assets
from reco.orchestration.pipeline import dag_settings

log = logging.getLogger(__name__)


@dag(
    dag_id="pipeline_report",
    schedule=assets.RECOMMENDATIONS,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["reco", "report"],
    **dag_settings("pipeline_report"),  # failure alerts, dagrun_timeout
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
    @task(outlets=[assets.RUN_REPORT], execution_timeout=config.task_timeout("rebuild"))
    def rebuild(params=None, run_id=None, triggering_asset_events=None, ti=None) -> str:
        from reco.orchestration import pipeline
        from reco.reporting import report as report_job
        from reco.reporting import task_timings

        target = params.get("run_id") or assets.publishing_run(triggering_asset_events)
        after_publish = bool(target and not params.get("run_id"))
        if after_publish:
            # The publish that started this run is not its last task: wait for the end.
            state_of = lambda rid: ti.get_dagrun_state("recommendations", rid)  # noqa: E731
            pipeline.wait_for_run_end(state_of, target)
        with pipeline.warehouse_task("pipeline_report", run_id) as url:
            if after_publish and not task_timings.wait_stored(url, target):
                log.warning("no Airflow task times of %s yet: rendering without them", target)
            return report_job.rebuild(url, target)["report"]

    rebuild()


dag = pipeline_report()

if __name__ == "__main__":
    dag.test()
