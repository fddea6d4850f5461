"""The ingest fuzz test's oracle: what ingest must have done with a ``Batch``
(``tests/support/fuzz_batches.py``), line by line.

``expected_lines`` re-implements the documented rules (README, "Bad input") in plain
Python, independently of ``reco.data.parsing``: which lines are read, how each splits into
fields, what each field parses to, the first failing check's reason, and which of several
lines of one (user, item) is kept. It agrees with the fates the generator recorded
(``Batch.fates``); ``check_pass`` then holds ingest's outputs to it line by line, and
``check_refusal`` holds a refusal to its kind's message: the file it names and the fix it
must offer.
"""

from __future__ import annotations

import collections
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reco import config
from reco.data import formats
from reco.runs import RunFolder
from tests.support.fuzz_batches import ML_LAYOUTS, SEP, Batch, material

# The documented rules, written out again (not imported from the code under test).
REASON_FIELD_COUNT = "wrong_field_count"
REASON_USER_ID = "invalid_user_id"
REASON_ITEM_ID = "invalid_item_id"
REASON_RATING = "invalid_rating"
REASON_RATING_RANGE = "rating_out_of_range"
REASON_TIMESTAMP = "invalid_timestamp"
REASON_FUTURE = "timestamp_in_future"
REASON_DUPLICATE = "duplicate_superseded"
REASON_EVENT = "invalid_event"
REASON_JSON = "malformed_json"
MAX_ID = 2**31 - 1  # ids are Java ints
INT64 = 2**63
CLOCK_SKEW_S = 24 * 3600
DECIMAL = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
ML_HEADER = ["userId", "movieId", "rating", "timestamp"]
LAYOUT_SCALE = {"ml-100k": (1.0, 5.0), "ml-1m": (1.0, 5.0), "ml-latest": (0.5, 5.0)}
DEFAULT_SCALE = (1.0, 5.0)
SPARK_TRIM = "".join(chr(c) for c in range(33)) + "\x7f"  # what a numeric cast trims
FEEDBACK_HEADER = "user_id,item_id,event,ts"
FEEDBACK_EVENTS = ("like", "dislike", "watched")

STATS = {"valid_quarantined": 0}  # over a test run, counted before any assertion fails

# Each kind of refusal: how its message starts, and the fix it must name.
REFUSALS = {
    "empty_file": (r"is empty: there are no ratings", r"export finished writing"),
    "blank_file": (r"holds only blank lines", r"export finished writing"),
    "no_rating_lines": (r"has no rating lines", r"point the dataset at the file"),
    "all_rejected": (r"no usable ratings in", r"--format / --rating-scale"),
    "manifest_damaged": (r"manifest\.json is damaged", r"--rating-scale MIN-MAX"),
    "movielens_columns": (r"looks like a MovieLens ratings\.csv", r"--format csv --columns"),
    "table_columns": (r"lacks required column", r"--columns user="),
    "unknown_layout": (r"cannot tell the format of", r"--format and --columns"),
    "no_ratings_file": (r"the ml-\S+ ratings file is required", r"--format"),
    "many_csv_files": (r"\.csv files: pass the ratings file", r"pass the ratings file itself"),
    "bad_scale": (r"^bad rating scale", r"MIN-MAX such as 1-5"),
    "bad_mapping": (r"^bad column mapping entry", r"NAME=COLUMN"),
    "feedback_rejected": (
        r"no usable feedback events in",
        r"JSON Lines or CSV with user_id, item_id, event",
    ),
}


def norm(text: str) -> str:
    """Java and Python replace bytes that are not UTF-8 with U+FFFD, not always as many."""
    return re.sub("\ufffd+", "\ufffd", text)


def spark_long(text: str | None) -> int | None:
    """A field as a 64-bit integer, as a cast from text reads it (else None)."""
    if text is None:
        return None
    text = text.strip(SPARK_TRIM)
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -INT64 <= value < INT64 else None


def spark_rating(text: str | None) -> float | None:
    """A rating field: a plain decimal number after trimming spaces, else None."""
    if text is None:
        return None
    text = text.strip(" ")
    # The pattern's end also matches before one final line terminator (Java's ``$``).
    body = re.sub(r"(\r\n|[\n\r\x85\u2028\u2029])\Z", "", text, count=1)
    stripped = text.strip(SPARK_TRIM)
    if not (re.fullmatch(DECIMAL, body) and re.fullmatch(DECIMAL, stripped)):
        return None
    return float(stripped)


