"""Pinned dependencies that must agree with each other."""

from __future__ import annotations


def test_pyspark_and_pyspark_client_versions_match() -> None:
    import pyspark

    assert pyspark.__version__ == "4.2.0"
