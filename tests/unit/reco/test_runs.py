"""A run's key and its folder's files."""

from __future__ import annotations

from pathlib import Path

from reco.runs import RunFolder, run_key


def test_run_key_is_folder_safe_and_stable() -> None:
    rid = "manual__2026-11-23T18:54:08.957578+00:00"
    assert run_key(rid) == "manual__2026-11-23T18_54_08.957578_00_00"
    assert run_key(rid) == run_key(rid)


def test_every_file_of_a_run_folder_has_its_own_name_inside_the_folder(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    roles = [n for n, v in vars(RunFolder).items() if isinstance(v, property)]
    paths = [getattr(folder, n) for n in roles]
    assert len(roles) >= 18
    assert len(set(paths)) == len(paths)  # no two roles share a file
    assert all(tmp_path in p.parents for p in paths)
    assert folder.model_meta.parent == folder.model
    assert RunFolder.of("manual__2026-11-23T18:54:08+00:00").path.name == run_key(
        "manual__2026-11-23T18:54:08+00:00"
    )
