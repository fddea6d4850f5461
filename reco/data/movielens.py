"""MovieLens by name: the archives GroupLens publishes, fetched, checked against GroupLens's
published MD5 and unpacked into the project's data folder (``config.DATASETS_DIR``); and a
dataset name given to ``reco run --dataset`` resolved to its folder.

pooch does the work: the HTTP download (requests, streamed to a temporary file, with a
progress bar), the check against the known hash (a mismatch deletes the file), the retries
and the unzipping. What it does not do: resume. Each retry starts again from byte 0 (pooch
sends no Range request), so a connection cut late in ml-32m's 239 MB downloads it all
again; ``--archive`` is the way round for a link that keeps dropping.

A fetch writes into a hidden temporary folder beside its destination and renames the
dataset's folder into place only once it is downloaded, verified and unpacked: a failed or
interrupted fetch never leaves a half folder under the dataset's name.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reco import config
from reco.errors import PipelineError

GROUPLENS_PAGE = "https://grouplens.org/datasets/movielens/"
HARPER_KONSTAN_2015 = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and "
    "Context. ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4: 19:1-19:19. "
    "https://doi.org/10.1145/2827872"
)
DOWNLOAD_TIMEOUT_S = 30.0  # per connect / read, not for the whole download
DOWNLOAD_RETRIES = 3  # pooch waits 1, 2, 3 s between attempts
CHUNK_BYTES = 1 << 16
PARTIAL_SUFFIX = ".partial"  # the temporary folders: .NAME.XXXX.partial

Log = Callable[[str], None]


@dataclass(frozen=True)
class MovieLens:
    """One archive of GroupLens's MovieLens page."""

    name: str  # NAME.zip, and the folder it is unpacked to
    size: str  # as GroupLens's page states it
    marker: str  # a file every complete copy holds
    what: str

    @property
    def archive(self) -> str:
        return f"{self.name}.zip"


CATALOGUE: dict[str, MovieLens] = {
    d.name: d
    for d in (
        MovieLens("ml-100k", "5 MB", "u.data", "100,000 ratings, 943 users, 1,682 movies (1998)"),
        MovieLens(
            "ml-latest-small",
            "1 MB",
            "ratings.csv",
            "about 100,000 ratings, 610 users (revised over time)",
        ),
        MovieLens("ml-1m", "6 MB", "ratings.dat", "1 million ratings, 6,040 users (2003)"),
        MovieLens("ml-10m", "63 MB", "ratings.dat", "10 million ratings, 72,000 users (2009)"),
        MovieLens("ml-20m", "190 MB", "ratings.csv", "20 million ratings, 138,000 users (2015)"),
        MovieLens("ml-25m", "250 MB", "ratings.csv", "25 million ratings, 162,000 users (2019)"),
        MovieLens("ml-32m", "239 MB", "ratings.csv", "32 million ratings, 200,948 users (2024)"),
        MovieLens(
            "ml-latest",
            "335 MB",
            "ratings.csv",
            "33 million+ ratings, the full latest (revised over time)",
        ),
    )
}
# A name of that shape that is not in the catalogue is a typo, not a path.
NAME_SHAPE = re.compile(r"^ml-[A-Za-z0-9-]+$")


def lookup(name: str) -> MovieLens:
    """The catalogue entry of ``name``; an unknown name fails listing the known ones."""
    if name not in CATALOGUE:
        raise PipelineError(
            f"unknown MovieLens dataset {name!r}: GroupLens publishes {', '.join(CATALOGUE)} "
            "(reco datasets list)"
        )
    return CATALOGUE[name]


def base_url(mirror: str | None = None) -> str:
    """The folder URL the archives and their ``.md5`` files are read from."""
    return (mirror or config.MOVIELENS_URL).rstrip("/") + "/"


def holds(folder: Path, name: str) -> bool:
    """Whether ``folder`` is a complete copy of ``name`` (it holds its marker file)."""
    return (folder / lookup(name).marker).is_file()


