"""Property-based fuzzing of ingest (Hypothesis) on damaged batches made from real lines.

Each example writes one small dataset (``tests/support/fuzz_batches.py``): ML-100K
(``u.data``, ``u.item``, ``u.genre``, ``u.user``), an ML-1M shaped copy of the same lines,
ml-latest-small (``ratings.csv``, ``movies.csv``), a delimited CSV export with its own
column names or a Parquet file; passed as its folder or as the ratings file itself, with
``--format``, ``--columns``, ``--delimiter`` and ``--rating-scale`` strings as a user types
them, and sometimes an inbox of feedback events. Damage is combined on top: fields
replaced by missing-value markers, text, huge or negative numbers; extra or missing
fields, wrong delimiters, BOMs, CRLF or CR line ends, bytes that are not UTF-8, the file
cut mid-line, duplicated and conflicting rows, headers where none belong; column mappings
naming no column, malformed mappings and scales; optional files missing, extra or damaged;
a ``manifest.json`` good, without a scale, or damaged; feedback events malformed,
duplicated, in the future or for unknown users. ``detect_source`` and ``ingest.run`` are
called the way the ingest step calls them (not through ``reco.runtime.execute``, which
converts every exception), and every example must end in exactly one of two ways:

- a pass, where every rating line met the fate the oracle (``tests/support/fuzz_oracle.py``,
  a plain re-implementation of the documented rules, checked against what the generator
  knows of each line) gives it: a valid line is stored with its exact values unless a
  later line of the same (user, item) supersedes it (latest timestamp, then the higher
  rating); a damaged line is quarantined with its own reason code; the manifest's counts
  add up; feedback events are applied, pending or quarantined line by line;
- a ``PipelineError`` of a known kind whose message names the file (or the option) and
  the fix for that kind (``REFUSALS`` in the oracle: ``--columns``, ``--rating-scale``,
  ``--delimiter``, ``manifest.json``, ...).

Any other exception fails the test, and Hypothesis shrinks it to a minimal batch. Ingest
writes only the run folder: whether a refused batch leaves the published table alone is
tested end to end, not here.

Examples: the "ci" profile of tests/conftest.py (bounded, derandomised) plus one explicit
``@example`` per damage kind (``EXAMPLES``; ``test_every_damage_kind_has_an_example``
keeps the list complete); a longer random search with ``--hypothesis-profile=deep``
(README, "Bad input"). The counts of each run (outcomes, refusal kinds, damage kinds
covered, valid lines quarantined) are printed at the end and kept in
``<test var>/fuzz/summary.json``.
"""

from __future__ import annotations

import collections
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, example, given, note, settings

from reco import config
from reco.data import formats, ingest
from reco.errors import PipelineError
from tests.support import fuzz_batches as fb
from tests.support import fuzz_oracle as oracle
from tests.support.fuzz_batches import Batch, Forced

# One explicit example per damage kind; together they also put every optional file in
# each of its states.
EXAMPLES = [
    Forced("marker", "ml-100k", titles="truncated", genres="fewer"),
    Forced("text", "csv"),
    Forced("number", "parquet"),
    Forced("extra_field", "csv"),
    Forced("drop_field", "ml-1m", titles="garbage"),
    Forced("duplicate", "ml-latest", titles="other_encoding"),
    Forced("conflict", "ml-100k", genres="shifted", manifest="scale"),
    Forced("line_delimiter", "ml-1m", titles="utf16"),
    Forced("file_delimiter", "ml-100k", manifest="no_scale"),
    Forced("header_line", "ml-100k", genres="absent"),
    Forced("blank_lines", "ml-latest", titles="missing_columns"),
    Forced("drop_header", "ml-latest"),
    Forced("bom", "ml-100k", genres="garbage"),
    Forced("bom_mid", "ml-1m", titles="bad_lines"),
    Forced("crlf", "ml-latest", titles="empty"),
    Forced("cr", "ml-100k", genres="truncated"),
    Forced("bad_bytes", "ml-1m", titles="absent"),
    Forced("truncate", "ml-100k", genres="empty"),
    Forced("no_final_newline", "ml-latest", manifest="random"),
    Forced("utf16", "ml-100k"),
    Forced("latin1", "ml-latest"),
    Forced("null_value", "parquet"),
    Forced("no_timestamp_column", "csv"),
    Forced("unmapped_column", "parquet"),
    Forced("bad_mapping", "csv"),
    Forced("wrong_delimiter_flag", "csv"),
    Forced("bad_scale", "ml-100k"),
    Forced("fb_event", "ml-100k"),
    Forced("fb_user", "ml-1m"),
    Forced("fb_item", "csv"),
    Forced("fb_json", "ml-latest"),
    Forced("fb_field_count", "ml-100k"),
    Forced("fb_timestamp", "parquet"),
    Forced("fb_future", "ml-100k"),
    Forced("fb_duplicate", "ml-1m"),
    Forced("fb_unknown", "ml-100k", manifest="damaged", scale="1-5"),
    Forced("fb_iso_time", "ml-latest"),
]


