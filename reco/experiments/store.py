"""An experiment's analysed rows in ``reco.ab_test_results`` (SQL in
``sql/ab_test_results.sql``): written per experiment in one transaction, read back for the
pages and ``reco ab-test``."""

from __future__ import annotations

import json
import math
from typing import Any

from reco.publishing import warehouse

RESULT_COLUMNS = (
    "arm", "is_control", "users", "impressions", "clicks", "ctr", "ctr_low", "ctr_high",
    "abs_lift", "abs_lift_low", "abs_lift_high", "rel_lift", "rel_lift_low", "rel_lift_high",
    "p_value", "significant", "mde_abs", "mde_rel",
)  # fmt: skip


def _clean(v: Any) -> Any:
    """NaN and infinities as NULL."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_results(
    url: str,
    experiment: str,
    rows: list[dict[str, Any]],
    impact: dict[str, Any] | None,
    rejected: dict[str, int],
    run_id: str,
) -> int:
    """Replace the experiment's rows in ``reco.ab_test_results`` in one transaction."""
    sql = warehouse.named_statements("ab_test_results.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["lock"], {"experiment": experiment})
        cur.execute(sql["delete_experiment"], {"experiment": experiment})
        for row in rows:
            params = {c: _clean(row.get(c)) for c in RESULT_COLUMNS}
            params.update(
                experiment=experiment,
                run_id=run_id,
                impact=json.dumps(impact if not row["is_control"] else None),
                rejected=json.dumps(rejected),
            )
            cur.execute(sql["insert"], params)
    return len(rows)


def fetch_results(url: str, experiment: str | None = None) -> list[dict[str, Any]]:
    """Rows of one experiment (default: the most recently analysed one)."""
    sql = warehouse.named_statements("ab_test_results.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql["for_experiment"], {"experiment": experiment})
        return warehouse.fetch_dicts(cur)