def find(
    name: str, movielens_dir: Path | None = None, datasets_dir: Path | None = None
) -> Path | None:
    """``name``'s folder: in the configured MovieLens folder (RECO_MOVIELENS_DIR) if it
    holds it, else in the data folder (RECO_DATASETS_DIR), else None."""
    for parent in (movielens_dir or config.MOVIELENS_DIR, datasets_dir or config.DATASETS_DIR):
        if holds(parent / name, name):
            return parent / name
    return None


def listing(
    movielens_dir: Path | None = None, datasets_dir: Path | None = None
) -> list[tuple[MovieLens, Path | None]]:
    """Every published archive with the folder that holds it here (None if none)."""
    return [(d, find(d.name, movielens_dir, datasets_dir)) for d in CATALOGUE.values()]


def readme(folder: Path) -> Path | None:
    """The README GroupLens ships in the archive (README, README.txt or README.html)."""
    found = sorted(p for p in folder.glob("README*") if p.is_file())
    return found[0] if found else None


def licence(name: str, folder: Path) -> str:
    """A short, faithful summary of GroupLens's usage licence, and where the full text is."""
    text = readme(folder)
    where = text.as_uri() if text else f"the README on {GROUPLENS_PAGE}"
    return "\n".join(
        [
            f"MovieLens {name} is GroupLens Research's data (University of Minnesota), "
            "under its usage licence:",
            "  - research use only; no commercial or revenue-bearing use without "
            "GroupLens's permission",
            "  - do not redistribute it (nor commit it to a repository) without separate "
            "permission",
            "  - acknowledge it in publications that use it, citing:",
            f"    {HARPER_KONSTAN_2015}",
            "  - do not state or imply endorsement by the University of Minnesota or the "
            "GroupLens Research Group",
            f"The full terms: {where} (the README of the archive)",
        ]
    )


