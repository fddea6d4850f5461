"""The two faces of a run in progress (``reco/console/run_state.py``'s state).

* :class:`LiveView`, on a terminal (Rich): one line per step as it ends (state, seconds,
  what it did), and under them a live block redrawn four times a second: the running step
  with its spinner, its seconds, a bar (CV fits done, else its share of earlier runs' time)
  and its last finished phase; then the run's elapsed time and the estimate.
* :class:`PlainView`, for a pipe or a CI log: timestamped lines, one when a step starts,
  one when it ends, one per finished phase, and a reminder when nothing was said for
  ``heartbeat`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from typing import Any, TextIO

from reco.console.phases import fmt_seconds
from reco.console.run_state import Event, RunProgress, Snapshot, TaskState

# How each ended state is drawn: (symbol, ASCII symbol, Rich style).
MARKS = {
    "success": ("✓", "+", "green"),
    "failed": ("✗", "x", "bold red"),
    "up_for_retry": ("↻", "~", "yellow"),
    "interrupted": ("✗", "x", "bold red"),  # Ctrl-C: not retried
    "skipped": ("↷", ">", "cyan"),
    "upstream_failed": ("-", "-", "dim"),
}
TASK_WIDTH = 15
BAR_WIDTH = 24
PLAIN_HEARTBEAT = 15.0
CV_PREFIX = re.compile(r"^CV fit \d+(/\d+)?: ")


def is_terminal(stream: TextIO) -> bool:
    """Whether a live view can be drawn on ``stream``: a terminal that moves its cursor."""
    try:
        tty = os.isatty(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return tty and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


def make_view(stream: TextIO, progress: RunProgress) -> LiveView | PlainView:
    return LiveView(stream, progress) if is_terminal(stream) else PlainView(stream, progress)


def ended_text(e: Event) -> str:
    """``skipped 0.3 s: not published: ...``: how a task ended."""
    took = f" {fmt_seconds(e.seconds)}" if e.seconds is not None else ""
    why = f": {e.text}" if e.text else ""
    return f"{e.state}{took}{why}"


def run_text(progress: RunProgress) -> str:
    return (
        f"run {progress.run_id}: {progress.n_tasks or '?'} steps; Airflow's and Spark's "
        f"log lines: {progress.log}"
    )


def estimate_text(e: Event) -> str:
    runs = int(e.text or 0)
    return (
        f"earlier runs like this one took about {fmt_seconds(e.seconds or 0)} "
        f"(median of {runs} run{'s' if runs != 1 else ''}: same dataset, as many CV fits)"
    )


def left_text(snap: Snapshot) -> str:
    if snap.remaining is None or snap.estimate is None:
        return ""
    if snap.remaining >= 0:
        return f"about {fmt_seconds(snap.remaining)} left"
    return f"longer than earlier runs (about {fmt_seconds(snap.estimate.total)})"


def task_progress(task: TaskState, snap: Snapshot) -> tuple[float | None, str]:
    """A running task's completed share (None: unknown) and what it is doing."""
    elapsed = snap.now - task.started
    last = CV_PREFIX.sub("", snap.last_phase.get(task.task_id, ""))
    if task.task_id == "train" and snap.fits_total and snap.fits_done < snap.fits_total:
        share = snap.fits_done / snap.fits_total
        return share, f"CV fits {snap.fits_done}/{snap.fits_total}" + (
            f" · last: {last}" if last else ""
        )
    expected = snap.stage_estimate.get(task.task_id)
    share = min(elapsed / expected, 0.99) if expected else None
    return share, (f"last: {last}" if last else "")


class PlainView:
    """Timestamped lines (see the module's docstring)."""

    def __init__(
        self, out: TextIO, progress: RunProgress, heartbeat: float = PLAIN_HEARTBEAT
    ) -> None:
        self.out, self.progress, self.heartbeat = out, progress, heartbeat
        self._cursor = 0
        self._said_at = time.monotonic()
        self.write(
            "starting the recommendations DAG in-process; Airflow's and Spark's log lines go "
            "to the run's log file (--verbose shows them here)"
        )

    def write(self, text: str, task: str = "") -> None:
        stamp = time.strftime("%H:%M:%S")
        line = f"{stamp} {task:<{TASK_WIDTH}} {text}" if task else f"{stamp} {text}"
        with contextlib.suppress(OSError, ValueError):
            self.out.write(line.rstrip() + "\n")
            self.out.flush()
        self._said_at = time.monotonic()

    def say(self, e: Event) -> None:
        if e.kind == "run":
            self.write(run_text(self.progress))
        elif e.kind == "estimate":
            self.write(estimate_text(e))
        elif e.kind == "start":
            tries = int(e.text or 1)
            self.write("running" + (f" (try {tries})" if tries > 1 else ""), e.task)
        elif e.kind == "end":
            self.write(ended_text(e), e.task)
        elif e.kind == "phase":
            self.write(f"· {e.text}", e.task)

    def update(self) -> None:
        events, self._cursor = self.progress.drain(self._cursor)
        for e in events:
            self.say(e)
        if time.monotonic() - self._said_at >= self.heartbeat:
            snap = self.progress.snapshot()
            if snap.finished:
                return
            left = left_text(snap)
            for task in snap.running:
                _, doing = task_progress(task, snap)
                parts = [f"still running, {fmt_seconds(snap.now - task.started)}", doing, left]
                self.write("; ".join(p for p in parts if p), task.task_id)
            if not snap.running:
                what = "starting the run" if snap.run_id is None else "between steps"
                parts = [f"Airflow: {what}, {fmt_seconds(snap.elapsed)} in", left]
                self.write("; ".join(p for p in parts if p))

    def close(self) -> None:
        self.update()