@dataclass(frozen=True)
class Line:
    """One input line and its fate: ``value`` (user, item, rating, timestamp) when it is
    usable, else ``reason``."""

    raw: str
    reason: str | None
    value: tuple | None


@dataclass(frozen=True)
class Layout:
    width: int  # fields a line must have
    pos: list[int]  # where user, item, rating and timestamp are
    ts_required: bool
    standard: bool  # the columns the generator wrote (its fates hold)


def expected_scale(batch: Batch) -> tuple[float, float]:
    """Explicit, else the manifest's, else the format's."""
    return batch.scale or batch.declared or LAYOUT_SCALE.get(batch.family, DEFAULT_SCALE)


def fate(fields: list[str | None], layout: Layout, scale: tuple[float, float], now: float) -> tuple:
    """(reason, value) of one line's fields: the first failing check wins."""
    if len(fields) != layout.width:
        return REASON_FIELD_COUNT, None
    u, i, r, t = (fields[p] for p in layout.pos)
    user, item, rating = spark_long(u), spark_long(i), spark_rating(r)
    if user is None or not 0 < user <= MAX_ID:
        return REASON_USER_ID, None
    if item is None or not 0 < item <= MAX_ID:
        return REASON_ITEM_ID, None
    if rating is None or math.isnan(rating):
        return REASON_RATING, None
    if not scale[0] <= rating <= scale[1]:
        return REASON_RATING_RANGE, None
    ts = spark_long(t) if layout.ts_required else None
    if layout.ts_required and (ts is None or ts < 0):
        return REASON_TIMESTAMP, None
    if ts is not None and ts > now + CLOCK_SKEW_S:
        return REASON_FUTURE, None
    return None, (user, item, rating, ts)


