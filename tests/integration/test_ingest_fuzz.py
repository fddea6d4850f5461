"""Property-based fuzzing of ingest (Hypothesis) on damaged batches made from real lines.

Each example writes one dataset folder in a MovieLens layout from a few dozen real lines:
ml-100k (``u.data``, ``u.item``, ``u.genre``, ``u.user``), an ml-1m shaped copy of the same
lines (``ratings.dat``, ``movies.dat``, ``users.dat``) or ml-latest-small (``ratings.csv``,
``movies.csv``). It then combines damage: fields replaced by missing-value markers, text,
huge or negative numbers; wrong delimiters, BOMs, CRLF or CR line ends, bytes that are not
UTF-8, the file cut mid-line, duplicated and conflicting rows, headers where none belong;
optional files missing, extra or damaged; a ``manifest.json`` good, without a scale, or
damaged. ``detect_source`` and ``ingest.run`` are called directly (not through
``reco.runtime.execute``, which converts every exception), and every example must end in
exactly one of two ways:

- a pass: every line of the ratings file that is neither blank nor the header is in
  ``ratings.parquet`` or in ``quarantine.parquet`` with a known reason code, and the
  manifest's counts add up (see ``check_pass``);
- a ``PipelineError`` whose message names the file and says what to do.

Any other exception fails the test, and Hypothesis shrinks it to a minimal batch.
Examples: the "ci" profile of tests/conftest.py (bounded, derandomised); a longer random
search with ``--hypothesis-profile=deep`` (README, "Bad input"). The counts of each run are
printed at the end and kept in ``<test var>/fuzz/summary.json``.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import math
import random
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from reco import config
from reco.data import formats, ingest, parsing
from reco.errors import PipelineError
from reco.publishing import warehouse
from reco.runs import RunFolder

LAYOUTS = ("ml-100k", "ml-1m", "ml-latest")
SEP = {"ml-100k": "\t", "ml-1m": "::", "ml-latest": ","}
USERS_FILE = {"ml-100k": "u.user", "ml-1m": "users.dat"}
POOL = 60  # real rating lines per layout that examples draw from
SEED = 20240917  # the fixed sample of real lines

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
FIX = re.compile(r"\b(pass|check|fix|map|remove|point|run)\b", re.IGNORECASE)
SPARK_TRIM = "".join(chr(c) for c in range(33))  # what Spark trims before a numeric cast
INT64 = 2**63


# --------------------------------------------------------------------------------------
# The real lines examples are made from
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Real:
    """One layout's real material: rating lines (with their values) and optional files."""

    layout: str
    ratings: list[str]
    values: dict[str, tuple[int, int, float, int]]  # rating line -> its true values
    header: str | None
    titles_header: str | None
    titles: dict[int, str]  # item id -> its line in the titles file
    title_of: dict[int, str]
    genres_of: dict[int, str]  # with a good u.genre (ml-100k) / the file's genres
    genre_file: bytes = b""
    users: bytes = b""


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

    def values(line: str, sep: str) -> tuple[int, int, float, int]:
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
# Damaged batches
# --------------------------------------------------------------------------------------
@dataclass
class Batch:
    layout: str
    fmt: str
    scale: tuple[float, float] | None  # given explicitly (--rating-scale)
    files: dict[str, bytes] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)
    titles: str = "ok"
    genres: str = "ok"  # ml-100k only
    manifest: str = "absent"  # absent | scale | no_scale | damaged | random
    declared: tuple[float, float] | None = None  # the good manifest's scale

    def describe(self) -> str:
        shown = {n: (len(b), b[:160]) for n, b in sorted(self.files.items())}
        return (
            f"layout={self.layout} fmt={self.fmt} scale={self.scale} damage={self.damage} "
            f"titles={self.titles} genres={self.genres} manifest={self.manifest} "
            f"files={shown}"
        )


def _mutate_field(draw, lines: list[str], sep: str, value: str) -> None:
    i = draw(st.integers(0, len(lines) - 1))
    fields = lines[i].split(sep)
    fields[draw(st.integers(0, len(fields) - 1))] = value
    lines[i] = sep.join(fields)


