"""Damaged batches for the ingest fuzz test (``tests/integration/test_ingest_fuzz.py``).

A ``Batch`` is one dataset made from a few real MovieLens lines in one of five families:
ml-100k, ml-1m, ml-latest (a folder or its ratings file alone), a delimited CSV export with
its own column names (``--columns``, ``--delimiter``) or a Parquet file, plus optionally an
inbox of feedback events. Damage is combined on top (``DAMAGE_KINDS``); every kind applied
is listed in ``Batch.damage``. The generator also records what it knows of each rating
line's fate (``Batch.fates``): a real line with its values, or the reason a damaged line
must be quarantined for; the oracle (``tests/support/fuzz_oracle.py``) checks ingest
against it and against its own reading of the documented rules.

The choices go through a ``Chooser``: Hypothesis draws (``batches()``) or a seeded
``random.Random`` (``forced_batch(kind)``: one small batch showing one damage kind, for
the test's ``@example``s).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

from reco import config
from reco.data import feedback, formats, parsing

ML_LAYOUTS = ("ml-100k", "ml-1m", "ml-latest")
FAMILIES = (*ML_LAYOUTS, "csv", "parquet")
SEP = {"ml-100k": "\t", "ml-1m": "::", "ml-latest": ","}
USERS_FILE = {"ml-100k": "u.user", "ml-1m": "users.dat"}
POOL = 60  # real rating lines per layout that examples draw from
SEED = 20240917  # the fixed sample of real lines
MAX_LINES = 24  # rating lines per batch: small batches keep an example near a second

MARKERS = ["NA", "null", "NULL", "", "NaN", "nan", "\\N", "N/A", "None", "-", "?"]
NUMBERS = [
    "0",
    "-1",
    "-5",
    "-3.5",
    "6",
    "10",
    "4.5",
    "0.5",
    "3.0",
    "2147483647",
    "2147483648",
    "99999999999",
    "9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "1e400",
    "-1e400",
    "Infinity",
    "inf",
    "1e3",
    "+4",
    " 3 ",
    "4d",
    "0x10",
    "\u0663",  # an Arabic-Indic digit
    "4102444800",  # 2100-01-01: in the future
    "32503680000",
]
WORDS = ["five", "abc", "userId", "1.2.3", "4,5", '"4"', "'3'", "true", "\u2b50\u2b50", "\u4e09"]
DELIMITERS = ["\t", ",", ";", "::", "|", " ", ""]
BAD_BYTES = [
    b"\xff",
    b"\xfe\xff",
    b"\xe9",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x98",
    b"\xc0\x80",
    b"\x00",
    b"\x85",
]
BOM = b"\xef\xbb\xbf"
HEADERLESS_HEADER = {
    "ml-100k": "user_id\titem_id\trating\ttimestamp",
    "ml-1m": "UserID::MovieID::Rating::Timestamp",
    "ml-latest": "userId,movieId,rating,timestamp",
}
GOOD_MANIFEST = '{"source": "export", "rating_min": %s, "rating_max": %s}'
DAMAGED_MANIFESTS = [
    b"",
    b"{",
    b'{"rating_min": 1, "rating_max": 5',
    b"[1, 5]",
    b'"1-5"',
    b"null",
    b'{"rating_min": 1}',
    b'{"rating_max": 10}',
    b'{"rating_min": "1", "rating_max": "5"}',
    b'{"rating_min": 5, "rating_max": 1}',
    b'{"rating_min": 3, "rating_max": 3}',
    b'{"rating_min": NaN, "rating_max": 5}',
    b'{"rating_min": 1, "rating_max": 1e999}',
    b'{"rating_min": true, "rating_max": 5}',
    b'{"rating_min": null, "rating_max": 5}',
    b'{"rating_min": 1, "rating_max": ' + b"9" * 5000 + b"}",
    b'\xff\xfe{\x00"\x00',
    b'{"rating_min": 1, "rating_max": 10, "source": "caf\xe9"}',
    b"[" * 100_000,
]
# --rating-scale strings: what each must resolve to (None: the manifest's or the default).
SCALE_TEXTS: dict[str | None, tuple[float, float] | None] = {
    None: None,
    "auto": None,
    "": None,
    "1-5": (1.0, 5.0),
    " 1-10 ": (1.0, 10.0),
    "0.5-5": (0.5, 5.0),
    "1-10": (1.0, 10.0),
}
BAD_SCALE_TEXTS = ["5-1", "3-3", "five", "1-", "-", "1..5", "1 to 5"]

# The columns of a CSV or Parquet export: canonical names, or others mapped by --columns.
ALIASES = {"user_id": "uid", "item_id": "mid", "rating": "stars", "timestamp": "ts"}
MAPPING_NAME = {v: k for k, v in formats.MAPPING_KEYS.items()}  # user_id -> user
TABLE_DELIMITERS = [",", ";", "\t", "|"]
# What a CSV field can hold without quoting: no delimiter, quote, escape or line end.
CSV_UNSAFE = set(",;\t|\"'\\\r\n\x00")
BAD_MAPPINGS = ["user:uid", "usr=uid,item=mid,rating=stars", "user=,item=mid", "rating"]

# --------------------------------------------------------------------------------------
# Damage kinds: the name of each, where it applies. Every kind needs an @example in the
# fuzz test (test_every_damage_kind_has_an_example).
# --------------------------------------------------------------------------------------
LINE_KINDS = (  # the rating lines' text, every family
    "marker",
    "text",
    "number",
    "extra_field",
    "drop_field",
    "duplicate",
    "conflict",
)
ML_LINE_KINDS = (  # MovieLens text files only
    "line_delimiter",
    "file_delimiter",
    "header_line",
    "blank_lines",
    "drop_header",
)
BYTE_KINDS = (  # the MovieLens ratings file's bytes
    "bom",
    "bom_mid",
    "crlf",
    "cr",
    "bad_bytes",
    "truncate",
    "no_final_newline",
    "utf16",
    "latin1",
)
TABLE_KINDS = (  # CSV / Parquet exports
    "null_value",
    "no_timestamp_column",
    "unmapped_column",
    "bad_mapping",
    "wrong_delimiter_flag",
)
OPTION_KINDS = ("bad_scale",)  # the --rating-scale string
FEEDBACK_KINDS = (
    "fb_event",
    "fb_user",
    "fb_item",
    "fb_json",
    "fb_field_count",
    "fb_timestamp",
    "fb_future",
    "fb_duplicate",
    "fb_unknown",
    "fb_iso_time",
)
DAMAGE_KINDS = (
    *LINE_KINDS,
    *ML_LINE_KINDS,
    *BYTE_KINDS,
    *TABLE_KINDS,
    *OPTION_KINDS,
    *FEEDBACK_KINDS,
)
# The optional files' states (each must also appear in some @example).
TITLES_STATES = (
    "ok",
    "absent",
    "truncated",
    "garbage",
    "other_encoding",
    "utf16",
    "missing_columns",
    "bad_lines",
    "empty",
)
GENRES_STATES = ("ok", "absent", "garbage", "truncated", "empty", "fewer", "shifted")
MANIFEST_STATES = ("absent", "scale", "no_scale", "damaged", "random")


# --------------------------------------------------------------------------------------
# Choices: Hypothesis draws, or a seeded generator for the explicit examples
# --------------------------------------------------------------------------------------
class DrawChooser:
    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def pick(self, seq: Any) -> Any:
        return self.draw(st.sampled_from(list(seq)))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def boolean(self) -> bool:
        return self.draw(st.booleans())

    def text(self, max_size: int, exclude: set[str] = frozenset()) -> str:
        chars = st.characters(exclude_characters="".join(exclude), exclude_categories=("Cs",))
        return self.draw(st.text(chars, max_size=max_size))

    def binary(self, max_size: int, min_size: int = 0) -> bytes:
        return self.draw(st.binary(min_size=min_size, max_size=max_size))

    def subset(self, seq: Any, min_size: int, max_size: int) -> list:
        items = list(seq)
        return self.draw(
            st.lists(st.sampled_from(items), min_size=min_size, max_size=max_size, unique=True)
        )


class SeededChooser:
    def __init__(self, seed: str) -> None:
        self.rng = random.Random(seed)

    def pick(self, seq: Any) -> Any:
        return self.rng.choice(list(seq))

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def boolean(self) -> bool:
        return self.rng.random() < 0.5

    def text(self, max_size: int, exclude: set[str] = frozenset()) -> str:
        alphabet = [c for c in "x7 .-\u00e9\u2028\ufffd\x01" if c not in exclude]
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, max_size)))

    def binary(self, max_size: int, min_size: int = 0) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(min_size, max_size)))

    def subset(self, seq: Any, min_size: int, max_size: int) -> list:
        items = list(seq)
        return self.rng.sample(items, self.rng.randint(min_size, min(max_size, len(items))))


# --------------------------------------------------------------------------------------
# The real lines examples are made from
# --------------------------------------------------------------------------------------
Values = tuple[int, int, float, int]


@dataclass(frozen=True)
class Real:
    """One layout's real material: rating lines (with their values) and optional files."""

    layout: str
    ratings: list[str]
    values: dict[str, Values]  # rating line -> its true values
    header: str | None
    titles_header: str | None
    titles: dict[int, str]  # item id -> its line in the titles file
    title_of: dict[int, str]
    genres_of: dict[int, str]  # with a good u.genre (ml-100k) / the file's genres
    genre_file: bytes = b""
    users: bytes = b""


