"""The DAG folder imports cleanly and the pipeline is wired as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from reco import config


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(config.DAGS_DIR))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert "recommendations" in dagbag.dag_ids


def test_pipeline_order(dagbag) -> None:
    dag = dagbag.dags["recommendations"]
    chain = ["prepare", "ingest", "validate", "train", "recommend", "publish", "report"]
    assert set(dag.task_ids) == {*chain, "record_quality"}
    for up, down in zip(chain[1:-1], chain[2:], strict=True):
        assert down in dag.get_task(up).downstream_task_ids, f"{up} -> {down}"
    assert "ingest" in dag.get_task("prepare").downstream_task_ids
    # Gate outcomes are recorded whether or not a gate fails.
    record = dag.get_task("record_quality")
    assert record.trigger_rule == "all_done"
    assert {"validate", "recommend"} <= record.upstream_task_ids


def test_spark_steps_are_spark_submit_operators_of_their_job(dagbag) -> None:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    dag = dagbag.dags["recommendations"]
    for task_id in ("ingest", "validate", "train", "recommend"):
        op = dag.get_task(task_id)
        assert isinstance(op, SparkSubmitOperator) and op.module == task_id
        assert op.application == str(config.SPARK_JOBS_DIR / f"{task_id}.py")
        assert "--run-dir" in op.application_args
        assert op.pool == config.SPARK_POOL
        # Retried on what a retry mends (refused input fails at once: AirflowFailException),
        # and bounded in time.
        assert op.retries == config.DAG_DEFAULT_ARGS["retries"] == 2
        assert op.execution_timeout == config.task_timeout(task_id)


def test_spark_master_comes_from_the_connection(monkeypatch) -> None:
    from reco.orchestration import spark_submit

    for uri, master in (
        ("spark://spark-master:7077", "spark://spark-master:7077"),
        ("spark://local%5B%2A%5D", "local[*]"),
    ):
        monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", uri)
        assert spark_submit.spark_master() == master


def test_the_connection_extras_size_a_submitted_step() -> None:
    from reco.orchestration import spark_submit

    extra = {
        "executor_memory": "2g",
        "executor_cores": "1",
        "total_executor_cores": 2,
        "deploy-mode": "client",  # read by the provider's hook itself
        "conf": {"spark.sql.shuffle.partitions": 4},
    }
    settings = spark_submit.submit_settings(extra)
    assert settings == {
        "executor_memory": "2g",
        "executor_cores": 1,
        "total_executor_cores": 2,
        "conf": {"spark.sql.shuffle.partitions": "4"},
    }
    conf = spark_submit.submit_conf(settings["conf"])
    assert conf["spark.sql.shuffle.partitions"] == "4"  # the connection wins
    assert conf["spark.eventLog.enabled"] == "true"  # the pipeline's own defaults stay
    with pytest.raises(ValueError, match="extra 'total_executor_cores' is 'all'"):
        spark_submit.submit_settings({"total_executor_cores": "all"})
    with pytest.raises(ValueError, match="must be a JSON object"):
        spark_submit.submit_settings({"conf": ["spark.x=1"]})


def test_dag_settings(dagbag) -> None:
    dag = dagbag.dags["recommendations"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert set(dag.params.keys()) >= {"dataset", "format", "top_n"}
    assert dag.params["top_n"] == config.DEFAULT_TOP_N
    assert dag.default_args["retries"] == 2
    assert dag.default_args["max_retry_delay"].total_seconds() == 120
    assert dag.dagrun_timeout == config.RUN_TIMEOUT
    assert all(t.execution_timeout is not None for t in dag.tasks)
    assert dag.default_args["on_failure_callback"].__name__ == "task_failed"
    assert dag.doc_md and "reco.recommendations" in dag.doc_md


def test_every_task_of_every_dag_retries_twice_with_capped_exponential_backoff(dagbag) -> None:
    """README ("What happens on failure"): two retries, exponential backoff from 5 s, at most
    2 minutes between tries; on each task as Airflow loaded it and as the scheduler reads it
    back from the serialized DAG."""
    from airflow.serialization.serialized_objects import DagSerialization

    assert set(dagbag.dag_ids) == {
        "recommendations",
        "ab_test_analysis",
        "pipeline_report",
        "maintenance",
        "rollback",
    }
    for dag in dagbag.dags.values():
        scheduled = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert len(dag.tasks) == len(scheduled.tasks) > 0
        for task in [*dag.tasks, *scheduled.tasks]:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.retries == 2, where
            assert task.retry_exponential_backoff not in (False, 0, None), where
            assert task.retry_delay == timedelta(seconds=5), where
            assert task.max_retry_delay == timedelta(minutes=2), where


SCHEDULE_CASES = {
    "cron": {"RECO_RETRAIN_SCHEDULE": "0 3 * * *", "RECO_SCHEDULE_TIMEZONE": "Europe/Paris"},
    "preset": {"RECO_RETRAIN_SCHEDULE": "@hourly", "RECO_SCHEDULE_TIMEZONE": "UTC"},
    "none": {"RECO_RETRAIN_SCHEDULE": "none", "RECO_SCHEDULE_TIMEZONE": "UTC"},
    "bad_cron": {"RECO_RETRAIN_SCHEDULE": "every day", "RECO_SCHEDULE_TIMEZONE": "UTC"},
    "bad_zone": {"RECO_RETRAIN_SCHEDULE": "@daily", "RECO_SCHEDULE_TIMEZONE": "Mars/Base"},
}
# Run in a new process (this session's reco.config stays as it is): for each case, set its
# variables, import reco.config again (it reads them at import) and parse
# dags/recommendations.py with a fresh DagBag, as the dag-processor does.
PARSE_EACH_CASE = r"""
import importlib, json, os, sys
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction
import reco.config
from reco.orchestration import assets

