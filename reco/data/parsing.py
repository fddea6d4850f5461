"""Spark parsing of rating lines: each line typed, or kept with why it cannot be used.

``read_ratings`` reads a ``Source`` (``reco.data.formats``) into ``raw, user_id, item_id,
rating, timestamp, reason``. Parsing never trusts the input: every field goes through
``try_cast`` and a line that cannot be used is kept with a reason code (``REASON_*``, the
quarantine's vocabulary, also used by feedback events and deduplication) instead of being
dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reco import config
from reco.data.formats import (
    CANONICAL,
    MAX_ID,
    ML_LATEST_HEADER,
    Source,
    lacking_columns_error,
    ml_latest_header_problem,
)
from reco.errors import PipelineError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# A rating is a plain decimal number. Spark's cast to double is Java's parser, which also
# takes "4d", "4f" or "0x1p2" (hex): those are damage, not ratings.
DECIMAL = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
CLOCK_SKEW_S = 24 * 3600  # a timestamp up to a day ahead of the clock is tolerated
_CORRUPT = "_reco_malformed_line"  # a CSV line whose fields do not match its header

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
        if lacking := ml_latest_header_problem(header):
            raise lacking_columns_error(src.ratings_path, lacking, header)
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
    from pyspark.sql.types import StringType, StructField, StructType

    corrupt = F.lit(None).cast("string")
    if src.format == "csv":
        reader = (
            spark.read.option("header", True)
            .option("sep", src.delimiter)
            .option("mode", "PERMISSIVE")
            .option("inferSchema", False)
        )
        # A line with more or fewer fields than the header is kept whole in a corrupt-record
        # column: without one, Spark drops the extra fields or fills the missing ones with
        # nulls, and the line would pass or fail for the wrong reason.
        header = reader.csv(str(src.ratings_path)).columns
        schema = StructType(
            [StructField(c, StringType()) for c in header] + [StructField(_CORRUPT, StringType())]
        )
        raw_df = (
            reader.schema(schema)
            .option("columnNameOfCorruptRecord", _CORRUPT)
            .csv(str(src.ratings_path))
        )
        corrupt = F.col(_CORRUPT)
    else:
        reader = spark.read
        if src.ratings_path.is_dir():  # its Parquet files, not a manifest.json beside them
            reader = reader.option("pathGlobFilter", "*.parquet")
        raw_df = reader.parquet(str(src.ratings_path))
    columns = [c for c in raw_df.columns if c != _CORRUPT]
    missing = [
        f"{canon} (column {col!r})"
        for canon, col in src.columns.items()
        if col not in columns and canon != config.COL_TIMESTAMP
    ]
    if missing:
        raise PipelineError(
            f"{src.ratings_path} lacks required column(s) {', '.join(missing)}; its columns "
            f"are {columns}. Map them with --columns user=...,item=...,rating=..."
        )
    ts_col = src.columns.get(config.COL_TIMESTAMP)
    ts_required = bool(ts_col and ts_col in columns)
    all_cols = [F.col(f"`{c}`").cast("string") for c in columns]
    joined = F.concat_ws(src.delimiter, *[F.coalesce(c, F.lit("")) for c in all_cols])
    typed = raw_df.select(
        F.coalesce(corrupt, joined).alias("raw"),
        F.when(corrupt.isNotNull(), F.lit(-1)).otherwise(F.lit(len(columns))).alias("_n"),
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
    return typed, len(columns), ts_required


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
