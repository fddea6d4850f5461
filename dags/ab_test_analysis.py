"""
### A/B test analysis

Did the recommendations lift clicks? Reads an experiment's `assignments.csv`
(`user_id,arm`) and `events.csv` (`user_id,event,ts`, event = impression or click) from
the `input` folder, counts users, impressions and clicks per arm with Spark
(`spark_jobs/ab_aggregate.py`), and writes to `reco.ab_test_results`, per arm:

- CTR with a 95% interval;
- absolute and relative lift vs the control arm, with 95% intervals;
- the two-proportion z-test p-value;
- the minimum detectable effect at the observed sample size.

It also writes a business-impact estimate from the params below, and an HTML page
`var/reports/ab_<experiment>.html`. Rows that cannot be used are counted by reason, never
dropped silently.

`prepare` -> `aggregate` (Spark, `reco.experiments.aggregate`) -> `analyse`
(`reco.experiments.analysis`: statistics, warehouse, HTML page).
Try it with simulated data: `reco simulate-ab --out var/ab/demo` then trigger with
`input` = that folder.

**When it runs:** after every publish of `reco.recommendations` (Asset), on the experiment
in `var/inbox/experiment` (`RECO_AB_INBOX`); without data there, that run is skipped.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from reco import config
from reco.orchestration import assets
from reco.orchestration.pipeline import dag_settings, spark_step


@dag(
    dag_id="ab_test_analysis",
    schedule=assets.RECOMMENDATIONS,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["reco", "ab-test"],
    **dag_settings("ab_test_analysis"),  # failure alerts, dagrun_timeout
    params={
        "experiment": Param(
            "reco-vs-popular",
            type="string",
            title="Experiment",
            pattern=r"^[A-Za-z0-9_.-]{1,80}$",
            description="Experiment name: 1-80 letters, digits, '_', '.' or '-'",
        ),
        "input": Param(
            None,
            type=["null", "string"],
            title="Experiment data",
            description="Folder with assignments.csv (user_id,arm) and events.csv "
            f"(user_id,event,ts); empty = {config.AB_INBOX}",
        ),
        "control_arm": Param(
            "control", type="string", title="Control arm", description="Name of the control arm"
        ),
        "active_customers": Param(
            config.AB_ACTIVE_CUSTOMERS,
            type="integer",
            minimum=0,
            title="Active customers",
            description="Customers the business impact is projected onto",
        ),
        "annual_revenue_per_customer": Param(
            config.AB_ANNUAL_REVENUE_PER_CUSTOMER,
            type="number",
            minimum=0,
            title="Annual revenue per customer",
            description="Revenue per customer and year, for the impact estimate",
        ),
        "baseline_retention": Param(
            config.AB_BASELINE_RETENTION,
            type="number",
            minimum=0,
            maximum=1,
            title="Baseline retention",
            description="Share of customers kept per year today (0-1)",
        ),
        "retention_per_ctr_lift": Param(
            config.AB_RETENTION_PER_CTR_LIFT,
            type="number",
            title="Retention per CTR lift",
            description="Relative retention change per relative CTR lift",
        ),
    },
)
def ab_test_analysis():
    @task(execution_timeout=config.task_timeout("prepare"))
    def prepare(params=None, run_id=None, dag_run=None) -> dict:
        from reco.orchestration import pipeline

        manual = str(dag_run.run_type).lower().endswith("manual")
        with pipeline.warehouse_task("prepare", run_id) as url:
            return pipeline.prepare_ab_run(dict(params), run_id, url, manual=manual)

    @task(execution_timeout=config.task_timeout("analyse"))
    def analyse(run: dict, params=None) -> dict:
        from pathlib import Path

        from reco.experiments import analysis, stats
        from reco.orchestration import pipeline

        with pipeline.warehouse_task("analyse", run["run_id"]) as url:
            return analysis.run_analysis(
                url,
                Path(run["counts"]),
                params["experiment"],
                params["control_arm"],
                stats.BusinessInputs(
                    active_customers=int(params["active_customers"]),
                    annual_revenue_per_customer=float(params["annual_revenue_per_customer"]),
                    baseline_retention=float(params["baseline_retention"]),
                    retention_per_ctr_lift=float(params["retention_per_ctr_lift"]),
                ),
                run["run_id"],
            )

    run = prepare()
    aggregate = spark_step(
        "aggregate", ["--input", run["input"], "--out", run["counts"]], "ab_aggregate"
    )
    run >> aggregate >> analyse(run)


dag = ab_test_analysis()

if __name__ == "__main__":
    dag.test()