def text_lines(data: bytes, has_header: bool) -> tuple[list[str], str | None]:
    """The lines of a text file as read: split at LF, CRLF or CR (as Hadoop's line
    reader), the file's BOM skipped and a BOM starting a line dropped, the blank lines
    (spaces only: Spark's trim) and the header lines left out."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = [line.removeprefix("\ufeff") for line in re.split(r"\r\n|\r|\n", text)]
    header = lines[0] if has_header else None
    kept = [line for line in lines if line.strip(" ") and line != header]
    return kept, header


def expected_lines(batch: Batch, now: float) -> list[Line]:
    """Every rating line ingest reads from the batch, with its fate."""
    scale = expected_scale(batch)
    if batch.family in ML_LAYOUTS:
        data = batch.files[batch.ratings_name]
        lines, header = text_lines(data, batch.family == "ml-latest")
        sep = SEP[batch.family]
        if header is not None:
            names = [h.strip() for h in header.split(",")]
            pos = [names.index(h) for h in ML_HEADER]
            layout = Layout(len(names), pos, True, names == ML_HEADER)
        else:
            layout = Layout(4, [0, 1, 2, 3], True, True)
        split = [(line, line.split(sep)) for line in lines]
    else:
        table = batch.table
        assert table is not None
        mapping = dict(zip(formats.CANONICAL, formats.CANONICAL, strict=True))
        mapping.update(table.mapping)
        pos = [table.header.index(mapping[c]) for c in formats.CANONICAL[:3]]
        ts_col = mapping[config.COL_TIMESTAMP]
        has_ts = ts_col in table.header
        pos.append(table.header.index(ts_col) if has_ts else 0)
        layout = Layout(len(table.header), pos, has_ts, True)
        d = table.delimiter
        split = [(d.join(v or "" for v in row), row) for row in table.rows]
    out = []
    for raw, fields in split:
        reason, value = fate(fields, layout, scale, now)
        out.append(Line(norm(raw), reason, value))
        known = batch.fates.get(raw)
        if known is not None and layout.standard:
            if isinstance(known, tuple):  # a real line: kept unless out of the scale
                in_scale = scale[0] <= known[2] <= scale[1]
                want = (None, known) if in_scale else (REASON_RATING_RANGE, None)
            else:
                want = (known, None)
            assert (reason, value) == want, (
                f"the oracle reads {raw!r} as {(reason, value)}, the generator made it "
                f"{want}: fix the oracle or the generator"
            )
    return out


def latest(values: list[tuple]) -> tuple:
    """The documented rule among lines of one (user, item): the latest timestamp wins (a
    line without one loses to any with one), then the higher rating."""
    return max(values, key=lambda v: (v[3] is not None, v[3] or 0, v[2]))


def kept_values(lines: list[Line]) -> dict[tuple[int, int], tuple]:
    groups: dict[tuple[int, int], list[tuple]] = collections.defaultdict(list)
    for line in lines:
        if line.value is not None:
            groups[line.value[:2]].append(line.value)
    return {key: latest(values) for key, values in groups.items()}


# --------------------------------------------------------------------------------------
# A pass
# --------------------------------------------------------------------------------------
def _row(r: Any) -> tuple:
    ts = None if pd.isna(r.timestamp) else int(r.timestamp)
    return int(r.user_id), int(r.item_id), float(r.rating), ts


def check_lines(lines: list[Line], quarantine: pd.DataFrame, ratings: pd.DataFrame) -> int:
    """Each line's fate, as ingest wrote it. Returns how many valid lines were quarantined
    (0, or an assertion fails)."""
    by_raw = {line.raw: line for line in lines}
    got = collections.Counter(
        (norm(raw), reason)
        for raw, reason in zip(quarantine["raw"], quarantine["reason"], strict=True)
    )
    want = collections.Counter((x.raw, x.reason) for x in lines if x.reason is not None)
    dup = collections.Counter({(raw, r): n for (raw, r), n in got.items() if r == REASON_DUPLICATE})
    problems = []
    valid_quarantined = 0
    for (raw, reason), n in (got - dup - want).items():
        line = by_raw.get(raw)
        if line is None:
            problems.append(f"quarantined as {reason}, not a line of the file: {raw!r}")
        elif line.reason is None:
            valid_quarantined += n
            problems.append(f"valid line quarantined as {reason}: {raw!r} ({line.value})")
        else:
            problems.append(f"line {raw!r} quarantined as {reason}, expected {line.reason}")
    for raw, reason in want - got:
        if not any(r == raw and g != reason for r, g in got):
            problems.append(f"line {raw!r} not quarantined, expected {reason}")

    # Duplicates: of each (user, item), every usable line but the kept one is superseded.
    kept = kept_values(lines)
    groups: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in lines:
        if line.value is not None:
            groups[line.value[:2]][line.raw] += 1
    superseded: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for (raw, _), n in dup.items():
        line = by_raw.get(raw)
        if line is None or line.value is None:
            why = "not a line of the file" if line is None else f"it is {line.reason}"
            problems.append(f"quarantined as {REASON_DUPLICATE}, yet {why}: {raw!r}")
            continue
        superseded[line.value[:2]][raw] += n
    for key, raws in groups.items():
        left = raws - superseded.get(key, collections.Counter())
        if superseded.get(key, collections.Counter()) - raws or left.total() != 1:
            problems.append(
                f"(user, item) {key}: lines {dict(raws)}, superseded {dict(superseded[key])}: "
                "exactly one must be kept"
            )
            continue
        (raw,) = left
        if by_raw[raw].value != kept[key]:
            valid_quarantined += 1
            problems.append(
                f"(user, item) {key}: kept {by_raw[raw].value} from {raw!r}, expected the "
                f"latest {kept[key]} (latest timestamp, then the higher rating)"
            )

    stored = collections.Counter(_row(r) for r in ratings.itertuples(index=False))
    expected = collections.Counter(kept.values())
    if stored != expected:
        problems.append(
            f"stored ratings differ: unexpected {dict(stored - expected)}, missing "
            f"{dict(expected - stored)}"
        )
    STATS["valid_quarantined"] += valid_quarantined
    assert not problems, "\n".join(problems[:12])
    return valid_quarantined


def check_pass(batch: Batch, run_dir: Path, now: float) -> dict[str, int]:
    """What a pass must hold; returns counts for the summary."""
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
    assert "bad_scale" not in batch.damage, f"--rating-scale {batch.scale_text!r} was taken"
    assert "bad_mapping" not in batch.damage, f"--columns {batch.columns_text!r} was taken"
    assert tuple(manifest["source"]["rating_scale"]) == expected_scale(batch)

    lines = expected_lines(batch, now)
    quarantine = pd.read_parquet(folder.quarantine)
    ratings = pd.read_parquet(folder.ratings)
    valid_quarantined = check_lines(lines, quarantine, ratings)

    # The manifest's counts.
    by_reason = dict(collections.Counter(quarantine["reason"]))
    assert manifest["lines_read"] == len(lines) == manifest["n_ratings"] + manifest["n_rejected"]
    assert manifest["n_ratings"] == len(ratings) > 0
    assert manifest["n_rejected"] == len(quarantine) == sum(by_reason.values())
    assert manifest["rejected_by_reason"] == by_reason
    assert manifest["n_superseded"] == by_reason.get(REASON_DUPLICATE, 0)
    assert manifest["n_malformed"] == manifest["n_rejected"] - manifest["n_superseded"]
    assert manifest["n_users"] == ratings["user_id"].nunique()
    assert manifest["n_items"] == ratings["item_id"].nunique()
    assert manifest["rating_mean"] == pytest.approx(ratings["rating"].mean())
    for key in ("rating_seen_min", "rating_seen_max"):
        assert manifest[key] is None or math.isfinite(manifest[key])
    assert manifest["rating_seen_min"] <= ratings["rating"].min()
    assert manifest["rating_seen_max"] >= ratings["rating"].max()

    check_notes(batch, manifest, folder)
    counts = {"valid_quarantined": valid_quarantined, "lines": len(lines)}
    if batch.events is not None:
        counts["events"] = check_feedback(batch, run_dir, manifest, kept_values(lines), now)
    return counts


def check_notes(batch: Batch, manifest: dict, folder: RunFolder) -> None:
    """One note per missing or damaged optional file that was left out; none otherwise."""
    notes = manifest["notes"]
    about = [n.split(" ")[0].rstrip(":") for n in notes]
    assert len(about) == len(set(about)), f"a file noted twice: {notes}"
    if batch.family not in ML_LAYOUTS:  # no titles in a CSV or Parquet export
        assert set(about) <= {formats.MANIFEST_FILE}, notes
        assert manifest["n_item_titles"] == 0 and not folder.items.exists()
        return
    titles_file = formats.TITLES_FILE[batch.family]
    allowed = {titles_file, formats.MANIFEST_FILE} | (
        {formats.GENRES_FILE} if batch.family == "ml-100k" else set()
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
        assert items["item_id"].is_unique and items["item_id"].between(1, MAX_ID).all()
        assert items["title"].map(lambda t: isinstance(t, str) and t.strip() != "").all()
        assert items["genres"].map(lambda g: isinstance(g, str)).all()

    genres_ok = batch.family != "ml-100k" or batch.genres == "ok"
    if batch.titles == "ok" and genres_ok:  # everything there: titles and genres exact
        assert not any(n.startswith(titles_file) for n in notes), notes
        real = material()[batch.family]
        items = pd.read_parquet(folder.items).set_index("item_id")
        assert set(items.index) == set(real.titles)
        assert items["title"].to_dict() == real.title_of
        assert items["genres"].to_dict() == real.genres_of
    if batch.family == "ml-100k" and batch.titles == "ok" and batch.genres == "absent":
        assert "u.genre not found: genres left empty" in notes
        assert (pd.read_parquet(folder.items)["genres"] == "").all()

    manifest_noted = any(n.startswith(formats.MANIFEST_FILE) for n in notes)
    if batch.manifest in ("absent", "scale", "no_scale"):
        assert not manifest_noted, notes
    if batch.manifest == "damaged":  # reached only with an explicit scale
        assert manifest_noted, notes


# --------------------------------------------------------------------------------------
# Feedback events
# --------------------------------------------------------------------------------------
def expected_events(batch: Batch, kept: dict) -> dict[str, Any]:
    """The inbox's lines by fate: rejected (raw, reason), applied and pending events."""
    rejected: collections.Counter = collections.Counter()
    usable = []
    for ev in batch.events or []:
        if ev.reason is not None:
            rejected[(ev.raw, ev.reason)] += 1
        else:
            usable.append(ev)
    by_key: dict[tuple, list] = collections.defaultdict(list)
    for ev in usable:
        by_key[ev.value[:3]].append(ev)
    users = {k[0] for k in kept}
    items = {k[1] for k in kept}
    applied, pending = collections.Counter(), collections.Counter()
    for evs in by_key.values():
        # The latest of one (user, item, event) wins; ties: the first raw line in order.
        evs.sort(key=lambda e: (-e.value[3], e.raw))
        for old in evs[1:]:
            rejected[(old.raw, REASON_DUPLICATE)] += 1
        first = evs[0]
        if first.value[0] in users and first.value[1] in items:
            applied[first.value] += 1
        else:
            pending[(first.raw, *first.value)] += 1
    return {
        "rejected": rejected,
        "applied": applied,
        "pending": pending,
        "lines": len(batch.events or []),
    }


