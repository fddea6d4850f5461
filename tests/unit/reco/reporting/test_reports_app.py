"""The index of the reports folder (reco.reporting.reports_app): from its template, newest
first, escaped; the app asks for the login it is given."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reco.reporting import reports_app
from tests.support.html_tables import Tables


def write(folder: Path, name: str, mtime: int) -> None:
    path = folder / name
    path.write_text("<html></html>")
    os.utime(path, (mtime, mtime))


def line(folder: Path, run: str, started: str, **fields: object) -> None:
    """A run's line as reco.reporting.index writes it, and its page."""
    write(folder, f"{run}.html", 1_800_000_000)
    entry = {"run_id": run, "page": f"{run}.html", "started": started, **fields}
    (folder / f"{run}.json").write_text(json.dumps(entry))


DAY = "2026-12-04T"
RUNS = [
    # run, started (UTC), dataset, outcome, model, nDCG, RMSE, wall
    ("r_13_45", "13:45:00", "/d/ml-100k", "rejected", "als rank=8", 0.41, 0.95, 61),
    ("r_13_53", "13:53:10", "/d/ml-100k", "published", "ease l2=500", 0.45, 0.91, 88),
    ("r_13_50", "13:50:00", "/d/synth", "failed at validate", "", None, None, 9),
    ("r_13_32", "13:32:00", "/d/ml-latest-small", "published", "als", 0.3, 0.87, 70),
]
SHOWN = [
    ["13:53", "ml-100k", "published", "ease l2=500", "0.4500 @10", "0.9100", "88 s"],
    ["13:50", "synth", "failed at validate", "", "", "", "9 s"],
    ["13:45", "ml-100k", "rejected", "als rank=8", "0.4100 @10", "0.9500", "61 s"],
    ["13:32", "ml-latest-small", "published", "als", "0.3000 @10", "0.8700", "70 s"],
]


def test_the_index_lists_the_runs_newest_first_a_line_each(tmp_path: Path) -> None:
    """Newest first by when the run started (not by when its page was last written), with
    its dataset, outcome, model, nDCG, RMSE and wall time; a run with no page (it failed
    before training) is listed without a link; other pages (A/B analyses) after them."""
    for run, started, dataset, outcome, model, ndcg, rmse, wall in RUNS:
        fields = {"dataset": dataset, "outcome": outcome, "model": model, "ndcg": ndcg}
        line(tmp_path, run, f"{DAY}{started}+00:00", **fields, k=10, rmse=rmse, wall_s=wall)
    (tmp_path / "r_13_50.html").unlink()  # failed before training: no page
    os.utime(tmp_path / "r_13_32.html", (1_900_000_000, 1_900_000_000))  # re-rendered later
    write(tmp_path, "ab_exp.html", 1_700_000_000)
    write(tmp_path, "latest.html", 1_800_000_600)
    tables = Tables()
    tables.feed(reports_app.index_page(tmp_path))
    [runs] = tables.tables
    assert runs[0] == ["started", "dataset", "outcome", "model", "nDCG@k", "RMSE", "wall time"]
    assert runs[1:] == [[f"2026-12-04 {row[0]} UTC", *row[1:]] for row in SHOWN]
    html = reports_app.index_page(tmp_path)
    assert '<a href="r_13_53.html">2026-12-04 13:53 UTC</a>' in html
    assert 'href="r_13_50.html"' not in html
    assert '<li><a href="ab_exp.html">ab_exp</a> (2023-11-14 22:13 UTC)</li>' in html
    assert html.index("Other pages") > html.index("r_13_32")
    assert '<a href="latest.html">latest</a>' in html


def test_a_page_without_its_line_is_still_listed(tmp_path: Path) -> None:
    write(tmp_path, "run_a.html", 1_800_000_000)
    write(tmp_path, "run_b.html", 1_800_000_600)
    html = reports_app.index_page(tmp_path)
    assert '<li><a href="run_b.html">run_b</a> (2027-01-15 08:10 UTC)</li>' in html
    assert html.index("run_b") < html.index("run_a")


def test_an_empty_folder_says_how_to_get_a_report(tmp_path: Path) -> None:
    html = reports_app.index_page(tmp_path)
    assert "No run reports yet: trigger the <code>recommendations</code> DAG." in html
    assert "<ul>" not in html and "<table" not in html


def test_names_are_escaped(tmp_path: Path) -> None:
    write(tmp_path, "x&<i>y.html", 1_800_000_000)
    html = reports_app.index_page(tmp_path)
    assert "<i>" not in html and "x&amp;&lt;i&gt;y" in html


def test_every_page_asks_for_the_login_it_is_given(tmp_path: Path, monkeypatch) -> None:
    from fastapi import HTTPException
    from fastapi.testclient import TestClient

    from reco import config

    def refuse() -> None:
        raise HTTPException(status_code=401, detail="log in")

    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path)
    write(tmp_path, "run_a.html", 1_800_000_000)
    client = TestClient(reports_app.build_app(login=refuse))
    assert client.get("/").status_code == 401
    assert client.get("/run_a.html").status_code == 401
    client = TestClient(reports_app.build_app(login=lambda: None))
    assert "run_a" in client.get("/").text
    assert client.get("/run_a.html").status_code == 200
    assert client.get("/nope.html").status_code == 404


def test_build_app_needs_a_login() -> None:
    with pytest.raises(TypeError):
        reports_app.build_app()  # type: ignore[call-arg]
