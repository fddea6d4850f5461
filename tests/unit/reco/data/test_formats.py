"""Format detection, argument parsing and the titles files (pure Python, real shared files)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from reco.data.formats import detect_source, parse_mapping, parse_scale, read_items
from reco.errors import PipelineError


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
def ml100k_folder(tmp_path: Path, ml100k: Path, *names: str) -> Path:
    """A folder with real ML-100K files (``names``), for the parsing of one file at a time."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(ml100k / name)
    return folder


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


def test_u_item_without_u_genre_loads_titles_with_empty_genres(
    tmp_path: Path, ml100k: Path
) -> None:
    """The reported crash: TypeError (int genre labels joined) when u.genre is missing."""
    folder = ml100k_folder(tmp_path, ml100k, "u.data", "u.item")
    items, notes = read_items(detect_source(folder))
    assert notes == ["u.genre not found: genres left empty"]
    assert len(items) == 1682 and (items["genres"] == "").all()
    assert items.set_index("item_id").loc[1, "title"] == "Toy Story (1995)"


def test_u_item_with_u_genre_keeps_the_real_genres(tmp_path: Path, ml100k: Path) -> None:
    folder = ml100k_folder(tmp_path, ml100k, "u.data", "u.item", "u.genre")
    items, notes = read_items(detect_source(folder))
    assert notes == [] and len(items) == 1682
    by_id = items.set_index("item_id")
    assert by_id.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert by_id.loc[1682, "title"] == "Scream of Stone (Schrei aus Stein) (1991)"


@pytest.mark.parametrize(
    ("genre", "note"),
    [
        (b"", "u.genre unreadable (no genre lines): genres left empty"),
        (
            b"\x00\xff\xfe garbage",
            "u.genre unreadable (line 1 is not NAME|INDEX): genres left empty",
        ),
        (
            b"Action|1\nDrama|2\n",
            "u.genre unreadable (its indices are not 0..1): genres left empty",
        ),
        (b"Action|0\nDrama|0\n", "u.genre unreadable (index 0 appears twice): genres left empty"),
    ],
)
def test_damaged_u_genre_leaves_genres_empty(
    tmp_path: Path, ml100k: Path, genre: bytes, note: str
) -> None:
    folder = ml100k_folder(tmp_path, ml100k, "u.data", "u.item")
    (folder / "u.genre").write_bytes(genre)
    items, notes = read_items(detect_source(folder))
    assert notes == [note] and len(items) == 1682 and (items["genres"] == "").all()


def test_u_genre_that_does_not_match_u_item_flags(tmp_path: Path, ml100k: Path) -> None:
    folder = ml100k_folder(tmp_path, ml100k, "u.data", "u.item")
    names = (ml100k / "u.genre").read_text().splitlines()[:18]  # one genre short
    (folder / "u.genre").write_text("\n".join(names) + "\n")
    items, notes = read_items(detect_source(folder))
    assert notes == [
        "u.item: 1682 line(s) without the 18 genre flags of u.genre: their genres left empty"
    ]
    assert len(items) == 1682 and (items["genres"] == "").all()


def test_truncated_u_item_keeps_every_readable_title(tmp_path: Path, ml100k: Path) -> None:
    folder = ml100k_folder(tmp_path, ml100k, "u.data", "u.genre")
    data = (ml100k / "u.item").read_bytes()
    cut = data.index(b"\n1680|") + len(b"\n1680|")  # mid-line: the id of item 1680, no title
    (folder / "u.item").write_bytes(data[:cut])
    items, notes = read_items(detect_source(folder))
    assert len(items) == 1679 and items["item_id"].max() == 1679
    assert notes == [
        "u.item: 1 of 1680 lines unreadable (first: line 1680): those titles not loaded"
    ]


