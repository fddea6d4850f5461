"""The DAG folder imports cleanly and the pipeline is wired as documented."""

from __future__ import annotations

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