class Run:
    """What the examples of one test run share (set by the test) and count."""

    spark: Any = None
    work: Path = Path()
    outcomes: collections.Counter[str] = collections.Counter()
    refusals: collections.Counter[str] = collections.Counter()
    damage: dict[str, collections.Counter[str]] = {}
    families: collections.Counter[str] = collections.Counter()
    origins: collections.Counter[str] = collections.Counter()
    lines = 0
    events = 0

    @classmethod
    def reset(cls, spark: Any, work: Path) -> None:
        cls.spark, cls.work = spark, work
        cls.outcomes, cls.refusals, cls.families, cls.origins = (
            collections.Counter() for _ in range(4)
        )
        cls.damage = {"generated": collections.Counter(), "explicit": collections.Counter()}
        cls.lines = cls.events = 0
        oracle.STATS["valid_quarantined"] = 0


def _write(batch: Batch, root: Path) -> tuple[Path, Path, Path | None]:
    """The dataset folder, what is passed as the dataset, and the inbox (or None)."""
    data_dir = root / batch.family
    data_dir.mkdir()
    for name, content in batch.files.items():
        (data_dir / name).write_bytes(content)
    data_dir = data_dir.resolve()
    inbox = None
    if batch.events is not None:
        inbox = root / "inbox"
        inbox.mkdir()
        for name, content in batch.inbox_files().items():
            (inbox / name).write_bytes(content)
    return data_dir, (data_dir / batch.target if batch.target else data_dir), inbox


def _with_examples(test: Any) -> Any:
    for forced in reversed(EXAMPLES):
        test = example(batch=forced)(test)
    return test


