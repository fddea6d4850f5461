"""Vendored Data Docs assets: the lock, the integrity checks of a download, and the rewriting
of a real Great Expectations page's CDN links to relative paths."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
from importlib.util import find_spec
from pathlib import Path

import pytest

from reco import config
from reco.errors import PipelineError
from reco.validation import data_docs_assets
from reco.validation.data_docs_assets import REGISTRY, ensure_vendored, localize_site, sri

# Found without importing GX (seconds) at collection.
GX_TEMPLATES = Path(find_spec("great_expectations").origin).parent / "render/view/templates"
# Integrity hashes the CDNs publish for their copies (Bootstrap 4.3.1's and jQuery's own
# snippets): the npm files are byte-identical to what the pages loaded.
CDN_PUBLISHED = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "sha384-ggOyR0iXCbMQv3Xipma34MD+dH/1fQ784/j6cY/iJTQUOhcWr7x9JvoRxT2MZw1T"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": (
        "sha256-/JqT3SQfawRcv/BIHPThkBvs0OEvtFFmqPF/lYI/Cxo="
    ),
}
LOCAL_REF = re.compile(r"<(?:script|link|img)\b[^>]*?\b(?:src|href)=\"([^\"#]+)\"", re.I)


# --------------------------------------------------------------------------------------
# The lock
# --------------------------------------------------------------------------------------
def test_lock_pins_each_file_to_a_registry_tarball() -> None:
    lock = data_docs_assets.load_lock()
    for pkg in lock["packages"]:
        base = pkg["name"].rsplit("/", 1)[-1]
        assert pkg["tarball"] == f"{REGISTRY}/{pkg['name']}/-/{base}-{pkg['version']}.tgz"
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", pkg["integrity"]), pkg["name"]
        for path, spec in pkg["files"].items():
            assert re.fullmatch(r"sha384-[A-Za-z0-9+/]{64}", spec["sha384"]), path
    versions = {(p["name"], p["version"]) for p in lock["packages"]}
    assert len(versions) == len(lock["packages"])


def test_lock_covers_every_cdn_link_in_gx_templates() -> None:
    """A GX upgrade that changes a CDN link fails here, not silently in a page."""
    urls = {
        u
        for t in GX_TEMPLATES.glob("*.j2")
        for u in data_docs_assets.remote_resources(t.read_text())
    }
    covered = data_docs_assets.cdn_map(Path("_static"), data_docs_assets.load_lock())
    assert len(urls) == 16
    assert urls <= set(covered), urls - set(covered)


def test_lock_matches_the_integrity_gx_states_for_its_pinned_scripts() -> None:
    """GX pins Popper and Bootstrap's script by SRI hash: the npm files are the same bytes."""
    stated = dict(
        re.findall(
            r'src="([^"]+)" integrity="([^"]+)"',
            (GX_TEMPLATES / "js_script_imports.j2").read_text(),
        )
    )
    assert len(stated) == 2
    assets = {
        u: a for a in data_docs_assets.lock_assets(data_docs_assets.load_lock()) for u in a.cdn
    }
    for url, integrity in stated.items():
        assert assets[url].sha384 == integrity, url


# --------------------------------------------------------------------------------------
# Download and integrity, on a real tarball served from a file:// URL
# --------------------------------------------------------------------------------------
def npm_tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture()
def mini_registry(tmp_path: Path) -> tuple[Path, Path]:
    """A one-package lock whose tarball is a local file; returns ``(lock, tarball)``."""
    files = {
        "dist/lib.min.js": b"window.lib = 1;\n",
        "css/lib.css": b"@font-face{src:url(../fonts/x.woff2)}\n",
        "fonts/x.woff2": b"wOF2\x00\x01",
        "README.md": b"not taken\n",
    }
    tgz = tmp_path / "lib-1.0.0.tgz"
    tgz.write_bytes(npm_tarball(files))
    digest = base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    lock = {
        "packages": [
            {
                "name": "@scope/lib",
                "version": "1.0.0",
                "tarball": tgz.as_uri(),
                "integrity": f"sha512-{digest}",
                "files": {
                    p: {"sha384": sri(files[p]), "cdn": [f"https://cdn.example/{p}"]}
                    for p in ("dist/lib.min.js", "css/lib.css", "fonts/x.woff2")
                },
            }
        ]
    }
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(lock))
    return path, tgz


