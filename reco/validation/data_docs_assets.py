"""Great Expectations Data Docs that render offline: their CSS, JavaScript and fonts come
from npm registry tarballs pinned in ``data_docs_assets.json``, not from CDNs.

GX 1.24's page templates load Bootstrap, jQuery, Popper, bootstrap-table,
bootstrap-datepicker, bootstrap-dark, Vega/Vega-Lite/Vega-Embed and Font Awesome from six
CDN hosts; offline or behind a proxy the pages render unstyled and the index tables stay
empty.

- :func:`ensure_vendored` (run by ``reco init``) downloads each pinned tarball once, checks
  it against the registry's ``dist.integrity`` (sha512) and every file taken from it against
  the lock's sha384, into ``var/cache/data_docs_assets``. Once done it needs no network.
- :func:`localize_site` (run by ``quality.run_suite`` after GX writes a run's pages) copies
  the files once per Data Docs root to ``var/reports/data_docs/_static`` and points every
  CDN link of the site's pages at that copy by a relative path, so a page works from the
  reports web app (``/reco-reports/data_docs/...``) and opened from disk alike. Without the
  cache the CDN links stay and one warning says how to fetch the files.

The lock's ``cdn`` lists say which URL each file replaces: the same package version the CDN
serves (``vega@5`` on jsDelivr resolves to the newest 5.x, pinned here).

    python -m reco.validation.data_docs_assets            # fetch them (what `reco init` does)
    python -m reco.validation.data_docs_assets --relock   # recompute the lock's hashes (registry)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import logging
import os
import re
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reco import config
from reco.errors import PipelineError

log = logging.getLogger(__name__)

LOCK_PATH = Path(__file__).with_name("data_docs_assets.json")
REGISTRY = "https://registry.npmjs.org"
FETCH_TIMEOUT_S = 60.0
# The navbar logo GX loads from S3 (with the context id appended) ships with every site as
# static/images/logo-long.png: pointed there too, so the page makes no request at all.
GX_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/logo-long\.png"
    r"(?:\?[^\"'\s>]*)?"
)
LOCAL_LOGO = Path("static") / "images" / "logo-long.png"
# GX 1.24's favicon link on validation pages climbs one folder too few (favicon.j2: +3, the
# pages sit 4 deep): it is re-pointed at the site's own copy on every page.
GX_FAVICON = re.compile(r"(?<=[\"'])(?:\./|\.\./)*static/images/favicon\.ico(?=[\"'])")
LOCAL_FAVICON = Path("static") / "images" / "favicon.ico"

_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
_URL_ATTR = re.compile(r"\b(?:src|href)\s*=\s*([\"'])(.*?)\1", re.IGNORECASE | re.DOTALL)
_INTEGRITY = re.compile(r"\s+integrity\s*=\s*([\"'])(.*?)\1", re.IGNORECASE | re.DOTALL)
_CROSSORIGIN = re.compile(r"\s+crossorigin(?:\s*=\s*([\"'])[^\"']*\1)?", re.IGNORECASE)
# <script src> / <link href> on another host: what a page would fetch from the network.
_REMOTE = re.compile(r"^(?:https?:)?//", re.IGNORECASE)

_verified: set[tuple[Path, Path]] = set()  # (cache, lock) found complete in this process
_warned: set[str] = set()


@dataclass(frozen=True)
class Asset:
    """One file taken from one pinned package."""

    package: str
    version: str
    path: str  # inside the package
    sha384: str  # SRI form, "sha384-<base64>"
    cdn: tuple[str, ...]  # the CDN URLs it replaces (none for fonts a CSS file loads)

    @property
    def relpath(self) -> str:
        """Where it lives under the cache and under ``_static``: ``<package>-<version>/path``
        (the package's own layout, so a CSS file's ``../webfonts/...`` still resolves)."""
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}/{self.path}"


def load_lock(path: Path = LOCK_PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def lock_assets(lock: dict[str, Any]) -> list[Asset]:
    return [
        Asset(pkg["name"], pkg["version"], path, spec["sha384"], tuple(spec.get("cdn", ())))
        for pkg in lock["packages"]
        for path, spec in pkg["files"].items()
    ]


def sri(data: bytes, algorithm: str = "sha384") -> str:
    """Subresource-Integrity form of a digest: ``<algorithm>-<base64>``."""
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def matches_integrity(data: bytes, integrity: str) -> bool:
    """Whether ``data`` matches any ``algorithm-base64`` token of an SRI string (npm's
    ``dist.integrity`` or an HTML ``integrity`` attribute)."""
    for token in integrity.split():
        algorithm = token.split("-", 1)[0]
        if algorithm in ("sha256", "sha384", "sha512") and hmac.compare_digest(
            sri(data, algorithm), token
        ):
            return True
    return False


def fetch(url: str, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """GET ``url`` (honours HTTPS_PROXY); a clear ``PipelineError`` if it cannot."""
    request = urllib.request.Request(url, headers={"User-Agent": "reco-pipeline"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise PipelineError(
            f"could not download {url} ({exc}): the Data Docs assets come from the npm "
            "registry; allow it (or set HTTPS_PROXY) and re-run `reco init`"
        ) from exc


def extract(tarball: bytes, paths: Iterable[str]) -> dict[str, bytes]:
    """The regular files ``paths`` of an npm tarball (members sit under one top folder,
    usually ``package/``)."""
    wanted = set(paths)
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar:
            inner = member.name.split("/", 1)[-1]
            if inner in wanted and member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    found[inner] = handle.read()
    if missing := wanted - set(found):
        raise PipelineError(f"not in the tarball: {sorted(missing)}")
    return found


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _intact(path: Path, asset: Asset) -> bool:
    return path.is_file() and hmac.compare_digest(sri(path.read_bytes()), asset.sha384)


def missing_assets(cache_dir: Path, lock: dict[str, Any]) -> list[Asset]:
    """Locked files absent from ``cache_dir`` or not matching their sha384."""
    return [a for a in lock_assets(lock) if not _intact(cache_dir / a.relpath, a)]


def ensure_vendored(cache_dir: Path | None = None, lock_path: Path = LOCK_PATH) -> Path:
    """Download the locked packages' files into ``cache_dir`` (default
    ``config.DATA_DOCS_ASSETS_DIR``) unless every one is there intact; returns the folder.

    Idempotent and offline once done. A tarball failing its registry integrity, or a file
    failing its locked sha384, raises ``PipelineError`` and nothing of it is kept.
    """
    cache_dir = cache_dir or config.DATA_DOCS_ASSETS_DIR
    lock = load_lock(lock_path)
    todo = {(a.package, a.version) for a in missing_assets(cache_dir, lock)}
    for pkg in lock["packages"]:
        if (pkg["name"], pkg["version"]) not in todo:
            continue
        tarball = fetch(pkg["tarball"])
        if not matches_integrity(tarball, pkg["integrity"]):
            raise PipelineError(
                f"{pkg['tarball']} does not match its locked integrity {pkg['integrity'][:20]}..."
                f" (registry dist.integrity): not using it"
            )
        files = extract(tarball, pkg["files"])
        assets = lock_assets({"packages": [pkg]})
        for asset in assets:
            if not matches_integrity(files[asset.path], asset.sha384):
                raise PipelineError(
                    f"{asset.package}@{asset.version}/{asset.path} does not match its locked "
                    f"sha384 in {lock_path.name}"
                )
        for asset in assets:
            _write_atomic(cache_dir / asset.relpath, files[asset.path])
        log.info("vendored %s@%s (%d files)", pkg["name"], pkg["version"], len(assets))
    _verified.add((cache_dir, lock_path))
    return cache_dir


def vendored_dir(cache_dir: Path | None = None, lock_path: Path = LOCK_PATH) -> Path | None:
    """``cache_dir`` if it holds every locked file intact (found so once per process), else
    None. Never touches the network."""
    cache_dir = cache_dir or config.DATA_DOCS_ASSETS_DIR
    key = (cache_dir, lock_path)
    if key not in _verified and not missing_assets(cache_dir, load_lock(lock_path)):
        _verified.add(key)
    return cache_dir if key in _verified else None


def install_static(cache_dir: Path, static_dir: Path, lock: dict[str, Any]) -> None:
    """Copy the vendored files to ``static_dir`` (once per Data Docs root: files already
    there with the same size are kept)."""
    for asset in lock_assets(lock):
        src, dst = cache_dir / asset.relpath, static_dir / asset.relpath
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            _write_atomic(dst, src.read_bytes())


def cdn_map(static_dir: Path, lock: dict[str, Any]) -> dict[str, Path]:
    """CDN URL -> the vendored copy under ``static_dir`` that replaces it."""
    return {url: static_dir / a.relpath for a in lock_assets(lock) for url in a.cdn}


def remote_resources(html: str) -> list[str]:
    """URLs a page's ``<script>``/``<link>`` tags would load from another host."""
    return [
        m.group(2)
        for tag in _TAG.finditer(html)
        if (m := _URL_ATTR.search(tag.group(0))) and _REMOTE.match(m.group(2))
    ]


