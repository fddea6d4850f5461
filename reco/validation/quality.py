"""Data quality: running the Great Expectations suites of ``expectations/`` and recording
their outcome.

Each suite is a versioned GX 1.x JSON file; values that depend on the run (the rating
scale, the clock, the row floors) are ``$PARAMETER`` entries filled in per run. A run's
GX project lives in its lake folder (``<run>/gx``) so the validate and recommend steps add
to the same results, and its Data Docs site is written to
``var/reports/data_docs/<run>/index.html``: each validation named by the Airflow run id and
its data asset, its pages pointed at vendored CSS/JS (``data_docs_assets``) so they render
offline. ``record`` copies the outcome of every suite run into ``reco.data_quality_runs`` so
SQL sees what the gate decided and why.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reco import config
from reco.errors import PipelineError
from reco.runs import RunFolder

SITE = "run_site"
# Batches up to this many rows are validated by GX's pandas engine (collected through
# Arrow): on small batches GX's Spark engine spends seconds in a dozen small Spark jobs
# (measured on ML-100K: 4.3 s warm, 11 s as a step's first work, vs 1.5 s on pandas).
# Larger batches stay on Spark. RECO_GX_PANDAS_MAX_ROWS=0 always uses Spark.
PANDAS_MAX_ROWS = int(os.environ.get("RECO_GX_PANDAS_MAX_ROWS", "2000000"))
_import_thread: threading.Thread | None = None


def start_import() -> None:
    """Import Great Expectations in a background thread (it takes ~7 s here), so a step can
    overlap it with the Spark session start, which mostly waits for the JVM."""
    global _import_thread
    if _import_thread is None and "great_expectations" not in sys.modules:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        _import_thread = threading.Thread(
            target=importlib.import_module, args=("great_expectations",), daemon=True
        )
        _import_thread.start()


def _wait_for_import() -> None:
    if _import_thread is not None:
        _import_thread.join()


def load_suite_definition(name: str) -> dict[str, Any]:
    path = config.EXPECTATIONS_DIR / f"{name}.json"
    if not path.exists():
        raise PipelineError(f"expectation suite {path} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def data_docs_dir(run_dir: Path) -> Path:
    return config.DATA_DOCS_DIR / run_dir.name


def airflow_run_id(run_dir: Path) -> str:
    """The Airflow run id of a run folder (``run.json``, written by the DAG's prepare task);
    the folder name for a folder set up by hand."""
    path = RunFolder(run_dir).run_info
    if path.exists():
        run_id = json.loads(path.read_text(encoding="utf-8")).get("run_id")
        if run_id:
            return str(run_id)
    return run_dir.name


def gx_run_name(run_id: str) -> str:
    """``run_id`` as GX's run name, which becomes a folder and a URL path segment of the
    Data Docs: ids in Airflow's default run-id alphabet (``manual__2026-11-26T23:28:15+00:00``)
    stay as they are, other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.~:+-]", "_", run_id) or "run"


def plain(value: Any) -> Any:
    """numpy scalars and tuples of them as plain Python values, for readable messages."""
    if isinstance(value, list | tuple):
        return tuple(plain(v) for v in value)
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def describe_failure(res: Any) -> str:
    """``expect_x(column=c): observed ...`` for one failed expectation result."""
    cfg = res.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k in ("column", "column_list", "column_A")}
    if "column_A" in kwargs:
        kwargs["column_B"] = cfg.kwargs.get("column_B")
    where = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    result = res.result or {}
    observed = result.get("observed_value")
    if observed is None and "unexpected_count" in result:
        sample = [plain(v) for v in result.get("partial_unexpected_list", [])[:5]]
        observed = f"{result['unexpected_count']} unexpected values, e.g. {sample}"
    if res.exception_info and res.exception_info.get("raised_exception"):
        observed = f"error: {res.exception_info.get('exception_message')}"
    why = (cfg.meta or {}).get("why")
    return f"{cfg.type}({where}): observed {observed}" + (f" ({why})" if why else "")


