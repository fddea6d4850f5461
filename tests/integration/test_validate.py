"""The Great Expectations gate on real Spark frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reco.data import formats, ingest
from reco.errors import PipelineError
from reco.runs import RunFolder
from reco.validation import quality, validate


@pytest.fixture(scope="module")
def ml100k_run(spark, ml100k: Path, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("validate_run")
    ingest.run(spark, d, formats.detect_source(ml100k))
    return d


def test_ml100k_passes_every_expectation(spark, ml100k_run: Path) -> None:
    result = validate.run(spark, ml100k_run)
    # 18 ratings expectations + 7 items expectations; nothing quarantined.
    assert result == {"expectations": 25, "failed": 0, "quarantine_share": 0.0}
    summary = json.loads((RunFolder(ml100k_run).validation).read_text())
    assert [s["suite"] for s in summary["suites"]] == ["ratings", "items"]
    assert all(r["success"] for s in summary["suites"] for r in s["results"])


def test_data_docs_page_lists_every_expectation(spark, ml100k_run: Path) -> None:
    validate.run(spark, ml100k_run)
    index = quality.data_docs_dir(ml100k_run) / "index.html"
    assert index.exists()
    assert "<html" in index.read_text().lower()
    pages = {p.parent.parent.parent.name: p for p in index.parent.glob("validations/*/*/*/*.html")}
    assert set(pages) >= {"ratings", "items"}
    for suite in ("ratings", "items"):
        page = pages[suite].read_text()
        definition = quality.load_suite_definition(suite)
        # One pass/fail icon per expectation, plus one for the suite's status.
        icons = page.count("fa-check-circle") + page.count("fa-times")
        assert icons == len(definition["expectations"]) + 1, suite
        for column in {e["kwargs"].get("column") for e in definition["expectations"]} - {None}:
            assert column in page, (suite, column)


def test_row_floor_failure_names_expectation_and_observed_value(spark, ml100k_run) -> None:
    with pytest.raises(PipelineError) as info:
        validate.run(spark, ml100k_run, min_rows=200_000)
    msg = str(info.value)
    assert "1 check(s) failed" in msg
    assert "[ratings] expect_table_row_count_to_be_between(): observed 100000" in msg
    assert "Nothing was trained or published" in msg and "index.html" in msg


def test_batch_shrinking_vs_previous_accepted_fails(spark, ml100k_run) -> None:
    validate.run(spark, ml100k_run, previous_rows=199_999)  # shrank by just under half: ok
    with pytest.raises(PipelineError) as info:
        validate.run(spark, ml100k_run, previous_rows=250_000)
    assert (
        "expect_table_row_count_to_be_between(): observed 100000 (the batch shrank more than "
        "max_row_drop vs the previous accepted batch)" in str(info.value)
    )
    # ... and how to accept a deliberate change (another dataset): the flag and the field.
    assert (
        "(this batch has 100,000 ratings, the previous accepted one 250,000: more than the "
        "50% shrink allowed). If the change is deliberate, run again accepting it: reco run "
        "--max-row-drop 1 (make run RUN_ARGS='--max-row-drop 1'), or 'Largest batch shrink' "
        "(max_row_drop) set to 1 in the trigger form"
    ) in str(info.value)
    validate.run(spark, ml100k_run, previous_rows=250_000, max_row_drop=0.7)


def ingest_lines(spark, run_dir: Path, lines: list[str]) -> None:
    """Write ML-100K-layout lines to ``run_dir/u.data`` and ingest them there."""
    f = run_dir / "u.data"
    f.write_text("".join(lines))
    ingest.run(spark, run_dir, formats.detect_source(f))


def test_implausible_mean_fails_the_gate(spark, tmp_path: Path) -> None:
    ingest_lines(
        spark, tmp_path, [f"{u}\t{i}\t1\t100\n" for u in range(1, 21) for i in range(1, 11)]
    )
    with pytest.raises(
        PipelineError,
        match=r"expect_column_mean_to_be_between\(column=rating\): "
        r"observed 1\.0",
    ):
        validate.run(spark, tmp_path, min_rows=10)


def test_future_timestamps_are_quarantined(spark, tmp_path: Path) -> None:
    rows = [f"{u}\t{i}\t{1 + (u + i) % 5}\t100\n" for u in range(1, 21) for i in range(1, 11)]
    ingest_lines(spark, tmp_path, [*rows, "21\t1\t3\t4102444800\n"])  # 2100-01-01
    manifest = json.loads((RunFolder(tmp_path).manifest).read_text())
    assert manifest["rejected_by_reason"] == {"timestamp_in_future": 1}
    # 1 of 201 lines is under the default 1% limit; a stricter limit refuses the batch.
    validate.run(spark, tmp_path, min_rows=10)
    with pytest.raises(PipelineError, match=r"quarantine share: observed 0\.50% of 201 lines"):
        validate.run(spark, tmp_path, min_rows=10, max_quarantine_share=0.001)


@pytest.mark.parametrize("engine", ["pandas", "spark"])
def test_both_gx_engines_give_the_same_verdicts(spark, ml100k_run, monkeypatch, engine) -> None:
    """Small batches are validated on GX's pandas engine, large ones on its Spark engine:
    the same batch gets the same outcome and the same failure message from both."""
    monkeypatch.setattr(quality, "PANDAS_MAX_ROWS", 10**9 if engine == "pandas" else 0)
    assert validate.run(spark, ml100k_run)["failed"] == 0
    summary = json.loads((RunFolder(ml100k_run).validation).read_text())
    assert {s["engine"] for s in summary["suites"]} == {engine}
    observed = {
        (r["expectation"], r["kwargs"].get("column")): r["observed"]
        for r in summary["suites"][0]["results"]
    }
    assert observed[("expect_column_mean_to_be_between", "rating")] == pytest.approx(3.52986)
    assert observed[("expect_table_row_count_to_be_between", None)] == 100_000
    with pytest.raises(PipelineError) as info:
        validate.run(spark, ml100k_run, min_rows=200_000)
    assert "[ratings] expect_table_row_count_to_be_between(): observed 100000" in str(info.value)


# --- every suite of expectations/, through the project's suite runner ---------------------
def feedback_batch(spark, event: str = "watched"):
    return spark.createDataFrame(
        [(1, 10, "like", 1_700_000_000), (1, 11, "dislike", 1_700_000_000), (2, 10, event, 5)],
        "user_id int, item_id int, event string, ts long",
    )


def recommendations_batch(spark, rated_at_rank_2: bool = False):
    """The output suite's per-user summary (reco.data.transforms.recommendation_summary) of
    top-2 lists for three users of a 6-item model, each user having rated two items."""
    from reco.data.transforms import recommendation_summary

    rated = {1: [1, 2], 2: [3, 4], 3: [5, 6]}
    ratings = spark.createDataFrame(
        [(u, i) for u, items in rated.items() for i in items], "user_id long, item_id long"
    )
    lists = {1: [3, 4], 2: [1, 2], 3: [1, 2]}
    if rated_at_rank_2:
        lists[2] = [1, 4]  # item 4: user 2 rated it
    recs = spark.createDataFrame(
        [(u, i, r, 1.0 / r) for u, items in lists.items() for r, i in enumerate(items, 1)],
        "user_id long, item_id long, rank int, score double",
    )
    items = spark.createDataFrame([(i,) for i in range(1, 7)], "item_id long")
    return recommendation_summary(recs, ratings, items, 2)


def suite_batches(spark, ml100k_run: Path, suite: str) -> tuple[object, object, dict, str]:
    """(a small good batch, the same batch breaking one expectation, the suite's run
    parameters, the failure that breakage must be reported as)."""
    from pyspark.sql import functions as F

    folder = RunFolder(ml100k_run)
    if suite == "ratings":
        good = spark.read.parquet(str(folder.ratings)).orderBy("user_id", "item_id").limit(200)
        params = validate.suite_parameters(json.loads(folder.manifest.read_text()), 100)
        bad = good.unionByName(good.limit(1).withColumn("rating", F.lit(2.0)))
        expected = "expect_compound_columns_to_be_unique(column_list=['user_id', 'item_id'])"
        return good, bad, params, expected
    if suite == "items":
        good = spark.read.parquet(str(folder.items)).orderBy("item_id").limit(50)
        bad = good.unionByName(good.limit(1).withColumn("title", F.lit("Another title")))
        return good, bad, {}, "expect_column_values_to_be_unique(column=item_id)"
    if suite == "feedback":
        params = {"now_epoch_s": 1_800_000_000}
        expected = "expect_column_values_to_be_in_set(column=event)"
        return feedback_batch(spark), feedback_batch(spark, "love"), params, expected
    return (
        recommendations_batch(spark),
        recommendations_batch(spark, rated_at_rank_2=True),
        {"n_users": 3},
        "expect_column_values_to_be_between(column=n_rated): observed 1 unexpected values",
    )


@pytest.mark.parametrize("suite", ["ratings", "items", "feedback", "recommendations"])
def test_each_suite_passes_a_good_batch_and_names_the_expectation_a_bad_one_breaks(
    spark, ml100k_run: Path, tmp_path: Path, suite: str
) -> None:
    good, bad, params, expected = suite_batches(spark, ml100k_run, suite)
    n_expectations = len(quality.load_suite_definition(suite)["expectations"])

    passed = quality.run_suite(tmp_path, suite, good, params)
    assert passed["success"] and passed["failed"] == [], passed["failed"]
    assert passed["evaluated"] == n_expectations
    assert all(r["success"] for r in passed["results"])

    failed = quality.run_suite(tmp_path, suite, bad, params)
    assert not failed["success"] and failed["evaluated"] == n_expectations
    [failure] = failed["failed"]  # only the expectation the batch breaks
    assert failure.startswith(expected), failure
