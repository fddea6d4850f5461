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

Spark steps run their driver in the task's process on the master of the `spark_default`
connection (`local[*]` by default; set its host to `spark://HOST:7077` to use a cluster).
Trigger parameters: `dataset` (empty = built-in synthetic data), `format`, `top_n`, ...
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from spark_jobs import config
from spark_jobs.pipeline import spark_step


@dag(
    dag_id="recommendations",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["reco"],
    default_args=dict(config.DAG_DEFAULT_ARGS),
    params={
        "dataset": Param(
            "", type="string", description="Folder or file with ratings; empty = synthetic data"
        ),
        "format": Param(
            "auto",
            enum=list(config.INPUT_FORMATS),
            description="Input layout; auto detects MovieLens layouts",
        ),
        "columns": Param(
            "",
            type="string",
            description="csv/parquet column mapping: user=COL,item=COL,rating=COL",
        ),
        "rating_scale": Param("auto", type="string", description="MIN-MAX, e.g. 1-5 or 1-10"),
        "feedback": Param(
            "",
            type="string",
            description="Folder of feedback events (like/dislike/watched, JSON Lines or CSV); "
            "empty = the default inbox var/inbox/feedback when it exists",
        ),
        "top_n": Param(
            config.DEFAULT_TOP_N,
            type="integer",
            minimum=1,
            maximum=1000,
            description="Recommendations per user",
        ),
        "similar_k": Param(
            config.DEFAULT_SIMILAR_K,
            type="integer",
            minimum=1,
            maximum=200,
            description="Neighbours per item in reco.similar_items",
        ),
        "folds": Param(
            config.DEFAULT_CV_FOLDS,
            type="integer",
            minimum=0,
            maximum=10,
            description="Cross-validation folds; 0 = fixed parameters (one value per grid key)",
        ),
        "families": Param(
            ",".join(config.DEFAULT_FAMILIES),
            type="string",
            description="Model families that compete in the CV for the published top-N, "
            "comma-separated: als (implicit ALS, the default path), ease (item-item, "
            "bounded to the most-rated items)",
        ),
        "ranking_grid": Param(
            "",
            type="string",
            description='Implicit-ALS grid as JSON, e.g. {"rank": [64], "alpha": [0.5, 1]}; '
            "empty = default",
        ),
        "ease_grid": Param(
            "",
            type="string",
            description='EASE grid as JSON, e.g. {"lambda": [200, 500]}; empty = default',
        ),
        "rating_cv": Param(
            False,
            type="boolean",
            description="Also cross-validate the rating model (RMSE) over its grid; off = "
            "one fit at documented parameters",
        ),
        "grid": Param(
            "",
            type="string",
            description='Rating-model ALS grid as JSON, e.g. {"rank": [10, 20]} (several '
            "values need rating_cv); empty = default",
        ),
        "min_rows": Param(
            config.DEFAULT_MIN_ROWS,
            type="integer",
            minimum=1,
            description="Fewest ratings a batch may have",
        ),
        "max_quarantine_share": Param(
            config.DEFAULT_MAX_QUARANTINE_SHARE,
            type="number",
            minimum=0,
            maximum=1,
            description="Largest share of malformed input lines before the batch is refused",
        ),
        "max_row_drop": Param(
            config.DEFAULT_MAX_ROW_DROP,
            type="number",
            minimum=0,
            maximum=1,
            description="Largest shrink vs the previous accepted batch (0.5 = half)",
        ),
        "gate_tolerance": Param(
            config.DEFAULT_GATE_TOLERANCE,
            type="number",
            minimum=0,
            description="How much worse than the published model a new one may be (relative)",
        ),
    },
)
def recommendations():
    @task
    def prepare(params=None, run_id=None, dag_run=None) -> dict:
        from spark_jobs import pipeline

        with pipeline.warehouse_task("prepare", run_id) as url:
            return pipeline.prepare_run(dict(params), run_id, dag_run.run_after, url)

    @task
    def publish(run: dict) -> dict:
        from pathlib import Path

        from spark_jobs import pipeline
        from spark_jobs import publish as publish_job

        with pipeline.warehouse_task("publish", run["run_id"]) as url:
            return publish_job.run(url, Path(run["run_dir"]), run["run_id"])

    @task(trigger_rule="all_done")
    def record_quality(run: dict | None) -> int:
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from spark_jobs import pipeline, quality

        if not run:  # prepare failed: no batch was read, so there is nothing to record
            raise AirflowSkipException("prepare did not finish; no data-quality results")
        with pipeline.warehouse_task("record_quality", run["run_id"]) as url:
            return quality.record(url, Path(run["run_dir"]), run["run_id"])

    @task
    def report(run: dict, published: dict) -> str:
        from pathlib import Path

        from spark_jobs import pipeline
        from spark_jobs import report as report_job

        with pipeline.warehouse_task("report", run["run_id"]) as url:
            return report_job.run(url, Path(run["run_dir"]), run["run_id"])["report"]

    run = prepare()
    ingest = spark_step(
        "ingest",
        [
            "--run-dir",
            run["run_dir"],
            "--dataset",
            run["dataset"],
            "--format",
            run["format"],
            "--columns",
            "{{ params.columns }}",
            "--rating-scale",
            "{{ params.rating_scale }}",
            "--feedback",
            run["feedback"],
        ],
    )
    validate = spark_step(
        "validate",
        [
            "--run-dir",
            run["run_dir"],
            "--min-rows",
            "{{ params.min_rows }}",
            "--max-quarantine-share",
            "{{ params.max_quarantine_share }}",
            "--max-row-drop",
            "{{ params.max_row_drop }}",
            "--previous-rows",
            run["previous_rows"],
        ],
    )
    train = spark_step(
        "train",
        [
            "--run-dir",
            run["run_dir"],
            "--folds",
            "{{ params.folds }}",
            "--families",
            "{{ params.families }}",
            "--ranking-grid",
            "{{ params.ranking_grid }}",
            "--ease-grid",
            "{{ params.ease_grid }}",
            "--rating-cv",
            "{{ params.rating_cv }}",
            "--grid",
            "{{ params.grid }}",
            "--gate-tolerance",
            "{{ params.gate_tolerance }}",
            "--top-n",
            "{{ params.top_n }}",
        ],
    )
    recommend = spark_step(
        "recommend",
        [
            "--run-dir",
            run["run_dir"],
            "--top-n",
            "{{ params.top_n }}",
            "--similar-k",
            "{{ params.similar_k }}",
        ],
    )
    published = publish(run)
    ingest >> validate >> train >> recommend >> published
    [validate, recommend] >> record_quality(run)
    report(run, published)


dag = recommendations()

if __name__ == "__main__":
    dag.test()