def _context(run_dir: Path) -> Any:
    """The run's file-backed GX project, with its Data Docs site configured."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    _wait_for_import()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(run_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if SITE not in (context.variables.data_docs_sites or {}):
        context.add_data_docs_site(
            SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir(run_dir)),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def run_suite(
    run_dir: Path,
    suite_name: str,
    df: Any,
    params: dict[str, Any],
    rows: int | None = None,
    *,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Validate a Spark DataFrame against ``expectations/<suite_name>.json``: with GX's
    pandas engine when it has at most ``PANDAS_MAX_ROWS`` rows (``rows``, counted if not
    given), else with its Spark engine. The validation's run name is ``run_id`` (default:
    the run folder's Airflow run id), its data asset ``suite_name``.

    Updates the run's Data Docs and returns a JSON-able summary (never raises on failed
    expectations: the caller decides).
    """
    rows = df.count() if rows is None else rows
    engine = "pandas" if rows <= PANDAS_MAX_ROWS else "spark"
    if engine == "pandas":
        df = df.toPandas()
    definition = load_suite_definition(suite_name)
    context = _context(run_dir)
    checkpoint, asset_name = gx_checkpoint(context, suite_name, definition, engine)
    from great_expectations.core.run_identifier import RunIdentifier

    outcome = checkpoint.run(
        batch_parameters={"dataframe": df},
        expectation_parameters=params,
        run_id=RunIdentifier(
            run_name=gx_run_name(run_id or airflow_run_id(run_dir)),
            run_time=datetime.now(UTC),
        ),
    )
    key, result = next(iter(outcome.run_results.items()))
    update_data_docs(context, run_dir, key, result, asset_name)
    return summary(suite_name, engine, rows, params, result, run_dir)


def gx_checkpoint(
    context: Any, suite_name: str, definition: dict[str, Any], engine: str
) -> tuple[Any, str]:
    """The run's GX checkpoint of the suite ``definition`` on a whole-dataframe
    asset of the ``pandas`` or ``spark`` data source (each added once, updated after), and
    the asset's name."""
    import great_expectations as gx  # imported by _context

    source = (
        context.data_sources.add_or_update_pandas(name="lake_pandas")
        if engine == "pandas"
        else context.data_sources.add_or_update_spark(name="lake")
    )
    asset = next((a for a in source.assets if a.name == suite_name), None) or (
        source.add_dataframe_asset(name=suite_name)
    )
    batch_def = next(
        (b for b in asset.batch_definitions if b.name == f"{suite_name}_batch"), None
    ) or asset.add_batch_definition_whole_dataframe(f"{suite_name}_batch")
    suite = context.suites.add_or_update(
        gx.ExpectationSuite(
            name=definition["name"],
            expectations=definition["expectations"],
            meta=definition.get("meta", {}),
        )
    )
    vd = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{suite_name}_{engine}", data=batch_def, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{suite_name}_{engine}_checkpoint",
            validation_definitions=[vd],
            actions=[],  # Data Docs are built by run_suite, once the asset is named
            result_format="SUMMARY",
        )
    )
    return checkpoint, asset.name


def summary(
    suite_name: str, engine: str, rows: int, params: dict[str, Any], result: Any, run_dir: Path
) -> dict[str, Any]:
    """A validation's JSON-able summary: the verdict, each failed check in a sentence, and
    every expectation's outcome."""
    return {
        "suite": suite_name,
        "engine": engine,
        "rows": rows,
        "success": bool(result.success),
        "evaluated": len(result.results),
        "failed": [describe_failure(r) for r in result.results if not r.success],
        "parameters": params,
        "data_docs": str(data_docs_dir(run_dir) / "index.html"),
        "results": [
            {
                "expectation": r.expectation_config.type,
                "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
                "success": bool(r.success),
                "observed": plain(
                    (r.result or {}).get("observed_value", (r.result or {}).get("unexpected_count"))
                ),
            }
            for r in result.results
        ],
    }