# --- failures -----------------------------------------------------------------------------
def _reason(exc: BaseException) -> str:
    """A short cause from requests' long messages: 'Connection refused', 'timed out' ..."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    incomplete = re.search(r"IncompleteRead\(([^)]*)\)", text)
    if incomplete:
        return incomplete.group(1)
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a requests HTTPError (requests is pooch's, not imported here)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _way_round(name: str) -> str:
    return (
        f"download {name}.zip elsewhere and pass --archive PATH, or use --mirror URL "
        "(a folder holding NAME.zip and NAME.zip.md5)"
    )


class FetchError(PipelineError):
    """A failed fetch: the message says what to do; ``cause`` is the short problem
    ('cannot reach URL: Connection refused'), for callers that add advice of their own."""

    def __init__(self, message: str, cause: str, *, retryable: bool = False) -> None:
        super().__init__(message, retryable=retryable)
        self.cause = cause


def _download_error(exc: BaseException, url: str, name: str) -> FetchError:
    text = str(exc)
    mismatch = re.search(r"expected (\S+) but got (\w+)", text)
    if isinstance(exc, ValueError) and mismatch:
        expected, got = mismatch.group(1), mismatch.group(2)
        cause = f"checksum mismatch for {url}: expected {expected}, got md5:{got}"
        return FetchError(
            f"{cause}; the download was removed and nothing unpacked. Try again, or use "
            "--mirror URL (or --archive PATH of a copy you trust)",
            cause,
        )
    status = _status(exc)
    if status is not None:
        cause = f"cannot download {url}: HTTP {status}"
        return FetchError(f"{cause}; " + _way_round(name), cause)
    if type(exc).__name__ == "ChunkedEncodingError" or "IncompleteRead" in text:
        cause = f"the download of {url} was cut short ({_reason(exc)})"
        return FetchError(f"{cause}: nothing was kept; try again, or " + _way_round(name), cause)
    cause = f"cannot reach {url}: {_reason(exc)}"
    return FetchError(
        f"{cause}; is the network reachable? Else " + _way_round(name), cause, retryable=True
    )


def _corrupt(what: str, exc: BaseException) -> PipelineError:
    return PipelineError(
        f"{what} is not a complete zip archive ({type(exc).__name__}: {exc}): it is "
        "truncated or corrupt; nothing was unpacked. Fetch it again, or pass another copy "
        "with --archive"
    )


# --- the checksum GroupLens publishes -----------------------------------------------------
def published_md5(name: str, base: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> str | None:
    """The MD5 in ``NAME.zip.md5`` at ``base``; None when there is none (HTTP 404). Either
    layout: ``MD5 (ml-100k.zip) = <hex>`` or ``<hex>  ml-100k.zip``."""
    import pooch

    url = base + lookup(name).archive + ".md5"
    body = io.BytesIO()
    try:
        pooch.HTTPDownloader(timeout=timeout)(url, body, None)
    except OSError as exc:  # requests' errors are OSErrors
        if _status(exc) == 404:
            return None
        raise _download_error(exc, url, name) from None
    found = re.search(rb"\b([0-9a-fA-F]{32})\b", body.getvalue())
    if not found:
        raise PipelineError(
            f"{url} holds no MD5 checksum (it starts {body.getvalue()[:60]!r}): is --mirror "
            "a folder of MovieLens archives?"
        )
    return found.group(1).decode().lower()


# --- fetch --------------------------------------------------------------------------------
def _download(
    name: str, base: str, md5: str | None, into: Path, timeout: float, retries: int, progress: bool
) -> Path:
    """NAME.zip downloaded into ``into`` and checked against ``md5`` (pooch: a mismatch,
    a server error or a cut connection is retried ``retries`` times, each from byte 0)."""
    import pooch

    archive = lookup(name).archive
    fetcher = pooch.create(
        path=into,
        base_url=base,
        registry={archive: f"md5:{md5}" if md5 else None},
        retry_if_failed=retries,
    )
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout, chunk_size=CHUNK_BYTES)
    try:
        return Path(fetcher.fetch(archive, downloader=downloader))
    except (OSError, ValueError) as exc:
        raise _download_error(exc, base + archive, name) from None


def _check_archive(name: str, archive: Path, md5: str | None, source: str, log: Log) -> None:
    """A local ``--archive`` against the published checksum, when there is one."""
    import pooch

    if md5 is None:
        log(f"not verified: {source}; {archive} is unpacked as it is")
        return
    got = pooch.file_hash(str(archive), alg="md5")
    if got != md5:
        raise PipelineError(
            f"{archive} does not match GroupLens's checksum of {name}.zip ({source}): expected "
            f"md5:{md5}, got md5:{got}; nothing unpacked. Download it again, or use --mirror URL"
        )
    log(f"verified: md5 {md5} ({source})")


def _unpack(name: str, archive: Path, into: Path, what: str) -> Path:
    """The archive unzipped under ``into`` (pooch's Unzip); the dataset's folder in it,
    whatever the archive calls it (ml-10m.zip holds ml-10M100K/)."""
    import pooch

    out = into / "unpacked"
    try:
        pooch.Unzip(extract_dir=str(out))(str(archive), "download", None)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _corrupt(what, exc) from None
    entries = [p for p in out.iterdir() if p.name != "__MACOSX"]
    folder = entries[0] if len(entries) == 1 and entries[0].is_dir() else out
    if not holds(folder, name):
        raise PipelineError(
            f"{what} unpacked without {lookup(name).marker}: it is not the MovieLens {name} "
            f"archive (it holds {', '.join(sorted(p.name for p in entries)[:6])})"
        )
    return folder


def _move_into_place(folder: Path, target: Path, scratch: Path, name: str, log: Log) -> Path:
    """Rename the unpacked folder to ``target``; an older copy (--force) goes to the
    scratch folder first, and is deleted with it."""
    replaced = scratch / "replaced"
    if target.exists():
        if not holds(target, name):
            log(f"replacing {target}: it lacks {lookup(name).marker}")
        target.rename(replaced)
    try:
        folder.rename(target)
    except OSError:
        if holds(target, name):  # another fetch of the same name finished first
            log(f"{target} was fetched meanwhile by another process: using that copy")
            return target
        if replaced.exists():
            replaced.rename(target)
        raise
    return target


def fetch(
    name: str,
    *,
    dest: Path | None = None,
    mirror: str | None = None,
    archive: Path | None = None,
    force: bool = False,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    retries: int = DOWNLOAD_RETRIES,
    progress: bool = True,
    log: Log = print,
) -> Path:
    """``name``'s folder in ``dest`` (default ``config.DATASETS_DIR``): downloaded from
    ``mirror`` (default ``config.MOVIELENS_URL``) or taken from the local zip ``archive``,
    verified against the published ``NAME.zip.md5``, unpacked and renamed into place.
    A copy already there is kept unless ``force``."""
    entry = lookup(name)
    dest = Path(dest or config.DATASETS_DIR).expanduser().resolve()
    target = dest / name
    if holds(target, name) and not force:
        log(f"MovieLens {name} is already in {target} (--force fetches it again)")
        return target
    base = base_url(mirror)
    md5_url = base + entry.archive + ".md5"
    dest.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=PARTIAL_SUFFIX, dir=dest))
    try:
        if archive is not None:
            archive = Path(archive).expanduser().resolve()
            if not archive.is_file():
                raise PipelineError(f"--archive {archive} is not a file")
            try:
                md5 = published_md5(name, base, timeout=min(timeout, 10.0))
                source = f"published at {md5_url}" if md5 else f"no checksum at {md5_url}"
            except PipelineError as exc:
                cause = getattr(exc, "cause", str(exc))
                md5, source = None, f"the checksum could not be read ({cause})"
            _check_archive(name, archive, md5, source, log)
            folder = _unpack(name, archive, scratch, str(archive))
        else:
            md5 = published_md5(name, base, timeout=timeout)
            if md5:
                log(f"fetching {base}{entry.archive} ({entry.size}; checksum md5:{md5})")
            else:
                log(
                    f"fetching {base}{entry.archive} ({entry.size}); not verified: no "
                    f"checksum is published at {md5_url}"
                )
            downloaded = _download(name, base, md5, scratch, timeout, retries, progress)
            if md5:
                log(f"verified: md5 {md5} (published at {md5_url})")
            folder = _unpack(name, downloaded, scratch, f"{base}{entry.archive}")
        return _move_into_place(folder, target, scratch, name, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def ensure(
    name: str,
    *,
    movielens_dir: Path | None = None,
    datasets_dir: Path | None = None,
    log: Log = print,
    **fetch_options: Any,
) -> Path:
    """``name``'s folder: the configured MovieLens folder's copy, else the data folder's,
    else fetched into the data folder (saying so)."""
    found = find(name, movielens_dir, datasets_dir)
    if found is not None:
        return found
    dest = Path(datasets_dir or config.DATASETS_DIR)
    log(f"MovieLens {name} is not here yet: fetching it into {dest} (first use)")
    return fetch(name, dest=dest, log=log, **fetch_options)


def resolve_dataset(
    value: str,
    *,
    movielens_dir: Path | None = None,
    datasets_dir: Path | None = None,
    log: Log = print,
    **fetch_options: Any,
) -> str:
    """``reco run --dataset VALUE``: an existing path stays as it is; a MovieLens name
    (ml-100k ...) becomes its folder (see :func:`ensure`); anything else is left to the
    dataset checks that follow."""
    if not value or Path(value).expanduser().exists():
        return value
    if value in CATALOGUE:
        folder = ensure(
            value, movielens_dir=movielens_dir, datasets_dir=datasets_dir, log=log, **fetch_options
        )
        return str(folder)
    if NAME_SHAPE.match(value):
        lookup(value)  # fails naming the known datasets
    return value