class LiveView:
    """The terminal view (see the module's docstring), drawn with Rich."""

    def __init__(self, out: TextIO, progress: RunProgress) -> None:
        from rich.console import Console
        from rich.live import Live

        self.out, self.progress = out, progress
        self.console = Console(file=out, force_terminal=True, highlight=False, emoji=False)
        self.fancy = (getattr(out, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self._spinners: dict[str, Any] = {}
        self._cursor = 0
        self.resize()
        self.live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def resize(self) -> None:
        """Follow the terminal's size (Rich would ask descriptors 0-2, now the log's)."""
        with contextlib.suppress(OSError, ValueError):
            size = os.get_terminal_size(self.out.fileno())
            self.console.size = (size.columns or 80, size.lines or 25)

    def line(self, e: Event) -> Any:
        from rich.text import Text

        if e.kind == "run":
            return Text(run_text(self.progress), style="bold")
        if e.kind == "estimate":
            return Text(estimate_text(e), style="dim")
        fancy, plain, style = MARKS.get(e.state, ("·", ".", ""))
        with self.progress.lock:
            task = self.progress.tasks.get(e.task)
            done = ", ".join(task.phases) if task and e.state == "success" else ""
        took = fmt_seconds(e.seconds) if e.seconds is not None else ""
        text = Text.assemble(
            (f"{fancy if self.fancy else plain} ", style),
            (f"{e.task:<{TASK_WIDTH}}", "bold"),
            (f"{took:>7}", ""),
            (f"  {e.state}" if e.state != "success" else "", style),
            (f": {e.text}" if e.text else "", style),
            (f"  {done}" if done else "", "dim"),
        )
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text

    def update(self) -> None:
        self.resize()
        events, self._cursor = self.progress.drain(self._cursor)
        for e in events:
            if e.kind in ("run", "estimate", "end"):
                self.console.print(self.line(e), no_wrap=e.kind == "end", overflow="ellipsis")

    def bar(self, share: float | None, now: float) -> Any:
        """A bar of ``BAR_WIDTH`` cells: ``share`` done, or a moving pulse when unknown."""
        from rich.text import Text

        full, empty = ("━", "━") if self.fancy else ("#", "-")
        if share is None:
            pos = int(now * 8) % (2 * BAR_WIDTH)
            pos = pos if pos < BAR_WIDTH else 2 * BAR_WIDTH - pos - 1
            near = [abs(i - pos) < 3 for i in range(BAR_WIDTH)]
            return Text.assemble(*((full, "magenta") if n else (empty, "grey23") for n in near))
        done = int(round(max(0.0, min(share, 1.0)) * BAR_WIDTH))
        return Text.assemble((full * done, "green"), (empty * (BAR_WIDTH - done), "grey23"))

    def render(self) -> Any:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.text import Text

        snap = self.progress.snapshot()
        spin = "dots" if self.fancy else "line"
        lines = []
        for task in snap.running:
            spinner = self._spinners.setdefault(task.task_id, Spinner(spin, style="cyan"))
            share, doing = task_progress(task, snap)
            tries = f" (try {task.tries})" if task.tries > 1 else ""
            lines.append(
                Text.assemble(
                    spinner.render(snap.now),
                    " ",
                    (f"{task.task_id + tries:<{TASK_WIDTH}}", "bold"),
                    f"{fmt_seconds(snap.now - task.started):>7}  ",
                    self.bar(share, snap.now),
                    "  ",
                    (doing, "dim"),
                )
            )
        if not snap.running:
            what = "Airflow: starting the run" if snap.run_id is None else "Airflow: between steps"
            if snap.n_tasks and snap.n_ended >= snap.n_tasks:
                what = "Airflow: finishing the run (task times, report)"
            spinner = self._spinners.setdefault("", Spinner(spin, style="cyan"))
            lines.append(Text.assemble(spinner.render(snap.now), " ", (what, "bold")))
        parts = [
            f"step {min(snap.n_ended + 1, snap.n_tasks)}/{snap.n_tasks}" if snap.n_tasks else "",
            f"elapsed {fmt_seconds(snap.elapsed)}",
            left_text(snap),
            "Ctrl-C stops the run",
        ]
        lines.append(Text("  " + " · ".join(p for p in parts if p), style="dim"))
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        return Group(*lines)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.update()
        self.live.stop()
