"""The titles and genres files: every damage costs only what it spoils, with one note
(pure Python, real shared files)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from reco.data.formats import detect_source
from reco.data.titles import read_items
from tests.support.datasets import ml100k_folder


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
