"""The A/B page and section (reco.experiments.page): rows of reco.ab_test_results in, the
templates' HTML out, every value escaped."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from reco import config
from reco.experiments import page
from reco.experiments.stats import ArmCounts, BusinessInputs, analyse, business_impact
from reco.experiments.store import RESULT_COLUMNS
from tests.support.html_tables import Tables

EXPERIMENT = "reco<vs>popular"


def fetched_rows(experiment: str = EXPERIMENT) -> list[dict[str, Any]]:
    """What reco.experiments.store.fetch_results returns after an analysis."""
    rows = analyse(
        [ArmCounts("control", 4000, 40000, 2000), ArmCounts("treatment", 4000, 40000, 2300)],
        "control",
    )
    t = rows[1]
    impact = business_impact(
        t["rel_lift"],
        BusinessInputs(1_000_000, 50.0, 0.8, 0.1),
        (t["rel_lift_low"], t["rel_lift_high"]),
    )
    clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
    return [
        {
            **{c: clean(r.get(c)) for c in RESULT_COLUMNS},
            "experiment": experiment,
            "run_id": "ab-run",
            "impact": None if r["is_control"] else impact,
            "rejected": {"invalid_event": 3, "unassigned_user": 1},
        }
        for r in rows
    ]


@pytest.fixture(scope="module")
def html() -> str:
    return page.render_page(fetched_rows(), EXPERIMENT)


def test_the_page_shows_each_arm_with_its_interval_lift_and_p_value(html: str) -> None:
    parsed = Tables()
    parsed.feed(html)
    arms, inputs = parsed.tables
    assert arms[0] == [
        "arm",
        "users",
        "impressions",
        "clicks",
        "CTR [95% CI]",
        "abs. lift",
        "rel. lift [95% CI]",
        "p-value",
        "MDE (rel.)",
    ]
    control, treatment = arms[1], arms[2]
    assert control[:4] == ["control (control)", "4,000", "40,000", "2,000"]
    assert control[4].startswith("5.00% [") and control[5:] == ["", "", "", ""]
    assert treatment[:4] == ["treatment", "4,000", "40,000", "2,300"]
    assert treatment[4].startswith("5.75% [")
    assert treatment[5] == "0.750%"
    assert treatment[6].startswith("15.0% [")
    assert float(treatment[7]) < 0.05 and treatment[8].endswith("%")
    assert inputs[0] == ["input", "value"]
    assert ["active_customers", "1,000,000"] in inputs
    assert ["annual_revenue_per_customer", "50.0"] in inputs


def test_the_page_states_the_business_impact_and_the_rows_not_used(html: str) -> None:
    assert "Business impact of treatment" in html
    assert "extra retained customers" in html and "(95% interval " in html
    assert "Rows not used, by reason: invalid_event 3, unassigned_user 1" in html
    assert 'alt="A/B CTR intervals" src="data:image/png;base64,' in html


def test_every_value_is_escaped(html: str) -> None:
    assert "reco<vs>popular" not in html
    assert "<title>A/B test reco&lt;vs&gt;popular</title>" in html
    assert "A/B test: reco&lt;vs&gt;popular" in html
    parsed = Tables()
    parsed.feed(html)
    assert "vs" not in parsed.tags


def test_no_rows_no_section() -> None:
    assert page.section_context([]) is None
    html = page.render_page([], "empty")
    assert "No results for this experiment" in html and 'id="ab-test"' not in html


def test_an_arm_without_impressions_has_no_ctr_and_no_point_on_the_chart() -> None:
    rows = fetched_rows()
    rows.append({**rows[1], "arm": "dark", "impressions": 0, "clicks": 0, "impact": None})
    for key in ("ctr", "ctr_low", "ctr_high", "abs_lift", "rel_lift", "p_value", "mde_rel"):
        rows[-1][key] = None
    context = page.section_context(rows)
    assert context is not None and context["chart"]
    assert [i["arm"] for i in context["impacts"]] == ["treatment"]
    parsed = Tables()
    parsed.feed(page.render_page(rows, "three-arms"))
    assert parsed.tables[0][3][0] == "dark" and parsed.tables[0][3][4:7] == ["", "", ""]


def test_write_page_puts_it_in_the_reports_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path / "reports")
    path = page.write_page(fetched_rows("exp-1"), "exp-1")
    assert path == tmp_path / "reports" / "ab_exp-1.html"
    assert "A/B test: exp-1" in path.read_text(encoding="utf-8")
