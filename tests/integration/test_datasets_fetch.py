"""`reco datasets fetch NAME`: MovieLens downloaded over real HTTP (a loopback server
standing in for GroupLens, pointed at with --mirror), checked against its published
NAME.zip.md5, unpacked into place only when complete; and `reco run --dataset NAME`
resolved to a folder (the configured one, the data folder, else fetched)."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reco.cli import commands
from reco.cli import main as reco_main
from reco.data import movielens
from reco.errors import PipelineError
from tests.support.http_files import Files, serving

ROOT = Path(__file__).resolve().parents[2]
# A few hundred real lines of each file: the archive's layout, at a few kB.
SAMPLE_LINES = {"u.data": 300, "u.item": 300, "u.user": 300, "u.genre": None, "README": None}


def sample_zip(ml100k: Path, top: str = "ml-100k") -> bytes:
    """A zip in ml-100k.zip's layout (one folder ``top`` holding the files)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, lines in SAMPLE_LINES.items():
            data = (ml100k / name).read_bytes()
            if lines is not None:
                data = b"".join(data.splitlines(keepends=True)[:lines])
            zf.writestr(f"{top}/{name}", data)
    return buffer.getvalue()


def md5_file(data: bytes, name: str = "ml-100k.zip") -> bytes:
    """The checksum file as GroupLens writes it."""
    return f"MD5 ({name}) = {hashlib.md5(data).hexdigest()}\n".encode()


@pytest.fixture(scope="module")
def archive(ml100k: Path) -> bytes:
    return sample_zip(ml100k)


@pytest.fixture()
def mirror(archive: bytes) -> Iterator[Files]:
    with serving({"ml-100k.zip": archive, "ml-100k.zip.md5": md5_file(archive)}) as files:
        yield files


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def quiet(_: str) -> None:
    pass


