"""Ctrl-C, remembered.

A KeyboardInterrupt can be replaced on its way up. PySpark's ``toPandas()`` reads Arrow
batches in a ``try`` whose ``finally`` asks the JVM for the collect's result: a Ctrl-C
while it reads cancels the job (PySpark's own SIGINT handler) and the KeyboardInterrupt
becomes the cancelled job's ``Py4JJavaError``. The step then fails like any other, is
retried, and the run goes on as if nothing had been pressed.

So the press itself is recorded, before any handler runs, and checked where a step's
error is handled (:func:`reco.runtime.execute`), where a task ends (the progress
listener) and where the run ends (``reco run``).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_pressed = threading.Event()
_MARK = "_reco_remembers_sigint"


def pressed() -> bool:
    """Whether SIGINT reached this process since :func:`remember` (or :func:`reset`)."""
    return _pressed.is_set()


def reset() -> None:
    _pressed.clear()


def remember() -> bool:
    """Record every SIGINT before the handler in place runs (Python's, or the one PySpark
    installs with each SparkContext). Call it again after such a handler is installed.
    Only the main thread can set a handler; an ignored or default SIGINT is left alone.
    True when the handler in place now records presses."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGINT)
    if getattr(current, _MARK, False):
        return True
    if not callable(current):  # SIG_IGN, SIG_DFL, or set outside Python
        return False
    handler = current

    def on_sigint(signum: int, frame: Any) -> None:
        _pressed.set()
        handler(signum, frame)

    setattr(on_sigint, _MARK, True)
    signal.signal(signal.SIGINT, on_sigint)
    return True


def raise_if_pressed(cause: BaseException | None = None) -> None:
    """KeyboardInterrupt (from ``cause``) when Ctrl-C was pressed: what an error raised
    after the press really is."""
    if _pressed.is_set():
        raise KeyboardInterrupt("Ctrl-C") from cause
