"""Champion / challenger gate: publish a new model only when it is worth publishing.

A challenger must beat every baseline on held-out data (rating RMSE below the
global-mean and the bias baselines; ranking nDCG@k above most-popular) and must not be
worse than the champion (the configuration behind the published recommendations, refit
on the same training split and scored on the same held-out data) by more than
``tolerance`` (relative). Otherwise the run ends green with status ``rejected``.
"""

from __future__ import annotations

from typing import Any

from reco import config

DEFAULT_TOLERANCE = config.DEFAULT_GATE_TOLERANCE  # the run parameter gate_tolerance's default


def decide(m: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Gate decision from a run's metrics: ``{"publish": bool, "reason": str, ...}``."""
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    reasons: list[str] = []
    rmse = m["rating"]["rmse"]
    ndcg = m["ranking"]["ndcg"]
    base = m["baselines"]
    for name in ("global_mean", "bias"):
        if rmse >= base[name]["rmse"]:
            reasons.append(
                f"rating RMSE {rmse:.4f} does not beat the {name} baseline {base[name]['rmse']:.4f}"
            )
    if ndcg <= base["most_popular"]["ndcg"]:
        reasons.append(
            f"nDCG@{m['ranking']['k']} {ndcg:.4f} does not beat most-popular "
            f"{base['most_popular']['ndcg']:.4f}"
        )
    champ = m.get("champion")
    if champ:
        limit_rmse = champ["rating"]["rmse"] * (1 + tolerance)
        limit_ndcg = champ["ranking"]["ndcg"] * (1 - tolerance)
        if rmse > limit_rmse:
            reasons.append(
                f"rating RMSE {rmse:.4f} is worse than the champion's "
                f"{champ['rating']['rmse']:.4f} beyond the {tolerance:.0%} tolerance"
            )
        if ndcg < limit_ndcg:
            reasons.append(
                f"nDCG {ndcg:.4f} is worse than the champion's {champ['ranking']['ndcg']:.4f} "
                f"beyond the {tolerance:.0%} tolerance"
            )
    return {
        "publish": not reasons,
        "reason": "; ".join(reasons)
        or ("beats the baselines" + (" and the champion" if champ else "")),
        "tolerance": tolerance,
        "champion_version": (champ or {}).get("model_version"),
    }