def check_feedback(batch: Batch, run_dir: Path, manifest: dict, kept: dict, now: float) -> int:
    folder = RunFolder(run_dir)
    want = expected_events(batch, kept)
    quarantine = pd.read_parquet(folder.feedback_quarantine)
    applied = pd.read_parquet(folder.feedback)
    pending = pd.read_parquet(folder.feedback_pending)
    got_rejected = collections.Counter(zip(quarantine["raw"], quarantine["reason"], strict=True))
    assert got_rejected == want["rejected"], (
        f"feedback quarantine: unexpected {dict(got_rejected - want['rejected'])}, missing "
        f"{dict(want['rejected'] - got_rejected)}"
    )
    cols = ["user_id", "item_id", "event", "ts"]
    got_applied = collections.Counter(
        (int(u), int(i), e, int(t)) for u, i, e, t in applied[cols].itertuples(index=False)
    )
    assert got_applied == want["applied"], f"applied events: {got_applied} != {want['applied']}"
    got_pending = collections.Counter(
        (raw, int(u), int(i), e, int(t))
        for raw, u, i, e, t in pending[["raw", *cols]].itertuples(index=False)
    )
    assert got_pending == want["pending"], f"pending events: {got_pending} != {want['pending']}"
    fb = manifest["feedback"]
    assert fb["lines"] == want["lines"]
    assert fb["applied"] == want["applied"].total()
    assert fb["pending_unknown_user_or_item"] == want["pending"].total()
    assert fb["n_rejected"] == want["rejected"].total()
    return want["lines"]


