"""``reco run``'s log file: where Airflow's and Spark's own lines go instead of the
terminal, and a failed step's last error lines quoted from it for the summary.

:class:`LogCapture` works on file descriptors 1 and 2, so it catches what Python prints and
logs, Airflow's structured log, and every child process started meanwhile (Spark's driver
JVM inherits them). :func:`error_lines` reads a step's part of the log back.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO


class LogCapture:
    """Sends file descriptors 1 and 2 of this process to a log file: Python's prints and
    logging, Airflow's structured log and every child process started meanwhile (Spark's
    JVM) write there. The terminal stays reachable through :attr:`terminal`."""

    def __init__(self, path: Path):
        self.path = path
        self.terminal: TextIO | None = None
        self._saved: tuple[int, int] | None = None

    def start(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _flush()
        saved = (os.dup(1), os.dup(2))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)
        self._saved = saved
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        self.terminal = os.fdopen(
            os.dup(saved[0]), "w", encoding=encoding, errors="replace", buffering=1
        )
        return self.terminal

    def move(self, dest: Path) -> Path:
        """Move the log (still being written: the open descriptors follow it) to ``dest``;
        on another file system, ``dest`` becomes a link to it. Returns where it is read."""
        if dest == self.path:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(self.path, dest)
        except OSError:
            try:
                dest.symlink_to(self.path)
            except OSError:
                return self.path
            return dest
        self.path = dest
        return dest

    def stop(self) -> None:
        """Give descriptors 1 and 2 back to the terminal (idempotent)."""
        if self._saved is None:
            return
        _flush()
        out, err = self._saved
        self._saved = None
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        if self.terminal is not None:
            with contextlib.suppress(OSError, ValueError):
                self.terminal.close()

    def park(self) -> None:
        """At the process's exit: what is still printed then (py4j's and Spark's shutdown)
        goes to the log as well, not to the terminal under the summary."""
        with contextlib.suppress(OSError):
            _flush()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


# ------------------------------------------------------------------------------------------
# a failed step's error lines, from the log
# ------------------------------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# Airflow's structured lines: ``2026-11-27T09:13:42.323019Z [error    ] message   [logger] k=v``
STRUCTURED = re.compile(
    r"^\d{4}-\d\d-\d\dT[\d:.]+Z? \[(?P<level>\w+)\s*\] (?P<msg>.*?)\s+\[[\w.]+\](?: .*)?$"
)
TASK_START = "[DAG TEST] starting task_id="
TASK_END = "[DAG TEST] end task task_id="
EXCEPTION = re.compile(r"^(Caused by: )?[A-Za-z_][\w.$]*(Error|Exception|Failure)\w*: \S")
SPARK_ERROR = re.compile(r"^\d\d:\d\d:\d\d (ERROR|FATAL) ")
# Airflow's generic wrappers around an error said better elsewhere.
GENERIC = ("Task failed", "[DAG TEST]", "An error occurred while calling")
LOG_TAIL_BYTES = 4_000_000


def read_log(path: Path | None) -> str:
    """The log's text (its last few MB), ANSI colours removed; empty when missing."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - LOG_TAIL_BYTES))
            return ANSI.sub("", fh.read().decode("utf-8", errors="replace"))
    except OSError:
        return ""


def task_section(text: str, task_id: str) -> str:
    """The log lines of ``task_id``'s last try (tasks run one after another in ``reco run``)."""
    start = text.rfind(f"{TASK_START}{task_id} ")
    if start < 0:
        return ""
    end = text.find(f"{TASK_END}{task_id} ", start)
    return text[start : end if end >= 0 else len(text)]


def failed_task(text: str) -> str | None:
    """The last task whose section of the log holds an error."""
    starts = re.finditer(re.escape(TASK_START) + r"(\S+) ", text)
    last_start = {m.group(1): m.start() for m in starts}
    found = None
    for task_id in sorted(last_start, key=last_start.get):
        section = task_section(text, task_id)
        if "Task failed with exception" in section or re.search(r"\[error\s*\]", section):
            found = task_id
    return found


def meaningful(line: str) -> str | None:
    """The error a log line states, or None when it is plumbing or not an error."""
    if not line or line[0].isspace() or line.startswith("Traceback"):
        return None
    if line.startswith(": "):  # py4j: the Java exception under "An error occurred while calling"
        line = line[2:]
    m = STRUCTURED.match(line)
    if m:
        if m["level"] not in ("error", "critical"):
            return None
        msg = m["msg"].strip()
        return None if not msg or msg.startswith(GENERIC) else msg
    if line.startswith(GENERIC) or "An error occurred while calling" in line:
        return None
    if line.startswith("ERROR") or EXCEPTION.match(line) or SPARK_ERROR.match(line):
        return line.strip()
    return None


def _key(line: str) -> str:
    """What a line says, without the prefixes that differ between its copies."""
    s = re.sub(r"^(Caused by: )?[\w.$]*(Error|Exception|Failure)\w*: ", "", line)
    s = re.sub(r"^ERROR( \[[\w-]+\])?: ", "", s)
    s = re.sub(r"^\[[\w-]+\] ", "", s)
    return s.strip().lower()[:100]


def error_lines(
    text: str, task_id: str | None = None, known: Iterable[str] = (), limit: int = 5
) -> list[str]:
    """The last ``limit`` distinct error lines of ``task_id``'s part of the log (else of
    the whole log), leaving out what ``known`` (the summary's message) already says."""
    section = task_section(text, task_id) if task_id else text
    seen = [_key(k) for k in known if k]
    out: list[str] = []
    for raw in (section or "").splitlines():
        said = meaningful(raw.rstrip())
        if not said:
            continue
        key = _key(said)
        if any(key in s or s in key for s in seen if s and key):
            continue
        seen.append(key)
        out.append(said if len(said) <= 300 else said[:297] + "...")
    return out[-limit:]
