"""The reports folder, served inside the Airflow api-server (``plugins/reco_reports.py``).

``/reco-reports/`` lists the runs (newest first, a line each: :mod:`reco.reporting.index`),
``/reco-reports/<run>.html`` is one run's report and ``/reco-reports/latest.html`` the
newest;
``/reco-reports/data_docs/<run>/index.html`` a run's Great Expectations Data Docs (and the
files under ``data_docs/`` they load, e.g. the vendored ``_static/``). Every page is behind
Airflow's login: the same JWT as the REST API (``Authorization: Bearer``) or the UI's
session cookie, checked by Airflow's own ``get_user``, which the plugin passes in as
``login`` (this module does not import Airflow). The index is the template
``reports_index.html.j2``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reco import config, pages
from reco.reporting import index

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


def index_page(reports_dir: Path) -> str:
    """The index of the reports folder (``/reco-reports/``): a line per run, newest first."""
    runs, others = index.entries(reports_dir)
    return pages.render("reports_index.html.j2", runs=runs, others=others)


def build_app(login: Callable[..., Any]) -> Any:
    """The reports app; ``login`` is the dependency every request must pass (Airflow's
    ``get_user``)."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse

    app = FastAPI(title="Recommendation reports", dependencies=[Depends(login)])

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return index_page(config.REPORTS_DIR)

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