# --------------------------------------------------------------------------------------
# A refusal
# --------------------------------------------------------------------------------------
def refusal_kind(message: str) -> str:
    kinds = [k for k, (start, _) in REFUSALS.items() if re.search(start, message)]
    assert len(kinds) == 1, f"a refusal of no single known kind ({kinds}): {message}"
    return kinds[0]


def check_refusal(
    batch: Batch, data_dir: Path, inbox: Path | None, message: str, now: float
) -> str:
    """The refusal names what it refuses and the fix for its kind; returns the kind."""
    kind = refusal_kind(message)
    fix = REFUSALS[kind][1]
    assert re.search(fix, message), f"a {kind} refusal without its fix ({fix!r}): {message}"
    if kind == "bad_scale":
        assert repr(batch.scale_text) in message, message
        assert "bad_scale" in batch.damage, f"--rating-scale {batch.scale_text!r} refused"
        return kind
    if kind == "bad_mapping":
        assert "bad_mapping" in batch.damage, f"--columns {batch.columns_text!r} refused"
        return kind
    if kind == "feedback_rejected":
        assert inbox is not None and str(inbox) in message, message
        lines = expected_lines(batch, now)
        want = expected_events(batch, kept_values(lines))
        assert want["lines"] and not want["applied"] and not want["pending"], (
            f"feedback refused, yet {want['applied'] + want['pending']} events are usable"
        )
        return kind
    paths = [data_dir / batch.ratings_name, data_dir / formats.MANIFEST_FILE, data_dir]
    assert any(str(p) in message for p in paths), (
        f"the refusal names no file of {data_dir}: {message}"
    )
    if kind == "manifest_damaged":
        assert str(data_dir / formats.MANIFEST_FILE) in message
        assert batch.manifest in ("damaged", "random") and batch.scale is None, message
    if kind in ("all_rejected", "no_rating_lines"):
        lines = expected_lines(batch, now)
        kept = [x for x in lines if x.reason is None]
        assert not kept, f"refused ({kind}), yet {len(kept)} lines are valid: {kept[:3]}"
        assert (kind == "no_rating_lines") is (not lines), (kind, len(lines))
        if kind == "all_rejected":
            wrong = sum(x.reason == REASON_FIELD_COUNT for x in lines)
            hint = wrong > len(lines) / 2
            assert ("--delimiter" in message) is hint, (
                f"{wrong} of {len(lines)} lines split wrongly: the delimiter fix "
                f"(--delimiter) {'must' if hint else 'need not'} be named: {message}"
            )
    return kind