def test_ensure_vendored_downloads_once_and_then_works_offline(mini_registry, tmp_path) -> None:
    lock, tgz = mini_registry
    cache = tmp_path / "cache"
    assert ensure_vendored(cache, lock) == cache
    assert (cache / "scope-lib-1.0.0/dist/lib.min.js").read_bytes() == b"window.lib = 1;\n"
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()) == [
        "scope-lib-1.0.0/css/lib.css",
        "scope-lib-1.0.0/dist/lib.min.js",
        "scope-lib-1.0.0/fonts/x.woff2",
    ]
    tgz.unlink()  # the registry is gone: a complete cache needs nothing from it
    assert ensure_vendored(cache, lock) == cache
    assert data_docs_assets.vendored_dir(cache, lock) == cache


def test_a_damaged_cached_file_is_fetched_again(mini_registry, tmp_path) -> None:
    lock, tgz = mini_registry
    cache = tmp_path / "cache"
    ensure_vendored(cache, lock)
    target = cache / "scope-lib-1.0.0/dist/lib.min.js"
    target.write_bytes(b"tampered")
    assert data_docs_assets.missing_assets(cache, json.loads(lock.read_text()))
    ensure_vendored(cache, lock)
    assert target.read_bytes() == b"window.lib = 1;\n"


def test_a_tarball_not_matching_the_registry_integrity_is_refused(mini_registry, tmp_path) -> None:
    lock, tgz = mini_registry
    tgz.write_bytes(npm_tarball({"dist/lib.min.js": b"window.evil = 1;\n"}))
    cache = tmp_path / "cache"
    with pytest.raises(PipelineError, match="does not match its locked integrity"):
        ensure_vendored(cache, lock)
    assert not cache.exists()


def test_a_file_not_matching_its_locked_hash_is_refused(mini_registry, tmp_path) -> None:
    lock, _ = mini_registry
    spec = json.loads(lock.read_text())
    spec["packages"][0]["files"]["css/lib.css"]["sha384"] = sri(b"something else")
    lock.write_text(json.dumps(spec))
    cache = tmp_path / "cache"
    with pytest.raises(PipelineError, match=r"css/lib.css does not match its locked sha384"):
        ensure_vendored(cache, lock)
    assert not cache.exists()


def test_an_unreachable_registry_names_the_fix(mini_registry, tmp_path) -> None:
    lock, tgz = mini_registry
    tgz.unlink()
    with pytest.raises(PipelineError, match=r"re-run `reco init`"):
        ensure_vendored(tmp_path / "cache", lock)


def test_integrity_strings() -> None:
    data = b"abc"
    assert data_docs_assets.matches_integrity(data, sri(data, "sha512"))
    assert data_docs_assets.matches_integrity(data, f"sha256-xxxx {sri(data, 'sha384')}")
    assert not data_docs_assets.matches_integrity(data, sri(b"abd", "sha384"))
    assert not data_docs_assets.matches_integrity(data, "md5-kAFQmDzST7DWlj99KOF/cg==")


# --------------------------------------------------------------------------------------
# Rewriting a real GX page
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vendored() -> Path:
    """The real vendored assets: copied from the project's cache when `reco init` has filled
    it, else downloaded; verified against the lock either way."""
    project_cache = (
        config.PROJECT_ROOT / "var" / config.DATA_DOCS_ASSETS_DIR.relative_to(config.VAR_DIR)
    )
    if project_cache.is_dir() and not config.DATA_DOCS_ASSETS_DIR.exists():
        shutil.copytree(project_cache, config.DATA_DOCS_ASSETS_DIR)
    return ensure_vendored()


def test_vendored_files_are_the_bytes_the_cdns_publish(vendored: Path) -> None:
    assets = {
        u: a for a in data_docs_assets.lock_assets(data_docs_assets.load_lock()) for u in a.cdn
    }
    for url, integrity in CDN_PUBLISHED.items():
        data = (vendored / assets[url].relpath).read_bytes()
        assert data_docs_assets.matches_integrity(data, integrity), url


