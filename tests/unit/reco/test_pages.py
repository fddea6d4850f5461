"""The one Jinja2 environment of the pages (reco.pages): autoescaped, strict,
with the number filters the templates use."""

from __future__ import annotations

import jinja2
import pytest

from reco import pages


def test_one_environment_autoescaped_and_strict() -> None:
    env = pages.template_env()
    assert env is pages.template_env()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()


def test_every_template_compiles() -> None:
    names = sorted(p.name for p in pages.TEMPLATES_DIR.glob("*.j2"))
    assert {
        "run_report.html.j2",
        "performance.html.j2",
        "ab_section.html.j2",
        "ab_page.html.j2",
        "reports_index.html.j2",
    } <= set(names)
    for name in names:
        pages.template_env().get_template(name)


def test_number_filters() -> None:
    assert pages.num(0.123456) == "0.1235" and pages.num(None) == ""
    assert pages.count(1234567.8) == "1,234,567" and pages.count(None) == ""
    assert pages.mb(2_500_000) == "2.50"
    assert pages.pct(0.05123) == "5.12%" and pages.pct(0.05123, 1) == "5.1%"
    assert pages.pct(None) == ""
    assert pages.grouped(1_000_000) == "1,000,000" and pages.grouped(50.0) == "50.0"
    assert pages.grouped(1234.56, 0) == "1,235" and pages.grouped(None) == ""
