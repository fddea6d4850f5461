"""Folders built from the real shared MovieLens files, for tests that read one file at a time."""

from __future__ import annotations

from pathlib import Path


def ml100k_folder(tmp_path: Path, ml100k: Path, *names: str) -> Path:
    """A folder with real ML-100K files (``names``), for the parsing of one file at a time."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(ml100k / name)
    return folder