@given(batch=fb.batches())
@_with_examples
def ingest_ends_in_a_pass_or_a_clear_refusal(batch: Batch | Forced) -> None:
    origin = "explicit" if isinstance(batch, Forced) else "generated"
    if isinstance(batch, Forced):
        batch = batch.build()
    unknown = set(batch.damage) - set(fb.DAMAGE_KINDS)
    assert not unknown, f"damage kinds missing from DAMAGE_KINDS: {unknown}"
    Run.damage[origin].update(set(batch.damage))
    Run.families[batch.family] += 1
    Run.origins[origin] += 1
    root = Path(tempfile.mkdtemp(prefix="example-", dir=Run.work))
    try:
        data_dir, dataset, inbox = _write(batch, root)
        run_dir = root / "run"
        run_dir.mkdir()
        note(batch.describe())
        now = time.time()
        try:
            # As the ingest step does (reco.data.ingest.step), with the options as typed.
            src = formats.detect_source(
                dataset,
                batch.fmt,
                columns=formats.parse_mapping(batch.columns_text),
                rating_scale=formats.parse_scale(batch.scale_text),
                delimiter=batch.delimiter,
            )
            ingest.run(Run.spark, run_dir, src, inbox)
        except PipelineError as exc:
            note(f"refused: {exc}")
            kind = oracle.check_refusal(batch, data_dir, inbox, str(exc), now)
            Run.outcomes["refusal"] += 1
            Run.refusals[kind] += 1
            event(f"refused: {kind}")
            return
        except Exception:
            Run.outcomes["unexpected_exception"] += 1
            raise
        counts = oracle.check_pass(batch, run_dir, now)
        Run.outcomes["pass"] += 1
        Run.lines += counts["lines"]
        Run.events += counts.get("events", 0)
        event(f"passed: {batch.family}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# 400 examples of the deep profile outlast the suite's 900 s per test on a loaded machine.
@pytest.mark.timeout(3 * 3600 if settings.get_current_profile_name() == "deep" else 900)
def test_ingest_survives_damaged_batches(spark, ml100k: Path, ml_latest: Path, capsys) -> None:
    work = config.VAR_DIR / "fuzz"
    work.mkdir(parents=True, exist_ok=True)
    Run.reset(spark, work)
    t0 = time.perf_counter()
    try:
        ingest_ends_in_a_pass_or_a_clear_refusal()
    finally:
        seconds = time.perf_counter() - t0
        summary = {
            "profile": settings.get_current_profile_name(),
            "examples": Run.outcomes.total(),
            "generated": Run.origins["generated"],
            "explicit": Run.origins["explicit"],
            "passed": Run.outcomes["pass"],
            "refused": Run.outcomes["refusal"],
            "unexpected_exceptions": Run.outcomes["unexpected_exception"],
            "valid_lines_quarantined": oracle.STATS["valid_quarantined"],
            "rating_lines_checked": Run.lines,
            "feedback_lines_checked": Run.events,
            "seconds": round(seconds, 1),
            "families": dict(Run.families.most_common()),
            "refusals": dict(Run.refusals.most_common()),
            "damage_kinds_generated": dict(Run.damage["generated"].most_common()),
            "damage_kinds_explicit": dict(Run.damage["explicit"].most_common()),
            "damage_kinds_not_generated": sorted(
                set(fb.DAMAGE_KINDS) - set(Run.damage["generated"])
            ),
        }
        (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        with capsys.disabled():
            print(
                f"\ningest fuzz ({summary['profile']} profile): {summary['examples']} examples "
                f"({len(EXAMPLES)} explicit), {summary['passed']} passed, "
                f"{summary['refused']} refused, {summary['unexpected_exceptions']} unexpected "
                f"exceptions, {summary['valid_lines_quarantined']} valid lines quarantined, "
                f"{len(Run.damage['generated'])} of {len(fb.DAMAGE_KINDS)} damage kinds "
                f"generated, {seconds:.0f} s"
            )
    assert Run.outcomes["pass"] > 0 and Run.outcomes["refusal"] > 0


def test_every_damage_kind_has_an_example(ml100k: Path, ml_latest: Path) -> None:
    """Each damage kind (and each state of an optional file) is shown by an explicit
    example that really applies it, so the bounded CI profile covers them all."""
    attached = [
        e.kwargs["batch"]
        for e in ingest_ends_in_a_pass_or_a_clear_refusal.hypothesis_explicit_examples
    ]
    assert sorted(attached, key=repr) == sorted(EXAMPLES, key=repr)
    kinds = [f.kind for f in EXAMPLES]
    missing = [k for k in fb.DAMAGE_KINDS if k not in kinds]
    assert not missing, f"damage kinds without an @example in EXAMPLES: {missing}"
    assert len(kinds) == len(set(kinds)), "one @example per damage kind"
    states: dict[str, set[str]] = {"titles": set(), "genres": set(), "manifest": set()}
    for forced in EXAMPLES:
        batch = forced.build()
        assert forced.kind in batch.damage, (
            f"the @example for {forced.kind} does not apply it: {batch.describe()}"
        )
        if batch.family in fb.ML_LAYOUTS:
            states["titles"].add(batch.titles)
        if batch.family == "ml-100k":
            states["genres"].add(batch.genres)
        states["manifest"].add(batch.manifest)
    for name, every in (
        ("titles", fb.TITLES_STATES),
        ("genres", fb.GENRES_STATES),
        ("manifest", fb.MANIFEST_STATES),
    ):
        assert set(every) <= states[name], (
            f"{name} states without an @example: {set(every) - states[name]}"
        )
