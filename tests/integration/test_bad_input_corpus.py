"""The bad-input corpus (``tests/fixtures/bad_input``): each file is one kind of breakage,
and each has its exact outcome asserted here, with real Spark and the real PostgreSQL.

The gate is run the way the DAG runs it: detect the layout (``prepare``), ``ingest``,
``validate`` with the default thresholds, then ``record_quality`` into
``reco.data_quality_runs``. A failing case must name the problem and keep the rejected
lines in the quarantine Parquet. None of these steps writes the published table, so
whether a refused batch leaves it intact is tested end to end, not here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from reco.data import formats, ingest
from reco.errors import PipelineError
from reco.publishing import warehouse
from reco.runs import RunFolder
from reco.validation import quality, validate

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "bad_input"
BASE = 250  # valid ratings every corpus file starts from (25 users x 10 items)


@dataclass(frozen=True)
class Case:
    file: str
    # reason -> exact raw lines quarantined (or their number, when there are many)
    quarantined: dict[str, list[str] | int] = field(default_factory=dict)
    kept: int | None = BASE  # ratings accepted by ingest; None when ingest never ran/failed
    error: str | None = None  # regex the failure message must match; None = gate passes
    stage: str | None = None  # where it fails: detect, ingest or validate
    fmt: str = "ml-100k"


CASES = [
    Case(
        "wrong_delimiter.data",
        {"wrong_field_count": 250},
        kept=None,
        stage="ingest",
        error=r"all 250 lines were rejected \(\{'wrong_field_count': 250\}\)\. Most lines do "
        r"not split into the expected fields with the TAB separator of format ml-100k",
    ),
    Case("extra_field_on_one_line.data", {"wrong_field_count": ["26\t1\t4\t881260000\textra"]}),
    Case("header_in_headerless.data", {"invalid_user_id": ["user_id\titem_id\trating\ttimestamp"]}),
    Case("non_numeric_rating.data", {"invalid_rating": ["26\t1\tfour\t881260000"]}),
    Case(
        "rating_0_and_6.data",
        {"rating_out_of_range": ["26\t1\t0\t881260000", "26\t2\t6\t881260001"]},
    ),
    Case("nan_rating.data", {"invalid_rating": ["26\t1\tNaN\t881260000"]}),
    Case(
        "negative_ids.data",
        {"invalid_user_id": ["-3\t1\t4\t881260000"], "invalid_item_id": ["26\t-7\t4\t881260001"]},
    ),
    Case(
        "huge_ids.data",
        {
            "invalid_user_id": ["99999999999\t1\t4\t881260000"],
            "invalid_item_id": ["26\t3000000000\t4\t881260001"],
        },
    ),
    Case("empty.data", kept=None, stage="detect", error=r"empty.data is empty: there are no"),
    Case("only_blank_lines.data", kept=None, stage="detect", error=r"holds only blank lines"),
    Case(
        "only_header.csv",
        kept=None,
        stage="ingest",
        error=r"only_header.csv has no rating lines \(only a header or blank lines\)",
        fmt="auto",
    ),
    Case("duplicate_rows.data", {"duplicate_superseded": 10}),
    Case(
        "conflicting_duplicates.data",
        {"duplicate_superseded": ["1\t1\t1\t881250101", "2\t1\t1\t881000000"]},
    ),
    Case("future_timestamp.data", {"timestamp_in_future": ["26\t1\t4\t4102444800"]}),
    Case("non_utf8_bytes.data", {"invalid_rating": ["26\t1\t\ufffd\ufffd4\t881260000"]}),
    Case("windows_line_endings.data"),
    Case("trailing_blank_lines.data"),
    Case("truncated_last_line.data", {"wrong_field_count": ["26\t1\t"]}),
    Case(
        "scale_1_10_declared_1_5.data",
        {"rating_out_of_range": 125},
        kept=125,
        stage="validate",
        error=r"quarantine share: observed 50\.00% of 250 lines rejected "
        r"\{'rating_out_of_range': 125\}, above the limit 1\.00%; ratings up to 10 were seen "
        r"on a declared 1-5 scale: if the export uses another scale, pass rating_scale "
        r"\(e\.g\. 1-10\)",
    ),
    Case(
        "renamed_column.csv",
        kept=None,
        stage="detect",
        error=r"looks like a MovieLens ratings.csv but lacks column\(s\) \['rating'\] \(its "
        r"header is \['userId', 'movieId', 'score', 'timestamp'\]\)",
        fmt="auto",
    ),
    Case(
        "missing_column.csv",
        kept=None,
        stage="detect",
        error=r"lacks column\(s\) \['rating'\]",
        fmt="auto",
    ),
    Case("extra_columns.csv", fmt="auto"),
    Case(
        "all_ratings_invalid.data",
        {"invalid_rating": 250},
        kept=None,
        stage="ingest",
        error=r"no usable ratings in .*all_ratings_invalid.data: all 250 lines were rejected "
        r"\(\{'invalid_rating': 250\}\)",
    ),
    Case(
        "too_many_bad_lines.data",
        {"invalid_rating": 10},
        stage="validate",
        error=r"quarantine share: observed 3\.85% of 260 lines rejected \{'invalid_rating': 10\}, "
        r"above the limit 1\.00%",
    ),
    Case(
        "too_few_rows.data",
        kept=40,
        stage="validate",
        error=r"\[ratings\] expect_table_row_count_to_be_between\(\): observed 40 \(fewer "
        r"ratings than the configured floor",
    ),
    Case(
        "constant_rating.data",
        stage="validate",
        error=r"expect_column_mean_to_be_between\(column=rating\): observed 1\.0 \(mean rating "
        r"in the outer 5% of the scale",
    ),
]


def test_corpus_has_a_case_for_every_file() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix in (".data", ".csv")}
    assert on_disk == {c.file for c in CASES}
    assert len(CASES) >= 20


def run_gate(spark, case: Case, run_dir: Path, url: str) -> tuple[str | None, str | None]:
    """(stage that failed, message) the way the DAG runs prepare -> ingest -> validate."""
    stage = "detect"
    try:
        src = formats.detect_source(CORPUS / case.file, case.fmt)
        stage = "ingest"
        ingest.run(spark, run_dir, src)
        stage = "validate"
        validate.run(spark, run_dir)
        return None, None
    except PipelineError as exc:
        return stage, str(exc)
    finally:
        quality.record(url, run_dir, f"corpus-{run_dir.name}")


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_corpus_case(spark, warehouse_url: str, tmp_path: Path, case: Case) -> None:
    run_dir = tmp_path / re.sub(r"\W", "_", case.file)
    run_dir.mkdir()
    stage, message = run_gate(spark, case, run_dir, warehouse_url)

    # The failure: where, and what it says.
    assert stage == case.stage, message
    if case.error:
        assert message and re.search(case.error, message), message

    # Quarantine: exactly the expected lines, each with its reason; nothing dropped.
    q_path = RunFolder(run_dir).quarantine
    quarantine = (
        pd.read_parquet(q_path) if q_path.exists() else pd.DataFrame(columns=["raw", "reason"])
    )
    got = {r: sorted(g["raw"]) for r, g in quarantine.groupby("reason")}
    assert set(got) == set(case.quarantined), got
    for reason, expected in case.quarantined.items():
        if isinstance(expected, int):
            assert len(got[reason]) == expected, reason
        else:
            assert got[reason] == sorted(expected), reason

    # Accepted ratings, and every input line accounted for.
    if case.kept is not None and stage != "ingest":
        manifest = json.loads((RunFolder(run_dir).manifest).read_text())
        assert manifest["n_ratings"] == case.kept
        assert manifest["n_ratings"] + manifest["n_rejected"] == manifest["lines_read"]

    # What the warehouse records for a batch that reached validate.
    if stage in (None, "validate"):
        with warehouse.connection(warehouse_url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT success, failed, n_rejected, rejected_by_reason FROM "
                "reco.data_quality_runs WHERE run_id = %s AND suite = 'ratings'",
                (f"corpus-{run_dir.name}",),
            )
            success, failed, n_rejected, by_reason = cur.fetchone()
        assert success is (stage is None)
        assert bool(failed) is (stage is not None)
        expected_counts = {
            r: (v if isinstance(v, int) else len(v)) for r, v in case.quarantined.items()
        }
        assert by_reason == expected_counts and n_rejected == sum(expected_counts.values())


def test_conflicting_duplicates_keep_the_latest(spark, tmp_path: Path) -> None:
    ingest.run(
        spark, tmp_path, formats.detect_source(CORPUS / "conflicting_duplicates.data", "ml-100k")
    )
    kept = pd.read_parquet(RunFolder(tmp_path).ratings).set_index(["user_id", "item_id"])
    assert kept.loc[(1, 1), "rating"] == 5.0  # the later line wins over the base rating 1
    assert kept.loc[(2, 1), "rating"] == 3.0  # the earlier conflicting line (1) loses
