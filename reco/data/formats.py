"""Input formats: detecting a dataset's layout and its rating scale.

Supported layouts (``format``):

- ``ml-100k``   ``u.data``: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header;
                titles in ``u.item`` (``|``-separated, Latin-1).
- ``ml-1m``     ``ratings.dat``: ``user::item::rating::timestamp`` (also ML-10M);
                titles in ``movies.dat``.
- ``ml-latest`` ``ratings.csv`` with header ``userId,movieId,rating,timestamp``;
                titles in ``movies.csv``.
- ``csv``       any delimited file with a header, plus a column mapping
                (``user=uid,item=mid,rating=stars[,timestamp=ts]``).
- ``parquet``   a Parquet file or folder, plus a column mapping.

``auto`` picks the layout from a folder's files or a file's name and header. The result is
a ``Source``: where the ratings (and titles) are, how their lines are split, and the rating
scale, from the layout, a ``manifest.json`` beside the data, or the caller. This module is
the vocabulary below the readers: ``reco.data.parsing`` parses the ratings (Spark),
``reco.data.titles`` reads the titles and genres (pandas).

Only the ratings file is required. Titles (``u.item`` / ``movies.dat`` / ``movies.csv``),
genres (``u.genre``) and the user files (``u.user`` / ``users.dat``: nothing reads them)
may be missing or damaged: the run goes on without what they would give and says so in
one short note each (the ``notes`` of the run's ``manifest.json``). A damaged
``manifest.json`` is the exception: it may declare the rating scale, so it stops the run
unless the scale was given explicitly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reco import config
from reco.errors import PipelineError

ML_LATEST_HEADER = ["userId", "movieId", "rating", "timestamp"]
CANONICAL = (config.COL_USER, config.COL_ITEM, config.COL_RATING, config.COL_TIMESTAMP)
MAPPING_KEYS = {
    "user": config.COL_USER,
    "item": config.COL_ITEM,
    "rating": config.COL_RATING,
    "timestamp": config.COL_TIMESTAMP,
}
MAX_ID = 2_147_483_647  # ALS keeps ids in a Java int

# Each MovieLens layout's files: the ratings file is required, the titles file optional.
RATINGS_FILE = {"ml-100k": "u.data", "ml-1m": "ratings.dat", "ml-latest": "ratings.csv"}
TITLES_FILE = {"ml-100k": "u.item", "ml-1m": "movies.dat", "ml-latest": "movies.csv"}
GENRES_FILE = "u.genre"  # ML-100K's genre names, for u.item's genre flags
MANIFEST_FILE = "manifest.json"
LAYOUT_SCALE = {"ml-100k": (1.0, 5.0), "ml-1m": (1.0, 5.0), "ml-latest": (0.5, 5.0)}


@dataclass(frozen=True)
class Source:
    """A resolved dataset: where the ratings are, how they are laid out, the scale."""

    format: str
    ratings_path: Path
    items_path: Path | None = None
    rating_scale: tuple[float, float] = config.DEFAULT_RATING_SCALE
    delimiter: str = ","
    has_header: bool = True
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> column in the file
    # What detection found missing or damaged and went on without (manifest.json's notes).
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "ratings_path": str(self.ratings_path),
            "items_path": str(self.items_path) if self.items_path else None,
            "rating_scale": list(self.rating_scale),
            "delimiter": self.delimiter,
            "has_header": self.has_header,
            "columns": self.columns,
        }


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"user=uid,item=mid,rating=stars"`` -> ``{"user_id": "uid", ...}``."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in MAPPING_KEYS or not value.strip():
            raise PipelineError(
                f"bad column mapping entry {part.strip()!r}: expected NAME=COLUMN with NAME one "
                f"of {', '.join(MAPPING_KEYS)} (e.g. user=uid,item=mid,rating=stars)"
            )
        mapping[MAPPING_KEYS[key]] = value.strip()
    return mapping


def parse_scale(text: str | None) -> tuple[float, float] | None:
    """``"1-10"`` -> ``(1.0, 10.0)``; ``None``/``""``/``"auto"`` -> ``None``."""
    if not text or str(text).strip().lower() == "auto":
        return None
    lo, sep, hi = str(text).strip().partition("-")
    try:
        scale = (float(lo), float(hi))
    except ValueError:
        scale = None
    if not sep or scale is None or scale[1] <= scale[0]:
        raise PipelineError(f"bad rating scale {text!r}: expected MIN-MAX such as 1-5 or 1-10")
    return scale


def _first_line(path: Path) -> str:
    with open(path, "rb") as fh:
        raw = fh.readline(64 * 1024)
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def _check_nonempty(path: Path) -> None:
    fix = "check that the export finished writing, or point the dataset at the ratings file"
    if path.is_file() and path.stat().st_size == 0:
        raise PipelineError(f"dataset file {path} is empty: there are no ratings to ingest; {fix}")
    if path.is_file() and not _first_line(path).strip() and not path.read_bytes().strip():
        raise PipelineError(
            f"dataset file {path} holds only blank lines: no ratings to ingest; {fix}"
        )


def _manifest_number(data: dict[str, Any], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} is {value!r}, not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{key} is {value!r}, not a finite number")
    return number


def _read_manifest_scale(path: Path) -> tuple[float, float] | None:
    """The ``rating_min``/``rating_max`` a dataset's ``manifest.json`` declares (``None``
    when it declares none); ``ValueError`` naming the damage when it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except (ValueError, RecursionError) as exc:  # a huge integer, nesting too deep
        raise ValueError(f"not valid JSON: {str(exc)[:80]}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    has = [k for k in ("rating_min", "rating_max") if k in data]
    if not has:
        return None
    if len(has) == 1:
        other = "rating_max" if has[0] == "rating_min" else "rating_min"
        raise ValueError(f"it has {has[0]} but no {other}")
    lo, hi = _manifest_number(data, "rating_min"), _manifest_number(data, "rating_max")
    if not lo < hi:
        raise ValueError(f"rating_min {lo:g} is not below rating_max {hi:g}")
    return lo, hi


def _manifest_scale(
    folder: Path, explicit: tuple[float, float] | None
) -> tuple[tuple[float, float] | None, list[str]]:
    """``(scale the folder's manifest.json declares or None, notes)``.

    The manifest is optional, but a damaged one may have declared the scale: guessing the
    layout's default instead could quarantine every rating as out of range, or worse accept
    them on the wrong scale (ALS clips its predictions to it). So damage stops the run,
    unless the scale was given explicitly, which makes the manifest's scale moot.
    """
    path = folder / MANIFEST_FILE
    if not path.exists():
        return None, []
    try:
        return _read_manifest_scale(path), []
    except ValueError as exc:
        if explicit is not None:
            lo, hi = explicit
            return None, [
                f"{MANIFEST_FILE} unreadable ({exc}): ignored, the rating scale "
                f"{lo:g}-{hi:g} was given explicitly"
            ]
        raise PipelineError(
            f"{path} is damaged ({exc}): it may declare the rating scale, so ingest will not "
            'guess one. Fix it (e.g. {"rating_min": 1, "rating_max": 5}), remove it to use '
            "the format's default scale, or pass the scale explicitly (--rating-scale MIN-MAX, "
            "the rating_scale parameter)"
        ) from None


def ml_latest_header_problem(header: list[str]) -> list[str]:
    """The MovieLens ratings.csv columns ``header`` lacks."""
    return [h for h in ML_LATEST_HEADER if h not in header]


def lacking_columns_error(path: Path, lacking: list[str], header: list[str]) -> PipelineError:
    shown = repr(header) if len(repr(header)) <= 200 else repr(header)[:200] + "..."
    return PipelineError(
        f"{path} looks like a MovieLens ratings.csv but lacks column(s) {lacking} (its header "
        f"is {shown}): did the export's schema change? Map the columns explicitly, e.g. "
        "--format csv --columns user=userId,item=movieId,rating=<column>"
    )


def detect_source(
    path: str | Path,
    fmt: str = "auto",
    *,
    columns: dict[str, str] | None = None,
    rating_scale: tuple[float, float] | None = None,
    delimiter: str | None = None,
) -> Source:
    """Resolve ``path`` and ``fmt`` into a ``Source`` or raise a ``PipelineError``."""
    fmt = (fmt or "auto").strip().lower()
    if fmt not in config.INPUT_FORMATS:
        raise PipelineError(
            f"unknown input format {fmt!r}: expected one of {', '.join(config.INPUT_FORMATS)}"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise PipelineError(
            f"dataset path {p} does not exist: pass a folder or file with ratings "
            "(e.g. ../shared/datasets/ml-100k), or run `reco generate` for a synthetic one"
        )
    p = p.resolve()
    if fmt == "auto":
        fmt = detect_format(p, columns, delimiter)
    manifest_scale, notes = _manifest_scale(p if p.is_dir() else p.parent, rating_scale)
    scale = rating_scale or manifest_scale
    if fmt in RATINGS_FILE:  # a MovieLens layout
        src = _movielens_source(p, fmt, scale, tuple(notes))
    elif fmt == "csv":
        src = _csv_source(p, columns, scale, delimiter, tuple(notes))
    else:  # parquet
        src = Source(
            fmt,
            p,
            None,
            scale or config.DEFAULT_RATING_SCALE,
            ",",
            True,
            _complete_mapping(columns or {}, p),
            notes=tuple(notes),
        )
    _check_nonempty(src.ratings_path)
    return src


def _pick(p: Path, name: str) -> Path | None:
    """``name`` in the folder ``p``, or ``p`` itself when it is that file."""
    if p.is_dir():
        return (p / name) if (p / name).is_file() else None
    return p if p.name == name else None


def detect_format(p: Path, columns: dict[str, str] | None, delimiter: str | None) -> str:
    """The format of ``p`` from the files it holds (or is), for ``--format auto``."""
    if _pick(p, "u.data"):
        return "ml-100k"
    if _pick(p, "ratings.dat"):
        return "ml-1m"
    if (cand := _pick(p, "ratings.csv")) or (p.is_file() and p.suffix.lower() in (".csv", ".tsv")):
        target = cand or p
        _check_nonempty(target)
        header = [h.strip() for h in _first_line(target).split(delimiter or ",")]
        fmt = "ml-latest" if set(ML_LATEST_HEADER) <= set(header) else "csv"
        known = [h for h in ML_LATEST_HEADER if h in header]
        if fmt == "csv" and not columns and len(known) >= 2:
            raise lacking_columns_error(target, ml_latest_header_problem(header), header)
        return fmt
    if p.suffix == ".parquet" or (p.is_dir() and any(p.glob("*.parquet"))):
        return "parquet"
    found = sorted(x.name for x in p.iterdir())[:10] if p.is_dir() else [p.name]
    raise PipelineError(
        f"cannot tell the format of {p}: expected u.data (ml-100k), ratings.dat (ml-1m), "
        f"ratings.csv (ml-latest) or *.csv/*.parquet with --format and --columns; "
        f"found {found}"
    )


def _movielens_source(
    p: Path, fmt: str, scale: tuple[float, float] | None, notes: tuple[str, ...]
) -> Source:
    name = RATINGS_FILE[fmt]
    ratings = _pick(p, name)
    if ratings is None and p.is_dir():
        raise PipelineError(
            f"{p} has no {name}: the {fmt} ratings file is required. Pass the folder that "
            f"holds {name}, the ratings file itself, or the right --format"
        )
    ratings = ratings or p
    _check_nonempty(ratings)
    if fmt == "ml-latest":
        header = [h.strip() for h in _first_line(ratings).split(",")]
        if lacking := ml_latest_header_problem(header):
            raise lacking_columns_error(ratings, lacking, header)
    items = (p if p.is_dir() else p.parent) / TITLES_FILE[fmt]
    return Source(
        fmt,
        ratings,
        items if items.is_file() else None,
        scale or LAYOUT_SCALE[fmt],
        {"ml-100k": "\t", "ml-1m": "::", "ml-latest": ","}[fmt],
        fmt == "ml-latest",
        notes=notes,
    )


def _csv_source(
    p: Path,
    columns: dict[str, str] | None,
    scale: tuple[float, float] | None,
    delimiter: str | None,
    notes: tuple[str, ...],
) -> Source:
    ratings = _pick(p, "ratings.csv") or p
    if ratings.is_dir():
        csvs = sorted(ratings.glob("*.csv"))
        if len(csvs) != 1:
            raise PipelineError(
                f"{ratings} holds {len(csvs)} .csv files: pass the ratings file itself"
            )
        ratings = csvs[0]
    return Source(
        "csv",
        ratings,
        None,
        scale or config.DEFAULT_RATING_SCALE,
        delimiter or ",",
        True,
        _complete_mapping(columns or {}, ratings),
        notes=notes,
    )


def _complete_mapping(mapping: dict[str, str], path: Path) -> dict[str, str]:
    """Default unmapped canonical columns to their own names."""
    full = {c: c for c in CANONICAL}
    full.update(mapping)
    return full
