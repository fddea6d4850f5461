"""Reading what ``reco run`` (and ``make run``) print: the body of progress lines, the
rule, and the summary's ``  <label> : <value>`` lines."""

from __future__ import annotations

import re

RULE = "=" * 72


def split_summary(out: str) -> tuple[str, str]:
    """(the lines before the summary, the summary) of a run's standard output."""
    body, rule, summary = out.partition("\n" + RULE + "\n")
    assert rule, f"no summary:\n{out[-4000:]}"
    return body, summary


def summary_field(summary: str, label: str) -> str:
    """The value of the summary line ``  <label> : <value>``."""
    m = re.search(rf"^  {re.escape(label)} *: (.+)$", summary, re.M)
    assert m, f"no {label!r} line in the summary:\n{summary}"
    return m.group(1)
