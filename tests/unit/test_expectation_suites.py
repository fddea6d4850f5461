"""The Great Expectations suites of expectations/ are valid GX 1.x JSON."""

from __future__ import annotations

import json

from reco import config


def test_expectation_suite_file_is_valid_json() -> None:
    suite = json.loads((config.EXPECTATIONS_DIR / "ratings.json").read_text())
    assert suite["name"] == "ratings" and len(suite["expectations"]) >= 10
    assert {e["type"] for e in suite["expectations"]} >= {
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_between",
    }
