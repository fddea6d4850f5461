"""The one Jinja2 environment of every HTML page this project writes or serves.

The run report (``run_report.html.j2`` with ``performance.html.j2``), the A/B page and
section (``ab_page.html.j2``, ``ab_section.html.j2``) and the index of the reports folder
(``reports_index.html.j2``) are templates in ``reco/templates/``, rendered here:
autoescaped (a value is text unless it is ``Markup``), strict about undefined names. Charts
go into the pages as base64 PNG (:func:`png_base64`).
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def num(v: float | None, digits: int = 4) -> str:
    """A metric with fixed decimals; empty when there is none."""
    return "" if v is None else f"{float(v):.{digits}f}"


def mb(n: int | float | None) -> str:
    """Bytes as megabytes, two decimals."""
    return "" if n is None else f"{n / 1e6:.2f}"


def count(n: int | float | None) -> str:
    """A count with thousands separators; empty when there is none."""
    return "" if n is None else f"{int(n):,}"


def pct(v: float | None, digits: int = 2) -> str:
    """A share as a percentage (``0.0512`` -> ``5.12%``); empty when there is none."""
    return "" if v is None else f"{100 * v:.{digits}f}%"


def grouped(v: float | None, digits: int | None = None) -> str:
    """A number with thousands separators, as given or rounded to ``digits`` decimals."""
    if v is None:
        return ""
    return f"{v:,}" if digits is None else f"{v:,.{digits}f}"


@lru_cache(maxsize=1)
def template_env() -> jinja2.Environment:
    """The Jinja2 environment of the page templates: autoescaped, strict about names."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, mb=mb, count=count, pct=pct, grouped=grouped)
    return env


def render(template: str, **context: Any) -> str:
    """A page (or section) from its template in ``templates/``."""
    return template_env().get_template(template).render(**context)


def png_base64(fig: Any) -> str:
    """A matplotlib figure as base64 PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()