def test_movies_csv_in_latin1_is_read_with_a_note(tmp_path: Path, ml_latest: Path) -> None:
    (tmp_path / "ratings.csv").symlink_to(ml_latest / "ratings.csv")
    text = (ml_latest / "movies.csv").read_text(encoding="utf-8")
    latin = [line for line in text.splitlines() if not line.isascii()][:5]
    assert latin, "ml-latest-small has non-ASCII titles"
    body = "movieId,title,genres\n" + "\n".join(latin) + "\n"
    (tmp_path / "movies.csv").write_bytes(body.encode("latin-1"))
    items, notes = read_items(detect_source(tmp_path))
    assert notes == ["movies.csv: not UTF-8, read as Latin-1 (check the titles)"]
    want = pd.read_csv(io.StringIO(body), dtype={"movieId": "int64"})
    assert items["title"].tolist() == want["title"].tolist()


@pytest.mark.parametrize(
    ("movies", "note"),
    [
        (b"", "movies.csv has no readable title lines: titles not loaded"),
        (
            b"movieId,genres\n1,Comedy\n",
            "movies.csv unreadable (no title column; its header is ['movieId', 'genres']): "
            "titles not loaded",
        ),
        (
            "movieId,title,genres\n1,Toy Story (1995),Comedy\n".encode("utf-16"),
            "movies.csv unreadable (no movieId or title column; its header is ",
        ),
        (
            b'movieId,title,genres\n1,Toy Story (1995),Comedy\n2,"Jumanji (1995),Adv',
            "movies.csv: 1 of 3 lines unreadable (first: line 3): those titles not loaded",
        ),
        (
            b"movieId,title\n1,Toy Story (1995)\n",
            "movies.csv: no genres column: genres left empty",
        ),
        (
            b"movieId,title,genres\n1,Toy Story (1995),Comedy\n1,Toy Story (1995),Drama\n",
            "movies.csv: 1 repeated id(s): the last line of each kept",
        ),
    ],
)
def test_damaged_movies_csv_is_noted_once(tmp_path: Path, movies: bytes, note: str) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,5\n")
    (tmp_path / "movies.csv").write_bytes(movies)
    items, notes = read_items(detect_source(tmp_path))
    assert len(notes) == 1 and notes[0].startswith(note), notes
    if items is not None:
        assert items.set_index("item_id").loc[1, "title"] == "Toy Story (1995)"


def test_movies_dat_without_genres(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    (tmp_path / "movies.dat").write_bytes(
        "1::Toy Story (1995)\n2::Café (1999)::Drama\n3\n".encode("latin-1")
    )
    items, notes = read_items(detect_source(tmp_path))
    assert items.values.tolist() == [[1, "Toy Story (1995)", ""], [2, "Café (1999)", "Drama"]]
    assert notes == [
        "movies.dat: 1 line(s) without genres: their genres left empty; 1 of 3 lines "
        "unreadable (first: line 3): those titles not loaded"
    ]


def test_missing_titles_file_is_noted(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    assert read_items(detect_source(tmp_path)) == (
        None,
        ["movies.dat not found: titles not loaded"],
    )


def test_u_item_line_with_an_extra_field(tmp_path: Path, ml100k: Path) -> None:
    """pandas raised ParserError (Expected 24 fields, saw 25) on one extra '|'."""
    folder = ml100k_folder(tmp_path, ml100k, "u.data", "u.genre")
    data = (ml100k / "u.item").read_bytes().replace(b"\n5|", b"|extra\n5|", 1)
    (folder / "u.item").write_bytes(data)
    items, notes = read_items(detect_source(folder))
    assert len(items) == 1682 and items.set_index("item_id").loc[4, "genres"] == ""
    assert notes == [
        "u.item: 1 line(s) without the 19 genre flags of u.genre: their genres left empty"
    ]


def test_garbage_movies_dat(tmp_path: Path) -> None:
    """pandas raised ParserError (Expected 3 fields, saw 4) on a line of '::'."""
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    (tmp_path / "movies.dat").write_bytes(b"\x00\xff::\n::::::\n")
    assert read_items(detect_source(tmp_path)) == (
        None,
        ["movies.dat has no readable title lines: titles not loaded"],
    )