results = {}
for name, env in json.loads(sys.argv[1]).items():
    os.environ.update(env)
    config = importlib.reload(reco.config)
    bag = DagBag(dag_folder=str(config.DAGS_DIR / "recommendations.py"))
    out = results[name] = {"errors": list(bag.import_errors.values())}
    dag = bag.dags.get("recommendations")
    if dag is None:
        continue
    timetable = dag.timetable
    out["timetable"] = type(timetable).__name__
    out["on_asset"] = timetable.asset_condition == assets.RATINGS_INBOX
    cron = getattr(timetable, "timetable", None)
    if cron is not None:
        out["expression"] = cron.expression
        out["timezone"] = str(cron.timezone)
        # The scheduler's view: the serialized timetable's next run after 12:30 UTC.
        after = pendulum.datetime(2026, 7, 1, 12, 30, tz="UTC")
        try:
            core = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
            info = core.next_dagrun_info(
                last_automated_data_interval=None,
                restriction=TimeRestriction(earliest=after, latest=None, catchup=True),
            )
            out["next_run_utc"] = info.run_after.in_timezone("UTC").isoformat()
        except Exception as exc:
            out["next_run_error"] = f"{type(exc).__name__}: {exc}"
print("RESULT " + json.dumps(results))
"""


def parse_recommendations_with(cases: dict[str, dict[str, str]]) -> dict[str, dict]:
    done = subprocess.run(
        [sys.executable, "-c", PARSE_EACH_CASE, json.dumps(cases)],
        env=dict(os.environ),
        cwd=str(config.PROJECT_ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_retrain_schedule_and_timezone_come_from_the_environment() -> None:
    """README ("Scheduling"): RECO_RETRAIN_SCHEDULE takes a cron expression or preset, or
    `none` (only when data lands); RECO_SCHEDULE_TIMEZONE is its time zone. A value the
    scheduler could not use fails the DAG file's import, naming the setting."""
    got = parse_recommendations_with(SCHEDULE_CASES)

    cron = got["cron"]
    assert cron["errors"] == [] and cron["timetable"] == "AssetOrTimeSchedule"
    assert cron["on_asset"] and cron["expression"] == "0 3 * * *"
    assert cron["timezone"] == "Europe/Paris"
    assert cron["next_run_utc"] == "2026-07-02T01:00:00+00:00"  # 03:00 in Paris (CEST)

    preset = got["preset"]
    assert preset["errors"] == [] and preset["expression"] == "0 * * * *"  # @hourly
    assert preset["next_run_utc"] == "2026-07-01T13:00:00+00:00"

    none = got["none"]
    assert none["errors"] == [] and none["timetable"] == "AssetTriggeredTimetable"
    assert none["on_asset"] and "expression" not in none  # only when new data lands

    for name, setting, value in (
        ("bad_cron", "RECO_RETRAIN_SCHEDULE", "every day"),
        ("bad_zone", "RECO_SCHEDULE_TIMEZONE", "Mars/Base"),
    ):
        assert "timetable" not in got[name], got[name]  # not a DAG that fails later
        [error] = got[name]["errors"]
        assert f"{setting}={value!r}" in error, error


