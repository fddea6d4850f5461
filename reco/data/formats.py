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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reco import config
from reco.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

ML_LATEST_HEADER = ["userId", "movieId", "rating", "timestamp"]
CANONICAL = (config.COL_USER, config.COL_ITEM, config.COL_RATING, config.COL_TIMESTAMP)
MAPPING_KEYS = {
    "user": config.COL_USER,
    "item": config.COL_ITEM,
    "rating": config.COL_RATING,
    "timestamp": config.COL_TIMESTAMP,
}
MAX_ID = 2_147_483_647  # ALS keeps ids in a Java int
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
    if path.is_file() and path.stat().st_size == 0:
        raise PipelineError(f"dataset file {path} is empty: there are no ratings to ingest")
    if path.is_file() and not _first_line(path).strip() and not path.read_bytes().strip():
        raise PipelineError(f"dataset file {path} holds only blank lines: no ratings to ingest")


def _manifest_scale(folder: Path) -> tuple[float, float] | None:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    if "rating_min" in data and "rating_max" in data:
        return float(data["rating_min"]), float(data["rating_max"])
    return None


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
    folder = p if p.is_dir() else p.parent
    scale_hint = rating_scale or _manifest_scale(folder)

    def pick(name: str) -> Path | None:
        if p.is_dir():
            return (p / name) if (p / name).exists() else None
        return p if p.name == name else None

    if fmt == "auto":
        if pick("u.data"):
            fmt = "ml-100k"
        elif pick("ratings.dat"):
            fmt = "ml-1m"
        elif (cand := pick("ratings.csv")) or (
            p.is_file() and p.suffix.lower() in (".csv", ".tsv")
        ):
            target = cand or p
            _check_nonempty(target)
            header = [h.strip() for h in _first_line(target).split(delimiter or ",")]
            fmt = "ml-latest" if set(ML_LATEST_HEADER) <= set(header) else "csv"
            known = [h for h in ML_LATEST_HEADER if h in header]
            if fmt == "csv" and not columns and len(known) >= 2:
                lacking = [h for h in ML_LATEST_HEADER if h not in header]
                raise PipelineError(
                    f"{target} looks like a MovieLens ratings.csv but lacks column(s) "
                    f"{lacking} (its header is {header}): did the export's schema change? "
                    "Map the columns explicitly, e.g. --format csv --columns "
                    "user=userId,item=movieId,rating=<column>"
                )
        elif p.suffix == ".parquet" or (p.is_dir() and any(p.glob("*.parquet"))):
            fmt = "parquet"
        else:
            found = sorted(x.name for x in p.iterdir())[:10] if p.is_dir() else [p.name]
            raise PipelineError(
                f"cannot tell the format of {p}: expected u.data (ml-100k), ratings.dat (ml-1m), "
                f"ratings.csv (ml-latest) or *.csv/*.parquet with --format and --columns; "
                f"found {found}"
            )

    if fmt == "ml-100k":
        ratings = pick("u.data") or p
        items = folder / "u.item"
        src = Source(
            fmt, ratings, items if items.exists() else None, scale_hint or (1.0, 5.0), "\t", False
        )
    elif fmt == "ml-1m":
        ratings = pick("ratings.dat") or p
        items = folder / "movies.dat"
        src = Source(
            fmt, ratings, items if items.exists() else None, scale_hint or (1.0, 5.0), "::", False
        )
    elif fmt == "ml-latest":
        ratings = pick("ratings.csv") or p
        items = folder / "movies.csv"
        src = Source(
            fmt, ratings, items if items.exists() else None, scale_hint or (0.5, 5.0), ",", True
        )
    elif fmt == "csv":
        ratings = pick("ratings.csv") or p
        if ratings.is_dir():
            csvs = sorted(ratings.glob("*.csv"))
            if len(csvs) != 1:
                raise PipelineError(
                    f"{ratings} holds {len(csvs)} .csv files: pass the ratings file itself"
                )
            ratings = csvs[0]
        mapping = columns or {}
        src = Source(
            fmt,
            ratings,
            None,
            scale_hint or config.DEFAULT_RATING_SCALE,
            delimiter or ",",
            True,
            _complete_mapping(mapping, ratings),
        )
    else:  # parquet
        src = Source(
            fmt,
            p,
            None,
            scale_hint or config.DEFAULT_RATING_SCALE,
            ",",
            True,
            _complete_mapping(columns or {}, p),
        )
    _check_nonempty(src.ratings_path)
    return src


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
    from pyspark.sql import functions as F

    if src.format in ("ml-100k", "ml-1m", "ml-latest"):
        lines = spark.read.text(str(src.ratings_path))
        value = F.regexp_replace(F.col("value"), r"\r$", "")
        df = lines.select(value.alias("raw")).where(F.trim(F.col("raw")) != "")
        if src.has_header:
            header = _first_line(src.ratings_path)
            df = df.where(F.col("raw") != header)
        sep = {"\t": r"\t", "::": "::", ",": ","}[src.delimiter]
        parts = F.split(F.col("raw"), sep, -1)
        # ml-latest names its columns: extra columns after a schema change are ignored.
        pos = [0, 1, 2, 3]
        expected_fields = 4
        if src.has_header:
            header = [h.strip() for h in _first_line(src.ratings_path).split(src.delimiter)]
            pos = [header.index(h) for h in ML_LATEST_HEADER]
            expected_fields = len(header)
        typed = df.select(
            "raw",
            F.size(parts).alias("_n"),
            F.trim(F.get(parts, pos[0])).try_cast("bigint").alias(config.COL_USER),
            F.trim(F.get(parts, pos[1])).try_cast("bigint").alias(config.COL_ITEM),
            F.trim(F.get(parts, pos[2])).try_cast("double").alias(config.COL_RATING),
            F.trim(F.get(parts, pos[3])).try_cast("bigint").alias(config.COL_TIMESTAMP),
        )
        ts_required = True
    else:
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
                F.col(f"`{src.columns[c]}`").cast("string").try_cast(t).alias(c)
                for c, t in (
                    (config.COL_USER, "bigint"),
                    (config.COL_ITEM, "bigint"),
                    (config.COL_RATING, "double"),
                )
            ],
            (
                F.col(f"`{ts_col}`").cast("string").try_cast("bigint")
                if ts_required
                else F.lit(None).cast("bigint")
            ).alias(config.COL_TIMESTAMP),
        )
        expected_fields = len(raw_df.columns)
    return with_reason(
        typed, src.rating_scale, expected_fields=expected_fields, timestamp_required=ts_required
    )


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
# Item titles (small: pandas)
# --------------------------------------------------------------------------------------
def read_items(src: Source) -> pd.DataFrame | None:
    """``item_id, title, genres`` from the dataset's title file, or ``None`` if it has none."""
    import pandas as pd

    if src.items_path is None:
        return None
    path = src.items_path
    if src.format == "ml-100k":
        genre_file = path.parent / "u.genre"
        genre_names = []
        if genre_file.exists():
            for line in genre_file.read_text(encoding="latin-1").splitlines():
                if "|" in line:
                    genre_names.append(line.split("|")[0])
        df = pd.read_csv(path, sep="|", header=None, encoding="latin-1", dtype=str)
        flags = df.iloc[:, 5:]
        names = genre_names if len(genre_names) == flags.shape[1] else list(flags.columns)
        genres = flags.apply(
            lambda row: "|".join(n for n, v in zip(names, row, strict=False) if v == "1"), axis=1
        )
        out = pd.DataFrame(
            {config.COL_ITEM: df[0], config.COL_TITLE: df[1], config.COL_GENRES: genres}
        )
    elif src.format == "ml-1m":
        df = pd.read_csv(
            path,
            sep="::",
            header=None,
            engine="python",
            encoding="latin-1",
            dtype=str,
            names=["id", "title", "genres"],
        )
        out = pd.DataFrame(
            {
                config.COL_ITEM: df["id"],
                config.COL_TITLE: df["title"],
                config.COL_GENRES: df["genres"],
            }
        )
    else:
        df = pd.read_csv(path, dtype=str)
        out = pd.DataFrame(
            {
                config.COL_ITEM: df["movieId"],
                config.COL_TITLE: df["title"],
                config.COL_GENRES: df.get("genres"),
            }
        )
    out[config.COL_ITEM] = pd.to_numeric(out[config.COL_ITEM], errors="coerce")
    out = out.dropna(subset=[config.COL_ITEM]).drop_duplicates(config.COL_ITEM, keep="last")
    out[config.COL_ITEM] = out[config.COL_ITEM].astype("int64")
    return out.reset_index(drop=True)
