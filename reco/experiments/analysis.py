"""The ``analyse`` task of the ``ab_test_analysis`` DAG: the per-arm counts of the Spark
aggregation (``reco.experiments.aggregate``) through the statistics (``stats``) into
``reco.ab_test_results`` (``store``) and the experiment's page (``page``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reco.experiments import page, stats, store


def run_analysis(
    url: str,
    counts_path: Path,
    experiment: str,
    control: str,
    inputs: stats.BusinessInputs,
    run_id: str,
) -> dict[str, Any]:
    """Statistics on the aggregated counts -> ``reco.ab_test_results`` + HTML page."""
    counts = json.loads(counts_path.read_text())
    arms = [stats.ArmCounts(**a) for a in counts["arms"]]
    rows = stats.analyse(arms, control)
    treatments = [r for r in rows if not r["is_control"]]
    impact = None
    if len(treatments) == 1:
        t = treatments[0]
        impact = stats.business_impact(
            t["rel_lift"], inputs, (t["rel_lift_low"], t["rel_lift_high"])
        )
    store.write_results(url, experiment, rows, impact, counts["rejected"], run_id)
    # The page shows what the warehouse holds.
    written = page.write_page(store.fetch_results(url, experiment), experiment)
    return {
        "experiment": experiment,
        "arms": len(rows),
        "rejected": counts["rejected"],
        "report": str(written),
        **{
            f"{t['arm']}_rel_lift": round(t["rel_lift"], 4)
            for t in treatments
            if t.get("rel_lift") is not None
        },
    }
