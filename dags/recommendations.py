"""
### Recommendations

Retrains the ALS recommender and publishes each user's top-N affinity scores to
PostgreSQL (`reco.recommendations`).

`prepare` checks the dataset and the warehouse -> `ingest` (raw ratings to typed,
deduplicated Parquet; bad lines quarantined) -> `validate` (Great Expectations suites
`expectations/ratings.json` + `items.json`, and the quarantine share; a failure stops the
run) -> `train` (k-fold CV picks the published ranking model among implicit ALS and EASE
candidates; the rating model is one fit unless `rating_cv`) ->
`recommend` (top-N per user, rated items excluded; the output suite
`expectations/recommendations.json` must pass) -> `record_quality` (suite outcomes and
quarantine counts into `reco.data_quality_runs`, also when a gate fails); `recommend` ->
`publish` (COPY + atomic swap, only if the new model beats the baselines and the published
champion; else the run ends green with status `rejected` in `reco.model_runs`) -> `report`
(stage timings + HTML report).

**When it runs:** on its schedule (`RECO_RETRAIN_SCHEDULE`, daily by default) and whenever
a new ratings export lands in the watched inbox (Asset `ratings_inbox`, `var/inbox/ratings`);
that run reads the new export. A publish updates the Asset `reco.recommendations`, which
starts `pipeline_report` and `ab_test_analysis`. A rejected model skips `publish`.

Spark steps run their driver in the task's process on the master of the `spark_default`
connection (`local[*]` by default; set its host to `spark://HOST:7077` to use a cluster).
Trigger parameters (defined in `reco/params.py`, the same as `reco run`'s flags): `dataset`
(empty = the export that started the run, else the newest in the inbox, else built-in
synthetic data), `format`, `top_n`, ...
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from reco import config
from reco.orchestration import assets
from reco.orchestration.pipeline import dag_settings, retrain_schedule, spark_step
from reco.params import dag_params, step_args


@dag(
    dag_id="recommendations",
    schedule=retrain_schedule(assets.RATINGS_INBOX),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["reco"],
    **dag_settings("recommendations"),  # failure and deadline alerts, dagrun_timeout
    params=dag_params(Param),  # reco/params.py: every run parameter, defined once
)
def recommendations():
    @task(execution_timeout=config.task_timeout("prepare"))
    def prepare(params=None, run_id=None, dag_run=None, triggering_asset_events=None) -> dict:
        from reco.orchestration import pipeline

        params = {**params, "landed": assets.export_path(triggering_asset_events)}
        with pipeline.warehouse_task("prepare", run_id) as url:
            return pipeline.prepare_run(params, run_id, dag_run.run_after, url)

    @task(outlets=[assets.RECOMMENDATIONS], execution_timeout=config.task_timeout("publish"))
    def publish(run: dict, outlet_events=None) -> dict:
        from pathlib import Path

        from reco.orchestration import pipeline
        from reco.publishing import publish as publish_job

        with pipeline.warehouse_task("publish", run["run_id"]) as url:
            result = publish_job.run(url, Path(run["run_dir"]), run["run_id"])
        pipeline.announce_publish(result, outlet_events[assets.RECOMMENDATIONS], url, run["run_id"])
        return result

    @task(trigger_rule="all_done", execution_timeout=config.task_timeout("record_quality"))
    def record_quality(run: dict | None) -> int:
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from reco.orchestration import pipeline
        from reco.validation import quality

        if not run:  # prepare failed: no batch was read, so there is nothing to record
            raise AirflowSkipException("prepare did not finish; no data-quality results")
        with pipeline.warehouse_task("record_quality", run["run_id"]) as url:
            return quality.record(url, Path(run["run_dir"]), run["run_id"])

    @task(trigger_rule="none_failed", execution_timeout=config.task_timeout("report"))
    def report(run: dict) -> str:
        from pathlib import Path

        from reco.orchestration import pipeline
        from reco.reporting import report as report_job

        with pipeline.warehouse_task("report", run["run_id"]) as url:
            return report_job.run(url, Path(run["run_dir"]), run["run_id"])["report"]

    run = prepare()
    # Each step's run parameters come from reco/params.py (templated from the trigger's
    # params, or prepare's resolved values); only the step-only arguments are wired here.
    run_dir = ["--run-dir", run["run_dir"]]
    ingest = spark_step("ingest", [*run_dir, *step_args("ingest", run)])
    validate = spark_step(
        "validate",
        [*run_dir, *step_args("validate", run), "--previous-rows", run["previous_rows"]],
    )
    train = spark_step("train", [*run_dir, *step_args("train", run)])
    recommend = spark_step("recommend", [*run_dir, *step_args("recommend", run)])
    published = publish(run)
    ingest >> validate >> train >> recommend >> published
    [validate, recommend] >> record_quality(run)
    published >> report(run)


dag = recommendations()

if __name__ == "__main__":
    dag.deadline = None  # the scheduler's: dag.test() cannot evaluate Deadline Alerts
    dag.test()
