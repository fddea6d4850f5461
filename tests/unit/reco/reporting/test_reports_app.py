"""The index of the reports folder (reco.reporting.reports_app): from its template, newest
first, escaped; the app asks for the login it is given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reco.reporting import reports_app


def write(folder: Path, name: str, mtime: int) -> None:
    path = folder / name
    path.write_text("<html></html>")
    os.utime(path, (mtime, mtime))


def test_the_index_lists_the_reports_newest_first(tmp_path: Path) -> None:
    write(tmp_path, "run_a.html", 1_800_000_000)
    write(tmp_path, "run_b.html", 1_800_000_600)
    write(tmp_path, "ab_exp.html", 1_700_000_000)
    write(tmp_path, "latest.html", 1_800_000_600)
    entries = reports_app.index_entries(tmp_path)
    assert [e["name"] for e in entries] == ["run_b.html", "run_a.html", "ab_exp.html"]
    assert entries[0]["modified"] == "2027-01-15 08:10 UTC"
    html = reports_app.index_page(tmp_path)
    assert '<a href="latest.html">latest</a>' in html
    assert '<li><a href="run_b.html">run_b</a> (2027-01-15 08:10 UTC)</li>' in html
    assert html.index("run_b") < html.index("run_a") < html.index("ab_exp")
    assert "No run reports yet" not in html


def test_an_empty_folder_says_how_to_get_a_report(tmp_path: Path) -> None:
    html = reports_app.index_page(tmp_path)
    assert "No run reports yet: trigger the <code>recommendations</code> DAG." in html
    assert "<ul>" not in html


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