MATERIAL: dict[str, Real] = {}


def material() -> dict[str, Real]:
    """The real lines (read once, from ``config.MOVIELENS_DIR``)."""
    if not MATERIAL:
        MATERIAL.update(
            _real_material(
                config.MOVIELENS_DIR / "ml-100k", config.MOVIELENS_DIR / "ml-latest-small"
            )
        )
    return MATERIAL


def _real_material(ml100k: Path, ml_latest: Path) -> dict[str, Real]:
    rng = random.Random(SEED)
    udata = (ml100k / "u.data").read_text().splitlines()
    picked = rng.sample(udata, POOL)
    uitem = {
        int(line.split("|")[0]): line
        for line in (ml100k / "u.item").read_bytes().decode("latin-1").splitlines()
        if line
    }
    genre_bytes = (ml100k / "u.genre").read_bytes()
    genre_names = [g.split("|")[0] for g in genre_bytes.decode().splitlines() if g]
    item_ids = sorted({int(line.split("\t")[1]) for line in picked})
    non_ascii = [i for i, line in uitem.items() if not line.isascii()][:3]
    extra = rng.sample(sorted(uitem), 10)
    chosen = sorted(set(item_ids) | set(non_ascii) | set(extra))

    def flags_to_genres(line: str) -> str:
        flags = line.split("|")[5:]
        return "|".join(n for n, f in zip(genre_names, flags, strict=True) if f == "1")

    def values(line: str, sep: str) -> Values:
        u, i, r, t = line.split(sep)
        return int(u), int(i), float(r), int(t)

    uuser = (ml100k / "u.user").read_text().splitlines()[:30]
    users_dat = [
        "::".join([f[0], f[2], f[1], str(len(f[3])), f[4]]) for f in (u.split("|") for u in uuser)
    ]
    ml1m_ratings = [line.replace("\t", "::") for line in picked]
    ml100k_real = Real(
        "ml-100k",
        picked,
        {line: values(line, "\t") for line in picked},
        None,
        None,
        {i: uitem[i] for i in chosen},
        {i: uitem[i].split("|")[1] for i in chosen},
        {i: flags_to_genres(uitem[i]) for i in chosen},
        genre_bytes,
        ("\n".join(uuser) + "\n").encode(),
    )
    ml1m_real = Real(
        "ml-1m",
        ml1m_ratings,
        {line: values(line, "::") for line in ml1m_ratings},
        None,
        None,
        {
            i: f"{i}::{uitem[i].split('|')[1]}::{flags_to_genres(uitem[i]) or 'unknown'}"
            for i in chosen
        },
        {i: uitem[i].split("|")[1] for i in chosen},
        {i: flags_to_genres(uitem[i]) or "unknown" for i in chosen},
        b"",
        ("\n".join(users_dat) + "\n").encode(),
    )

    latest_lines = (ml_latest / "ratings.csv").read_text().splitlines()
    latest_picked = rng.sample(latest_lines[1:], POOL)
    movies_text = (ml_latest / "movies.csv").read_text(encoding="utf-8")
    movies_lines = movies_text.splitlines()
    movies = {int(next(csv.reader([line]))[0]): line for line in movies_lines[1:]}
    ids = {int(line.split(",")[1]) for line in latest_picked}
    odd = [i for i, line in movies.items() if not line.isascii()][:3]
    odd += [i for i, line in movies.items() if '"' in line][:3]
    chosen_latest = sorted(ids | set(odd) | set(rng.sample(sorted(movies), 10)))
    parsed = {i: next(csv.reader([movies[i]])) for i in chosen_latest}
    latest_real = Real(
        "ml-latest",
        latest_picked,
        {line: values(line, ",") for line in latest_picked},
        latest_lines[0],
        movies_lines[0],
        {i: movies[i] for i in chosen_latest},
        {i: parsed[i][1] for i in chosen_latest},
        {i: parsed[i][2] for i in chosen_latest},
    )
    return {"ml-100k": ml100k_real, "ml-1m": ml1m_real, "ml-latest": latest_real}


