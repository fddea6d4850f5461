"""Input formats: detecting a dataset's layout and parsing it defensively.

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

``auto`` picks the layout from a folder's files or a file's name and header.
Parsing never trusts the input: every field goes through ``try_cast`` and a line that
cannot be used is kept with a reason code instead of being dropped.

Only the ratings file is required. Titles (``u.item`` / ``movies.dat`` / ``movies.csv``),
genres (``u.genre``) and the user files (``u.user`` / ``users.dat``: nothing reads them)
may be missing or damaged: the run goes on without what they would give and says so in
one short note each (the ``notes`` of the run's ``manifest.json``). A damaged
``manifest.json`` is the exception: it may declare the rating scale, so it stops the run
unless the scale was given explicitly.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reco import config
from reco.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

ML_LATEST_HEADER = ["userId", "movieId", "rating", "timestamp"]
CANONICAL = (config.COL_USER, config.COL_ITEM, config.COL_RATING, config.COL_TIMESTAMP)
MAPPING_KEYS = {
    "user": config.COL_USER,
    "item": config.COL_ITEM,
    "rating": config.COL_RATING,
    "timestamp": config.COL_TIMESTAMP,
}
MAX_ID = 2_147_483_647  # ALS keeps ids in a Java int
# A rating is a plain decimal number. Spark's cast to double is Java's parser, which also
# takes "4d", "4f" or "0x1p2" (hex): those are damage, not ratings.
DECIMAL = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
CLOCK_SKEW_S = 24 * 3600  # a timestamp up to a day ahead of the clock is tolerated

# Reason codes for rejected lines (quarantine).
REASON_FIELD_COUNT = "wrong_field_count"
REASON_USER_ID = "invalid_user_id"
REASON_ITEM_ID = "invalid_item_id"
REASON_RATING = "invalid_rating"
REASON_RATING_RANGE = "rating_out_of_range"
REASON_TIMESTAMP = "invalid_timestamp"
REASON_FUTURE = "timestamp_in_future"
REASON_DUPLICATE = "duplicate_superseded"
REASONS = (
    REASON_FIELD_COUNT,
    REASON_USER_ID,
    REASON_ITEM_ID,
    REASON_RATING,
    REASON_RATING_RANGE,
    REASON_TIMESTAMP,
    REASON_FUTURE,
    REASON_DUPLICATE,
)

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


def _ml_latest_header_problem(header: list[str]) -> list[str]:
    """The MovieLens ratings.csv columns ``header`` lacks."""
    return [h for h in ML_LATEST_HEADER if h not in header]


def _lacking_columns_error(path: Path, lacking: list[str], header: list[str]) -> PipelineError:
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
            raise _lacking_columns_error(target, _ml_latest_header_problem(header), header)
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
        if lacking := _ml_latest_header_problem(header):
            raise _lacking_columns_error(ratings, lacking, header)
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


# --------------------------------------------------------------------------------------
# Spark parsing
# --------------------------------------------------------------------------------------
def read_ratings(spark: SparkSession, src: Source) -> DataFrame:
    """Parse ``src`` into ``raw, user_id, item_id, rating, timestamp, reason``.

    ``reason`` is null for a usable row and a reason code otherwise; nothing is dropped
    except blank lines and the header line.
    """
    if src.format in ("ml-100k", "ml-1m", "ml-latest"):
        typed, expected_fields = _movielens_lines(spark, src)
        ts_required = True
    else:
        typed, expected_fields, ts_required = _table_rows(spark, src)
    return with_reason(
        typed, src.rating_scale, expected_fields=expected_fields, timestamp_required=ts_required
    )


def _movielens_lines(spark: SparkSession, src: Source) -> tuple[DataFrame, int]:
    """A MovieLens layout's lines split into typed fields; the fields a line should have."""
    from pyspark.sql import functions as F

    lines = spark.read.text(str(src.ratings_path))
    # Lines end at LF, CRLF or a lone CR (Hadoop's reader) and the file's BOM is
    # skipped; a BOM starting a later line (files concatenated) is dropped too.
    value = F.regexp_replace(F.col("value"), "^\ufeff|\r$", "")
    all_lines = lines.select(value.alias("raw"))
    df = all_lines.where(F.trim(F.col("raw")) != "")
    # ml-latest names its columns: extra columns after a schema change are ignored.
    pos = [0, 1, 2, 3]
    expected_fields = 4
    if src.has_header:
        # The header as Spark decoded it (bytes that are not UTF-8 decode as Spark
        # does), so the comparison below finds it; repeated headers (exports
        # concatenated) are skipped as well.
        first = all_lines.first()
        header_line = first["raw"] if first else ""
        df = df.where(F.col("raw") != header_line)
        header = [h.strip() for h in header_line.split(src.delimiter)]
        if lacking := _ml_latest_header_problem(header):
            raise _lacking_columns_error(src.ratings_path, lacking, header)
        pos = [header.index(h) for h in ML_LATEST_HEADER]
        expected_fields = len(header)
    sep = {"\t": r"\t", "::": "::", ",": ","}[src.delimiter]
    parts = F.split(F.col("raw"), sep, -1)
    typed = df.select(
        "raw",
        F.size(parts).alias("_n"),
        F.trim(F.get(parts, pos[0])).try_cast("bigint").alias(config.COL_USER),
        F.trim(F.get(parts, pos[1])).try_cast("bigint").alias(config.COL_ITEM),
        _decimal(F.trim(F.get(parts, pos[2]))).alias(config.COL_RATING),
        F.trim(F.get(parts, pos[3])).try_cast("bigint").alias(config.COL_TIMESTAMP),
    )
    return typed, expected_fields


