"""Pinned dependencies that must agree with each other.

The Spark provider depends on ``pyspark-client``, which installs into the same ``pyspark/``
package directory as ``pyspark``: with different versions the result is a mixed install
(Python files of one, Spark's jars of the other) that reports only one of the two."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from reco import config


def pinned(name: str) -> str | None:
    """The ``==`` pin of ``name`` in pyproject.toml's dependencies (None when absent)."""
    project = tomllib.loads((config.PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)", requirement.strip())
        if m and re.sub(r"[-_.]+", "-", m.group(1)).lower() == name:
            return m.group(2)
    return None


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_pyspark_and_pyspark_client_versions_match() -> None:
    import pyspark

    spark_pin = pinned("pyspark")
    assert spark_pin, "pyproject.toml must pin pyspark with =="
    assert installed("pyspark") == spark_pin
    client = installed("pyspark-client")
    if client is not None or pinned("pyspark-client") is not None:
        # Both distributions write pyspark/: one version, pinned the same in both places.
        assert pinned("pyspark-client") == spark_pin, "pin pyspark-client to pyspark's version"
        assert client == spark_pin, f"pyspark {installed('pyspark')} beside pyspark-client {client}"
    # What the package directory holds is that one version: its Python side and its jars.
    assert pyspark.__version__ == spark_pin
    jars = Path(pyspark.__file__).parent / "jars"
    [core] = [p.name for p in jars.glob("spark-core_*.jar")]
    assert re.fullmatch(rf"spark-core_[0-9.]+-{re.escape(spark_pin)}\.jar", core), core