# --------------------------------------------------------------------------------------
# A batch
# --------------------------------------------------------------------------------------
@dataclass
class Table:
    """A CSV or Parquet export before it is written: its header and rows (None: null)."""

    header: list[str]
    rows: list[list[str | None]]
    delimiter: str = ","  # the file's own (CSV)
    mapping: dict[str, str] = field(default_factory=dict)  # canonical -> column, as given


@dataclass(frozen=True)
class Event:
    """One line of a feedback file and its fate: ``value`` (user, item, event, ts) for a
    usable event, else ``reason``."""

    file: str
    raw: str
    value: tuple[int, int, str, int] | None = None
    reason: str | None = None


@dataclass
class Batch:
    family: str  # ml-100k | ml-1m | ml-latest | csv | parquet
    fmt: str  # --format
    scale_text: str | None = None  # --rating-scale as typed
    scale: tuple[float, float] | None = None  # what it must resolve to
    columns_text: str | None = None  # --columns
    delimiter: str | None = None  # --delimiter
    ratings_name: str = ""
    target: str | None = None  # a file passed directly instead of the folder
    files: dict[str, bytes] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)
    fates: dict[str, Any] = field(default_factory=dict)  # line text -> Values or a reason
    table: Table | None = None
    events: list[Event] | None = None  # the feedback inbox, when there is one
    titles: str = "ok"
    genres: str = "ok"  # ml-100k only
    manifest: str = "absent"  # absent | scale | no_scale | damaged | random
    declared: tuple[float, float] | None = None  # the good manifest's scale
    forced: str | None = None  # the damage kind an explicit example shows

    @property
    def layout(self) -> str:
        return self.family

    def inbox_files(self) -> dict[str, bytes]:
        out: dict[str, list[str]] = {}
        for ev in self.events or []:
            out.setdefault(ev.file, []).append(ev.raw)
        head = {n: [feedback.CSV_HEADER] if n.endswith(".csv") else [] for n in out}
        return {n: ("\n".join(head[n] + lines) + "\n").encode() for n, lines in out.items()}

    def describe(self) -> str:
        shown = {n: (len(b), b[:160]) for n, b in sorted(self.files.items())}
        inbox = [(e.file, e.raw) for e in self.events] if self.events is not None else None
        return (
            f"family={self.family} fmt={self.fmt} scale={self.scale_text!r} "
            f"columns={self.columns_text!r} delimiter={self.delimiter!r} target={self.target} "
            f"damage={self.damage} titles={self.titles} genres={self.genres} "
            f"manifest={self.manifest} files={shown} inbox={inbox}"
        )


