"""A simulated A/B experiment with a known truth (seeded): ``reco simulate-ab``.

Writes the two files the analysis reads (``assignments.csv``: ``user_id,arm``;
``events.csv``: ``user_id,event,ts``) and ``truth.json`` with the CTRs it drew from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reco import config
from reco.runtime import write_json


def simulate(
    out_dir: Path,
    *,
    users: int = 20_000,
    control_ctr: float = 0.05,
    lift: float = 0.10,
    impressions_per_user: float = 10.0,
    arms: tuple[str, ...] = ("control", "treatment"),
    seed: int = config.SEED,
) -> dict[str, Any]:
    """Write ``assignments.csv`` and ``events.csv`` of an experiment whose treatment arms
    have CTR ``control_ctr * (1 + lift)`` (``lift=0`` gives an A/A test)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    user_ids = np.arange(1, users + 1)
    arm_of = rng.choice(np.array(arms), size=users)
    pd.DataFrame({"user_id": user_ids, "arm": arm_of}).to_csv(
        out_dir / "assignments.csv", index=False
    )
    n_imp = rng.poisson(impressions_per_user, size=users)
    ctr = np.where(arm_of == arms[0], control_ctr, control_ctr * (1 + lift))
    n_click = rng.binomial(n_imp, ctr)
    t0 = 1_763_000_000
    imp_users = np.repeat(user_ids, n_imp)
    click_users = np.repeat(user_ids, n_click)
    events = pd.DataFrame(
        {
            "user_id": np.concatenate([imp_users, click_users]),
            "event": ["impression"] * len(imp_users) + ["click"] * len(click_users),
            "ts": t0 + rng.integers(0, 7 * 86_400, len(imp_users) + len(click_users)),
        }
    )
    events.to_csv(out_dir / "events.csv", index=False)
    truth = {
        "control_ctr": control_ctr,
        "treatment_ctr": control_ctr * (1 + lift),
        "relative_lift": lift,
        "absolute_lift": control_ctr * lift,
        "arms": list(arms),
        "users": users,
        "seed": seed,
        "impressions": int(n_imp.sum()),
        "clicks": int(n_click.sum()),
    }
    write_json(out_dir / "truth.json", truth)
    return truth
