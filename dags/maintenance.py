"""
### Maintenance

Keeps a long-running deployment's disk bounded: deletes the run folders, Data Docs, reports
and Spark event logs of runs that retention does not keep (`reco/maintenance/retention.py`).
Kept: the newest `RECO_RETAIN_RUNS` runs, runs younger than `RECO_RETAIN_DAYS` days, the
run readers see now and the last `RECO_RETAIN_PUBLISHED` published runs (what a rollback
can restore). Nothing in the warehouse is deleted.

**When it runs:** daily (`RECO_MAINTENANCE_SCHEDULE`), or from the trigger form; tick
`dry_run` to see in the task log what would go, and why each kept run stays.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from reco import config
from reco.orchestration.pipeline import dag_settings


@dag(
    dag_id="maintenance",
    schedule=config.MAINTENANCE_SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz=config.SCHEDULE_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["reco", "maintenance"],
    **dag_settings("maintenance"),  # failure alerts, dagrun_timeout
    params={
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="List what would be pruned without deleting anything",
        ),
    },
)
def maintenance():
    @task(execution_timeout=config.task_timeout("prune"))
    def prune(params=None, run_id=None) -> dict:
        from reco.orchestration import pipeline

        return pipeline.prune_task(run_id, dry_run=bool(params.get("dry_run")))

    prune()


dag = maintenance()

if __name__ == "__main__":
    dag.test()
