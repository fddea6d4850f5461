"""The layout a newcomer reads: library by role, thin Spark jobs, no import cycles, and a
README tree that matches the folders."""

from __future__ import annotations

import re
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Folders the README's tree leaves out: local state, caches and build output.
UNLISTED = {"var", "__pycache__", "reco_pipeline.egg-info", "node_modules"}
SPARK_JOB_MAX_LINES = 60


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Every import counts, also those inside functions: a cycle dodged by a late import is
    # still a cycle.
    return grimp.build_graph("reco", "spark_jobs", include_external_packages=True, cache_dir=None)


def test_no_module_of_the_library_is_in_an_import_cycle(graph: grimp.ImportGraph) -> None:
    cycles = []
    for module in sorted(m for m in graph.modules if m.startswith("reco")):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("reco") and graph.chain_exists(imported, module):
                cycles.append(graph.find_shortest_chain(imported, module) + (imported,))
    assert not cycles, "import cycles (each ends where it began):\n" + "\n".join(
        " -> ".join(c) for c in cycles
    )


# The library's floors, from the ground up: a package imports only packages of floors below
# its own (instrumentation any step may use is low; what reports on the steps is above them).
LAYERS: list[tuple[str, ...]] = [
    ("reco.config", "reco.errors", "reco.interrupts"),  # settings, errors, Ctrl-C
    ("reco.params", "reco.runs", "reco.spark", "reco.pages"),  # vocabulary of a run
    ("reco.instrumentation",),  # timing and Spark event logs, for every step
    ("reco.runtime",),  # how a step runs and fails
    ("reco.steps",),  # the registry of steps: names their code, imported when run
    ("reco.publishing",),  # the warehouse
    ("reco.data", "reco.validation", "reco.experiments", "reco.maintenance"),  # steps
    ("reco.modeling",),  # the model steps, on data the steps above read and checked
    ("reco.reporting", "reco.console"),  # the report on the steps; the terminal's view
    ("reco.orchestration",),  # Airflow
    ("reco.cli",),  # the `reco` command
]


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def package_imports(graph: grimp.ImportGraph) -> set[tuple[str, str, str, str]]:
    """(importing package, imported package, importing module, imported module) for every
    import between two packages of ``reco``."""
    return {
        (package_of(m), package_of(i), m, i)
        for m in graph.modules
        if m.startswith("reco.")
        for i in graph.find_modules_directly_imported_by(m)
        if i.startswith("reco.") and package_of(i) != package_of(m)
    }


def test_every_package_has_a_floor_and_imports_only_floors_below(
    graph: grimp.ImportGraph,
) -> None:
    floor = {pkg: n for n, layer in enumerate(LAYERS) for pkg in layer}
    packages = {package_of(m) for m in graph.modules if m.startswith("reco.")}
    assert not packages - set(floor), f"packages without a floor in LAYERS: {packages - set(floor)}"
    upward = sorted(
        f"{m} -> {i} (floor {floor[a] + 1} imports floor {floor[b] + 1})"
        for a, b, m, i in package_imports(graph)
        if floor[b] >= floor[a]
    )
    assert not upward, "imports that run up or sideways between floors:\n" + "\n".join(upward)


def test_no_package_of_the_library_is_in_an_import_cycle(graph: grimp.ImportGraph) -> None:
    edges: dict[str, set[str]] = {}
    for a, b, _, _ in package_imports(graph):
        edges.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(a for a in edges if reaches(a, a, {a}))
    assert not cycles, f"packages in an import cycle: {cycles}"


def test_only_orchestration_imports_airflow(graph: grimp.ImportGraph) -> None:
    importers = {
        m for m in graph.find_modules_that_directly_import("airflow") if m.startswith("reco")
    }
    assert importers, "the orchestration modules should import airflow"
    outside = sorted(m for m in importers if not m.startswith("reco.orchestration"))
    assert not outside, f"only reco.orchestration may import airflow; also: {outside}"


def test_the_library_does_not_import_the_spark_job_entry_points(
    graph: grimp.ImportGraph,
) -> None:
    # spark_jobs/ runs the library; the library names a job only as a string to import.
    users = {m for m in graph.modules if m.startswith("reco")}
    offenders = sorted(
        (u, j)
        for u in users
        for j in graph.find_modules_directly_imported_by(u)
        if j.startswith("spark_jobs")
    )
    assert not offenders, offenders


def test_spark_jobs_are_thin_entry_points() -> None:
    jobs = sorted((ROOT / "spark_jobs").glob("*.py"))
    assert {p.stem for p in jobs} >= {"ingest", "validate", "train", "recommend", "ab_aggregate"}
    long = {p.name: n for p in jobs if (n := len(p.read_text().splitlines())) > 60}
    assert not long, f"spark_jobs/ modules over {SPARK_JOB_MAX_LINES} lines: {long}"


def test_no_script_or_test_edits_sys_path() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("reco", "spark_jobs", "dags", "plugins", "bench", "tests")
        for p in (ROOT / folder).rglob("*.py")
        if p != Path(__file__) and re.search(r"sys\.path\.(insert|append)", p.read_text())
    ]
    assert not offenders, offenders


def readme_tree() -> set[str]:
    """The folders of the README's Layout tree, as paths (``reco/data``): a folder is a
    name ending in ``/``, nested by two spaces of indentation."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Layout\n+```\n(.*?)\n```", text, re.M | re.S)
    assert block, "README.md has no Layout section with a code block"
    stack: list[str] = []
    folders = set()
    for line in block.group(1).splitlines():
        m = re.match(r"^( *)([\w.-]+)/(\s|$)", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack = stack[:depth] + [m.group(2)]
        folders.add("/".join(stack))
    return folders


def test_the_readme_layout_tree_matches_the_folders() -> None:
    listed = readme_tree()
    missing_on_disk = sorted(f for f in listed if not (ROOT / f).is_dir())
    assert not missing_on_disk, f"README lists folders that do not exist: {missing_on_disk}"
    # Every folder of the library and of the top level is in the tree.
    actual = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in UNLISTED
    } | {
        str(p.relative_to(ROOT))
        for p in (ROOT / "reco").rglob("*")
        if p.is_dir() and not (set(p.relative_to(ROOT).parts) & UNLISTED)
    }
    assert not sorted(actual - listed), f"folders missing from the README tree: {actual - listed}"
