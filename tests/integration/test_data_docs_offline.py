"""Data Docs that render offline: real suites run through ``quality.run_suite`` write pages
that load every stylesheet, script and font from the vendored copy under
``var/reports/data_docs/_static`` (nothing from a CDN), through the reports web app and from
disk alike, and that name the Airflow run and the data asset."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest

from reco import config
from reco.data import formats, ingest
from reco.runs import RunFolder
from reco.validation import data_docs_assets, quality, validate

RUN_ID = "manual__2026-11-27T08:15:00.123456+00:00"  # an Airflow run id, ':' and '+' included
LOCAL_REF = re.compile(r"<(?:script|link|img)\b[^>]*?\b(?:src|href)=\"([^\"#]+)\"", re.I)
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


@pytest.fixture(scope="module")
def vendored(vendored_data_docs_assets: Path) -> Path:
    return vendored_data_docs_assets


@pytest.fixture(scope="module")
def docs_run(spark, ml100k: Path, vendored: Path, tmp_path_factory) -> Path:
    """A run folder of ML-100K, set up as the DAG's prepare task does (``run.json``), with
    its ratings and items suites validated."""
    run_dir = tmp_path_factory.mktemp("docs_offline")
    ingest.run(spark, run_dir, formats.detect_source(ml100k))
    RunFolder(run_dir).run_info.write_text(json.dumps({"run_id": RUN_ID}))
    manifest = json.loads((RunFolder(run_dir).manifest).read_text())
    ratings = spark.read.parquet(str(RunFolder(run_dir).ratings))
    params = validate.suite_parameters(manifest, config.DEFAULT_MIN_ROWS)
    assert quality.run_suite(run_dir, "ratings", ratings, params)["success"]
    items = spark.read.parquet(str(RunFolder(run_dir).items))
    assert quality.run_suite(run_dir, "items", items, {})["success"]
    return run_dir


def pages(run_dir: Path) -> list[Path]:
    return sorted(quality.data_docs_dir(run_dir).rglob("*.html"))


def validation_page(run_dir: Path, suite: str) -> Path:
    (page,) = quality.data_docs_dir(run_dir).glob(f"validations/{suite}/*/*/*.html")
    return page


def local_refs(page: Path) -> list[str]:
    return [u for u in LOCAL_REF.findall(page.read_text()) if "://" not in u]


def test_pages_load_nothing_from_a_cdn(docs_run: Path) -> None:
    found = pages(docs_run)
    # index, 2 expectation suites, 2 validations
    assert len(found) == 5, found
    for page in found:
        html = page.read_text()
        assert "https://cdn" not in html and "//cdn" not in html, page
        assert data_docs_assets.remote_resources(html) == [], page
        assert "integrity=" not in html and "crossorigin" not in html, page
        assert "amazonaws.com/logo-long.png" not in html, page


def test_every_referenced_file_exists_from_disk(docs_run: Path) -> None:
    """What a browser opening the page from disk (file://) would load: every stylesheet,
    script and image the page names, and every font those stylesheets name."""
    static = config.DATA_DOCS_DIR / config.DATA_DOCS_STATIC
    for page in pages(docs_run):
        refs = local_refs(page)
        vendored = [r for r in refs if f"/{config.DATA_DOCS_STATIC}/" in r]
        # 7 stylesheets / scripts in each page's head plus 8 scripts and Font Awesome below
        assert len(vendored) >= 5, (page, refs)
        for ref in refs:
            target = (page.parent / ref).resolve()
            assert target.is_file(), (page, ref)
            if target.suffix == ".css":
                for font in CSS_URL.findall(target.read_text()):
                    if not font.startswith("data:"):
                        assert (target.parent / font).resolve().is_file(), (target, font)
        assert all((page.parent / r).resolve().is_relative_to(static) for r in vendored)
    # Font Awesome's webfonts came along with its stylesheet.
    assert list(static.glob("fortawesome-fontawesome-free-6.6.0/webfonts/*.woff2"))


def test_pages_name_the_airflow_run_and_the_data_asset(docs_run: Path) -> None:
    for suite in ("ratings", "items"):
        page = validation_page(docs_run, suite)
        html = page.read_text()
        assert page.parent.parent.name == RUN_ID
        assert "__none__" not in html and "Data asset: None" not in html
        text = re.sub(r"<[^>]+>", " ", html)
        assert re.search(rf"Data asset:\s+{suite}\b", text), suite
        assert re.search(rf"Run Name\s+{re.escape(RUN_ID)}", text), suite
    # The index table's rows (a Python-literal list GX hands to bootstrap-table).
    index = (quality.data_docs_dir(docs_run) / "index.html").read_text()
    assert "__none__" not in index
    for suite in ("ratings", "items"):
        assert f"'run_name': '{RUN_ID}'" in index
        assert f"'asset_name': '{suite}'" in index


def test_rerun_keeps_pages_offline_and_copies_assets_once(spark, docs_run: Path) -> None:
    static = config.DATA_DOCS_DIR / config.DATA_DOCS_STATIC
    stamp = {p: p.stat().st_mtime_ns for p in static.rglob("*") if p.is_file()}
    items = spark.read.parquet(str(RunFolder(docs_run).items))
    quality.run_suite(docs_run, "items", items, {}, run_id="manual__second")
    assert {p: p.stat().st_mtime_ns for p in static.rglob("*") if p.is_file()} == stamp
    assert len(pages(docs_run)) == 6
    for page in pages(docs_run):
        assert data_docs_assets.remote_resources(page.read_text()) == [], page
    assert "manual__second" in (quality.data_docs_dir(docs_run) / "index.html").read_text()


def test_without_the_vendored_cache_pages_keep_their_cdn_links_and_say_why(
    spark, docs_run: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    """No network ever: the pages still work online, and one warning names the fix."""
    monkeypatch.setattr(config, "DATA_DOCS_ASSETS_DIR", tmp_path / "never_fetched")
    monkeypatch.setattr(data_docs_assets, "_warned", set())
    items = spark.read.parquet(str(RunFolder(docs_run).items))
    with caplog.at_level(logging.WARNING, logger=data_docs_assets.__name__):
        quality.run_suite(docs_run, "items", items, {}, run_id="manual__offline")
        quality.run_suite(docs_run, "items", items, {}, run_id="manual__offline2")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "reco init" in warnings[0], warnings
    (page,) = quality.data_docs_dir(docs_run).glob("validations/items/manual__offline/*/*.html")
    assert "https://cdn.jsdelivr.net/npm/vega@5" in page.read_text()


def test_reports_app_serves_the_pages_and_their_assets(docs_run: Path) -> None:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from reco.reporting.reports_app import build_app

    app = build_app(login=get_user)
    app.dependency_overrides[get_user] = lambda: None
    client = TestClient(app)
    site = f"/data_docs/{quality.data_docs_dir(docs_run).name}/"
    index = client.get(site + "index.html")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    page = validation_page(docs_run, "ratings")
    page_url = site + page.relative_to(quality.data_docs_dir(docs_run)).as_posix()
    response = client.get(page_url)
    assert response.status_code == 200 and RUN_ID in response.text
    types = {}
    for ref in local_refs(page):
        url = urljoin(page_url, ref)
        asset = client.get(url)
        assert asset.status_code == 200, url
        types[Path(ref).suffix] = asset.headers["content-type"]
        if ref.endswith("all.min.css"):
            font = client.get(urljoin(url, "../webfonts/fa-solid-900.woff2"))
            assert font.status_code == 200
            types[".woff2"] = font.headers["content-type"]
    assert types[".css"].startswith("text/css")
    assert types[".js"].startswith("text/javascript")
    assert types[".woff2"] == "font/woff2"
    assert client.get("/data_docs/..%2F..%2Fpgdata%2Fpostgresql.conf").status_code == 404
    assert client.get("/data_docs/%2Fetc%2Fpasswd").status_code == 404
