"""The run report's model section, as rendered HTML: which family and parameters were
published and why, and the CV as one compact table."""

from __future__ import annotations

from reco.reporting import report
from tests.support.html_tables import Tables

METRICS = {
    "cv_folds": 3,
    "n_holdout": 200,
    "holdout_fraction": 0.2,
    "model_family": "ease",
    "rating": {"rmse": 0.91, "mae": 0.72, "mpe": -5.0, "params": {"rank": 50}, "cv_results": []},
    "ranking": {
        "k": 10,
        "ndcg": 0.45,
        "precision": 0.38,
        "recall": 0.2,
        "map": 0.1,
        "catalogue_coverage": 0.3,
        "user_coverage": 1.0,
        "family": "ease",
        "params": {"family": "ease", "lambda": 300.0},
        "why": "ease lambda=300 won the 3-fold CV of 2 candidates: mean nDCG@10 0.3100",
        "cv_results": [
            {
                "family": "als",
                "rank": 32,
                "regParam": 0.2,
                "alpha": 0.5,
                "maxIter": 8,
                "mean_ndcg": 0.3050,
                "std_ndcg": 0.0021,
                "mean_precision": 0.25,
                "fold_ndcg": [0.30, 0.31, 0.305],
                "fold_precision": [0.25, 0.25, 0.25],
            },
            {
                "family": "ease",
                "lambda": 300.0,
                "mean_ndcg": 0.3100,
                "std_ndcg": 0.0010,
                "mean_precision": 0.26,
                "fold_ndcg": [0.309, 0.311, 0.310],
                "fold_precision": [0.26, 0.26, 0.26],
            },
        ],
    },
    "baselines": {
        "global_mean": {"rmse": 1.1, "mae": 0.9, "mpe": -10.0},
        "bias": {"rmse": 0.95, "mae": 0.75, "mpe": -6.0},
        "most_popular": {
            "ndcg": 0.2,
            "precision": 0.18,
            "recall": 0.1,
            "map": 0.05,
            "catalogue_coverage": 0.05,
            "user_coverage": 1.0,
        },
    },
    "champion": None,
    "gate": {"publish": True, "reason": "beats the baselines"},
}
MANIFEST = {
    "source": {"ratings_path": "/data/u.data", "format": "ml-100k"},
    "n_ratings": 1000,
    "n_users": 50,
    "n_items": 80,
}


def test_model_section_names_the_published_family_and_the_cv_table() -> None:
    page = report.render_html("run-1", MANIFEST, METRICS, [])
    assert "Published top-N model:" in page
    assert "ease lambda=300 won the 3-fold CV of 2 candidates" in page
    assert "fitted once at fixed parameters" in page
    parser = Tables()
    parser.feed(page)
    [cv] = [
        t for t in parser.tables if t and t[0][:3] == ["family", "parameters", "mean nDCG@10 ± sd"]
    ]
    # Best first; the published candidate is starred; mean ± sd and the folds in one cell.
    assert cv[1][:4] == ["\u2605 ease", "lambda=300", "0.3100 ± 0.0010", "0.2600"]
    assert cv[2][:2] == ["als", "rank=32, regParam=0.2, alpha=0.5, maxIter=8"]
    assert cv[2][4] == "0.3000 / 0.3100 / 0.3050"
    assert len(cv) == 3
