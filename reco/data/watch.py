"""Which entry of a watched inbox is a new, complete ratings export (pure; no Airflow).

``reco.orchestration.assets.NewExportTrigger`` looks at the inbox every few seconds and fires for
what :func:`pick_new` returns; a run with no dataset given reads :func:`scan`'s newest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One file or folder in the inbox, as two looks at it compare it."""

    path: str
    mtime_ns: int
    size: int


def scan(directory: Path) -> list[Entry]:
    """The inbox's visible entries (hidden and ``_``-prefixed ones are work in progress).

    A folder's size and mtime are those of its newest file, so a MovieLens folder counts
    as changed when any file in it changes."""
    if not directory.is_dir():
        return []
    entries = []
    for p in sorted(directory.iterdir()):
        if p.name.startswith((".", "_")):
            continue
        try:
            if p.is_dir():
                files = [f.stat() for f in p.rglob("*") if f.is_file()]
                if not files:
                    continue
                entries.append(
                    Entry(str(p), max(s.st_mtime_ns for s in files), sum(s.st_size for s in files))
                )
            else:
                st = p.stat()
                entries.append(Entry(str(p), st.st_mtime_ns, st.st_size))
        except FileNotFoundError:  # moved away between the listing and the stat
            continue
    return entries


def pick_new(before: Iterable[Entry], now: Iterable[Entry], watermark_ns: int) -> Entry | None:
    """The newest entry changed after ``watermark_ns`` that did not change between the two
    looks (``before`` then ``now``), else None. An entry still being written is left for
    the next look."""
    settled = set(before) & set(now)
    return newest(e for e in settled if e.mtime_ns > watermark_ns)


def newest(entries: Iterable[Entry]) -> Entry | None:
    """The most recently changed entry (ties: the last path), else None."""
    return max(entries, key=lambda e: (e.mtime_ns, e.path), default=None)
