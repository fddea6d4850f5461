"""Validate: the data-quality gate on the run's ingested batch, before any training.

Runs the Great Expectations suites ``expectations/ratings.json`` (plus ``items.json`` when
the dataset has titles and ``feedback.json`` when there are feedback events) on the
ingested Parquet, and checks the share of input lines
that ingest quarantined. Values that depend on the run (the rating scale, the clock, the
row floor, the previous accepted batch's size) are the suites' ``$PARAMETER`` entries. Any
failure fails the step, and so the DAG run before training; the message names each failed
check with its observed value. Results: ``validation.json`` and the run's GX Data Docs.

    spark-submit spark_jobs/validate.py --run-dir var/lake/runs/R
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.runs import RunFolder
from reco.runtime import read_json, write_json
from reco.validation import quality

if TYPE_CHECKING:
    from reco.steps import StepArgs

STAGE = "validate"


def suite_parameters(
    manifest: dict[str, Any],
    min_rows: int,
    previous_rows: int | None = None,
    max_row_drop: float = config.DEFAULT_MAX_ROW_DROP,
) -> dict[str, float]:
    """Per-run values for the ratings suite's ``$PARAMETER`` placeholders."""
    lo, hi = manifest["source"]["rating_scale"]
    span = hi - lo
    return {
        "rating_min": lo,
        "rating_max": hi,
        "now_epoch_s": int(time.time()) + 24 * 3600,  # a day of clock skew is tolerated
        "min_rows": min_rows,
        # A batch may shrink by at most max_row_drop vs the previous accepted one.
        "min_rows_vs_previous": (
            math.ceil(previous_rows * (1 - max_row_drop)) if previous_rows else 0
        ),
        # A mean in the outer 5% of the scale means a mislabelled scale or broken export.
        "mean_min": lo + 0.05 * span,
        "mean_max": hi - 0.05 * span,
    }


def quarantine_check(manifest: dict[str, Any], max_share: float) -> tuple[float, str | None]:
    """``(share of malformed lines, failure text or None)``.

    Superseded duplicates are resolved (latest wins) and do not count as malformed.
    """
    lines = manifest["lines_read"] or 1
    share = manifest["n_malformed"] / lines
    if share <= max_share:
        return share, None
    reasons = {
        r: n for r, n in manifest["rejected_by_reason"].items() if r != "duplicate_superseded"
    }
    text = (
        f"quarantine share: observed {share:.2%} of {manifest['lines_read']} lines rejected "
        f"{reasons}, above the limit {max_share:.2%}"
    )
    lo, hi = manifest["source"]["rating_scale"]
    seen_hi = manifest.get("rating_seen_max")
    if reasons.get("rating_out_of_range") and seen_hi is not None and seen_hi > hi:
        text += (
            f"; ratings up to {seen_hi:g} were seen on a declared {lo:g}-{hi:g} scale: if the "
            f"export uses another scale, pass rating_scale (e.g. {lo:g}-{seen_hi:g})"
        )
    return share, text


def run(
    spark: Any,
    run_dir: Path,
    min_rows: int = config.DEFAULT_MIN_ROWS,
    *,
    max_quarantine_share: float = config.DEFAULT_MAX_QUARANTINE_SHARE,
    previous_rows: int | None = None,
    max_row_drop: float = config.DEFAULT_MAX_ROW_DROP,
) -> dict[str, Any]:
    from reco.spark import size_shuffle

    manifest = read_json(RunFolder(run_dir).manifest)
    size_shuffle(spark, int(manifest.get("n_ratings") or 0))
    suites = []
    with timer(run_dir, STAGE, "ratings_suite", source=RunFolder(run_dir).ratings) as t:
        df = spark.read.parquet(str(RunFolder(run_dir).ratings))
        params = suite_parameters(manifest, min_rows, previous_rows, max_row_drop)
        ratings = quality.run_suite(run_dir, "ratings", df, params, manifest["n_ratings"])
        t["expectations"] = ratings["evaluated"]
        t["failed"] = len(ratings["failed"])
    share, quarantine_failure = quarantine_check(manifest, max_quarantine_share)
    if quarantine_failure:
        ratings["failed"].append(quarantine_failure)
        ratings["success"] = False
    suites.append(ratings)
    suites += optional_suites(spark, run_dir, params["now_epoch_s"])
    failures = [f"[{s['suite']}] {f}" for s in suites for f in s["failed"]]
    summary = {
        "success": not failures,
        "failed": failures,
        "quarantine_share": share,
        "max_quarantine_share": max_quarantine_share,
        "suites": suites,
        "data_docs": str(quality.data_docs_dir(run_dir) / "index.html"),
    }
    write_json(RunFolder(run_dir).validation, summary)
    if failures:
        consequence = "Nothing was trained or published"
        if manifest["n_ratings"] < params["min_rows_vs_previous"]:
            consequence += shrink_advice(manifest["n_ratings"], previous_rows, max_row_drop)
        raise PipelineError(
            quality.gate_message("validate", failures, RunFolder(run_dir).validation, consequence)
        )
    return {
        "expectations": sum(s["evaluated"] for s in suites),
        "failed": 0,
        "quarantine_share": round(share, 6),
    }


def shrink_advice(rows: int, previous_rows: int | None, max_row_drop: float) -> str:
    """What to do when the shrink is deliberate (another dataset, a trimmed export)."""
    return (
        f" (this batch has {rows:,} ratings, the previous accepted one {previous_rows:,}: "
        f"more than the {max_row_drop:.0%} shrink allowed). If the change is deliberate, run "
        "again accepting it: reco run --max-row-drop 1 (make run RUN_ARGS='--max-row-drop 1'), "
        "or 'Largest batch shrink' (max_row_drop) set to 1 in the trigger form"
    )


def optional_suites(spark: Any, run_dir: Path, now_epoch_s: Any) -> list[dict[str, Any]]:
    """The items and feedback suites, for the run's inputs that have them."""
    folder = RunFolder(run_dir)
    suites = []
    for name, path, params in (
        ("items", folder.items, {}),
        ("feedback", folder.feedback, {"now_epoch_s": now_epoch_s}),
    ):
        if path.exists():
            with timer(run_dir, STAGE, f"{name}_suite") as t:
                result = quality.run_suite(run_dir, name, spark.read.parquet(str(path)), params)
                t["expectations"] = result["evaluated"]
            suites.append(result)
    return suites


def step(args: StepArgs) -> dict[str, Any]:
    from reco.spark import get_spark

    quality.start_import()  # overlaps the Spark session start

    return run(
        get_spark("reco-validate"),
        args.run_dir,
        args.min_rows,
        max_quarantine_share=args.max_quarantine_share,
        previous_rows=args.previous_rows,
        max_row_drop=args.max_row_drop,
    )
