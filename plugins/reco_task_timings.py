"""Airflow listener: when a recommendations run ends, its task times (queued, start, end)
go into ``reco.stage_timings`` and the run report is rebuilt (reco/reporting/task_timings.py)."""

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class TaskTimingsListener:
    @hookimpl
    def on_dag_run_success(self, dag_run, msg):
        from reco.reporting.task_timings import record_dag_run

        record_dag_run(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg):
        from reco.reporting.task_timings import record_dag_run

        record_dag_run(dag_run)


class RecoTaskTimingsPlugin(AirflowPlugin):
    name = "reco_task_timings"
    listeners = [TaskTimingsListener()]