# --------------------------------------------------------------------------------------
# MovieLens text files
# --------------------------------------------------------------------------------------
FIELD_REASON = [
    parsing.REASON_USER_ID,
    parsing.REASON_ITEM_ID,
    parsing.REASON_RATING,
    parsing.REASON_TIMESTAMP,
]


def _field_damage(ch: Any, kind: str, exclude: set[str] = frozenset()) -> tuple[str, bool]:
    """(a damaged field value, whether it can never parse as any field)."""
    if kind == "marker":
        return ch.pick([m for m in MARKERS if not set(m) & exclude]), True
    if kind == "number":
        return ch.pick([n for n in NUMBERS if not set(n) & exclude]), False
    if ch.boolean():
        return ch.pick([w for w in WORDS if not set(w) & exclude]), False
    return ch.text(6, exclude), False


def _damage_lines(
    ch: Any, batch: Batch, real: Real, lines: list[str], kinds: list[str], count: int
) -> list[str]:
    """Text-level damage to the rating lines (the header, when there is one, is line 0)."""
    sep = SEP[real.layout]
    first = 1 if real.header else 0  # data lines start here

    def pristine(i: int) -> bool:
        return i >= first and lines[i] in real.values

    for _ in range(count):
        if len(lines) <= first:
            break
        kind = ch.pick(kinds)
        i = ch.integer(0, len(lines) - 1)
        if kind in ("marker", "text", "number"):
            value, never = _field_damage(ch, kind)
            fields = lines[i].split(sep)
            k = ch.integer(0, len(fields) - 1)
            fields[k] = value
            was = pristine(i)
            lines[i] = sep.join(fields)
            if was and never:  # a pristine line: only this field fails
                batch.fates[lines[i]] = FIELD_REASON[k]
        elif kind == "line_delimiter":
            d = ch.pick(DELIMITERS)
            was = pristine(i)
            lines[i] = d.join(lines[i].split(sep))
            if was and d != sep:
                batch.fates[lines[i]] = parsing.REASON_FIELD_COUNT
        elif kind == "file_delimiter":
            other = ch.pick([d for d in DELIMITERS if d != sep])
            lines = [other.join(line.split(sep)) for line in lines]
        elif kind == "extra_field":
            was = pristine(i)
            lines[i] += sep + ch.pick(["x", "", "5", "881250949"])
            if was:
                batch.fates[lines[i]] = parsing.REASON_FIELD_COUNT
        elif kind == "drop_field":
            fields = lines[i].split(sep)
            was = pristine(i)
            del fields[ch.integer(0, len(fields) - 1)]
            lines[i] = sep.join(fields)
            if was:
                batch.fates[lines[i]] = parsing.REASON_FIELD_COUNT
        elif kind == "duplicate":
            lines.insert(ch.integer(first, len(lines)), lines[i])
        elif kind == "conflict":  # the same user and item, another rating and time
            fields = lines[i].split(sep)
            if not (pristine(i) and len(fields) == 4):
                continue
            fields[2] = ch.pick(["1", "2", "3", "4", "5", "0.5", "4.5"])
            fields[3] = str(int(fields[3]) + ch.integer(-5, 5))
            lines.insert(ch.integer(first, len(lines)), sep.join(fields))
        elif kind == "header_line":
            lines.insert(ch.integer(first, len(lines)), HEADERLESS_HEADER[real.layout])
            if real.header is None:
                batch.fates[HEADERLESS_HEADER[real.layout]] = parsing.REASON_USER_ID
        elif kind == "blank_lines":
            blank = ch.pick(["", " ", "   ", "\t", " \t "])
            lines.insert(ch.integer(first, len(lines)), blank)
            if blank.strip(" "):  # a TAB is no blank to Spark's trim: one short field
                batch.fates[blank] = parsing.REASON_FIELD_COUNT
        elif kind == "drop_header":
            if real.header is None:
                continue
            lines = lines[1:]
            first = 0
        batch.damage.append(kind)
    return lines


