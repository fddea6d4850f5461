"""The Great Expectations suites of expectations/ are GX 1.x suites: each file loads as a
``great_expectations.ExpectationSuite`` whose expectations are GX's own classes, with the
file's arguments. (Each suite passing a good batch and failing a broken one, through the
project's validation code: tests/integration/test_validate.py.)"""

from __future__ import annotations

import json
import os

import pytest

from reco import config

SUITES = ("ratings", "items", "feedback", "recommendations")


def test_expectations_folder_holds_the_four_suites() -> None:
    assert sorted(p.stem for p in config.EXPECTATIONS_DIR.glob("*.json")) == sorted(SUITES)


@pytest.mark.parametrize("name", SUITES)
def test_suite_file_loads_as_a_gx_expectation_suite(name: str) -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.expectations.expectation import Expectation

    definition = json.loads((config.EXPECTATIONS_DIR / f"{name}.json").read_text())
    assert definition["name"] == name and definition["expectations"]
    suite = gx.ExpectationSuite(
        name=definition["name"],
        expectations=definition["expectations"],
        meta=definition.get("meta", {}),
    )
    assert isinstance(suite, gx.ExpectationSuite) and suite.name == name
    assert len(suite.expectations) == len(definition["expectations"])
    for expectation, raw in zip(suite.expectations, definition["expectations"], strict=True):
        assert isinstance(expectation, Expectation)
        config_ = expectation.configuration
        assert config_.type == raw["type"]
        # Every argument of the file reached GX unchanged ($PARAMETER placeholders too).
        assert {k: config_.kwargs[k] for k in raw["kwargs"]} == raw["kwargs"]
    if name == "ratings":
        assert {e["type"] for e in definition["expectations"]} >= {
            "expect_compound_columns_to_be_unique",
            "expect_column_values_to_be_between",
        }