def _relative(target: Path, page_dir: Path) -> str:
    return Path(os.path.relpath(target, page_dir)).as_posix()


def rewrite_page(html: str, page: Path, urls: dict[str, Path], site_dir: Path) -> str:
    """``html`` (the page at ``page``) with every CDN URL of ``urls`` replaced by a relative
    path to its vendored copy, and GX's S3 logo and its favicon link by the site's copies.

    A tag's ``integrity`` is checked against the local file, then dropped with
    ``crossorigin`` (a CORS request cannot load a ``file://`` page's scripts); a tag whose
    file does not match it keeps its CDN URL.
    """

    def tag(m: re.Match[str]) -> str:
        text = m.group(0)
        attr = _URL_ATTR.search(text)
        if not attr or attr.group(2) not in urls:
            return text
        local = urls[attr.group(2)]
        integrity = _INTEGRITY.search(text)
        if integrity and not matches_integrity(local.read_bytes(), integrity.group(2)):
            _warn_once(
                f"integrity:{attr.group(2)}",
                "%s does not match the integrity GX's page states for %s: left on the CDN",
                local,
                attr.group(2),
            )
            return text
        text = text[: attr.start(2)] + _relative(local, page.parent) + text[attr.end(2) :]
        return _CROSSORIGIN.sub("", _INTEGRITY.sub("", text))

    html = _TAG.sub(tag, html)
    logo, favicon = site_dir / LOCAL_LOGO, site_dir / LOCAL_FAVICON
    if logo.is_file():
        html = GX_LOGO.sub(_relative(logo, page.parent), html)
    if favicon.is_file():
        html = GX_FAVICON.sub(_relative(favicon, page.parent), html)
    return html


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def localize_site(
    site_dir: Path, cache_dir: Path | None = None, lock_path: Path = LOCK_PATH
) -> int:
    """Point the CDN links of every HTML page of a Data Docs site at vendored copies in
    ``<site_dir>/../_static``; returns the number of pages rewritten.

    Without the vendored cache the pages keep their CDN links and one warning says how to
    fetch them. Pages already rewritten are left as they are.
    """
    cache = vendored_dir(cache_dir, lock_path)
    if cache is None:
        _warn_once(
            "cache",
            "Data Docs assets are not vendored (%s is missing or incomplete): the Data Docs "
            "pages load Bootstrap, jQuery, Vega and Font Awesome from CDNs and render unstyled "
            "offline. Run `reco init` once with access to registry.npmjs.org to fetch them.",
            cache_dir or config.DATA_DOCS_ASSETS_DIR,
        )
        return 0
    lock = load_lock(lock_path)
    static_dir = site_dir.parent / config.DATA_DOCS_STATIC
    install_static(cache, static_dir, lock)
    urls = cdn_map(static_dir, lock)
    rewritten = 0
    for page in sorted(site_dir.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        new = rewrite_page(html, page, urls, site_dir)
        if new != html:
            _write_atomic(page, new.encode("utf-8"))
            rewritten += 1
        for url in remote_resources(new):
            _warn_once(
                f"unknown:{url}",
                "Data Docs page %s loads %s, which %s does not vendor: add its npm package "
                "there (python -m reco.validation.data_docs_assets --relock)",
                page,
                url,
                lock_path.name,
            )
    return rewritten


# --------------------------------------------------------------------------------------
# Lock maintenance
# --------------------------------------------------------------------------------------
def relock(lock_path: Path = LOCK_PATH) -> dict[str, Any]:
    """Recompute the lock's tarball URLs, integrities and file hashes from the registry for
    the packages, versions and files it names (after a GX upgrade changes its CDN links)."""
    lock = load_lock(lock_path)
    packages = []
    for pkg in lock["packages"]:
        dist = json.loads(fetch(f"{REGISTRY}/{pkg['name']}/{pkg['version']}"))["dist"]
        tarball = fetch(dist["tarball"])
        if not matches_integrity(tarball, dist["integrity"]):
            raise PipelineError(f"{dist['tarball']} does not match the registry's integrity")
        files = extract(tarball, pkg["files"])
        packages.append(
            {
                "name": pkg["name"],
                "version": pkg["version"],
                "tarball": dist["tarball"],
                "integrity": dist["integrity"],
                "files": {
                    path: {"sha384": sri(files[path]), "cdn": spec.get("cdn", [])}
                    for path, spec in pkg["files"].items()
                },
            }
        )
    lock["packages"] = packages
    lock_path.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    return lock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reco.validation.data_docs_assets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--relock", action="store_true", help="recompute the lock's hashes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.relock:
            relock()
            print(f"rewrote {LOCK_PATH}")
        else:
            print(f"data docs assets: {ensure_vendored()}")
    except PipelineError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
