"""Shared entry-point plumbing for the pipeline steps.

Each step is a function ``step(args) -> dict``; :func:`execute` runs it timed for a command
line (``spark-submit spark_jobs/train.py --run-dir ...`` and ``reco train --run-dir ...``,
both through ``reco/steps.py``). A ``PipelineError`` becomes one clear line on stderr, an
``error.json`` in the run folder, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reco import interrupts
from reco.errors import PipelineError
from reco.instrumentation.timing import timer
from reco.runs import RunFolder

StepFunction = Callable[[argparse.Namespace], dict[str, Any]]


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise PipelineError(
            f"{path} is missing: the step that writes it has not run for this run folder "
            "(run the earlier pipeline steps first)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def model_family(run_dir: Path) -> str:
    """The family of the run's trained ranking model (``als`` until one is trained)."""
    meta = RunFolder(run_dir).model_meta
    if meta.exists():
        return str(json.loads(meta.read_text(encoding="utf-8")).get("family", "als"))
    metrics = RunFolder(run_dir).metrics
    if metrics.exists():
        return str(json.loads(metrics.read_text(encoding="utf-8")).get("model_family", "als"))
    return "als"


def run_identity(run_dir: Path) -> tuple[str, datetime]:
    """Model version (``<family>-<YYYYMMDDTHHMMSSZ>-<hash>``) and generation time, from
    ``run.json`` (written by the DAG) so a re-run of the same run produces identical rows;
    else derived from the folder name and the clock."""
    family = model_family(run_dir)
    path = RunFolder(run_dir).run_info
    if path.exists():
        info = read_json(path)
        stamp = info.get("version_stamp") or str(info["model_version"]).split("-", 1)[-1]
        return f"{family}-{stamp}", datetime.fromisoformat(info["generated_at"])
    return f"{family}-{run_dir.name}", datetime.now(UTC).replace(microsecond=0)


def record_error(
    run_dir: Path | None, stage: str, message: str, exc: BaseException | None = None
) -> None:
    """Keep a step's failure in ``error.json``: the message, and for an unexpected
    exception its type and full traceback (the message only carries the first line)."""
    if run_dir is None:
        return
    data: dict[str, Any] = {"stage": stage, "message": message}
    if exc is not None:
        data["exception"] = type(exc).__name__
        data["traceback"] = "".join(traceback.format_exception(exc))
    write_json(RunFolder(run_dir).error, data)


# Lines of a Py4J/Spark error text that are plumbing, not the cause.
_NOISE = ("An error occurred while calling", "JVM stacktrace", "Traceback (most recent")
CAUSE_CHARS = 400


def cause_of(exc: BaseException) -> str:
    """The first meaningful line of an exception: for a Spark error, its Spark message
    without the Py4J call and the Java stack frames; at most ``CAUSE_CHARS`` long."""
    for raw in str(exc).splitlines():
        line = raw.strip().lstrip(":").strip()
        if not line or line.startswith(_NOISE) or line.startswith("at "):
            continue
        return line if len(line) <= CAUSE_CHARS else line[: CAUSE_CHARS - 3] + "..."
    return "(no message)"


def failure_message(stage: str, exc: BaseException, fallback_where: str | None = None) -> str:
    """``<stage> failed on <what>: <Type>: <cause>`` for an unexpected exception; ``what``
    is the innermost timed phase it came through (with its file), else ``fallback_where``."""
    where = getattr(exc, "reco_where", None) or fallback_where or "an unknown input"
    return f"{stage} failed on {where}: {type(exc).__name__}: {cause_of(exc)}"


def read_error(run_dir: Path | None) -> dict[str, str] | None:
    """What :func:`record_error` left in ``run_dir`` (``stage``, ``message``), if anything."""
    path = RunFolder(run_dir).error if run_dir else None
    return read_json(path) if path and path.exists() else None


def describe_inputs(args: argparse.Namespace) -> str | None:
    """What a step was given, for an error raised outside any timed phase."""
    given = [
        f"{name} {value}"
        for name in ("dataset", "run_dir")
        if (value := getattr(args, name, None)) is not None
    ]
    return ", ".join(given) or None


def execute(stage: str, step: StepFunction, args: argparse.Namespace) -> int:
    """Run ``step`` timed, turning failures into a clear message and an exit code."""
    run_dir: Path | None = getattr(args, "run_dir", None)
    if run_dir is not None:
        run_dir = run_dir.resolve()
        args.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with timer(run_dir, stage, "total"):
            result = step(args)
    except PipelineError as exc:
        interrupts.raise_if_pressed(exc)  # a Ctrl-C that came back as an error
        record_error(run_dir, stage, str(exc))
        print(f"ERROR [{stage}]: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:
        interrupts.raise_if_pressed(exc)
        message = failure_message(stage, exc, describe_inputs(args))
        record_error(run_dir, stage, message, exc)
        traceback.print_exc()
        kept = f" and in {RunFolder(run_dir).error}" if run_dir is not None else ""
        print(
            f"ERROR [{stage}]: {message} (unexpected: the traceback is above{kept})",
            file=sys.stderr,
            flush=True,
        )
        return 1
    print(f"[{stage}] done: {json.dumps(result, default=str)}", flush=True)
    return 0
