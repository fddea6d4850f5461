"""The README and docs/ name only what exists: `make` targets, `reco` commands and their
flags, repository paths, RECO_* variables, links between the pages. The README stays a
newcomer's path: under 450 lines, with `make test` as its one test command."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from reco import steps
from reco.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 450
# Where a RECO_* variable must be read for the documentation to name it.
CODE = ["reco", "dags", "plugins", "docker", "docker-compose.yml", "Makefile"]
# The folders whose paths the pages name in code: each such path must exist.
REPO_FOLDERS = (
    "bench",
    "dags",
    "docker",
    "docs",
    "expectations",
    "plugins",
    "reco",
    "spark_jobs",
    "sql",
    "tests",
)
REPO_PATH = re.compile(r"(?<![\w./$-])((?:" + "|".join(REPO_FOLDERS) + r")/[\w./<>*-]*)")
# A path with a placeholder in it (spark_jobs/<step>.py, sql/NNN_name.sql) names no file.
PLACEHOLDER = re.compile(r"<|\*|NNN|\.\.\.")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# A command ends at a shell separator, a closing $(...) or a comment.
COMMAND_END = re.compile(r"\)|\||;|&&|\s#")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def code_spans(text: str) -> list[str]:
    """Every inline `code` span outside the fenced blocks."""
    prose = FENCE.sub("", text)
    return re.findall(r"`([^`\n]+)`", prose)


def logical_lines(block: str) -> list[str]:
    """A code block's lines, with backslash continuations joined."""
    return block.replace("\\\n", " ").splitlines()


def code_texts(text: str) -> Iterator[str]:
    """What a reader may copy as a command: each line of a code block (SQL aside) and each
    inline span."""
    for language, body in fenced_blocks(text):
        if language != "sql":
            yield from logical_lines(body)
    yield from code_spans(text)


def words(tail: str) -> list[str]:
    """The arguments of a command line, up to its end (quotes kept together)."""
    tail = COMMAND_END.split(tail, maxsplit=1)[0]
    try:
        return shlex.split(tail)
    except ValueError:  # an unbalanced quote in a span cut short: plain words
        return tail.split()


def invocations(text: str, program: str) -> Iterator[tuple[str, list[str]]]:
    """(the command as written, its arguments) of every `program ...` in the page's code."""
    pattern = re.compile(r"(?:^|(?<=[\s(\"'`]))(?:\.venv/bin/|\$\(BIN\)/)?" + program + r"\s+(.*)")
    for line in code_texts(text):
        for m in pattern.finditer(line):
            yield m.group(0).strip(), words(m.group(1))


# --- make --------------------------------------------------------------------------------
def makefile() -> str:
    return (ROOT / "Makefile").read_text(encoding="utf-8")


def make_targets() -> set[str]:
    targets: set[str] = set()
    for m in re.finditer(r"^([A-Za-z0-9][\w.-]*(?:[ \t]+[\w.-]+)*)[ \t]*:(?!=)", makefile(), re.M):
        targets.update(m.group(1).split())
    return targets


def make_commands(text: str) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """(the command, its targets, its VAR=value assignments) of every `make ...`."""
    for command, args in invocations(text, "make"):
        targets = [a for a in args if "=" not in a and not a.startswith("-")]
        assignments = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
        yield command, targets, assignments


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_make_target_and_variable_named_exists(page: Path) -> None:
    targets, text = make_targets(), page.read_text(encoding="utf-8")
    missing = sorted(
        {
            f"{t} (in `{command}`)"
            for command, named, _ in make_commands(text)
            for t in named
            if t not in targets
        }
    )
    assert not missing, f"{rel(page)} names make targets the Makefile lacks: {missing}"
    unused = sorted(
        {
            f"{name} (in `{command}`)"
            for command, _, assignments in make_commands(text)
            for name in assignments
            if not re.search(rf"\$\({name}\)|^{name}\s*\??=", makefile(), re.M)
        }
    )
    assert not unused, f"{rel(page)} sets make variables the Makefile does not read: {unused}"


