"""The A/B results as HTML: the CTR chart, the section the run report shows and the
experiment's own page ``var/reports/ab_<experiment>.html``.

Both come from the templates ``ab_section.html.j2`` and ``ab_page.html.j2`` in
``reco/templates/``, rendered (autoescaped) by :mod:`reco.pages`;
this module only turns the rows of ``reco.ab_test_results`` into their context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reco import config, pages


def lift_chart_png(rows: list[dict[str, Any]]) -> str:
    """CTR per arm with its 95% interval, base64 PNG ('' when no arm has a CTR)."""
    rows = [r for r in rows if r.get("ctr") is not None]
    if not rows:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.5 * len(rows)))
    for y, r in enumerate(rows):
        ax.errorbar(
            [100 * r["ctr"]],
            [y],
            xerr=[[100 * (r["ctr"] - r["ctr_low"])], [100 * (r["ctr_high"] - r["ctr"])]],
            fmt="o",
            color="tab:gray" if r["is_control"] else "tab:blue",
            capsize=4,
        )
    ax.set_yticks(range(len(rows)), [r["arm"] for r in rows])
    ax.set_xlabel("CTR, % (95% interval)")
    return pages.png_base64(fig)


def section_context(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What ``ab_section.html.j2`` shows of one experiment's rows (None without rows):
    the arms, the chart, the rows not used by reason, and each treatment's impact."""
    if not rows:
        return None
    impacts = [
        {
            "arm": r["arm"],
            "customers": r["impact"]["extra_retained_customers"],
            "revenue": r["impact"]["extra_annual_revenue"],
            "revenue_ci": r["impact"].get("extra_annual_revenue_95ci"),
            "relative_ctr_lift": r["impact"]["relative_ctr_lift"],
            "inputs": r["impact"]["inputs"],
        }
        for r in rows
        if r.get("impact")
    ]
    return {
        "experiment": rows[0]["experiment"],
        "chart": lift_chart_png(rows),
        "arms": rows,
        "rejected": rows[0].get("rejected") or {},
        "impacts": impacts,
    }


def render_page(rows: list[dict[str, Any]], experiment: str) -> str:
    """The experiment's standalone page."""
    return pages.render("ab_page.html.j2", experiment=experiment, ab=section_context(rows))


def write_page(rows: list[dict[str, Any]], experiment: str) -> Path:
    """The experiment's page in the reports folder: ``ab_<experiment>.html``."""
    config.REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    path = config.REPORTS_DIR / f"ab_{experiment}.html"
    path.write_text(render_page(rows, experiment), encoding="utf-8")
    return path