def test_fetch_through_the_cli_downloads_verifies_unpacks_and_prints_the_licence(
    mirror: Files, archive: bytes, ml100k: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "RECO_DATASETS_DIR": str(tmp_path / "datasets"),
        "RECO_MOVIELENS_DIR": str(tmp_path / "none"),
    }
    reco = [sys.executable, "-m", "reco.cli", "datasets"]
    done = subprocess.run(
        [*reco, "fetch", "ml-100k", "--mirror", mirror.url],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "datasets" / "ml-100k"
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert (folder / "u.data").read_bytes() == zf.read("ml-100k/u.data")
    assert sorted(p.name for p in folder.iterdir()) == sorted(SAMPLE_LINES)
    assert leftovers(tmp_path / "datasets") == ["ml-100k"]  # no temporary folder left
    out = done.stdout
    assert f"verified: md5 {hashlib.md5(archive).hexdigest()}" in out
    assert "research use only" in out and "redistribute" in out
    assert "Harper and Joseph A. Konstan. 2015" in out and "endorsement" in out
    assert (folder / "README").as_uri() in out
    assert "100%" in done.stderr  # pooch's progress bar, on stderr
    assert mirror.hits("ml-100k.zip") == 1

    listed = subprocess.run(
        [*reco, "list"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[-1] for line in listed.stdout.splitlines()[1:9]}
    assert rows["ml-100k"] == str(folder) and rows["ml-1m"] == "-"
    assert list(rows) == list(movielens.CATALOGUE)


def test_a_copy_already_there_is_kept_unless_forced(mirror: Files, tmp_path: Path) -> None:
    first = movielens.fetch("ml-100k", dest=tmp_path, mirror=mirror.url, log=quiet)
    (first / "u.data").write_text("edited\n")
    lines: list[str] = []
    assert movielens.fetch("ml-100k", dest=tmp_path, mirror=mirror.url, log=lines.append) == first
    assert "already in" in lines[0] and mirror.hits("ml-100k.zip") == 1
    movielens.fetch("ml-100k", dest=tmp_path, mirror=mirror.url, force=True, log=quiet)
    assert (first / "u.data").read_text() != "edited\n"
    assert mirror.hits("ml-100k.zip") == 2 and leftovers(tmp_path) == ["ml-100k"]


def test_a_bad_checksum_is_refused_and_nothing_is_left(mirror: Files, tmp_path: Path) -> None:
    mirror.files["ml-100k.zip.md5"] = md5_file(b"another archive")
    with pytest.raises(PipelineError) as refused:
        movielens.fetch("ml-100k", dest=tmp_path, mirror=mirror.url, retries=0, log=quiet)
    message = str(refused.value)
    assert "checksum mismatch" in message
    assert f"expected md5:{hashlib.md5(b'another archive').hexdigest()}" in message
    assert f"got md5:{hashlib.md5(mirror.files['ml-100k.zip']).hexdigest()}" in message
    assert "removed" in message and "--mirror" in message
    assert leftovers(tmp_path) == []


def test_a_truncated_download_is_refused_and_nothing_is_left(mirror: Files, tmp_path: Path) -> None:
    mirror.cut["ml-100k.zip"] = 99  # every response ends after half its bytes
    with pytest.raises(PipelineError, match="cut short") as refused:
        movielens.fetch("ml-100k", dest=tmp_path, mirror=mirror.url, retries=0, log=quiet)
    assert "--archive" in str(refused.value)
    assert leftovers(tmp_path) == []


def test_a_server_error_is_retried(mirror: Files, tmp_path: Path) -> None:
    mirror.fail_first["ml-100k.zip"] = 1  # 503 once, then the archive
    folder = movielens.fetch("ml-100k", dest=tmp_path, mirror=mirror.url, retries=1, log=quiet)
    assert movielens.holds(folder, "ml-100k") and mirror.hits("ml-100k.zip") == 2


def test_a_cut_download_is_retried_from_byte_zero_not_resumed(
    mirror: Files, tmp_path: Path
) -> None:
    # The server honours Range (206 for bytes=10-), yet pooch's retry asks for it all again.
    partial = urllib.request.Request(mirror.url + "ml-100k.zip", headers={"Range": "bytes=10-"})
    with urllib.request.urlopen(partial, timeout=10) as answer:
        assert answer.status == 206 and answer.read() == mirror.files["ml-100k.zip"][10:]
    mirror.requests.clear()
    mirror.cut["ml-100k.zip"] = 1
    folder = movielens.fetch("ml-100k", dest=tmp_path, mirror=mirror.url, retries=1, log=quiet)
    assert movielens.holds(folder, "ml-100k")
    assert [r for r in mirror.requests if r[0] == "ml-100k.zip"] == [("ml-100k.zip", None)] * 2


def test_a_local_archive_is_verified_when_a_checksum_is_published(
    mirror: Files, archive: bytes, tmp_path: Path
) -> None:
    local = tmp_path / "ml-100k.zip"
    local.write_bytes(archive)
    lines: list[str] = []
    dest = tmp_path / "datasets"
    folder = movielens.fetch(
        "ml-100k", dest=dest, mirror=mirror.url, archive=local, log=lines.append
    )
    assert movielens.holds(folder, "ml-100k") and mirror.hits("ml-100k.zip") == 0
    assert any(line.startswith("verified: md5") for line in lines)
    # A copy that does not match is refused; the user's file stays where it was.
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t0\n")
    local.write_bytes(other.getvalue())
    with pytest.raises(PipelineError, match="does not match GroupLens's checksum"):
        movielens.fetch("ml-100k", dest=tmp_path / "other", mirror=mirror.url, archive=local)
    assert local.exists() and leftovers(tmp_path / "other") == []


def test_a_local_archive_without_a_checksum_says_so_and_a_corrupt_one_is_refused(
    archive: bytes, tmp_path: Path
) -> None:
    local = tmp_path / "ml-100k.zip"
    local.write_bytes(archive)
    with serving({}) as empty:  # a mirror without the .md5 (404)
        lines: list[str] = []
        movielens.fetch(
            "ml-100k", dest=tmp_path / "a", mirror=empty.url, archive=local, log=lines.append
        )
        assert any(line.startswith("not verified: no checksum at") for line in lines)
    # No network at all: still unpacked, and said so.
    lines = []
    dead = "http://127.0.0.1:9/"
    movielens.fetch("ml-100k", dest=tmp_path / "b", mirror=dead, archive=local, log=lines.append)
    assert any("not verified: the checksum could not be read" in line for line in lines)
    local.write_bytes(archive[: len(archive) // 2])
    with pytest.raises(PipelineError, match="truncated or corrupt"):
        movielens.fetch("ml-100k", dest=tmp_path / "c", mirror=dead, archive=local, log=quiet)
    assert leftovers(tmp_path / "c") == []


def test_an_archive_with_another_folder_name_is_unpacked_as_name(
    ml100k: Path, tmp_path: Path
) -> None:
    # ml-10m.zip unpacks to ml-10M100K/: it lands as ml-10m/.
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("ml-10M100K/ratings.dat", "1::122::5::838985046\n")
        zf.writestr("ml-10M100K/README.html", "<p>MovieLens 10M</p>")
    with serving({"ml-10m.zip": data.getvalue(), "ml-10m.zip.md5": md5_file(data.getvalue())}) as m:
        folder = movielens.fetch("ml-10m", dest=tmp_path, mirror=m.url, log=quiet)
    assert folder == tmp_path / "ml-10m" and (folder / "ratings.dat").exists()
    assert "README.html" in movielens.licence("ml-10m", folder)
    assert leftovers(tmp_path) == ["ml-10m"]


def test_an_unknown_name_and_an_unreachable_server_say_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reco_main(["datasets", "fetch", "ml-5m", "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: unknown MovieLens dataset 'ml-5m'") and len(err.splitlines()) == 1
    assert all(name in err for name in movielens.CATALOGUE)
    with pytest.raises(PipelineError) as unreachable:
        movielens.fetch("ml-100k", dest=tmp_path, mirror="http://127.0.0.1:9/", log=quiet)
    message = str(unreachable.value)
    assert "cannot reach http://127.0.0.1:9/ml-100k.zip.md5: Connection refused" in message
    assert "--archive" in message and "--mirror" in message


def test_run_dataset_names_resolve_configured_folder_then_data_folder_then_fetch(
    mirror: Files, ml100k: Path, tmp_path: Path
) -> None:
    configured, data = tmp_path / "movielens", tmp_path / "datasets"
    dirs = {"movielens_dir": configured, "datasets_dir": data}
    for parent in (configured, data):
        (parent / "ml-100k").mkdir(parents=True)
        (parent / "ml-100k" / "u.data").write_text("1\t1\t5\t0\n")
    assert movielens.resolve_dataset("ml-100k", **dirs) == str(configured / "ml-100k")
    (configured / "ml-100k" / "u.data").unlink()  # not a complete copy any more
    assert movielens.resolve_dataset("ml-100k", **dirs) == str(data / "ml-100k")
    (data / "ml-100k" / "u.data").unlink()
    lines: list[str] = []
    fetched = movielens.resolve_dataset(
        "ml-100k", **dirs, log=lines.append, mirror=mirror.url, progress=False
    )
    assert fetched == str(data / "ml-100k") and movielens.holds(Path(fetched), "ml-100k")
    assert "fetching it into" in lines[0] and mirror.hits("ml-100k.zip") == 1
    # A path that exists wins over a name; other texts are left to the dataset checks.
    assert movielens.resolve_dataset(str(ml100k), **dirs) == str(ml100k)
    assert movielens.resolve_dataset("ratings.csv", **dirs) == "ratings.csv"
    with pytest.raises(PipelineError, match="unknown MovieLens dataset 'ml-2k'"):
        movielens.resolve_dataset("ml-2k", **dirs)


def test_reco_run_records_the_resolved_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t5\t0\n")
    monkeypatch.setattr(movielens.config, "MOVIELENS_DIR", tmp_path)
    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def preflight(conf: dict[str, object]) -> None:
        seen.update(conf)
        raise Stop  # the DAG is not run

    monkeypatch.setattr(commands, "preflight", preflight)
    parser = argparse.ArgumentParser()
    from reco import params

    params.add_run_arguments(parser)
    args = parser.parse_args(["--dataset", "ml-100k"])
    args.verbose = False
    with pytest.raises(Stop):
        commands.cmd_run(args)
    assert seen["dataset"] == str(tmp_path / "ml-100k")