# --- reco --------------------------------------------------------------------------------
def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def check_reco(args: list[str]) -> list[str]:
    """What in ``reco ARGS`` the real parser does not know (empty when all is known)."""
    parser, path, problems = build_parser(), ["reco"], []
    for arg in args:
        if arg.startswith("-") and len(arg) > 1:
            flag = arg.split("=", 1)[0]
            if flag not in parser._option_string_actions:
                problems.append(f"{' '.join(path)} has no {flag}")
            continue
        choices = subcommands(parser)
        if not choices:
            continue  # a positional argument or a flag's value
        if arg not in choices:
            if not (arg.isupper() or arg.startswith("<")):  # NAME, <step>: a placeholder
                problems.append(f"{' '.join(path)} has no subcommand {arg!r}")
            break
        path.append(arg)
        if arg == "airflow":
            break  # the rest is Airflow's own command line
        # A step's subcommand is a stub: the step parses its own arguments.
        step = steps.COMMANDS.get(arg)
        parser = step.parser() if step else choices[arg]
    return problems


def test_the_reco_checker_knows_the_nested_and_the_step_commands() -> None:
    assert check_reco(["datasets", "fetch", "ml-100k", "--mirror", "URL"]) == []
    assert check_reco(["train", "--run-dir", "x", "--folds", "3"]) == []
    assert check_reco(["run", "--no-such-flag"]) == ["reco run has no --no-such-flag"]
    assert check_reco(["datasets", "grab"]) == ["reco datasets has no subcommand 'grab'"]


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_reco_command_and_flag_named_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    problems = [
        f"`{command}`: {problem}"
        for command, args in invocations(text, "reco")
        for problem in check_reco(args)
    ]
    # `make run RUN_ARGS='...'` hands its flags to `reco run`.
    problems += [
        f"`{command}`: {problem}"
        for command, _, assignments in make_commands(text)
        if "RUN_ARGS" in assignments
        for problem in check_reco(["run", *shlex.split(assignments["RUN_ARGS"])])
    ]
    assert not problems, f"{rel(page)} names reco commands or flags that do not exist:\n" + (
        "\n".join(problems)
    )


# --- paths, variables, links -------------------------------------------------------------
def git_ignored(path: str) -> bool:
    """Whether .gitignore names the path or a folder above it (a file one creates)."""
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    parts = path.strip("/").split("/")
    return any("/".join(parts[: n + 1]) in ignored for n in range(len(parts)))


def named_paths(text: str) -> set[str]:
    found = set()
    for language, body in fenced_blocks(text):
        if language != "sql":
            found.update(REPO_PATH.findall(body))
    for span in code_spans(text):
        found.update(REPO_PATH.findall(span))
    return {p.rstrip(".,:") for p in found if not PLACEHOLDER.search(p)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_repository_path_named_exists(page: Path) -> None:
    paths = named_paths(page.read_text(encoding="utf-8"))
    missing = sorted(p for p in paths if not (ROOT / p).exists() and not git_ignored(p))
    assert not missing, f"{rel(page)} names paths that do not exist: {missing}"


def code_corpus() -> str:
    files = [
        f
        for name in CODE
        for f in ([ROOT / name] if (ROOT / name).is_file() else (ROOT / name).rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts
    ]
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_reco_variable_named_is_read_by_the_code(page: Path) -> None:
    corpus = code_corpus()
    named = set(re.findall(r"\bRECO_[A-Z0-9_]*[A-Z0-9]\b", page.read_text(encoding="utf-8")))
    unread = sorted(v for v in named if not re.search(rf"\b{v}\b", corpus))
    assert not unread, f"{rel(page)} names variables nothing in {CODE} reads: {unread}"


def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.+)$", prose, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_link_between_the_pages_resolves(page: Path) -> None:
    prose = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{rel(page)} has broken links: {broken}"


# --- the README as a path ----------------------------------------------------------------
def test_the_readme_is_short_enough_to_read_through() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines < MAX_README_LINES, (
        f"README.md has {lines} lines (under {MAX_README_LINES}): move detail to docs/"
    )


def test_the_readme_gives_make_test_as_the_one_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    pytest_lines = [
        line.strip()
        for language, body in fenced_blocks(text)
        if language != "sql"
        for line in logical_lines(body)
        if re.match(r"\s*(?:\S*/)?(?:pytest|py\.test)\b|\s*(?:\S*/)?python3? -m pytest\b", line)
    ]
    assert not pytest_lines, f"README.md shows pytest command lines: {pytest_lines}"
    test_targets = {
        t for _, targets, _ in make_commands(text) for t in targets if t.startswith("test")
    }
    assert "test" in test_targets, "README.md does not show `make test`"
    assert test_targets <= {"test", "test-deploy"}, (
        f"README.md shows other test commands than make test (and make test-deploy): "
        f"{sorted(test_targets - {'test', 'test-deploy'})}"
    )
