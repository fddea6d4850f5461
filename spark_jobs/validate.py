"""Validate: run the Great Expectations suite on the run's ingested ratings.

The suite lives in ``expectations/ratings.json``; values that depend on the dataset (the
rating scale, the clock, the row floor) are ``$PARAMETER`` entries filled in here. A
failed expectation fails the step (and so the DAG run, before training); the message
names each failed expectation with its observed value. Results: ``validation.json``.

    spark-submit spark_jobs/validate.py --run-dir var/lake/runs/R
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from spark_jobs import config
from spark_jobs.errors import PipelineError
from spark_jobs.runtime import main_for, read_json, run_dir_arg, write_json
from spark_jobs.timing import timer

STAGE = "validate"
DEFAULT_MIN_ROWS = 100


def load_suite_definition(name: str) -> dict[str, Any]:
    path = config.EXPECTATIONS_DIR / f"{name}.json"
    if not path.exists():
        raise PipelineError(f"expectation suite {path} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def suite_parameters(manifest: dict[str, Any], min_rows: int) -> dict[str, float]:
    """Per-run values for the suite's ``$PARAMETER`` placeholders."""
    lo, hi = manifest["source"]["rating_scale"]
    span = hi - lo
    return {
        "rating_min": lo,
        "rating_max": hi,
        "now_epoch_s": int(time.time()) + 24 * 3600,  # a day of clock skew is tolerated
        "min_rows": min_rows,
        # A mean in the outer 5% of the scale means a mislabelled scale or broken export.
        "mean_min": lo + 0.05 * span,
        "mean_max": hi - 0.05 * span,
    }


def describe_failure(res: Any) -> str:
    """``expect_x(column=c): observed ...`` for one failed expectation result."""
    cfg = res.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k in ("column", "column_list")}
    where = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    result = res.result or {}
    observed = result.get("observed_value")
    if observed is None and "unexpected_count" in result:
        sample = result.get("partial_unexpected_list", [])[:5]
        observed = f"{result['unexpected_count']} unexpected values, e.g. {sample}"
    if res.exception_info and res.exception_info.get("raised_exception"):
        observed = f"error: {res.exception_info.get('exception_message')}"
    return f"{cfg.type}({where}): observed {observed}"


def validate_dataframe(df: Any, suite_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run the named suite on a Spark DataFrame; return a JSON-able summary."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    definition = load_suite_definition(suite_name)
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_spark(name="lake")
    asset = source.add_dataframe_asset(name=suite_name)
    batch_def = asset.add_batch_definition_whole_dataframe(f"{suite_name}_batch")
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=definition["name"],
            expectations=definition["expectations"],
            meta=definition.get("meta", {}),
        )
    )
    vd = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_def, suite=suite)
    )
    result = vd.run(
        batch_parameters={"dataframe": df}, expectation_parameters=params, result_format="SUMMARY"
    )
    failures = [describe_failure(r) for r in result.results if not r.success]
    return {
        "suite": suite_name,
        "success": bool(result.success),
        "evaluated": len(result.results),
        "failed": failures,
        "parameters": params,
        "results": [
            {
                "expectation": r.expectation_config.type,
                "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
                "success": bool(r.success),
                "observed": (r.result or {}).get(
                    "observed_value", (r.result or {}).get("unexpected_count")
                ),
            }
            for r in result.results
        ],
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reco validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_dir_arg(p)
    p.add_argument(
        "--min-rows",
        type=int,
        default=DEFAULT_MIN_ROWS,
        help=f"fewest ratings a batch may have (default {DEFAULT_MIN_ROWS})",
    )
    return p


def run(spark: Any, run_dir: Path, min_rows: int = DEFAULT_MIN_ROWS) -> dict[str, Any]:
    manifest = read_json(run_dir / config.RUN_MANIFEST)
    df = spark.read.parquet(str(run_dir / config.RUN_RATINGS))
    with timer(run_dir, STAGE, "ratings_suite") as t:
        summary = validate_dataframe(df, "ratings", suite_parameters(manifest, min_rows))
        t["expectations"] = summary["evaluated"]
        t["failed"] = len(summary["failed"])
    write_json(run_dir / config.RUN_VALIDATION, summary)
    if not summary["success"]:
        raise PipelineError(
            f"data-quality gate failed: {len(summary['failed'])} of {summary['evaluated']} "
            f"expectations of suite 'ratings' failed: "
            + "; ".join(summary["failed"])
            + f". Nothing was trained or published; details in {run_dir / config.RUN_VALIDATION}"
        )
    return {"expectations": summary["evaluated"], "failed": 0}


def step(args: argparse.Namespace) -> dict[str, Any]:
    from spark_jobs.spark import get_spark

    return run(get_spark("reco-validate"), args.run_dir, args.min_rows)


def main(argv: list[str] | None = None) -> int:
    return main_for(STAGE, build_parser, step, argv)


if __name__ == "__main__":
    sys.exit(main())