@pytest.fixture(scope="module")
def gx_site(tmp_path_factory) -> Path:
    """A Data Docs site exactly as GX 1.24 writes it: one validation of a pandas frame."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import pandas as pd

    root = tmp_path_factory.mktemp("gx_project")
    site = root / "data_docs" / "run"
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.add_data_docs_site(
        "site",
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(site),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    batch = (
        context.data_sources.add_pandas("frames")
        .add_dataframe_asset("ratings")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(
        gx.ExpectationSuite(
            "ratings", expectations=[gx.expectations.ExpectColumnValuesToNotBeNull(column="rating")]
        )
    )
    vd = context.validation_definitions.add(
        gx.ValidationDefinition(name="v", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="c",
            validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["site"])],
        )
    )
    checkpoint.run(batch_parameters={"dataframe": pd.DataFrame({"rating": [1.0, 4.5]})})
    return site


@pytest.fixture()
def site(gx_site: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data_docs" / "run"
    shutil.copytree(gx_site, copy)
    return copy


def test_gx_page_has_cdn_links_to_begin_with(site: Path) -> None:
    (page,) = site.glob("validations/*/*/*/*.html")
    # 16 distinct CDN URLs in GX's templates; a page uses one of the two filter-control CSS
    assert len(data_docs_assets.remote_resources(page.read_text())) == 15


def test_localize_site_points_every_cdn_link_at_the_vendored_copy(vendored, site) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 3  # index, suite, validation
    assert localize_site(site, vendored) == 3
    static = site.parent / config.DATA_DOCS_STATIC
    for page in pages:
        html = page.read_text()
        assert data_docs_assets.remote_resources(html) == [], page
        assert "https://cdn" not in html and "//cdn" not in html
        assert "integrity=" not in html and "crossorigin" not in html
        assert "amazonaws.com/logo-long.png" not in html
        refs = [u for u in LOCAL_REF.findall(html) if "://" not in u]
        assert sum("_static/" in r for r in refs) >= 7, page
        for ref in refs:
            target = (page.parent / ref).resolve()
            assert target.is_file(), (page, ref)
            assert "_static/" not in ref or target.is_relative_to(static.resolve())
    (page,) = site.glob("validations/*/*/*/*.html")
    assert (
        '<script src="../../../../../_static/popper.js-1.12.9/dist/umd/popper.min.js"></script>'
        in page.read_text()
    )
    font_awesome = "../_static/fortawesome-fontawesome-free-6.6.0/css/all.min.css"
    assert f'<link rel="stylesheet" href="{font_awesome}">' in (site / "index.html").read_text()
    # idempotent: nothing left to rewrite
    before = {p: p.read_text() for p in pages}
    assert localize_site(site, vendored) == 0
    assert {p: p.read_text() for p in pages} == before


def test_a_file_not_matching_the_page_integrity_stays_on_the_cdn(vendored, site, tmp_path) -> None:
    (page,) = site.glob("validations/*/*/*/*.html")
    popper = "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"
    impostor = tmp_path / "popper.min.js"
    impostor.write_text("window.Popper = null;")
    html = data_docs_assets.rewrite_page(page.read_text(), page, {popper: impostor}, site)
    assert f'src="{popper}" integrity="sha384-' in html


def test_without_the_cache_pages_keep_their_cdn_links(site, tmp_path, caplog, monkeypatch) -> None:
    (page,) = site.glob("validations/*/*/*/*.html")
    before = page.read_text()
    monkeypatch.setattr(data_docs_assets, "_warned", set())  # a fresh process
    with caplog.at_level(logging.WARNING, logger=data_docs_assets.__name__):
        assert localize_site(site, tmp_path / "never_fetched") == 0
        assert localize_site(site, tmp_path / "never_fetched") == 0
    assert page.read_text() == before
    assert len(caplog.records) == 1 and "reco init" in caplog.records[0].getMessage()
    assert not (site.parent / config.DATA_DOCS_STATIC).exists()
