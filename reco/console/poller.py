"""Following a ``reco run``'s timings as they are written: :class:`TimingsTail` reads the
lines appended to its ``timings.jsonl``, :class:`Poller` feeds them (and, once the run's
folder says its dataset, the estimate from earlier runs) into the
:class:`~reco.console.run_state.RunProgress` and updates the view, in a thread.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

from reco.console.history import estimate
from reco.console.run_state import RunProgress
from reco.runs import RunFolder


class TimingsTail:
    """The lines appended to a ``timings.jsonl`` since the last read (whole lines only)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self._partial = b""

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict):
                    out.append(rec)
        return out


class View(Protocol):
    def update(self) -> None: ...

    def close(self) -> None: ...


class Poller:
    """Every ``interval`` seconds, in a thread: new timing lines into the progress, the
    estimate once the run's folder says its dataset, then a view update."""

    def __init__(
        self,
        progress: RunProgress,
        view: View,
        runs_dir: Path,
        interval: float = 0.5,
    ):
        self.progress, self.view, self.runs_dir, self.interval = progress, view, runs_dir, interval
        self._tail: TimingsTail | None = None
        self._tail_lock = threading.Lock()
        self._estimated = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reco-run-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def catch_up(self) -> None:
        """The run's timing lines written so far into the progress (also called before a
        task's end is told, so that its last phases come before it)."""
        run_dir = self.progress.run_dir
        if run_dir is None:
            return
        with self._tail_lock:
            if self._tail is None:
                self._tail = TimingsTail(RunFolder(run_dir).timings)
            for rec in self._tail.read_new():
                self.progress.phase_finished(rec)

    def poll(self) -> None:
        self.catch_up()
        run_dir = self.progress.run_dir
        if run_dir is not None and not self._estimated and RunFolder(run_dir).run_info.exists():
            self._estimated = True
            with contextlib.suppress(OSError, ValueError, KeyError):
                info = json.loads(RunFolder(run_dir).run_info.read_text(encoding="utf-8"))
                self.progress.set_estimate(
                    estimate(
                        self.runs_dir,
                        str(info.get("dataset")),
                        self.progress.plan.fits,
                        exclude=run_dir,
                    )
                )
        self.view.update()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # the view must never stop the run
                with contextlib.suppress(Exception):
                    print(f"reco run progress: {type(exc).__name__}: {exc}", file=sys.stderr)

    def stop(self) -> None:
        """Stop the thread, then a last poll (the final timings and task states)."""
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.poll()
