"""The reports folder, served inside the Airflow api-server (``plugins/reco_reports.py``).

``/reco-reports/`` lists the run reports (newest first), ``/reco-reports/<run>.html`` is
one run's report and ``/reco-reports/latest.html`` the newest;
``/reco-reports/data_docs/<run>/index.html`` a run's Great Expectations Data Docs (and the
files under ``data_docs/`` they load, e.g. the vendored ``_static/``). Every page is behind
Airflow's login: the same JWT as the REST API (``Authorization: Bearer``) or the UI's
session cookie, checked by Airflow's own ``get_user``.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from reco import config

REPORT_NAME = re.compile(r"[A-Za-z0-9_.+-]+\.html")
# The only files served under data_docs/, with their content types.
DATA_DOCS_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}


def build_app() -> Any:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse

    app = FastAPI(title="Recommendation reports", dependencies=[Depends(get_user)])

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        reports = sorted(
            (p for p in config.REPORTS_DIR.glob("*.html") if p.name != "latest.html"),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        items = "".join(
            f'<li><a href="{html.escape(p.name)}">{html.escape(p.stem)}</a> '
            f"({datetime.fromtimestamp(p.stat().st_mtime, UTC):%Y-%m-%d %H:%M} UTC)</li>"
            for p in reports
        )
        empty = "<p>No run reports yet: trigger the <code>recommendations</code> DAG.</p>"
        return (
            '<!doctype html><html><head><meta charset="utf-8"><title>Run reports</title>'
            '</head><body style="font-family:sans-serif"><h1>Run reports</h1>'
            f'<p><a href="latest.html">latest</a></p><ul>{items}</ul>'
            f"{'' if reports else empty}</body></html>"
        )

    @app.get("/data_docs/{path:path}")
    def data_docs(path: str) -> FileResponse:
        root = config.DATA_DOCS_DIR.resolve()
        target = (root / path).resolve()
        media_type = DATA_DOCS_TYPES.get(target.suffix.lower())
        if not target.is_relative_to(root) or not media_type or not target.is_file():
            raise HTTPException(status_code=404, detail=f"no Data Docs file {path}")
        return FileResponse(target, media_type=media_type)

    @app.get("/{name}")
    def report(name: str) -> FileResponse:
        path = config.REPORTS_DIR / name
        if not REPORT_NAME.fullmatch(name) or not path.is_file():
            raise HTTPException(status_code=404, detail=f"no report named {name}")
        return FileResponse(path, media_type="text/html")

    return app
