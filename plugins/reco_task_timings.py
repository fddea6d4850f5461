"""Airflow listener: when a ``recommendations`` run ends, its task times (queued, start,
end) go into ``reco.stage_timings`` (reco/reporting/run_end.py says who then renders the
run report again with them: the ``pipeline_report`` DAG, or this listener for an
in-process ``dag.test()`` run)."""

import logging

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)


def fetch_task_instances(dag_run):
    """The run's task instances, read in the caller's metadata-DB session when it has one."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    query = select(TaskInstance).where(
        TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
    )
    session = object_session(dag_run)
    if session is not None:
        with session.no_autoflush:  # read only: never flush the caller's pending changes
            return list(session.scalars(query))
    with create_session() as new_session:
        tis = list(new_session.scalars(query))
        new_session.expunge_all()
        return tis


def record_dag_run(dag_run) -> None:
    """Hand a finished run's task rows to reco.reporting.run_end; log, never raise."""
    from reco.orchestration.connections import warehouse_url
    from reco.reporting import run_end, task_timings

    if dag_run.dag_id not in task_timings.DAG_IDS:
        return
    try:
        rows = task_timings.task_rows(fetch_task_instances(dag_run))
    except Exception as exc:  # a listener must never break the run or the scheduler
        log.warning("could not read the task instances of %s: %s", dag_run.run_id, exc)
        return
    run_end.record(
        dag_run.run_id,
        rows,
        # dag.test() (``reco run``) runs end in the caller's process, with no scheduler:
        # stored before dag.test() returns, and the report rendered again here.
        in_process=task_timings.in_process(dag_run),
        warehouse_url=warehouse_url,
    )


class TaskTimingsListener:
    @hookimpl
    def on_dag_run_success(self, dag_run, msg):
        record_dag_run(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg):
        record_dag_run(dag_run)


class RecoTaskTimingsPlugin(AirflowPlugin):
    name = "reco_task_timings"
    listeners = [TaskTimingsListener()]
