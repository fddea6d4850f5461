"""One exception type for every failure a user can act on.

A ``PipelineError`` carries a message that names the problem and what to do about it.
Entry points print it as one line (no stack trace) and exit non-zero; the Spark jobs also
leave it in the run folder (``error.json``) so ``reco run`` can repeat it in its summary.
"""

from __future__ import annotations


class PipelineError(Exception):
    """A failure with a message meant for the person running the pipeline."""

    def __init__(self, message: str, *, stage: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.stage = stage
        # True for transient causes (an unreachable server) where a retry may succeed;
        # bad input is never retryable.
        self.retryable = retryable
