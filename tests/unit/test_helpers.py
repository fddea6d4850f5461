from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reco import config
from reco.errors import PipelineError
from reco.modeling.train import parse_grid
from reco.orchestration.pipeline import model_version_for
from reco.publishing import warehouse
from reco.reporting.timing import read_timings, timer
from reco.runs import run_key


def test_run_key_is_folder_safe_and_stable() -> None:
    rid = "manual__2026-11-23T18:54:08.957578+00:00"
    assert run_key(rid) == "manual__2026-11-23T18_54_08.957578_00_00"
    assert run_key(rid) == run_key(rid)


def test_model_version_sorts_by_time_and_is_stable() -> None:
    t = datetime(2026, 11, 23, 18, 54, 8, tzinfo=UTC)
    v = model_version_for("run-a", t)
    assert v.startswith("als-20261123T185408Z-") and v == model_version_for("run-a", t)
    assert v != model_version_for("run-b", t)
    assert model_version_for("run-a", t, "ease") == "ease-" + v.removeprefix("als-")


def test_model_version_names_the_family_the_train_step_chose(tmp_path: Path) -> None:
    """run.json is written before training; the version takes the trained model's family."""
    from reco.orchestration.pipeline import version_stamp_for
    from reco.runtime import run_identity, write_json

    t = datetime(2026, 11, 23, 18, 54, 8, tzinfo=UTC)
    stamp = version_stamp_for("run-a", t)
    write_json(
        tmp_path / "run.json",
        {
            "version_stamp": stamp,
            "model_version": model_version_for("run-a", t),
            "generated_at": t.isoformat(),
        },
    )
    assert run_identity(tmp_path) == (f"als-{stamp}", t)
    write_json(tmp_path / config.RUN_MODEL / "model.json", {"family": "ease", "lambda": 300})
    assert run_identity(tmp_path) == (f"ease-{stamp}", t)


def test_parse_grid_defaults_and_errors() -> None:
    assert parse_grid("") == config.DEFAULT_GRID
    with pytest.raises(PipelineError, match="must be numbers"):
        parse_grid('{"rank": ["ten"]}')
    g = parse_grid('{"rank": [5], "maxIter": 3}')
    assert g["rank"] == [5] and g["maxIter"] == [3]
    assert g["regParam"] == config.DEFAULT_GRID["regParam"]
    with pytest.raises(PipelineError, match="not valid JSON"):
        parse_grid("{rank")
    with pytest.raises(PipelineError, match="keys among"):
        parse_grid('{"alpha": [1]}')


def test_timer_records_phases_and_failures(tmp_path: Path) -> None:
    with timer(tmp_path, "train", "fit", rank=10) as rec:
        rec["rows"] = 5
    with pytest.raises(RuntimeError), timer(tmp_path, "train", "refit"):
        raise RuntimeError("boom")
    rows = {(r["stage"], r["phase"]): r for r in read_timings(tmp_path)}
    assert rows[("train", "fit")]["details"] == {"rank": 10, "rows": 5}
    assert rows[("train", "refit")]["details"] == {"failed": True}
    assert rows[("train", "fit")]["seconds"] >= 0


def test_named_statements_split_in_order() -> None:
    steps = warehouse.named_statements("publish_recommendations.sql")
    assert list(steps) == ["lock", "create_staging", "index_staging", "swap"]
    assert "PRIMARY KEY" in steps["index_staging"] and "PRIMARY KEY" not in steps["create_staging"]
    assert "pg_advisory_xact_lock" in steps["lock"]


def test_describe_hides_credentials() -> None:
    text = warehouse.describe("postgresql://bob:s3cret@db.example:5433/wh")
    assert text == "db.example:5433/wh" and "s3cret" not in text


def test_unreachable_warehouse_names_host_and_cause() -> None:
    with pytest.raises(
        PipelineError,
        match=r"cannot reach the warehouse PostgreSQL at "
        r"127\.0\.0\.1:1/wh: .*",
    ) as info:
        warehouse.connect("postgresql://u:p@127.0.0.1:1/wh")
    assert info.value.retryable


def test_expectation_suite_file_is_valid_json() -> None:
    suite = json.loads((config.EXPECTATIONS_DIR / "ratings.json").read_text())
    assert suite["name"] == "ratings" and len(suite["expectations"]) >= 10
    assert {e["type"] for e in suite["expectations"]} >= {
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_between",
    }


def test_pyspark_and_pyspark_client_versions_match() -> None:
    import pyspark

    assert pyspark.__version__ == "4.2.0"
