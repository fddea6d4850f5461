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
Trigger parameters: `dataset` (empty = the export that started the run, else the newest in
the inbox, else built-in synthetic data), `format`, `top_n`, ...
"""

from __future__ import annotations

import json

from airflow.sdk import Param, dag, task

from reco import config
from reco.orchestration import assets
from reco.orchestration.pipeline import retrain_schedule, spark_step

JSON_OBJECT = r"^\s*\{.*\}\s*$"


@dag(
    dag_id="recommendations",
    schedule=retrain_schedule(assets.RATINGS_INBOX),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["reco"],
    default_args=dict(config.DAG_DEFAULT_ARGS),
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            title="Ratings dataset",
            description="Path of a ratings file or folder (MovieLens, CSV, Parquet) on the "
            "workers. Empty = the export that started this run, else the newest in "
            f"{config.RATINGS_INBOX}, else built-in synthetic data.",
        ),
        "format": Param(
            "auto",
            enum=list(config.INPUT_FORMATS),
            title="Input format",
            description="Input layout; auto detects the MovieLens layouts, CSV and Parquet",
        ),
        "columns": Param(
            None,
            type=["null", "string"],
            title="Column mapping",
            pattern=r"^\s*(user|item|rating|timestamp)\s*=\s*[^,=\s][^,=]*"
            r"(,\s*(user|item|rating|timestamp)\s*=\s*[^,=\s][^,=]*)*\s*$",
            description="For csv/parquet with other column names: user=COL,item=COL,rating=COL"
            "[,timestamp=COL]. Empty = the standard names.",
        ),
        "rating_scale": Param(
            "auto",
            type="string",
            title="Rating scale",
            pattern=r"^\s*(auto|\d+(\.\d+)?\s*-\s*\d+(\.\d+)?)\s*$",
            description="MIN-MAX, e.g. 1-5 or 1-10; auto = 1-5 or 0.5-5 as detected",
        ),
        "feedback": Param(
            None,
            type=["null", "string"],
            title="Feedback events",
            description="Folder of feedback events (like/dislike/watched, JSON Lines or CSV). "
            f"Empty = the default inbox {config.FEEDBACK_DIR} when it exists.",
        ),
        "top_n": Param(
            config.DEFAULT_TOP_N,
            type="integer",
            minimum=1,
            maximum=1000,
            title="Top N",
            description="Recommendations per user",
        ),
        "similar_k": Param(
            config.DEFAULT_SIMILAR_K,
            type="integer",
            minimum=1,
            maximum=200,
            title="Similar items per item",
            description="Neighbours per item in reco.similar_items",
        ),
        "folds": Param(
            config.DEFAULT_CV_FOLDS,
            type="integer",
            minimum=0,
            maximum=10,
            title="Cross-validation folds",
            description="Cross-validation folds; 0 = fixed parameters (one value per grid key)",
        ),
        "families": Param(
            ",".join(config.DEFAULT_FAMILIES),
            type="string",
            title="Model families",
            pattern=r"^\s*(als|ease)(\s*,\s*(als|ease))*\s*$",
            description="Model families that compete in the CV for the published top-N, "
            "comma-separated: als (implicit ALS, the default path), ease (item-item, "
            "bounded to the most-rated items)",
        ),
        "ranking_grid": Param(
            None,
            type=["null", "string"],
            title="Implicit-ALS grid",
            pattern=JSON_OBJECT,
            description='Implicit-ALS grid as a JSON object, e.g. {"rank": [64], "alpha": '
            f"[0.5, 1]}}; empty = the default {json.dumps(config.DEFAULT_RANKING_GRID)}",
        ),
        "ease_grid": Param(
            None,
            type=["null", "string"],
            title="EASE grid",
            pattern=JSON_OBJECT,
            description='EASE grid as a JSON object, e.g. {"lambda": [200, 500]}; empty = '
            f"the default {json.dumps(config.DEFAULT_EASE_GRID)}",
        ),
        "rating_cv": Param(
            False,
            type="boolean",
            title="Cross-validate the rating model",
            description="Also cross-validate the rating model (RMSE) over its grid; off = "
            "one fit at documented parameters",
        ),
        "grid": Param(
            None,
            type=["null", "string"],
            title="Rating-model grid",
            pattern=JSON_OBJECT,
            description='Rating-model ALS grid as a JSON object, e.g. {"rank": [10, 20]} '
            "(several values need rating_cv); empty = the default "
            f"{json.dumps(config.DEFAULT_GRID)}",
        ),
        "min_rows": Param(
            config.DEFAULT_MIN_ROWS,
            type="integer",
            minimum=1,
            title="Fewest ratings",
            description="Fewest ratings a batch may have",
        ),
        "max_quarantine_share": Param(
            config.DEFAULT_MAX_QUARANTINE_SHARE,
            type="number",
            minimum=0,
            maximum=1,
            title="Largest malformed share",
            description="Largest share of malformed input lines before the batch is refused",
        ),
        "max_row_drop": Param(
            config.DEFAULT_MAX_ROW_DROP,
            type="number",
            minimum=0,
            maximum=1,
            title="Largest batch shrink",
            description="Largest shrink vs the previous accepted batch (0.5 = half)",
        ),
        "gate_tolerance": Param(
            config.DEFAULT_GATE_TOLERANCE,
            type="number",
            minimum=0,
            title="Gate tolerance",
            description="How much worse than the published model a new one may be (relative)",
        ),
    },
)
def recommendations():
    @task
    def prepare(params=None, run_id=None, dag_run=None, triggering_asset_events=None) -> dict:
        from reco.orchestration import pipeline

        params = {**params, "landed": assets.export_path(triggering_asset_events)}
        with pipeline.warehouse_task("prepare", run_id) as url:
            return pipeline.prepare_run(params, run_id, dag_run.run_after, url)

    @task(outlets=[assets.RECOMMENDATIONS])
    def publish(run: dict, outlet_events=None) -> dict:
        from pathlib import Path

        from reco.orchestration import pipeline
        from reco.publishing import publish as publish_job

        with pipeline.warehouse_task("publish", run["run_id"]) as url:
            result = publish_job.run(url, Path(run["run_dir"]), run["run_id"])
        pipeline.announce_publish(result, outlet_events[assets.RECOMMENDATIONS])
        return result

    @task(trigger_rule="all_done")
    def record_quality(run: dict | None) -> int:
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from reco.orchestration import pipeline
        from reco.validation import quality

        if not run:  # prepare failed: no batch was read, so there is nothing to record
            raise AirflowSkipException("prepare did not finish; no data-quality results")
        with pipeline.warehouse_task("record_quality", run["run_id"]) as url:
            return quality.record(url, Path(run["run_dir"]), run["run_id"])

    @task(trigger_rule="none_failed")
    def report(run: dict) -> str:
        from pathlib import Path

        from reco.orchestration import pipeline
        from reco.reporting import report as report_job

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
            "{{ params.columns or '' }}",
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
            "{{ params.ranking_grid or '' }}",
            "--ease-grid",
            "{{ params.ease_grid or '' }}",
            "--rating-cv",
            "{{ params.rating_cv }}",
            "--grid",
            "{{ params.grid or '' }}",
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
    published >> report(run)


dag = recommendations()

if __name__ == "__main__":
    dag.test()
