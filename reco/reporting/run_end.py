"""When a ``recommendations`` run ends: Airflow's task times into the warehouse, and the
run report brought up to date with them (or not: see below).

Airflow's times of a run's tasks (queued, start, end) exist only once the run is over;
the run's own ``report`` task renders its page before its own end, so that page lacks
them. The listener (``plugins/reco_task_timings.py``) reads them when the run ends and
calls :func:`record`. Where the run ended, passed as ``in_process``, decides who renders
the page once more with them, so that exactly one render follows the run's own:

* the scheduler (``in_process=False``): the rows are stored and the run's phase timings
  reloaded (a failed run, which has no page, still shows in the trends) in a thread, so
  the scheduling loop never waits on the warehouse. Nothing is rendered here: the
  ``pipeline_report`` DAG, which the run's publish starts, waits for these rows
  (:func:`reco.reporting.task_timings.wait_stored`) and renders the page with them. A
  rejected run publishes nothing, so its page stays the one its ``report`` task wrote.
* ``dag.test()`` (``reco run``, ``in_process=True``): no scheduler, so no
  ``pipeline_report`` run follows; the rows are stored and the page (when the run got as
  far as training) rendered once more here, before ``dag.test()`` returns.

Errors are logged, never raised: they must not affect the run or the scheduler.
Dependencies run one way: run_end -> report -> task_timings (for its ``PHASE``), and
run_end -> facts (to reload the timings) and task_timings; task_timings imports neither,
nor Airflow (the listener reads the task instances and passes the warehouse lookup in).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from reco import config
from reco.publishing import warehouse
from reco.reporting import facts, index, report, task_timings
from reco.runs import run_dir_for

log = logging.getLogger(__name__)


def record(
    run_id: str,
    rows: list[dict[str, Any]],
    *,
    in_process: bool,
    warehouse_url: Callable[[], str],
) -> threading.Thread | None:
    """Store a finished run's task rows; in-process, also render its report once more.
    ``warehouse_url`` resolves the warehouse (called in the thread, not the scheduler's
    loop). Returns the thread doing it in the scheduler, None when done in-process."""
    if in_process:
        store_and_refresh(run_id, rows, warehouse_url, render=True)
        return None
    thread = threading.Thread(
        target=store_and_refresh,
        args=(run_id, rows, warehouse_url),
        kwargs={"render": False},
        name=f"reco-task-timings-{run_id}",
    )
    thread.start()
    return thread


def store_and_refresh(
    run_id: str,
    rows: list[dict[str, Any]],
    warehouse_url: Callable[[], str],
    *,
    render: bool,
) -> dict[str, Any] | None:
    """Write the task rows, then render the report again (``render``, when the run has a
    page) or reload the run's phase timings into the warehouse; log errors."""
    try:
        url = warehouse_url()
        warehouse.apply_schema(url)
        out: dict[str, Any] = {"task_times": task_timings.store(url, run_id, rows)}
        run_dir = run_dir_for(run_id)
        if render and report.has_page(run_dir):
            out.update(report.rebuild(url, run_id))  # the timeline now shows the tasks too
        elif run_dir.exists():
            out["timings"] = facts.load_timings(url, run_id, run_dir)
        if run_dir.exists():  # the run's line in the reports index, with how it ended
            timings = facts.fetch_timings(url, run_id)
            entry = index.line(run_id, run_dir, timings, facts.fetch_model_run(url, run_id))
            out["index"] = str(index.write(config.REPORTS_DIR, run_dir, entry))
        log.info("recorded %d task timings of %s", len(rows), run_id)
        return out
    except Exception as exc:  # a listener must never break the run or the scheduler
        log.warning("could not record task timings of %s: %s", run_id, exc)
        return None
