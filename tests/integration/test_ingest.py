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


PARQUET_MAPPING = "user=u,item=i,rating=r,timestamp=ts"
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


def as_source(sample: pd.DataFrame) -> pd.DataFrame:
    """What ingest must keep of ``sample`` (ML-100K lines: no duplicate pairs), as stored."""
    want = sample.set_axis(COLUMNS, axis=1).astype({"rating": float})
    return want.sort_values(["user_id", "item_id"]).reset_index(drop=True)


def stored(run_dir: Path) -> pd.DataFrame:
    got = read(RunFolder(run_dir).ratings)[COLUMNS]
    return got.sort_values(["user_id", "item_id"]).reset_index(drop=True)


def test_parquet_with_mapping(spark, run_dir: Path, tmp_path: Path, ml100k_sample) -> None:
    f = tmp_path / "ratings.parquet"
    ml100k_sample.rename(columns={"user": "u", "item": "i", "rating": "r"}).to_parquet(f)
    m = ingest_path(spark, run_dir, f, "parquet", columns=formats.parse_mapping(PARQUET_MAPPING))
    assert m["source"]["format"] == "parquet" and m["n_ratings"] == 2000 and m["n_rejected"] == 0
    # Every kept row is the source row, value for value.
    pd.testing.assert_frame_equal(stored(run_dir), as_source(ml100k_sample), check_dtype=False)


def test_parquet_folder_of_part_files_ingests_like_one_file(
    spark, run_dir: Path, tmp_path: Path, ml100k_sample
) -> None:
    """A folder as Spark writes it (part files, _SUCCESS and .crc files) is one dataset: the
    same rows and values as the same data in one Parquet file."""
    renamed = ml100k_sample.rename(columns={"user": "u", "item": "i", "rating": "r"})
    folder = tmp_path / "export"
    spark.createDataFrame(renamed).repartition(3).write.parquet(str(folder))
    parts = sorted(p.name for p in folder.glob("part-*.parquet"))
    assert len(parts) == 3 and (folder / "_SUCCESS").exists()
    mapping = formats.parse_mapping(PARQUET_MAPPING)

    m = ingest_path(spark, run_dir, folder, "parquet", columns=mapping)
    assert (m["source"]["format"], m["n_ratings"], m["n_rejected"]) == ("parquet", 2000, 0)
    from_folder = stored(run_dir)
    pd.testing.assert_frame_equal(from_folder, as_source(ml100k_sample), check_dtype=False)
    # Detected as Parquet without --format, with the same result.
    auto = ingest_path(spark, run_dir, folder, columns=mapping)
    assert (auto["source"]["format"], auto["n_ratings"]) == ("parquet", 2000)
    pd.testing.assert_frame_equal(stored(run_dir), from_folder)
    single = tmp_path / "one.parquet"
    renamed.to_parquet(single)
    ingest_path(spark, run_dir, single, "parquet", columns=mapping)
    pd.testing.assert_frame_equal(stored(run_dir), from_folder)


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


# --- optional inputs: each one missing, on each MovieLens layout -------------------------
N_LINES = 2000  # real rating lines per layout: enough for every check, quick to ingest
OPTIONAL = {  # layout -> its optional files (manifest.json: a good one, declaring the scale)
    "ml-100k": ["u.item", "u.genre", "u.user", "manifest.json"],
    "ml-1m": ["movies.dat", "users.dat", "manifest.json"],
    "ml-latest": ["movies.csv", "manifest.json"],
}
N_TITLES = {"ml-100k": 1682, "ml-1m": 1682, "ml-latest": 9742}