def _damage_bytes(ch: Any, batch: Batch, data: bytes, kinds: list[str], count: int) -> bytes:
    for _ in range(count):
        kind = ch.pick(kinds)
        if kind == "bom":
            data = BOM + data
        elif kind == "bom_mid":
            starts = [m.end() for m in re.finditer(b"\n", data)]
            if not starts:
                continue
            at = ch.pick(starts)
            data = data[:at] + BOM + data[at:]
        elif kind == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif kind == "cr":
            data = data.replace(b"\n", b"\r")
        elif kind == "bad_bytes":
            at = ch.integer(0, len(data))
            data = data[:at] + ch.pick(BAD_BYTES) + data[at:]
        elif kind == "truncate":
            if len(data) <= 1:
                continue
            data = data[: ch.integer(len(data) // 2, len(data) - 1)]
        elif kind == "no_final_newline":
            data = data.rstrip(b"\r\n")
        elif kind == "utf16":
            data = data.decode("utf-8", "replace").encode("utf-16")
        elif kind == "latin1":
            data = data.decode("utf-8", "replace").encode("latin-1", "replace")
        batch.damage.append(kind)
    return data


def _titles_file(ch: Any, real: Real, state: str) -> bytes | None:
    lines = [real.titles[i] for i in sorted(real.titles)]
    header = [real.titles_header] if real.titles_header else []
    encoding = "utf-8" if real.layout == "ml-latest" else "latin-1"
    if state == "absent":
        return None
    if state == "missing_columns":
        if real.layout == "ml-latest":
            rows = [next(csv.reader([line])) for line in header + lines]
            drop = ch.integer(0, 2)
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows([r[:drop] + r[drop + 1 :] for r in rows])
            return out.getvalue().encode(encoding)
        sep = "|" if real.layout == "ml-100k" else "::"
        keep = ch.integer(1, 5 if real.layout == "ml-100k" else 2)
        lines = [sep.join(line.split(sep)[:keep]) for line in lines]
    if state == "bad_lines":
        for _ in range(ch.integer(1, 4)):
            i = ch.integer(0, len(lines) - 1)
            lines[i] = ch.pick([*MARKERS, *WORDS, "|||", "::", '"', "1,2"])
    data = ("\n".join(header + lines) + "\n").encode(encoding, errors="replace")
    if state == "truncated":
        data = data[: ch.integer(0, len(data) - 1)]
    elif state == "garbage":
        data = ch.binary(300, min_size=1)
    elif state == "other_encoding":
        data = data.decode(encoding).encode("latin-1" if encoding == "utf-8" else "utf-8")
    elif state == "utf16":
        data = data.decode(encoding).encode("utf-16")
    elif state == "empty":
        data = b""
    return data


def _genre_file(ch: Any, real: Real, state: str) -> bytes | None:
    lines = real.genre_file.decode().splitlines()
    if state == "absent":
        return None
    if state == "fewer":  # 18 names for u.item's 19 flags
        lines = lines[:-2]
    elif state == "shifted":  # indices 1..19 instead of 0..18
        lines = [f"{n}|{int(i) + 1}" for n, i in (g.split("|") for g in lines if g)]
    data = ("\n".join(lines) + "\n").encode()
    if state == "truncated":
        data = data[: ch.integer(0, len(data) - 1)]
    elif state == "garbage":
        data = ch.binary(200, min_size=1)
    elif state == "empty":
        data = b""
    return data


def _movielens(ch: Any, batch: Batch, forced: str | None) -> None:
    real = material()[batch.family]
    size = 8 if forced else MAX_LINES
    picked = ch.subset(real.ratings, 1, size)
    for line in picked:
        batch.fates[line] = real.values[line]
    lines = ([real.header] if real.header else []) + picked
    if forced in (*LINE_KINDS, *ML_LINE_KINDS):
        lines = _damage_lines(ch, batch, real, lines, [forced], 1)
    elif forced is None:
        lines = _damage_lines(
            ch, batch, real, lines, [*LINE_KINDS, *ML_LINE_KINDS], ch.integer(0, 5)
        )
    data = ("\n".join(lines) + "\n").encode()
    if forced in BYTE_KINDS:
        data = _damage_bytes(ch, batch, data, [forced], 1)
    elif forced is None:
        data = _damage_bytes(ch, batch, data, list(BYTE_KINDS), ch.integer(0, 2))
    batch.ratings_name = formats.RATINGS_FILE[batch.family]
    batch.files[batch.ratings_name] = data
    batch.fmt = ch.pick(["auto", batch.family])
    if ch.boolean():
        batch.target = batch.ratings_name

    if batch.titles:
        titles = _titles_file(ch, real, batch.titles)
        if titles is not None:
            batch.files[formats.TITLES_FILE[batch.family]] = titles
    if batch.family == "ml-100k":
        genre = _genre_file(ch, real, batch.genres)
        if genre is not None:
            batch.files[formats.GENRES_FILE] = genre
    if batch.family in USERS_FILE:  # nothing reads them: any state must do
        users = ch.pick(["ok", "absent", "garbage"])
        if users != "absent":
            batch.files[USERS_FILE[batch.family]] = real.users if users == "ok" else ch.binary(100)
    if forced is None:
        extras = ch.subset(["README", "u.info", "links.csv", "tags.csv"], 0, 2)
        for name in extras:
            batch.files[name] = ch.binary(60)


# --------------------------------------------------------------------------------------
# CSV and Parquet exports
# --------------------------------------------------------------------------------------
def _table(ch: Any, batch: Batch, forced: str | None) -> None:
    real = material()["ml-100k"]
    csv_file = batch.family == "csv"
    size = 8 if forced else MAX_LINES
    picked = ch.subset(real.ratings, 1, size)
    for line in picked:
        batch.fates[line] = real.values[line]  # keyed by the ML-100K text: rewritten below
    aliased = forced in ("unmapped_column", "bad_mapping", "no_timestamp_column") or ch.boolean()
    names = [ALIASES[c] if aliased else c for c in formats.CANONICAL]
    extra_at = ch.integer(0, 4) if ch.boolean() else None
    header = list(names)
    if extra_at is not None:
        header.insert(extra_at, "note")
    delimiter = ch.pick(TABLE_DELIMITERS) if csv_file else ","
    unsafe = CSV_UNSAFE | {delimiter} if csv_file else set()

    rows: list[list[str | None]] = []
    fates: dict[str, Any] = {}
    for line in picked:
        row: list[str | None] = line.split("\t")
        if extra_at is not None:
            row.insert(extra_at, ch.pick(["", "ok", "re-rated"]))
        rows.append(row)
        fates[delimiter.join(r or "" for r in row)] = real.values[line]
    batch.fates = fates
    pos = [header.index(n) for n in names]

    def pristine(i: int) -> bool:  # a real line, as yet undamaged
        return isinstance(fates.get(delimiter.join(r or "" for r in rows[i])), tuple)

    kinds = ["marker", "text", "number", "duplicate", "conflict", "null_value"]
    if csv_file:
        kinds += ["extra_field", "drop_field"]
    if forced in kinds:
        todo = [forced]
    elif forced is None:
        todo = [ch.pick(kinds) for _ in range(ch.integer(0, 4))]
    else:
        todo = []
    for kind in todo:
        i = ch.integer(0, len(rows) - 1)
        was = pristine(i)
        if kind in ("marker", "text", "number", "null_value"):
            k = ch.integer(0, 3)
            if kind == "null_value":
                value, never = (None if not csv_file else ""), True
            else:
                value, never = _field_damage(ch, kind, unsafe)
            rows[i] = list(rows[i])
            rows[i][pos[k]] = value
            if was and never:
                fates[delimiter.join(r or "" for r in rows[i])] = FIELD_REASON[k]
        elif kind == "extra_field":
            rows[i] = [*rows[i], ch.pick(["x", "5", "881250949"])]
            if was:
                fates[delimiter.join(r or "" for r in rows[i])] = parsing.REASON_FIELD_COUNT
        elif kind == "drop_field":
            rows[i] = list(rows[i])
            del rows[i][ch.integer(0, len(rows[i]) - 1)]
            if was:
                fates[delimiter.join(r or "" for r in rows[i])] = parsing.REASON_FIELD_COUNT
        elif kind == "duplicate":
            rows.insert(ch.integer(0, len(rows)), list(rows[i]))
        elif kind == "conflict":
            if not was:
                continue
            row = list(rows[i])
            row[pos[2]] = ch.pick(["1", "2", "3", "4", "5", "0.5", "4.5"])
            row[pos[3]] = str(int(row[pos[3]] or 0) + ch.integer(-5, 5))
            rows.insert(ch.integer(0, len(rows)), row)
        batch.damage.append(kind)

    # The column mapping: needed for other names; the timestamp may be left unmapped.
    mapping = {c: n for c, n in zip(formats.CANONICAL, names, strict=True)}
    if forced == "no_timestamp_column" or (forced is None and aliased and ch.integer(0, 5) == 0):
        del mapping[config.COL_TIMESTAMP]
        batch.damage.append("no_timestamp_column")
        # No timestamps read: real lines keep theirs as null; a damaged one is no damage.
        batch.fates = {
            line: (fate[:3] + (None,) if isinstance(fate, tuple) else fate)
            for line, fate in fates.items()
            if fate != parsing.REASON_TIMESTAMP
        }
    if forced == "unmapped_column" or (forced is None and ch.integer(0, 15) == 0):
        mapping[config.COL_RATING] = "score"
        batch.damage.append("unmapped_column")
    if aliased or "unmapped_column" in batch.damage or ch.boolean():
        parts = [f"{MAPPING_NAME[c]}={n}" for c, n in mapping.items()]
        ch_order = ch.subset(parts, len(parts), len(parts)) if parts else parts
        batch.columns_text = ",".join(ch_order)
    if forced == "bad_mapping" or (forced is None and ch.integer(0, 20) == 0):
        batch.columns_text = ch.pick(BAD_MAPPINGS)
        batch.damage.append("bad_mapping")

    batch.table = Table(header, rows, delimiter, mapping)
    if csv_file:
        batch.ratings_name = ch.pick(["ratings.csv", "export.csv", "ratings.tsv"])
        text = "\n".join(delimiter.join(r or "" for r in row) for row in [header, *rows]) + "\n"
        batch.files[batch.ratings_name] = text.encode()
        batch.delimiter = delimiter if (delimiter != "," or ch.boolean()) else None
        if forced == "wrong_delimiter_flag" or (forced is None and ch.integer(0, 12) == 0):
            batch.delimiter = ch.pick([d for d in TABLE_DELIMITERS if d != delimiter])
            batch.damage.append("wrong_delimiter_flag")
        batch.target = (
            batch.ratings_name if (batch.ratings_name != "ratings.csv" or ch.boolean()) else None
        )
        # auto tells csv from its single file's name, or from the folder's ratings.csv
        batch.fmt = ch.pick(["auto", "csv"]) if batch.ratings_name != "export.csv" else "csv"
        if batch.fmt == "auto" and not aliased:  # MovieLens-like names: auto refuses them
            batch.fmt = "csv"
    else:
        batch.ratings_name = "ratings.parquet"
        arrays = [pa.array([r[k] for r in rows], pa.string()) for k in range(len(header))]
        out = pa.BufferOutputStream()
        pq.write_table(pa.table(arrays, names=header), out)
        batch.files[batch.ratings_name] = out.getvalue().to_pybytes()
        batch.target = batch.ratings_name if ch.boolean() else None
        batch.fmt = ch.pick(["auto", "parquet"])


# --------------------------------------------------------------------------------------
# Feedback events
# --------------------------------------------------------------------------------------
FB_BASE_TS = 1_700_000_000


def _event_line(file: str, u: Any, i: Any, ev: Any, ts: Any) -> str:
    if file.endswith(".csv"):
        return ",".join(str(x) for x in (u, i, ev, ts))
    return json.dumps({"user_id": u, "item_id": i, "event": ev, "ts": ts})


def _feedback(ch: Any, batch: Batch, forced: str | None) -> None:
    """An inbox from the users and items of the batch's real lines, with damage."""
    pairs = [(v[0], v[1]) for v in batch.fates.values() if isinstance(v, tuple)]
    if not pairs:
        pairs = [(1, 1)]
    files = ch.subset(["events.jsonl", "events.csv"], 1, 2)
    events: list[Event] = []
    n = ch.integer(1, 5) if forced is None else 3
    for k in range(n):
        u, i = ch.pick(pairs)
        ev, f = ch.pick(feedback.EVENTS), ch.pick(files)
        ts = FB_BASE_TS + 100 * k
        events.append(Event(f, _event_line(f, u, i, ev, ts), (u, i, ev, ts)))
    kinds = [forced] if forced else [ch.pick(FEEDBACK_KINDS) for _ in range(ch.integer(0, 3))]
    for kind in kinds:
        u, i = ch.pick(pairs)
        ev, ts = ch.pick(feedback.EVENTS), FB_BASE_TS + ch.integer(0, 50)
        f = ch.pick(files)
        if kind == "fb_json":
            f = "events.jsonl"
        elif kind == "fb_field_count":
            f = "events.csv"
        value, reason = None, None
        if kind == "fb_event":
            bad = ch.pick(["love", "", "LIKES", "1"])
            line, reason = _event_line(f, u, i, bad, ts), feedback.REASON_EVENT
        elif kind == "fb_user":
            line, reason = _event_line(f, ch.pick(["x", -4, 0]), i, ev, ts), parsing.REASON_USER_ID
        elif kind == "fb_item":
            bad = ch.pick(["abc", 3_000_000_000, -1])
            line, reason = _event_line(f, u, bad, ev, ts), parsing.REASON_ITEM_ID
        elif kind == "fb_json":
            line, reason = _event_line(f, u, i, ev, ts)[:-1], feedback.REASON_JSON
        elif kind == "fb_field_count":
            line, reason = f"{u},{i},{ev}", parsing.REASON_FIELD_COUNT
        elif kind == "fb_timestamp":
            line, reason = _event_line(f, u, i, ev, ch.pick(["soon", -5])), parsing.REASON_TIMESTAMP
        elif kind == "fb_future":
            line, reason = _event_line(f, u, i, ev, 4_102_444_800), parsing.REASON_FUTURE
        elif kind == "fb_duplicate":  # the same user, item and event at another time
            same = ch.pick(events) if events else None
            if same is None or same.value is None:
                continue
            u, i, ev, _ = same.value
            line, value = _event_line(f, u, i, ev, ts), (u, i, ev, ts)
        elif kind == "fb_unknown":  # a user the ratings do not have (yet): pending
            line, value = _event_line(f, 987_654, i, ev, ts), (987_654, i, ev, ts)
        else:  # fb_iso_time: an ISO-8601 UTC time, same instant as the epoch seconds
            line, value = _event_line(f, u, i, ev, "2023-11-14T22:13:20Z"), (u, i, ev, FB_BASE_TS)
        at = ch.integer(0, len(events))
        events.insert(at, Event(f, line, value, reason))
        batch.damage.append(kind)
    batch.events = events


# --------------------------------------------------------------------------------------
# Whole batches
# --------------------------------------------------------------------------------------
def _manifest(ch: Any, batch: Batch, state: str) -> None:
    batch.manifest = state
    if state == "scale":
        lo, hi = ch.pick([(1, 5), (0.5, 5.0), (1, 10), (0, 5)])
        batch.declared = (float(lo), float(hi))
        batch.files[formats.MANIFEST_FILE] = (GOOD_MANIFEST % (lo, hi)).encode()
    elif state == "no_scale":
        batch.files[formats.MANIFEST_FILE] = b'{"source": "export", "n_ratings": 12}'
    elif state == "damaged":
        if ch.boolean():
            batch.files[formats.MANIFEST_FILE] = ch.pick(DAMAGED_MANIFESTS)
        else:  # any strict prefix of a JSON object is broken JSON
            good = (GOOD_MANIFEST % (1, 10)).encode()
            batch.files[formats.MANIFEST_FILE] = good[: ch.integer(0, len(good) - 1)]
    elif state == "random":
        batch.files[formats.MANIFEST_FILE] = ch.binary(80)


def _family_for(ch: Any, forced: str | None) -> str:
    """A family the damage kind ``forced`` applies to."""
    if forced in TABLE_KINDS:
        return "csv" if forced == "wrong_delimiter_flag" else ch.pick(["csv", "parquet"])
    if forced in ("extra_field", "drop_field"):
        return ch.pick([*ML_LAYOUTS, "csv"])
    if forced in LINE_KINDS or forced is None:
        return ch.pick(FAMILIES)
    if forced == "drop_header":
        return "ml-latest"
    if forced == "header_line":
        return ch.pick(["ml-100k", "ml-1m"])
    return ch.pick(ML_LAYOUTS)


def build_batch(
    ch: Any, forced: str | None = None, family: str | None = None, **states: Any
) -> Batch:
    """One batch; ``forced``: exactly that damage kind, on a small batch of ``family``
    (``states``: the optional files' states, default good, and the --rating-scale)."""
    family = family or _family_for(ch, forced)
    batch = Batch(family, family, forced=forced)
    if forced is None:
        batch.scale_text = ch.pick([None, None, None, None, *SCALE_TEXTS])
        if ch.integer(0, 20) == 0:
            batch.scale_text = ch.pick(BAD_SCALE_TEXTS)
            batch.damage.append("bad_scale")
    elif forced == "bad_scale":
        batch.scale_text = ch.pick(BAD_SCALE_TEXTS)
        batch.damage.append("bad_scale")
    else:
        batch.scale_text = states.get("scale")
    batch.scale = SCALE_TEXTS.get(batch.scale_text)

    if family in ML_LAYOUTS:
        if forced is None:
            batch.titles = ch.pick(["ok", "ok", "ok", *TITLES_STATES])
            batch.genres = ch.pick(["ok", "ok", *GENRES_STATES])
        else:
            batch.titles = states.get("titles", "ok")
            batch.genres = states.get("genres", "ok")
        if family != "ml-100k":
            batch.genres = "ok"
        _movielens(ch, batch, forced)
    else:
        batch.titles = "absent"
        _table(ch, batch, forced)

    if forced is None:
        state = ch.pick(["absent", "absent", "absent", "absent", *MANIFEST_STATES])
    else:
        state = states.get("manifest", "absent")
    _manifest(ch, batch, state)
    if forced in FEEDBACK_KINDS or (forced is None and ch.integer(0, 3) == 0):
        _feedback(ch, batch, forced)
    return batch


@st.composite
def batches(draw: Any) -> Batch:
    return build_batch(DrawChooser(draw))


@dataclass(frozen=True)
class Forced:
    """An explicit example: a small batch showing the damage ``kind`` (built when run, from
    the real lines), with the optional files in the given states."""

    kind: str
    family: str | None = None
    titles: str = "ok"
    genres: str = "ok"
    manifest: str = "absent"
    scale: str | None = None  # --rating-scale

    def build(self) -> Batch:
        states = {"titles": self.titles, "genres": self.genres, "manifest": self.manifest}
        chooser = SeededChooser(f"forced-{self.kind}")
        return build_batch(chooser, self.kind, self.family, scale=self.scale, **states)
