"""Ingest every supported layout with real Spark, on the real shared MovieLens files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reco.data import formats, ingest
from reco.errors import PipelineError
from reco.runs import RunFolder


def ingest_path(spark, run_dir: Path, path: Path, fmt: str = "auto", **kw) -> dict:
    src = formats.detect_source(path, fmt, **kw)
    ingest.run(spark, run_dir, src)
    return json.loads((RunFolder(run_dir).manifest).read_text())


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def test_ml100k(spark, run_dir: Path, ml100k: Path) -> None:
    m = ingest_path(spark, run_dir, ml100k)
    assert (m["n_ratings"], m["n_users"], m["n_items"], m["n_rejected"]) == (100000, 943, 1682, 0)
    ratings = read(RunFolder(run_dir).ratings)
    assert list(ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert ratings["rating"].mean() == pytest.approx(3.52986)
    items = read(RunFolder(run_dir).items)
    assert len(items) == 1682
    toy = items.loc[items["item_id"] == 1].iloc[0]
    assert toy["title"] == "Toy Story (1995)" and "Animation" in toy["genres"]


def test_ml_latest_small(spark, run_dir: Path, ml_latest: Path) -> None:
    m = ingest_path(spark, run_dir, ml_latest)
    assert (m["n_ratings"], m["n_users"], m["n_items"]) == (100836, 610, 9724)
    assert m["source"]["rating_scale"] == [0.5, 5.0]
    ratings = read(RunFolder(run_dir).ratings)
    assert set(ratings["rating"].unique()) >= {0.5, 4.5}  # half stars kept
    assert len(read(RunFolder(run_dir).items)) == 9742


@pytest.fixture(scope="module")
def ml100k_sample(ml100k: Path) -> pd.DataFrame:
    return pd.read_csv(
        ml100k / "u.data", sep="\t", header=None, nrows=2000, names=["user", "item", "rating", "ts"]
    )


def test_ml1m_double_colon_layout(spark, run_dir: Path, tmp_path: Path, ml100k_sample) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    lines = [f"{r.user}::{r.item}::{r.rating}::{r.ts}" for r in ml100k_sample.itertuples()]
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n")
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's\n2::Café (1999)::Drama\n".encode("latin-1")
    )
    m = ingest_path(spark, run_dir, folder)
    assert m["source"]["format"] == "ml-1m"
    assert m["n_ratings"] == len(ml100k_sample.drop_duplicates(["user", "item"]))
    items = read(RunFolder(run_dir).items)
    assert items.set_index("item_id").loc[2, "title"] == "Café (1999)"


def test_generic_csv_with_mapping(spark, run_dir: Path, tmp_path: Path, ml100k_sample) -> None:
    f = tmp_path / "export.csv"
    ml100k_sample.rename(
        columns={"user": "uid", "item": "mid", "rating": "stars", "ts": "when"}
    ).to_csv(f, index=False)
    m = ingest_path(
        spark,
        run_dir,
        f,
        "csv",
        columns=formats.parse_mapping("user=uid,item=mid,rating=stars,timestamp=when"),
    )
    assert m["source"]["format"] == "csv" and m["n_ratings"] == 2000
    got = read(RunFolder(run_dir).ratings).sort_values(["user_id", "item_id"])
    want = ml100k_sample.sort_values(["user", "item"])
    assert got["rating"].tolist() == want["rating"].astype(float).tolist()


def test_parquet_with_mapping(spark, run_dir: Path, tmp_path: Path, ml100k_sample) -> None:
    f = tmp_path / "ratings.parquet"
    ml100k_sample.rename(columns={"user": "u", "item": "i", "rating": "r"}).to_parquet(f)
    m = ingest_path(
        spark,
        run_dir,
        f,
        "parquet",
        columns=formats.parse_mapping("user=u,item=i,rating=r,timestamp=ts"),
    )
    assert m["source"]["format"] == "parquet" and m["n_ratings"] == 2000 and m["n_rejected"] == 0


def test_csv_missing_mapped_column_is_named(spark, run_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_text("uid,mid,score\n1,2,3\n")
    with pytest.raises(
        PipelineError, match=r"lacks required column\(s\) rating \(column 'stars'\)"
    ):
        ingest_path(
            spark,
            run_dir,
            f,
            "csv",
            columns=formats.parse_mapping("user=uid,item=mid,rating=stars"),
        )


def test_bad_lines_are_quarantined_with_reasons(spark, run_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "u.data"
    f.write_bytes(
        b"1\t10\t4\t100\r\n"  # good (Windows line ending)
        b"1\t10\t5\t200\n"  # same pair, later: supersedes the first
        b"2\t11\tfive\t100\n"  # non-numeric rating
        b"3\t12\t6\t100\n"  # out of the 1-5 scale
        b"-4\t12\t3\t100\n"  # negative user id
        b"5\t99999999999\t3\t100\n"  # item id beyond the int range
        b"6\t13\t3\n"  # missing a field
        b"7\t14\tNaN\t100\n"  # NaN rating
        b"8\t15\t2\t100\n"  # good
        b"\n\n"  # trailing blank lines: ignored
    )
    m = ingest_path(spark, run_dir, f)
    assert m["n_ratings"] == 2
    assert m["rejected_by_reason"] == {
        "duplicate_superseded": 1,
        "invalid_rating": 2,
        "rating_out_of_range": 1,
        "invalid_user_id": 1,
        "invalid_item_id": 1,
        "wrong_field_count": 1,
    }
    ratings = read(RunFolder(run_dir).ratings).sort_values("user_id")
    assert ratings[["user_id", "item_id", "rating", "timestamp"]].values.tolist() == [
        [1, 10, 5.0, 200],
        [8, 15, 2.0, 100],
    ]
    q = read(RunFolder(run_dir).quarantine)
    assert q.loc[q["reason"] == "rating_out_of_range", "raw"].tolist() == ["3\t12\t6\t100"]
    assert q.loc[q["reason"] == "duplicate_superseded", "raw"].tolist() == ["1\t10\t4\t100"]


def test_header_only_file_fails_clearly(spark, run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(PipelineError, match="no rating lines"):
        ingest_path(spark, run_dir, tmp_path)


def test_all_lines_rejected_fails_and_points_to_quarantine(spark, run_dir, tmp_path) -> None:
    f = tmp_path / "u.data"
    f.write_text("a,b,c,d\ne,f,g,h\n")  # wrong delimiter: every line is one field
    with pytest.raises(PipelineError, match=r"no usable ratings.*wrong_field_count.*quarantine"):
        ingest_path(spark, run_dir, f)