def _damage_lines(draw, real: Real, lines: list[str], damage: list[str]) -> list[str]:
    """Text-level damage to the rating lines (the header, when there is one, is line 0)."""
    sep = SEP[real.layout]
    kinds = [
        "marker",
        "text",
        "number",
        "line_delimiter",
        "file_delimiter",
        "extra_field",
        "drop_field",
        "duplicate",
        "conflict",
        "header_line",
        "blank_lines",
        "drop_header",
    ]
    for _ in range(draw(st.integers(0, 6))):
        if not lines:
            break
        kind = draw(st.sampled_from(kinds))
        damage.append(kind)
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "marker":
            _mutate_field(draw, lines, sep, draw(st.sampled_from(MARKERS)))
        elif kind == "text":
            text = draw(st.sampled_from(WORDS) | st.text(max_size=6))
            _mutate_field(draw, lines, sep, text)
        elif kind == "number":
            _mutate_field(draw, lines, sep, draw(st.sampled_from(NUMBERS)))
        elif kind == "line_delimiter":
            lines[i] = draw(st.sampled_from(DELIMITERS)).join(lines[i].split(sep))
        elif kind == "file_delimiter":
            other = draw(st.sampled_from(DELIMITERS))
            lines = [other.join(line.split(sep)) for line in lines]
        elif kind == "extra_field":
            lines[i] += sep + draw(st.sampled_from(["x", "", "5", "881250949"]))
        elif kind == "drop_field":
            fields = lines[i].split(sep)
            del fields[draw(st.integers(0, len(fields) - 1))]
            lines[i] = sep.join(fields)
        elif kind == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif kind == "conflict":  # the same user and item, another rating and time
            fields = lines[i].split(sep)
            if len(fields) == 4 and fields[3].isdigit():
                fields[2] = draw(st.sampled_from(["1", "2", "3", "4", "5", "0.5", "4.5"]))
                fields[3] = str(int(fields[3]) + draw(st.integers(-5, 5)))
                lines.insert(draw(st.integers(0, len(lines))), sep.join(fields))
        elif kind == "header_line":
            lines.insert(draw(st.integers(0, len(lines))), HEADERLESS_HEADER[real.layout])
        elif kind == "blank_lines":
            blank = draw(st.sampled_from(["", " ", "   ", "\t", " \t "]))
            lines.insert(draw(st.integers(0, len(lines))), blank)
        elif kind == "drop_header" and real.header is not None:
            lines = lines[1:]
    return lines