def update_data_docs(context: Any, run_dir: Path, key: Any, result: Any, asset_name: str) -> None:
    """Render one validation's page (with its suite's page and the index) into the run's
    Data Docs, then point the site's pages at the vendored CSS/JS.

    GX 1.24's page header reads the data asset from the legacy ``batch_spec``, which a fluent
    dataframe asset leaves without it ("Data asset: None"), so it is recorded there first.
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    from reco.validation import data_docs_assets

    result.meta.setdefault("batch_spec", {})["data_asset_name"] = asset_name
    context.validation_results_store.set(key, result)
    context.build_data_docs(
        site_names=[SITE],
        resource_identifiers=[key, ExpectationSuiteIdentifier(name=result.suite_name)],
    )
    data_docs_assets.localize_site(data_docs_dir(run_dir))


def gate_message(stage: str, failures: list[str], details: Path, consequence: str) -> str:
    """One message naming every failed check, what did not happen, and where to look."""
    return (
        f"data-quality gate failed at {stage}: {len(failures)} check(s) failed: "
        + "; ".join(failures)
        + f". {consequence}; details in {details}, Data Docs in "
        f"{data_docs_dir(details.parent) / 'index.html'}"
    )


# --------------------------------------------------------------------------------------
# Warehouse record
# --------------------------------------------------------------------------------------
def quality_rows(run_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """One row per suite run in ``run_dir`` (plus the quarantine counts of ingest)."""
    from reco.runtime import read_json

    manifest_path = RunFolder(run_dir).manifest
    manifest = read_json(manifest_path) if manifest_path.exists() else {}
    rows = []
    folder = RunFolder(run_dir)
    for path in (folder.validation, folder.output_validation):
        if not path.exists():
            continue
        report = read_json(path)
        for suite in report.get("suites", []):
            counts: dict[str, Any] = {}
            if suite["suite"] == "ratings":
                counts = {**manifest, "quarantine_share": report.get("quarantine_share")}
                counts["n_accepted"] = manifest.get("n_ratings")
            elif suite["suite"] == "feedback":
                counts = dict(manifest.get("feedback") or {})
                counts["lines_read"] = counts.get("lines")
                counts["n_accepted"] = counts.get("applied")
            rows.append(
                {
                    "run_id": run_id,
                    "suite": suite["suite"],
                    "success": suite["success"],
                    "evaluated": suite["evaluated"],
                    "failed": json.dumps(suite["failed"]),
                    "lines_read": counts.get("lines_read"),
                    "n_accepted": counts.get("n_accepted"),
                    "n_rejected": counts.get("n_rejected"),
                    "quarantine_share": counts.get("quarantine_share"),
                    "rejected_by_reason": json.dumps(counts.get("rejected_by_reason", {})),
                    "quarantine_path": counts.get("quarantine_path"),
                    "data_docs": suite.get("data_docs"),
                }
            )
    return rows


def record(url: str, run_dir: Path, run_id: str) -> int:
    """Write the run's suite outcomes to ``reco.data_quality_runs`` (replacing earlier
    rows of the same run); returns the number of rows."""
    from reco.publishing import warehouse

    rows = quality_rows(run_dir, run_id)
    sql = warehouse.named_statements("data_quality.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["delete_run"], {"run_id": run_id})
        for row in rows:
            cur.execute(sql["insert"], row)
    return len(rows)


def previous_accepted_rows(url: str, run_id: str) -> int | None:
    """Ratings in the latest batch (of another run) that passed the ratings suite, if any."""
    from reco.publishing import warehouse

    sql = warehouse.named_statements("data_quality.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["previous_accepted_rows"], {"run_id": run_id})
        row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else None