def test_ab_test_analysis_dag(dagbag) -> None:

    dag = dagbag.dags["ab_test_analysis"]
    assert set(dag.task_ids) == {"prepare", "aggregate", "analyse"}
    assert "aggregate" in dag.get_task("prepare").downstream_task_ids
    assert "analyse" in dag.get_task("aggregate").downstream_task_ids
    agg = dag.get_task("aggregate")
    assert agg.module == "ab_aggregate" and agg.pool == config.SPARK_POOL
    assert dag.catchup is False and dag.doc_md
    assert set(dag.params.keys()) >= {
        "experiment",
        "input",
        "control_arm",
        "active_customers",
        "annual_revenue_per_customer",
        "baseline_retention",
        "retention_per_ctr_lift",
    }


def test_pipeline_report_dag(dagbag) -> None:
    dag = dagbag.dags["pipeline_report"]
    assert dag.task_ids == ["rebuild"]
    assert "run_id" in dag.params and dag.doc_md and dag.catchup is False


def test_maintenance_and_rollback_dags(dagbag) -> None:
    from airflow.sdk import CronTriggerTimetable

    maintenance = dagbag.dags["maintenance"]
    assert maintenance.task_ids == ["prune"] and maintenance.params["dry_run"] is False
    daily = CronTriggerTimetable(config.MAINTENANCE_SCHEDULE, timezone=config.SCHEDULE_TIMEZONE)
    assert maintenance.timetable.expression == daily.expression
    rollback = dagbag.dags["rollback"]
    assert rollback.task_ids == ["rollback"] and rollback.schedule is None
    assert rollback.params["model_version"] is None  # empty: the version before the current
    for dag in (maintenance, rollback):
        assert dag.max_active_runs == 1 and dag.catchup is False and dag.doc_md
        assert dag.dagrun_timeout == config.RUN_TIMEOUT
        assert dag.default_args["on_failure_callback"].__name__ == "task_failed"
        [task] = dag.tasks
        assert task.execution_timeout == config.task_timeout(task.task_id)


def test_reports_plugin_adds_a_reports_menu() -> None:
    from airflow import plugins_manager

    plugins = {p.name: p for p in plugins_manager._get_plugins()[0]}
    plugin = plugins["reco_reports"]
    assert {v["category"] for v in plugin.external_views} == {"Reports"}
    assert [a["url_prefix"] for a in plugin.fastapi_apps] == ["/reco-reports"]


@pytest.mark.parametrize(
    "dag_id", ["recommendations", "ab_test_analysis", "pipeline_report", "maintenance", "rollback"]
)
def test_the_trigger_form_defaults_are_valid_and_nothing_is_required(dagbag, dag_id) -> None:
    """What the UI's Trigger form submits untouched: every default passes its own schema,
    and an optional text field is nullable (an empty required string blocks the button)."""
    dag = dagbag.dags[dag_id]
    assert dag.params.validate() is not None
    for name, param in dag.params.items():
        param = dag.params.get_param(name)
        schema = param.schema
        assert schema.get("title") and param.description, name
        if param.value in (None, ""):
            assert "null" in schema.get("type", []), f"{dag_id}.{name}: empty but not nullable"


def test_bad_trigger_values_are_refused_before_the_run(dagbag) -> None:
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags["recommendations"]
    for name, bad in (
        ("ranking_grid", "rank=64"),
        ("columns", "userid"),
        ("rating_scale", "five"),
        ("families", "als,svd"),
        ("top_n", 0),
    ):
        params = copy.deepcopy(dag.params)
        with pytest.raises(ParamValidationError, match=name):
            params[name] = bad


def test_schedule_and_asset_lineage(dagbag) -> None:
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    from reco.orchestration import assets

    reco = dagbag.dags["recommendations"]
    assert isinstance(reco.timetable, AssetOrTimeSchedule)
    daily = CronTriggerTimetable(config.RETRAIN_SCHEDULE, timezone=config.SCHEDULE_TIMEZONE)
    assert reco.timetable.timetable.expression == daily.expression
    assert reco.timetable.asset_condition == assets.RATINGS_INBOX
    [watcher] = assets.RATINGS_INBOX.watchers
    assert watcher.trigger.serialize()[1]["directory"] == str(config.RATINGS_INBOX)
    assert reco.get_task("publish").outlets == [assets.RECOMMENDATIONS]
    assert reco.get_task("report").trigger_rule == "none_failed"  # runs after a skipped publish
    for dag_id in ("pipeline_report", "ab_test_analysis"):
        dag = dagbag.dags[dag_id]
        assert dag.timetable.asset_condition == assets.RECOMMENDATIONS, dag_id
    assert dagbag.dags["pipeline_report"].get_task("rebuild").outlets == [assets.RUN_REPORT]