def _damage_bytes(draw, data: bytes, damage: list[str]) -> bytes:
    kinds = [
        "bom",
        "bom_mid",
        "crlf",
        "cr",
        "bad_bytes",
        "truncate",
        "no_final_newline",
        "utf16",
        "latin1",
    ]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(kinds))
        damage.append(kind)
        if kind == "bom":
            data = BOM + data
        elif kind == "bom_mid":
            starts = [m.end() for m in re.finditer(b"\n", data)]
            if starts:
                at = draw(st.sampled_from(starts))
                data = data[:at] + BOM + data[at:]
        elif kind == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif kind == "cr":
            data = data.replace(b"\n", b"\r")
        elif kind == "bad_bytes":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
        elif kind == "truncate" and len(data) > 1:
            data = data[: draw(st.integers(len(data) // 2, len(data) - 1))]
        elif kind == "no_final_newline":
            data = data.rstrip(b"\r\n")
        elif kind == "utf16":
            data = data.decode("utf-8", "replace").encode("utf-16")
        elif kind == "latin1":
            data = data.decode("utf-8", "replace").encode("latin-1", "replace")
    return data


def _titles_file(draw, real: Real, state: str) -> bytes | None:
    lines = [real.titles[i] for i in sorted(real.titles)]
    header = [real.titles_header] if real.titles_header else []
    encoding = "utf-8" if real.layout == "ml-latest" else "latin-1"
    if state == "absent":
        return None
    if state == "missing_columns":
        if real.layout == "ml-latest":
            rows = [next(csv.reader([line])) for line in header + lines]
            drop = draw(st.integers(0, 2))
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows([r[:drop] + r[drop + 1 :] for r in rows])
            return out.getvalue().encode(encoding)
        sep = "|" if real.layout == "ml-100k" else "::"
        keep = draw(st.integers(1, 5 if real.layout == "ml-100k" else 2))
        lines = [sep.join(line.split(sep)[:keep]) for line in lines]
    if state == "bad_lines":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from([*MARKERS, *WORDS, "|||", "::", '"', "1,2"]))
    data = ("\n".join(header + lines) + "\n").encode(encoding, errors="replace")
    if state == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif state == "garbage":
        data = draw(st.binary(min_size=1, max_size=300))
    elif state == "other_encoding":
        data = data.decode(encoding).encode("latin-1" if encoding == "utf-8" else "utf-8")
    elif state == "utf16":
        data = data.decode(encoding).encode("utf-16")
    elif state == "empty":
        data = b""
    return data


def _genre_file(draw, real: Real, state: str) -> bytes | None:
    lines = real.genre_file.decode().splitlines()
    if state == "absent":
        return None
    if state == "fewer":  # 18 names for u.item's 19 flags
        lines = lines[:-2]
    elif state == "shifted":  # indices 1..19 instead of 0..18
        lines = [f"{n}|{int(i) + 1}" for n, i in (g.split("|") for g in lines if g)]
    data = ("\n".join(lines) + "\n").encode()
    if state == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif state == "garbage":
        data = draw(st.binary(min_size=1, max_size=200))
    elif state == "empty":
        data = b""
    return data


@st.composite
def batches(draw) -> Batch:
    layout = draw(st.sampled_from(LAYOUTS))
    real = MATERIAL[layout]
    batch = Batch(
        layout,
        draw(st.sampled_from(["auto", layout])),
        draw(st.sampled_from([None, None, None, (1.0, 5.0), (0.5, 5.0), (1.0, 10.0)])),
    )
    picked = draw(st.lists(st.sampled_from(real.ratings), min_size=1, max_size=40, unique=True))
    lines = ([real.header] if real.header else []) + picked
    lines = _damage_lines(draw, real, lines, batch.damage)
    data = _damage_bytes(draw, ("\n".join(lines) + "\n").encode(), batch.damage)
    batch.files[formats.RATINGS_FILE[layout]] = data

    titles_states = [
        "ok",
        "ok",
        "ok",
        "absent",
        "truncated",
        "garbage",
        "other_encoding",
        "utf16",
        "missing_columns",
        "bad_lines",
        "empty",
    ]
    batch.titles = draw(st.sampled_from(titles_states))
    titles = _titles_file(draw, real, batch.titles)
    if titles is not None:
        batch.files[formats.TITLES_FILE[layout]] = titles
    if layout == "ml-100k":
        batch.genres = draw(
            st.sampled_from(
                ["ok", "ok", "absent", "garbage", "truncated", "empty", "fewer", "shifted"]
            )
        )
        genre = _genre_file(draw, real, batch.genres)
        if genre is not None:
            batch.files[formats.GENRES_FILE] = genre
    if layout in USERS_FILE:  # nothing reads them: any state must do
        users = draw(st.sampled_from(["ok", "absent", "garbage"]))
        if users != "absent":
            batch.files[USERS_FILE[layout]] = (
                real.users if users == "ok" else draw(st.binary(max_size=100))
            )

    batch.manifest = draw(
        st.sampled_from(["absent", "absent", "absent", "scale", "no_scale", "damaged", "random"])
    )
    if batch.manifest == "scale":
        lo, hi = draw(st.sampled_from([(1, 5), (0.5, 5.0), (1, 10), (0, 5)]))
        batch.declared = (float(lo), float(hi))
        batch.files[formats.MANIFEST_FILE] = (GOOD_MANIFEST % (lo, hi)).encode()
    elif batch.manifest == "no_scale":
        batch.files[formats.MANIFEST_FILE] = b'{"source": "export", "n_ratings": 12}'
    elif batch.manifest == "damaged":
        if draw(st.booleans()):
            batch.files[formats.MANIFEST_FILE] = draw(st.sampled_from(DAMAGED_MANIFESTS))
        else:  # any strict prefix of a JSON object is broken JSON
            good = (GOOD_MANIFEST % (1, 10)).encode()
            batch.files[formats.MANIFEST_FILE] = good[: draw(st.integers(0, len(good) - 1))]
    elif batch.manifest == "random":
        batch.files[formats.MANIFEST_FILE] = draw(st.binary(max_size=80))

    extras = draw(
        st.lists(st.sampled_from(["README", "u.info", "links.csv", "tags.csv"]), unique=True)
    )
    for name in extras:
        batch.files[name] = draw(st.binary(max_size=60))
    return batch


# --------------------------------------------------------------------------------------
# The oracle: what a pass must hold, computed from the bytes written
# --------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    """Java and Python replace bytes that are not UTF-8 with U+FFFD, not always as many."""
    return re.sub("\ufffd+", "\ufffd", text)


def expected_lines(data: bytes, has_header: bool) -> tuple[list[str], str | None]:
    """The lines ingest must account for, and the header: split at LF, CRLF or CR (as
    Hadoop's line reader), the file's BOM skipped and a BOM starting a line dropped, the
    blank lines (spaces only: Spark's trim) and the header lines left out."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = [line.removeprefix("\ufeff") for line in re.split(r"\r\n|\r|\n", text)]
    header = lines[0] if has_header else None
    kept = [line for line in lines if line.strip(" ") and line != header]
    return [_norm(line) for line in kept], header


def _spark_long(text: str) -> int | None:
    text = text.strip(SPARK_TRIM)
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -INT64 <= value < INT64 else None


def refusal_kind(message: str) -> str:
    """A refusal's message without its paths, numbers and details: for the summary."""
    kind = re.sub(r"/\S+", "<file>", message)
    kind = re.sub(r"\(.*?\)|\[.*?\]|\{.*?\}", "(...)", kind)
    return re.sub(r"\d+", "N", kind)[:90]


def check_refusal(batch: Batch, data_dir: Path, message: str) -> None:
    files = [formats.RATINGS_FILE[batch.layout], formats.MANIFEST_FILE]
    named = [f for f in files if str(data_dir / f) in message]
    assert named, f"the refusal names no file of {data_dir}: {message}"
    assert FIX.search(message), f"the refusal does not say what to do: {message}"
    event(f"refused: {named[0]}")


def check_pass(batch: Batch, real: Real, data_dir: Path, src, run_dir: Path) -> None:
    folder = RunFolder(run_dir)
    # manifest.json is JSON: no NaN or Infinity.
    manifest = json.loads(
        folder.manifest.read_text(encoding="utf-8"),
        parse_constant=lambda c: pytest.fail(f"manifest.json holds {c}"),
    )
    assert not (batch.manifest == "damaged" and batch.scale is None), (
        "a damaged manifest.json (it may declare the scale) must stop the run unless the "
        "scale is given explicitly"
    )

    # The scale: explicit, else the manifest's, else the layout's.
    expected_scale = batch.scale or batch.declared or formats.LAYOUT_SCALE[batch.layout]
    assert tuple(manifest["source"]["rating_scale"]) == expected_scale
    lo, hi = expected_scale

    # Every line that is neither blank nor the header: in ratings or in quarantine.
    lines, header = expected_lines(batch.files[formats.RATINGS_FILE[batch.layout]], src.has_header)
    quarantine = pd.read_parquet(folder.quarantine)
    ratings = pd.read_parquet(folder.ratings)
    assert set(quarantine["reason"]) <= set(parsing.REASONS)
    q_raw = collections.Counter(_norm(r) for r in quarantine["raw"])
    all_lines = collections.Counter(lines)
    assert not q_raw - all_lines, f"quarantined lines not in the file: {q_raw - all_lines}"
    accepted = all_lines - q_raw
    assert accepted.total() == len(ratings)

    # The manifest's counts.
    by_reason = dict(collections.Counter(quarantine["reason"]))
    assert manifest["lines_read"] == len(lines) == manifest["n_ratings"] + manifest["n_rejected"]
    assert manifest["n_ratings"] == len(ratings) > 0
    assert manifest["n_rejected"] == len(quarantine) == sum(by_reason.values())
    assert manifest["rejected_by_reason"] == by_reason
    assert manifest["n_superseded"] == by_reason.get(parsing.REASON_DUPLICATE, 0)
    assert manifest["n_malformed"] == manifest["n_rejected"] - manifest["n_superseded"]
    assert manifest["n_users"] == ratings["user_id"].nunique()
    assert manifest["n_items"] == ratings["item_id"].nunique()
    assert manifest["rating_mean"] == pytest.approx(ratings["rating"].mean())
    for key in ("rating_seen_min", "rating_seen_max"):
        assert manifest[key] is None or math.isfinite(manifest[key])
    assert manifest["rating_seen_min"] <= ratings["rating"].min()
    assert manifest["rating_seen_max"] >= ratings["rating"].max()

    # The accepted ratings: one per (user, item), every value within its bounds.
    assert not ratings.duplicated(["user_id", "item_id"]).any()
    assert ratings["user_id"].between(1, formats.MAX_ID).all()
    assert ratings["item_id"].between(1, formats.MAX_ID).all()
    assert ratings["rating"].between(lo, hi).all()
    now = time.time() + parsing.CLOCK_SKEW_S
    assert ratings["timestamp"].between(0, now).all()

    # Each accepted line is one of the kept (user, item) pairs; an untouched real line that
    # was kept carries exactly its real values.
    sep = SEP[batch.layout]
    if header is not None:
        names = [h.strip() for h in header.split(",")]
        pos = [names.index(h) for h in formats.ML_LATEST_HEADER]
        width = len(names)
    else:
        pos, width = [0, 1, 2, 3], 4
    keys = set(zip(ratings["user_id"], ratings["item_id"], strict=True))
    rows = set(ratings.itertuples(index=False, name=None))
    accepted_keys = set()
    for line in accepted:
        fields = line.split(sep)
        assert len(fields) == width, f"accepted with {len(fields)} fields: {line!r}"
        key = (_spark_long(fields[pos[0]]), _spark_long(fields[pos[1]]))
        assert None not in key, f"accepted, yet its ids do not parse: {line!r}"
        rating = fields[pos[2]].strip(" ")
        assert re.match(parsing.DECIMAL, rating), f"accepted a rating that is no number: {line!r}"
        accepted_keys.add(key)
        if line in real.values:
            assert real.values[line] in rows, f"real line {line!r} kept with other values"
    assert accepted_keys == keys

    check_notes(batch, manifest, folder)
    event(f"passed: {len(ratings)} kept, {len(quarantine)} quarantined")


def check_notes(batch: Batch, manifest: dict, folder: RunFolder) -> None:
    """One note per missing or damaged optional file that was left out; none otherwise."""
    notes = manifest["notes"]
    titles_file = formats.TITLES_FILE[batch.layout]
    about = [n.split(" ")[0].rstrip(":") for n in notes]
    assert len(about) == len(set(about)), f"a file noted twice: {notes}"
    allowed = {titles_file, formats.MANIFEST_FILE} | (
        {formats.GENRES_FILE} if batch.layout == "ml-100k" else set()
    )
    assert set(about) <= allowed, notes

    # ": titles not loaded" ends a note when none was loaded ("those titles ...": some).
    titles_lost = any(
        n.startswith(titles_file) and n.endswith(": titles not loaded") for n in notes
    )
    assert titles_lost is (manifest["n_item_titles"] == 0)
    assert folder.items.exists() is (manifest["n_item_titles"] > 0)
    if batch.titles == "absent":
        assert f"{titles_file} not found: titles not loaded" in notes
    if manifest["n_item_titles"]:
        items = pd.read_parquet(folder.items)
        assert len(items) == manifest["n_item_titles"]
        assert items["item_id"].is_unique and items["item_id"].between(1, formats.MAX_ID).all()
        assert items["title"].map(lambda t: isinstance(t, str) and t.strip() != "").all()
        assert items["genres"].map(lambda g: isinstance(g, str)).all()

    genres_ok = batch.layout != "ml-100k" or batch.genres == "ok"
    if batch.titles == "ok" and genres_ok:  # everything there: titles and genres exact
        assert not any(n.startswith(titles_file) for n in notes), notes
        real = MATERIAL[batch.layout]
        items = pd.read_parquet(folder.items).set_index("item_id")
        assert set(items.index) == set(real.titles)
        assert items["title"].to_dict() == real.title_of
        assert items["genres"].to_dict() == real.genres_of
    if batch.layout == "ml-100k" and batch.titles == "ok" and batch.genres == "absent":
        assert "u.genre not found: genres left empty" in notes
        assert (pd.read_parquet(folder.items)["genres"] == "").all()

    manifest_noted = any(n.startswith(formats.MANIFEST_FILE) for n in notes)
    if batch.manifest in ("absent", "scale", "no_scale"):
        assert not manifest_noted, notes
    if batch.manifest == "damaged":  # reached only with an explicit scale
        assert manifest_noted, notes


# --------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------
MATERIAL: dict[str, Real] = {}


def published_fingerprint(url: str) -> tuple:
    """What a refused (or any) ingest must leave as it was: the live recommendations and
    the model runs."""
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), max(model_version), md5(coalesce(string_agg("
            "concat_ws(',', user_id, item_id, rank, score, model_version), ';' "
            "ORDER BY user_id, rank), '')) FROM reco.recommendations"
        )
        recs = cur.fetchone()
        cur.execute("SELECT count(*), max(run_id) FROM reco.model_runs")
        return recs, cur.fetchone()


def test_ingest_survives_damaged_batches(
    spark, warehouse_url: str, ml100k: Path, ml_latest: Path, capsys
) -> None:
    MATERIAL.update(_real_material(ml100k, ml_latest))
    before = published_fingerprint(warehouse_url)
    work = config.VAR_DIR / "fuzz"
    work.mkdir(parents=True, exist_ok=True)
    outcomes: collections.Counter[str] = collections.Counter()
    refusals: collections.Counter[str] = collections.Counter()

    @given(batch=batches())
    def ingest_ends_in_a_pass_or_a_clear_refusal(batch: Batch) -> None:
        root = Path(tempfile.mkdtemp(prefix="example-", dir=work))
        try:
            data_dir = root / batch.layout
            data_dir.mkdir()
            run_dir = root / "run"
            run_dir.mkdir()
            for name, content in batch.files.items():
                (data_dir / name).write_bytes(content)
            data_dir = data_dir.resolve()
            note(batch.describe())
            try:
                src = formats.detect_source(data_dir, batch.fmt, rating_scale=batch.scale)
                ingest.run(spark, run_dir, src)
            except PipelineError as exc:
                note(f"refused: {exc}")
                check_refusal(batch, data_dir, str(exc))
                outcomes["refusal"] += 1
                refusals[refusal_kind(str(exc))] += 1
                return
            check_pass(batch, MATERIAL[batch.layout], data_dir, src, run_dir)
            outcomes["pass"] += 1
        finally:
            shutil.rmtree(root, ignore_errors=True)

    t0 = time.perf_counter()
    ingest_ends_in_a_pass_or_a_clear_refusal()
    seconds = time.perf_counter() - t0

    assert published_fingerprint(warehouse_url) == before
    summary = {
        "profile": settings.get_current_profile_name(),
        "examples": outcomes.total(),
        "passed": outcomes["pass"],
        "refused": outcomes["refusal"],
        "seconds": round(seconds, 1),
        "refusals": dict(refusals.most_common()),
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with capsys.disabled():
        print(
            f"\ningest fuzz ({summary['profile']} profile): {summary['examples']} examples, "
            f"{summary['passed']} passed, {summary['refused']} refused, {seconds:.0f} s"
        )
    assert outcomes["pass"] > 0 and outcomes["refusal"] > 0
