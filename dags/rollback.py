"""
### Rollback

Publishes an earlier model's lists again (recommendations, similar items, popular items)
through the same atomic swap as a publish: readers see the current lists or the restored
ones, never a mix. Recorded in `reco.model_runs` (`restored_from` names the run restored);
the champion moves with it.

**When it runs:** only from the trigger form. `model_version` empty = the version
published before the current one; else a version from `reco.model_runs` (`reco rollback
--list` shows which can still be restored). A version whose files retention pruned is
refused, and the published lists stay as they are.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from reco import config
from reco.orchestration.pipeline import dag_settings


@dag(
    dag_id="rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["reco", "rollback"],
    **dag_settings("rollback"),  # failure alerts, dagrun_timeout
    params={
        "model_version": Param(
            None,
            type=["null", "string"],
            title="Model version",
            description="The version to restore, e.g. als-20260102T030000Z-1a2b3c; empty = "
            "the one published before the current one",
        ),
    },
)
def rollback_dag():
    @task(execution_timeout=config.task_timeout("rollback"))
    def rollback(params=None, run_id=None) -> dict:
        from reco.orchestration import pipeline

        return pipeline.rollback_task(run_id, params.get("model_version") or None)

    rollback()


dag = rollback_dag()

if __name__ == "__main__":
    dag.test()
