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


def test_spark_steps_run_their_job_on_spark_default(dagbag) -> None:
    from reco.orchestration import pipeline

    dag = dagbag.dags["recommendations"]
    for task_id in ("ingest", "validate", "train", "recommend"):
        op = dag.get_task(task_id)
        assert op.python_callable is pipeline.run_spark_step
        assert op.op_args[0] == task_id and "--run-dir" in op.op_args[1]
        assert op.retries == 0


def test_spark_master_comes_from_the_connection(monkeypatch) -> None:
    from reco.orchestration import pipeline

    for uri, master in (
        ("spark://spark-master:7077", "spark://spark-master:7077"),
        ("spark://local%5B%2A%5D", "local[*]"),
    ):
        monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", uri)
        assert pipeline.spark_master() == master


def test_dag_settings(dagbag) -> None:
    dag = dagbag.dags["recommendations"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert set(dag.params.keys()) >= {"dataset", "format", "top_n"}
    assert dag.params["top_n"] == config.DEFAULT_TOP_N
    assert dag.default_args["retries"] >= 1
    assert dag.doc_md and "reco.recommendations" in dag.doc_md


def test_ab_test_analysis_dag(dagbag) -> None:
    from reco.orchestration import pipeline

    dag = dagbag.dags["ab_test_analysis"]
    assert set(dag.task_ids) == {"prepare", "aggregate", "analyse"}
    assert "aggregate" in dag.get_task("prepare").downstream_task_ids
    assert "analyse" in dag.get_task("aggregate").downstream_task_ids
    agg = dag.get_task("aggregate")
    assert agg.python_callable is pipeline.run_spark_step and agg.op_args[0] == "ab_aggregate"
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


def test_reports_plugin_adds_a_reports_menu() -> None:
    from airflow import plugins_manager

    plugins = {p.name: p for p in plugins_manager._get_plugins()[0]}
    plugin = plugins["reco_reports"]
    assert {v["category"] for v in plugin.external_views} == {"Reports"}
    assert [a["url_prefix"] for a in plugin.fastapi_apps] == ["/reco-reports"]


@pytest.mark.parametrize("dag_id", ["recommendations", "ab_test_analysis", "pipeline_report"])
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
