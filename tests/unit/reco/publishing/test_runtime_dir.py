"""The embedded PostgreSQL's lock lives in a runtime folder of the user's own: without a
login session's folder, pgserver would use /tmp/.lockfile, shared by every user, and the
first user's file would lock the others out."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from reco.publishing import warehouse


def test_without_a_session_folder_each_user_gets_a_private_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(os, "getuid", lambda: 54321)  # no /run/user/54321 here
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    warehouse.private_runtime_dir()
    runtime = tmp_path / "reco-runtime-54321"
    assert os.environ["XDG_RUNTIME_DIR"] == str(runtime)
    assert (runtime / "python_PostgresServer").is_dir()
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700


def test_a_session_folder_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    warehouse.private_runtime_dir()
    assert os.environ["XDG_RUNTIME_DIR"] == str(tmp_path)