def _table_rows(spark: SparkSession, src: Source) -> tuple[DataFrame, int, bool]:
    """A CSV or Parquet table's rows typed through the column mapping; its column count,
    and whether it has the mapped timestamp column."""
    from pyspark.sql import functions as F

    if src.format == "csv":
        raw_df = (
            spark.read.option("header", True)
            .option("sep", src.delimiter)
            .option("mode", "PERMISSIVE")
            .option("inferSchema", False)
            .csv(str(src.ratings_path))
        )
    else:
        raw_df = spark.read.parquet(str(src.ratings_path))
    missing = [
        f"{canon} (column {col!r})"
        for canon, col in src.columns.items()
        if col not in raw_df.columns and canon != config.COL_TIMESTAMP
    ]
    if missing:
        raise PipelineError(
            f"{src.ratings_path} lacks required column(s) {', '.join(missing)}; its columns "
            f"are {raw_df.columns}. Map them with --columns user=...,item=...,rating=..."
        )
    ts_col = src.columns.get(config.COL_TIMESTAMP)
    ts_required = bool(ts_col and ts_col in raw_df.columns)
    all_cols = [F.col(f"`{c}`").cast("string") for c in raw_df.columns]
    typed = raw_df.select(
        F.concat_ws(src.delimiter, *[F.coalesce(c, F.lit("")) for c in all_cols]).alias("raw"),
        F.lit(len(raw_df.columns)).alias("_n"),
        *[
            F.col(f"`{src.columns[c]}`").cast("string").try_cast("bigint").alias(c)
            for c in (config.COL_USER, config.COL_ITEM)
        ],
        _decimal(F.trim(F.col(f"`{src.columns[config.COL_RATING]}`").cast("string"))).alias(
            config.COL_RATING
        ),
        (
            F.col(f"`{ts_col}`").cast("string").try_cast("bigint")
            if ts_required
            else F.lit(None).cast("bigint")
        ).alias(config.COL_TIMESTAMP),
    )
    return typed, len(raw_df.columns), ts_required


def _decimal(text: Column) -> Column:
    """``text`` as a double when it is a plain decimal number, else null."""
    from pyspark.sql import functions as F

    return F.when(text.rlike(DECIMAL), text.try_cast("double"))


def with_reason(
    df: DataFrame,
    scale: tuple[float, float],
    *,
    expected_fields: int,
    timestamp_required: bool = True,
    now_epoch_s: int | None = None,
) -> DataFrame:
    """Add the ``reason`` column (first failing check wins) and drop helper columns.

    A timestamp more than a day after ``now_epoch_s`` (default: the clock) is rejected.
    """
    import time

    from pyspark.sql import functions as F

    latest_ok = (now_epoch_s if now_epoch_s is not None else int(time.time())) + CLOCK_SKEW_S
    u, i, r, t = (F.col(c) for c in CANONICAL)
    lo, hi = scale
    reason = (
        F.when(F.col("_n") != expected_fields, F.lit(REASON_FIELD_COUNT))
        .when(u.isNull() | (u <= 0) | (u > MAX_ID), F.lit(REASON_USER_ID))
        .when(i.isNull() | (i <= 0) | (i > MAX_ID), F.lit(REASON_ITEM_ID))
        .when(r.isNull() | F.isnan(r), F.lit(REASON_RATING))
        .when((r < lo) | (r > hi), F.lit(REASON_RATING_RANGE))
    )
    if timestamp_required:
        reason = reason.when(t.isNull() | (t < 0), F.lit(REASON_TIMESTAMP))
    reason = reason.when(t.isNotNull() & (t > latest_ok), F.lit(REASON_FUTURE))
    return df.withColumn("reason", reason).drop("_n")


# --------------------------------------------------------------------------------------
# Item titles (small: plain Python, line by line, so one damaged line costs one title)
# --------------------------------------------------------------------------------------
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
