"""Item titles and genres: a MovieLens layout's titles file, as a pandas frame.

The files are small, so they are read in plain Python, line by line, and one damaged line
costs one title. Titles (``u.item`` / ``movies.dat`` / ``movies.csv``) and ML-100K's genre
names (``u.genre``, for ``u.item``'s genre flags) are optional: a missing or unreadable
file, or unreadable lines, leave titles (or genres) out with one short note each and never
stop the run.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING

from reco import config
from reco.data.formats import GENRES_FILE, MAX_ID, TITLES_FILE, Source

if TYPE_CHECKING:
    import pandas as pd

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the same line ends as the ratings reader's
_ID = re.compile(r"\+?[0-9]{1,10}")


def _parse_id(text: str) -> int | None:
    text = text.strip()
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def _read_lines(path: Path) -> tuple[list[str], bool]:
    """``(lines, was UTF-8)``: UTF-8 when the bytes are UTF-8, else Latin-1 (ML-100K's and
    ML-1M's own encoding, and one that never fails). ``OSError`` when unreadable."""
    raw = path.read_bytes()
    try:
        text, utf8 = raw.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        text, utf8 = raw.decode("latin-1"), False
    return _LINE_BREAK.split(text), utf8


class _Unreadable(Exception):
    """A file that cannot be used at all; the message is the cause."""


def _genre_names(path: Path) -> tuple[list[str] | None, str | None]:
    """u.genre's names in flag order (``NAME|INDEX`` lines, indices 0..n-1), or ``None``
    and a note when the file is missing or damaged."""
    if not path.is_file():
        return None, f"{GENRES_FILE} not found: genres left empty"
    try:
        lines, _ = _read_lines(path)
        by_index: dict[int, str] = {}
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            name, sep, index = line.rpartition("|")
            if not sep or not name.strip() or not re.fullmatch(r"[0-9]{1,4}", index.strip()):
                raise _Unreadable(f"line {no} is not NAME|INDEX")
            if int(index) in by_index:
                raise _Unreadable(f"index {int(index)} appears twice")
            by_index[int(index)] = name.strip()
        if not by_index:
            raise _Unreadable("no genre lines")
        if sorted(by_index) != list(range(len(by_index))):
            raise _Unreadable(f"its indices are not 0..{len(by_index) - 1}")
    except (OSError, _Unreadable) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, f"{GENRES_FILE} unreadable ({cause}): genres left empty"
    return [by_index[i] for i in range(len(by_index))], None


def _title_rows(
    fmt: str, path: Path, lines: list[str]
) -> tuple[list[tuple[int, str, str]], list[int], list[str], str | None]:
    """``(rows (id, title, genres), numbers of unreadable lines, what else is wrong with
    the file, note on u.genre)``; ``_Unreadable`` when nothing in the file can be used."""
    rows: list[tuple[int, str, str]] = []
    bad: list[int] = []
    notes: list[str] = []
    no_genres = 0
    genre_names: list[str] | None = None
    genre_note: str | None = None
    if fmt == "ml-100k":  # id|title|release|video release|url|19 genre flags
        genre_names, genre_note = _genre_names(path.parent / GENRES_FILE)
    header: list[str] = []
    cols: dict[str, int] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        lacks_genres = False
        if fmt == "ml-latest":  # CSV with a header: movieId,title,genres
            try:
                fields = next(csv.reader([line]))
            except csv.Error as exc:  # e.g. a field over csv's size limit
                if not header:
                    raise _Unreadable(f"its header: {exc}") from exc
                bad.append(no)
                continue
            if not header:
                header = [h.strip() for h in fields]
                cols = {h: header.index(h) for h in ("movieId", "title", "genres") if h in header}
                lacking = [h for h in ("movieId", "title") if h not in cols]
                if lacking:
                    shown = repr(header)[:120]
                    raise _Unreadable(f"no {' or '.join(lacking)} column; its header is {shown}")
                continue
            if len(fields) != len(header):  # a stray quote or a cut line: not to be trusted
                bad.append(no)
                continue
            item, title = _parse_id(fields[cols["movieId"]]), fields[cols["title"]]
            genres = fields[cols["genres"]] if "genres" in cols else ""
        elif fmt == "ml-1m":
            item, title, genres, lacks_genres = _ml1m_title(line)
        else:
            item, title, genres, lacks_genres = _ml100k_title(line, genre_names)
        if item is None or not title.strip():
            bad.append(no)
            continue
        no_genres += lacks_genres
        rows.append((item, title, genres))
    if fmt == "ml-latest" and header and "genres" not in cols:
        notes.append("no genres column: genres left empty")
    if no_genres and fmt == "ml-100k" and genre_names is not None:
        notes.append(
            f"{no_genres} line(s) without the {len(genre_names)} genre flags of {GENRES_FILE}: "
            "their genres left empty"
        )
    elif no_genres:
        notes.append(f"{no_genres} line(s) without genres: their genres left empty")
    return rows, bad, notes, genre_note


def _ml1m_title(line: str) -> tuple[int | None, str, str, bool]:
    """``id::title::genres``: (id, title, genres, whether the genres are missing)."""
    fields = line.split("::")
    item, title = _parse_id(fields[0]), fields[1] if len(fields) > 1 else ""
    return item, title, fields[2] if len(fields) > 2 else "", len(fields) < 3


def _ml100k_title(line: str, genre_names: list[str] | None) -> tuple[int | None, str, str, bool]:
    """``id|title|release|video release|url|<genre flags>``, the flags named by u.genre:
    (id, title, genres, whether the flags are missing or damaged)."""
    fields = line.split("|")
    item, title = _parse_id(fields[0]), fields[1] if len(fields) > 1 else ""
    flags = [f.strip() for f in fields[5:]]
    if genre_names is None:
        return item, title, "", False
    if len(flags) == len(genre_names) and set(flags) <= {"0", "1"}:
        genres = "|".join(n for n, f in zip(genre_names, flags, strict=True) if f == "1")
        return item, title, genres, False
    return item, title, "", True


def read_items(src: Source) -> tuple[pd.DataFrame | None, list[str]]:
    """``(item_id, title, genres`` from the dataset's titles file or ``None``, notes)``.

    Titles are optional: a missing or unreadable file, or unreadable lines, leave titles
    (or genres) out with one note per file and never stop the run. ``None`` when no title
    could be read, so no empty ``items.parquet`` is written.
    """
    import pandas as pd

    name = TITLES_FILE.get(src.format)
    if name is None:  # csv / parquet: no titles file in the layout
        return None, []
    if src.items_path is None:
        return None, [f"{name} not found: titles not loaded"]
    path = src.items_path
    try:
        lines, utf8 = _read_lines(path)
        rows, bad, parts, genre_note = _title_rows(src.format, path, lines)
    except (OSError, _Unreadable) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, [f"{name} unreadable ({cause}): titles not loaded"]
    genre_notes = [genre_note] if genre_note else []
    if not utf8 and src.format == "ml-latest":  # the one titles file that should be UTF-8
        parts.insert(0, "not UTF-8, read as Latin-1 (check the titles)")
    n_lines = sum(1 for line in lines if line.strip())
    if not rows:
        return None, [f"{name} has no readable title lines: titles not loaded"]
    if bad:
        parts.append(
            f"{len(bad)} of {n_lines} lines unreadable (first: line {bad[0]}): those titles "
            "not loaded"
        )
    out = pd.DataFrame(rows, columns=[config.COL_ITEM, config.COL_TITLE, config.COL_GENRES])
    dups = int(out.duplicated(config.COL_ITEM).sum())
    if dups:
        parts.append(f"{dups} repeated id(s): the last line of each kept")
    out = out.drop_duplicates(config.COL_ITEM, keep="last").reset_index(drop=True)
    out[config.COL_ITEM] = out[config.COL_ITEM].astype("int64")
    return out, [*genre_notes, *([f"{name}: {'; '.join(parts)}"] if parts else [])]
