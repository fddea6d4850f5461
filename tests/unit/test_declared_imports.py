"""Every third-party module the project imports comes from a distribution it declares, with
an exact pin: the library, DAGs, plugins and Spark jobs from the runtime dependencies, the
tests and benchmarks from those or the ``dev`` extras. A module that only arrives as some
other package's dependency can vanish or change with that package's next release."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"reco", "spark_jobs", "dags", "plugins", "bench", "tests"}
RUNTIME_CODE = ("reco", "dags", "plugins", "spark_jobs")
TEST_CODE = ("tests", "bench")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extra: str | None = None) -> dict[str, str]:
    """Declared distribution -> its version specifier, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["optional-dependencies"][extra] if extra else project["dependencies"]
    found = {}
    for line in lines:
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", line)
        assert m, line
        found[normalise(m.group(1))] = m.group(3)
    return found


def imported_modules(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Top-level module -> the files importing it (absolute imports only)."""
    seen: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        seen.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return seen


def undeclared(folders: tuple[str, ...], declared: set[str]) -> list[str]:
    owners = metadata.packages_distributions()
    problems = []
    for module, files in sorted(imported_modules(folders).items()):
        dists = {normalise(d) for d in owners.get(module, [])}
        if not dists:
            problems.append(f"{module}: not installed (imported by {sorted(files)[0]})")
        elif not dists & declared:
            problems.append(
                f"{module} (from {', '.join(sorted(dists))}) is imported by "
                f"{sorted(files)[0]} but not declared in pyproject.toml"
            )
    return problems


def test_runtime_code_imports_only_declared_runtime_dependencies() -> None:
    assert undeclared(RUNTIME_CODE, set(requirements())) == []


def test_tests_and_benchmarks_import_only_declared_dependencies() -> None:
    assert undeclared(TEST_CODE, set(requirements()) | set(requirements("dev"))) == []


@pytest.mark.parametrize("extra", [None, "dev"])
def test_every_declared_dependency_is_pinned_exactly(extra: str | None) -> None:
    loose = {n: spec for n, spec in requirements(extra).items() if not spec.startswith("==")}
    assert loose == {}