def movielens_folder(layout: str, folder: Path, ml100k: Path, ml_latest: Path) -> int:
    """A ``layout`` folder with every file, made from the real lines (ml-1m shaped from
    ML-100K's); returns its number of distinct (user, item) ratings."""
    folder.mkdir()
    genres = [g.split("|")[0] for g in (ml100k / "u.genre").read_text().splitlines() if g]
    if layout == "ml-latest":
        lines = (ml_latest / "ratings.csv").read_text().splitlines()[: N_LINES + 1]
        (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
        (folder / "movies.csv").symlink_to(ml_latest / "movies.csv")
        (folder / "manifest.json").write_text('{"rating_min": 0.5, "rating_max": 5}')
        return len({tuple(line.split(",")[:2]) for line in lines[1:]})
    lines = (ml100k / "u.data").read_text().splitlines()[:N_LINES]
    if layout == "ml-100k":
        (folder / "u.data").write_text("\n".join(lines) + "\n")
        for name in ("u.item", "u.genre", "u.user"):
            (folder / name).symlink_to(ml100k / name)
    else:
        (folder / "ratings.dat").write_text("\n".join(x.replace("\t", "::") for x in lines) + "\n")
        movies = []
        for line in (ml100k / "u.item").read_bytes().decode("latin-1").splitlines():
            f = line.split("|")
            names = "|".join(n for n, v in zip(genres, f[5:], strict=True) if v == "1")
            movies.append(f"{f[0]}::{f[1]}::{names}")
        (folder / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
        users = [u.split("|") for u in (ml100k / "u.user").read_text().splitlines()]
        (folder / "users.dat").write_text(
            "".join(f"{u[0]}::{u[2]}::{u[1]}::0::{u[4]}\n" for u in users)
        )
    (folder / "manifest.json").write_text('{"rating_min": 1, "rating_max": 5}')
    return len({tuple(line.split("\t")[:2]) for line in lines})


@pytest.mark.parametrize(
    ("layout", "missing"),
    [(layout, name) for layout, names in OPTIONAL.items() for name in [None, *names]],
)
def test_each_optional_file_may_be_missing(
    spark, run_dir: Path, tmp_path: Path, ml100k: Path, ml_latest: Path, layout, missing
) -> None:
    folder = tmp_path / layout
    n_ratings = movielens_folder(layout, folder, ml100k, ml_latest)
    if missing:
        (folder / missing).unlink()
    m = ingest_path(spark, run_dir, folder)

    assert m["source"]["format"] == layout
    assert (m["n_ratings"], m["n_rejected"]) == (n_ratings, 0)
    assert m["source"]["rating_scale"] == ([0.5, 5.0] if layout == "ml-latest" else [1.0, 5.0])
    titles = formats.TITLES_FILE[layout]
    expected_notes = {
        titles: [f"{titles} not found: titles not loaded"],
        "u.genre": ["u.genre not found: genres left empty"],
    }.get(missing, [])  # nothing reads u.user / users.dat; the scale is the layout's default
    assert m["notes"] == expected_notes
    if missing == titles:
        assert m["n_item_titles"] == 0 and not RunFolder(run_dir).items.exists()
        return
    items = read(RunFolder(run_dir).items).set_index("item_id")
    assert m["n_item_titles"] == len(items) == N_TITLES[layout]
    assert items.loc[1, "title"] == "Toy Story (1995)"
    if missing == "u.genre":  # the reported crash: titles loaded, genres empty
        assert (items["genres"] == "").all()
    else:
        assert "Animation" in items.loc[1, "genres"]


@pytest.mark.parametrize("layout", list(OPTIONAL))
def test_damaged_optional_files_are_left_out_once(
    spark, run_dir: Path, tmp_path: Path, ml100k: Path, ml_latest: Path, layout: str
) -> None:
    """Titles cut mid-line (after an id), garbage user and genre files: the ratings go on,
    one note per file that was used."""
    folder = tmp_path / layout
    n_ratings = movielens_folder(layout, folder, ml100k, ml_latest)
    titles = folder / formats.TITLES_FILE[layout]
    data = titles.read_bytes()
    sep = {"ml-100k": b"|", "ml-1m": b"::", "ml-latest": b","}[layout]
    cut = data.index(sep, data.index(b"\n", len(data) // 2) + 1) + len(sep)
    titles.unlink()
    titles.write_bytes(data[:cut])
    for name in ("u.genre", "u.user", "users.dat"):
        if (folder / name).exists():
            (folder / name).unlink()
            (folder / name).write_bytes(b"\x00\xff garbage \xfe\n")
    m = ingest_path(spark, run_dir, folder)

    assert (m["n_ratings"], m["n_rejected"]) == (n_ratings, 0)
    about = [n.split(" ")[0].rstrip(":") for n in m["notes"]]
    expected = {"ml-100k": ["u.genre", "u.item"], "ml-1m": ["movies.dat"]}
    assert about == expected.get(layout, ["movies.csv"]), m["notes"]
    items = read(RunFolder(run_dir).items)
    assert 0 < m["n_item_titles"] == len(items) < N_TITLES[layout]
    assert "lines unreadable (first: line" in m["notes"][-1]


@pytest.mark.parametrize("layout", list(OPTIONAL))
def test_damaged_manifest_stops_ingest_unless_the_scale_is_given(
    spark, run_dir: Path, tmp_path: Path, ml100k: Path, ml_latest: Path, layout: str
) -> None:
    folder = tmp_path / layout
    n_ratings = movielens_folder(layout, folder, ml100k, ml_latest)
    (folder / "manifest.json").write_text('{"rating_min": 1, "rating_max": ')  # cut short
    with pytest.raises(PipelineError, match=r"manifest.json is damaged \(not valid JSON"):
        ingest_path(spark, run_dir, folder)
    m = ingest_path(spark, run_dir, folder, rating_scale=(0.5, 5.0))
    assert m["n_ratings"] == n_ratings and m["source"]["rating_scale"] == [0.5, 5.0]
    assert m["notes"] == [
        "manifest.json unreadable (not valid JSON: Expecting value at line 1): ignored, the "
        "rating scale 0.5-5 was given explicitly"
    ]


def test_rerun_without_titles_drops_the_earlier_items(
    spark, run_dir: Path, tmp_path: Path, ml100k: Path, ml_latest: Path
) -> None:
    """A task re-run on the same run folder must not publish the titles of an earlier try."""
    folder = tmp_path / "ml-1m"
    movielens_folder("ml-1m", folder, ml100k, ml_latest)
    ingest_path(spark, run_dir, folder)
    assert RunFolder(run_dir).items.exists()
    (folder / "movies.dat").unlink()
    m = ingest_path(spark, run_dir, folder)
    assert m["n_item_titles"] == 0 and not RunFolder(run_dir).items.exists()


# --- regressions found by the fuzz test (test_ingest_fuzz.py) and its oracle -------------
def test_rating_must_be_a_plain_number(spark, run_dir: Path, tmp_path: Path) -> None:
    """Java's parser took "4d" and "0x1p2" as 4.0; "Infinity" and "NaN" reached
    manifest.json as bare Infinity / NaN, which is not JSON."""
    f = tmp_path / "u.data"
    f.write_text(
        "1\t10\t4\t100\n2\t10\t4d\t100\n3\t10\t0x1p2\t100\n4\t10\tInfinity\t100\n"
        "5\t10\tNaN\t100\n6\t10\t4.5\t100\n7\t10\t 3 \t100\n"
    )
    m = ingest_path(spark, run_dir, f)
    assert m["rejected_by_reason"] == {"invalid_rating": 4}
    assert read(RunFolder(run_dir).ratings)["rating"].sort_values().tolist() == [3.0, 4.0, 4.5]
    strict = json.loads(
        RunFolder(run_dir).manifest.read_text(),
        parse_constant=lambda c: pytest.fail(f"manifest.json holds {c}"),
    )
    assert (strict["rating_seen_min"], strict["rating_seen_max"]) == (3.0, 4.5)


def test_bom_starting_a_later_line_is_dropped(spark, run_dir: Path, tmp_path: Path) -> None:
    """Two exports concatenated, each with its BOM: the second file's first line was
    quarantined as invalid_user_id."""
    f = tmp_path / "u.data"
    f.write_bytes(b"\xef\xbb\xbf1\t10\t4\t100\n\xef\xbb\xbf2\t11\t5\t100\n")
    m = ingest_path(spark, run_dir, f)
    assert (m["n_ratings"], m["n_rejected"]) == (2, 0)


def test_header_with_bytes_that_are_not_utf8_is_skipped(spark, run_dir, tmp_path) -> None:
    """The header was compared as Python decoded it, the lines as Spark did: a byte
    sequence the two decode differently made the header a quarantined rating line."""
    (tmp_path / "ratings.csv").write_bytes(
        b"userId,movieId,rating,timestamp,note\xed\xa0\x80\n1,2,4.0,5,x\n1,3,3.5,6,y\n"
    )
    m = ingest_path(spark, run_dir, tmp_path)
    assert (m["lines_read"], m["n_ratings"], m["n_rejected"]) == (2, 2, 0)


def test_refusal_releases_the_cached_lines(spark, run_dir: Path, tmp_path: Path) -> None:
    """A refused batch left its parsed lines cached in the shared SparkSession."""
    f = tmp_path / "u.data"
    f.write_text("a,b,c,d\ne,f,g,h\n")
    cached = spark.sparkContext._jsc.getPersistentRDDs().size()
    with pytest.raises(PipelineError, match="no usable ratings"):
        ingest_path(spark, run_dir, f)
    assert spark.sparkContext._jsc.getPersistentRDDs().size() == cached
