"""What a training run fits, decided before any Spark work: the train step's parameters
(parsed and checked from its typed step arguments), the grids and model families, and the
plan of rating-model points and ranking candidates. ``prepare`` runs :func:`check` on a
run conf, so bad parameters fail in a second, and the terminal's counter reads the plan.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reco import config
from reco.errors import PipelineError
from reco.modeling import ranking
from reco.modeling.ranking import Candidate

if TYPE_CHECKING:
    from reco.steps import StepArgs

STAGE = "train"  # the train step: its timings, errors and entry in reco/steps.py
GRID_KEYS = ("rank", "regParam", "residualRegParam", "maxIter")
RANKING_GRID_KEYS = ranking.KEYS["als"]
EASE_GRID_KEYS = ranking.KEYS["ease"]


def parse_grid(
    text: str | None,
    default: dict[str, list[float | int]] | None = None,
    keys: tuple[str, ...] = GRID_KEYS,
    flag: str = "--grid",
) -> dict[str, list[float | int]]:
    """A JSON object of parameter lists; missing keys take the default grid's values."""
    grid = dict(default or config.DEFAULT_GRID)
    if not text:
        return grid
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{flag} is not valid JSON ({exc.msg}): {text!r}") from exc
    if not isinstance(given, dict) or set(given) - set(keys):
        raise PipelineError(f"{flag} must be a JSON object with keys among {keys}: {text!r}")
    for key, values in given.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise PipelineError(f"{flag} {key} has no values")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise PipelineError(f"{flag} {key} must be numbers, got {values!r}")
        grid[key] = values
    return grid


def parse_families(text: str | None) -> tuple[str, ...]:
    """``"als,ease"`` -> ``("als", "ease")``; empty = the default families."""
    if not text or not str(text).strip():
        return config.DEFAULT_FAMILIES
    names = tuple(dict.fromkeys(n.strip().lower() for n in str(text).split(",") if n.strip()))
    unknown = [n for n in names if n not in config.MODEL_FAMILIES]
    if unknown or not names:
        raise PipelineError(
            f"--families {text!r}: unknown model family {unknown}; choose among "
            f"{', '.join(config.MODEL_FAMILIES)} (comma-separated)"
        )
    return names


def grid_points(grid: dict[str, list[float | int]], keys: tuple[str, ...]) -> list[dict]:
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def ranking_candidates(params: config.TrainParams) -> list[Candidate]:
    """Every ranking candidate the CV scores (ALS first: it wins ties, it is the default)."""
    grids = {"als": params.ranking_grid, "ease": params.ease_grid}
    out: list[Candidate] = []
    for family in params.families:
        out += ranking.grid_candidates(family, grids[family])
    return out


@dataclass(frozen=True)
class Plan:
    """What this run fits, decided before any Spark work so bad parameters fail at once."""

    rating_points: list[dict]
    candidates: list[Candidate]

    @property
    def fixed(self) -> bool:
        return len(self.candidates) == 1


def plan(params: config.TrainParams) -> Plan:
    rating_grid = params.rating_grid()
    missing = [k for k in GRID_KEYS if k != "residualRegParam" and not rating_grid.get(k)]
    if missing:
        raise PipelineError(f"the rating grid has no values for {missing}")
    rating_points = grid_points(rating_grid, tuple(k for k in GRID_KEYS if k in rating_grid))
    candidates = ranking_candidates(params)
    if params.folds == 0:
        # Fixed parameters: the first family listed, which must have one point.
        first = [c for c in candidates if c.family == params.families[0]]
        if len(first) > 1 or len(rating_points) > 1:
            raise PipelineError(
                f"folds 0 (fixed parameters) needs one value per grid key, got "
                f"{len(rating_points)} rating and {len(first)} ranking candidates: give "
                "single values or folds >= 2"
            )
        candidates = first
    if len(rating_points) > 1 and not params.rating_cv:
        raise PipelineError(
            f"the rating grid has {len(rating_points)} candidates but its CV is off: pass "
            "rating_cv (reco run --rating-cv) to search it, or give one value per key"
        )
    return Plan(rating_points, candidates)


def params_from_args(args: StepArgs) -> config.TrainParams:
    """The step's typed parameters (checked by type and bounds by the schema's parse,
    reco/params.py) as the train job's; what their schema cannot say is checked here."""
    if args.folds < 2 and args.folds != 0:
        raise PipelineError(
            f"--folds must be at least 2 (or 0 for fixed parameters), got {args.folds}"
        )
    if not 0.0 < args.holdout < 0.9:
        raise PipelineError(f"--holdout must be between 0 and 0.9, got {args.holdout}")
    rating_cv = bool(args.rating_cv)
    default_rating = (
        config.DEFAULT_GRID
        if rating_cv
        else {k: [v] for k, v in config.DEFAULT_RATING_PARAMS.items()}
    )
    return config.TrainParams(
        folds=args.folds,
        holdout_fraction=args.holdout,
        seed=args.seed,
        grid=parse_grid(args.grid, default_rating),
        rating_cv=rating_cv,
        ranking_grid=parse_grid(
            args.ranking_grid,
            config.DEFAULT_RANKING_GRID,
            RANKING_GRID_KEYS,
            "ranking_grid (--ranking-grid)",
        ),
        ease_grid=parse_grid(
            args.ease_grid, config.DEFAULT_EASE_GRID, EASE_GRID_KEYS, "ease_grid (--ease-grid)"
        ),
        families=parse_families(args.families),
        top_k=args.top_n,
        gate_tolerance=args.gate_tolerance,
    )


def check(args: StepArgs) -> config.TrainParams:
    """What train refuses before any Spark work: its parameters, and its plan (several
    grid values without their CV, ...); ``prepare`` runs it on the run conf."""
    params = params_from_args(args)
    plan(params)
    return params
