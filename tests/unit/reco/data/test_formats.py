"""Format detection and argument parsing (pure Python, real shared files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reco.data.formats import detect_source, parse_mapping, parse_scale
from reco.errors import PipelineError
from tests.support.datasets import ml100k_folder


def test_ml100k_folder(ml100k: Path) -> None:
    src = detect_source(ml100k)
    assert src.format == "ml-100k"
    assert src.ratings_path.name == "u.data" and src.items_path.name == "u.item"
    assert src.delimiter == "\t" and not src.has_header and src.rating_scale == (1.0, 5.0)


def test_ml100k_file(ml100k: Path) -> None:
    assert detect_source(ml100k / "u.data").format == "ml-100k"


def test_ml_latest_folder_and_file(ml_latest: Path) -> None:
    src = detect_source(ml_latest)
    assert src.format == "ml-latest" and src.has_header and src.rating_scale == (0.5, 5.0)
    assert src.items_path.name == "movies.csv"
    assert detect_source(ml_latest / "ratings.csv").format == "ml-latest"


def test_ml1m_layout(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n")
    src = detect_source(tmp_path)
    assert src.format == "ml-1m" and src.delimiter == "::"


def test_generic_csv_needs_format_or_gets_mapping(tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_text("uid,mid,stars\n1,2,4\n")
    src = detect_source(f, columns=parse_mapping("user=uid,item=mid,rating=stars"))
    assert src.format == "csv"
    assert src.columns["user_id"] == "uid" and src.columns["rating"] == "stars"


def test_manifest_sets_the_scale(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,9,5\n")
    (tmp_path / "manifest.json").write_text('{"rating_min": 1, "rating_max": 10}')
    assert detect_source(tmp_path).rating_scale == (1.0, 10.0)
    # an explicit scale wins over the manifest
    assert detect_source(tmp_path, rating_scale=(1.0, 5.0)).rating_scale == (1.0, 5.0)


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"dataset path .*nope does not exist"):
        detect_source(tmp_path / "nope")


def test_unknown_format_lists_the_known_ones(ml100k: Path) -> None:
    with pytest.raises(PipelineError, match=r"unknown input format 'xlsx'.*ml-100k"):
        detect_source(ml100k, "xlsx")


def test_empty_file_is_named(tmp_path: Path) -> None:
    f = tmp_path / "u.data"
    f.write_bytes(b"")
    with pytest.raises(PipelineError, match=r"u.data is empty"):
        detect_source(f)


def test_undetectable_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PipelineError, match="cannot tell the format"):
        detect_source(tmp_path)


def test_parse_mapping_and_scale() -> None:
    assert parse_mapping("user=a, item=b,rating=c,timestamp=d") == {
        "user_id": "a",
        "item_id": "b",
        "rating": "c",
        "timestamp": "d",
    }
    assert parse_mapping("") == {}
    with pytest.raises(PipelineError, match="bad column mapping"):
        parse_mapping("person=a")
    assert parse_scale("1-10") == (1.0, 10.0)
    assert parse_scale("0.5-5") == (0.5, 5.0)
    assert parse_scale("auto") is None
    with pytest.raises(PipelineError, match="bad rating scale"):
        parse_scale("5-1")


# --- optional inputs: missing or damaged files are left out with one note -------------


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"", "not valid JSON: Expecting value at line 1"),
        (b'{"rating_min": 1, "rating_max": 10', "not valid JSON: Expecting ',' delimiter"),
        (b"[1, 10]", "a JSON list, not an object"),
        (b'{"rating_min": 1}', "it has rating_min but no rating_max"),
        (b'{"rating_min": "1", "rating_max": "10"}', "rating_min is '1', not a number"),
        (b'{"rating_min": true, "rating_max": 10}', "rating_min is True, not a number"),
        (b'{"rating_min": 10, "rating_max": 1}', "rating_min 10 is not below rating_max 1"),
        (b'{"rating_min": NaN, "rating_max": 10}', "rating_min is nan, not a finite number"),
        (b'{"rating_min": 1, "rating_max": 1e999}', "rating_max is inf, not a finite number"),
        (b'{"rating_min": 1, "rating_max": 10, "by": "caf\xe9"}', "not UTF-8 text"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_damaged_manifest_stops_the_run_unless_the_scale_is_given(
    tmp_path: Path, content: bytes, cause: str
) -> None:
    """A damaged manifest.json may have declared the scale: no guessing (crashed with
    JSONDecodeError / TypeError before)."""
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,9,5\n")
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(PipelineError) as err:
        detect_source(tmp_path)
    message = str(err.value)
    assert f"{tmp_path / 'manifest.json'} is damaged ({cause}" in message
    assert "it may declare the rating scale" in message and "--rating-scale MIN-MAX" in message

    src = detect_source(tmp_path, rating_scale=(1.0, 10.0))
    assert src.rating_scale == (1.0, 10.0)
    assert len(src.notes) == 1
    assert src.notes[0].startswith(f"manifest.json unreadable ({cause}")
    assert src.notes[0].endswith("ignored, the rating scale 1-10 was given explicitly")


def test_manifest_without_a_scale_is_no_damage(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4,5\n")
    (tmp_path / "manifest.json").write_text('{"source": "export", "n_ratings": 1}')
    src = detect_source(tmp_path)
    assert src.rating_scale == (0.5, 5.0) and src.notes == ()


def test_explicit_format_without_its_ratings_file_is_named(tmp_path: Path, ml100k: Path) -> None:
    """--format ml-100k on a folder without u.data read every file in it as ratings."""
    folder = ml100k_folder(tmp_path, ml100k, "u.item", "u.genre")
    with pytest.raises(PipelineError, match=r"ml-100k has no u.data: the ml-100k ratings file is"):
        detect_source(folder, "ml-100k")


def test_explicit_ml_latest_with_a_renamed_column_is_named(tmp_path: Path) -> None:
    """--format ml-latest with a header lacking a column raised ValueError (header.index)."""
    (tmp_path / "ratings.csv").write_text("userId,movieId,score,timestamp\n1,2,4,5\n")
    with pytest.raises(PipelineError, match=r"lacks column\(s\) \['rating'\]"):
        detect_source(tmp_path, "ml-latest")
