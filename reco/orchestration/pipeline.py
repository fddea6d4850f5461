"""Task bodies and wiring helpers for the Airflow DAGs (no Airflow imports at module level).

The DAG file only wires tasks; what each plain-Python task does lives here so it can be
called and tested without Airflow. Nothing here imports pyspark or GX at import time.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reco import config
from reco.data import formats
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.errors import PipelineError
from reco.instrumentation import eventlog
from reco.instrumentation.timing import timer
from reco.orchestration import timeouts
from reco.publishing import warehouse
from reco.runs import RunFolder, run_dir_for, run_key
from reco.runtime import failure_message, record_error, write_json
from reco.validation import quality


def version_stamp_for(run_id: str, run_after: datetime) -> str:
    """``YYYYMMDDTHHMMSSZ-<hash>``: sortable by time, unique per run id, stable on re-runs.
    The model version is ``<family>-<stamp>`` once training has chosen the family."""
    digest = hashlib.sha1(run_id.encode()).hexdigest()[:6]
    return f"{run_after.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest}"


def model_version_for(run_id: str, run_after: datetime, family: str = "als") -> str:
    return f"{family}-{version_stamp_for(run_id, run_after)}"


def ensure_synthetic_dataset(
    out_dir: Path = config.SYNTHETIC_DIR, spec: SyntheticSpec | None = None
) -> Path:
    """The default synthetic dataset, generated once (deterministic, so reuse is safe)."""
    spec = spec or SyntheticSpec()
    if not (out_dir / "manifest.json").exists():
        write_dataset(out_dir, spec)
    return out_dir


@contextmanager
def task_errors(stage: str, run_id: str) -> Iterator[None]:
    """Inside an Airflow task: keep the failure in the run folder (for ``reco run``'s
    summary) and fail at once, without retries, when the cause is bad input."""
    try:
        yield
    except PipelineError as exc:
        record_error(run_dir_for(run_id), stage, str(exc))
        if exc.retryable:
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"[{stage}] {exc}") from exc
    except Exception as exc:
        if type(exc).__name__ != "AirflowSkipException":  # a skip is not an error
            run_dir = run_dir_for(run_id)
            message = failure_message(stage, exc, f"run {run_id}")
            record_error(run_dir, stage, message, exc)
            # The task log shows the traceback after this line; error.json keeps it too.
            print(
                f"ERROR [{stage}]: {message} (unexpected: traceback below and in "
                f"{RunFolder(run_dir).error})",
                file=sys.stderr,
                flush=True,
            )
        raise
    except BaseException as exc:  # AirflowTaskTimeout is not an Exception
        if timeouts.is_timeout(exc):
            timeouts.on_timeout(stage, run_dir_for(run_id), exc, config.task_timeout(stage))
        raise


@contextmanager
def warehouse_task(stage: str, run_id: str) -> Iterator[str]:
    """Inside an Airflow task that talks to the warehouse: the URL (``WAREHOUSE_URL``, the
    ``warehouse`` connection, or the embedded server), with :func:`task_errors` around it."""
    with task_errors(stage, run_id):
        from reco.orchestration.connections import warehouse_url

        yield warehouse_url()


def prepare_run(
    params: dict[str, Any], run_id: str, run_after: datetime, warehouse_url: str
) -> dict[str, Any]:
    """Check the inputs and the warehouse before any Spark work, and set up the run folder.

    Raises ``PipelineError`` for a missing dataset, an unknown format, an empty file or an
    unreachable warehouse: the run stops here and nothing is published.
    """
    key = run_key(run_id)
    run_dir = config.RUNS_DIR / key
    run_dir.mkdir(parents=True, exist_ok=True)
    with timer(run_dir, "prepare", "total"):
        check_model_params(params)
        dataset = choose_dataset(params.get("dataset"), params.get("landed"))
        source = formats.detect_source(
            dataset,
            params.get("format") or "auto",
            columns=formats.parse_mapping(params.get("columns")),
            rating_scale=formats.parse_scale(params.get("rating_scale")),
        )
        events = resolve_feedback(params.get("feedback"))
        warehouse.apply_schema(warehouse_url)
        # Attempts left at 'publishing' by a killed process become 'abandoned' now, not
        # only when this run reaches publish (which it may never do).
        from reco.publishing import publish  # pyarrow: not at DAG-parse time

        abandoned = publish.mark_abandoned(warehouse_url, found_by=f"the start of run {run_id}")
        write_champion(warehouse_url, run_dir)
        eventlog.prune(config.SPARK_EVENTS_DIR, config.SPARK_EVENTS_KEEP_DAYS)
        info = {
            "run_id": run_id,
            "run_key": key,
            "run_dir": str(run_dir),
            # What was given (a file keeps its name: an export in the inbox is read alone,
            # not with the folder around it), resolved.
            "dataset": str(Path(dataset).expanduser().resolve()),
            "format": source.format,
            "feedback": events,
            "version_stamp": version_stamp_for(run_id, run_after),
            "model_version": model_version_for(run_id, run_after),
            "generated_at": run_after.astimezone(UTC).replace(microsecond=0).isoformat(),
            "warehouse": warehouse.describe(warehouse_url),
            "abandoned_attempts": [f"{r}#{a}" for r, a in abandoned],
            # Size of the previous accepted batch, for the validate step's shrink check
            # ("0" = none yet; a string because it becomes a step argument).
            "previous_rows": str(quality.previous_accepted_rows(warehouse_url, run_id) or 0),
        }
        write_json(RunFolder(run_dir).run_info, info)
    try:
        from reco.orchestration import alerts

        alerts.check_freshness(warehouse_url, run_id)
    except Exception as exc:  # an alert must never stop a run
        print(f"freshness check skipped: {type(exc).__name__}: {exc}", flush=True)
    return info


def newest_export(inbox: Path = config.RATINGS_INBOX) -> str | None:
    """The most recently changed ratings export in the inbox (hidden and ``_`` entries are
    work in progress), else None."""
    from reco.data.watch import newest, scan

    entry = newest(scan(inbox))
    return entry.path if entry else None


def choose_dataset(given: str | None, landed: str | None = None) -> str:
    """What a run reads: the dataset it was given, else the export whose arrival started it,
    else the newest export in the inbox, else the built-in synthetic data."""
    for candidate in (given, landed, newest_export()):
        if candidate and str(candidate).strip():
            return str(candidate).strip()
    return str(ensure_synthetic_dataset())


def check_model_params(params: dict[str, Any]) -> None:
    """Refuse bad model parameters in a second, before any Spark work: the train step's
    typed parse of the run conf and its own check (families, grids, folds 1, several grid
    values without their CV, ...), exactly as the step will run them (reco/steps.py)."""
    from reco import steps

    train = steps.get("train")
    train.check(train.from_conf(params, run_dir=config.RUNS_DIR))


def retrain_schedule(landed: Any) -> Any:
    """``recommendations``' schedule: ``config.RETRAIN_SCHEDULE`` (cron or preset, in
    ``config.SCHEDULE_TIMEZONE``) or an update of the ``landed`` Asset, whichever comes
    first; only the Asset when the schedule is ``none``."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    cron = config.RETRAIN_SCHEDULE.strip()
    if cron.lower() in ("", "none", "off"):
        return landed
    check_schedule(cron, config.SCHEDULE_TIMEZONE)
    # run_immediately=0: the first scheduled run is the next cron time, never one for a
    # time already past when the DAG first appears (Airflow's default runs that at once).
    timetable = CronTriggerTimetable(
        cron, timezone=config.SCHEDULE_TIMEZONE, run_immediately=timedelta(0)
    )
    return AssetOrTimeSchedule(timetable=timetable, assets=landed)


def check_schedule(cron: str, timezone: str) -> None:
    """Refuse a schedule or time zone the scheduler could not use when the DAG file is
    parsed, naming the setting: Airflow accepts a bad cron expression there and fails only
    when it computes the next run (croniter's message), and a bad time zone fails the DAG's
    serialization naming only the zone."""
    import pendulum
    from croniter import croniter

    try:
        pendulum.timezone(timezone)
    except Exception:
        raise ValueError(
            f"RECO_SCHEDULE_TIMEZONE={timezone!r} is not a time zone: use an IANA name such "
            "as 'UTC' or 'Europe/Paris'"
        ) from None
    if not croniter.is_valid(cron):
        raise ValueError(
            f"RECO_RETRAIN_SCHEDULE={cron!r} is not a cron expression or preset "
            "(e.g. '0 3 * * *', '@daily'), nor 'none' (retrain only when data lands)"
        )


def wait_for_run_end(
    state_of: Any, run_id: str, timeout: float = 1800, poll: float = 5
) -> str | None:
    """Wait until ``state_of(run_id)`` is no longer queued or running (the report of a run
    that just published waits for its last task and the scheduler's task times); the final
    state, or None after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        state = str(state_of(run_id) or "")
        if state not in ("queued", "running"):
            return state
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)


def announce_publish(
    result: dict[str, Any], outlet_event: Any, warehouse_url: str, run_id: str
) -> None:
    """Describe the new ``reco.recommendations`` in its Asset event; when the model was
    rejected, alert (why, how many runs in a row) and skip the task instead, so no event
    says the table changed."""
    if result.get("status") == "rejected":
        from airflow.sdk.exceptions import AirflowSkipException

        from reco.orchestration import alerts

        try:
            in_a_row = alerts.rejected_in_a_row(warehouse_url)
        except Exception:  # the count is for the alert; the alert goes out without it
            in_a_row = 1
        alerts.model_rejected(
            run_id, str(result.get("reason")), in_a_row, result.get("model_version")
        )

        raise AirflowSkipException(
            f"not published: {result.get('reason')}. reco.recommendations is unchanged; "
            "the run's report says how the new model compared"
        )
    outlet_event.extra = {
        "rows": result.get("rows"),
        "model_version": result.get("model_version"),
        "attempt": result.get("attempt"),
    }


AB_FILES = ("assignments.csv", "events.csv")


def prepare_ab_run(
    params: dict[str, Any], run_id: str, warehouse_url: str, manual: bool = True
) -> dict[str, Any]:
    """Check the A/B input folder and the warehouse; the run folder for the counts.

    An empty ``input`` means the experiment inbox ``config.AB_INBOX``. A run started by a
    publish (``manual=False``) is skipped when that inbox holds no experiment yet."""
    given = str(params.get("input") or "").strip()
    folder = Path(given or config.AB_INBOX).expanduser()
    missing = [n for n in AB_FILES if not (folder / n).is_file()]
    if missing and not given and not manual:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(
            f"no experiment data in {folder} (needs {', '.join(AB_FILES)}); nothing to analyse"
        )
    if missing:
        raise PipelineError(
            f"A/B input folder {str(folder)!r} lacks {', '.join(missing)}: pass the folder "
            "holding assignments.csv (user_id,arm) and events.csv (user_id,event,ts) as "
            f"`input`, or put them in {config.AB_INBOX}; `reco simulate-ab --out DIR` writes "
            "an example"
        )
    experiment = str(params.get("experiment") or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", experiment):
        raise PipelineError(
            f"experiment name {experiment!r} must be 1-80 letters, digits, '_', '.' or '-'"
        )
    warehouse.apply_schema(warehouse_url)
    run_dir = RunFolder.of_experiment(run_id).path
    run_dir.mkdir(parents=True, exist_ok=True)
    return {
        "run_id": run_id,
        "input": str(folder.resolve()),
        "counts": str(RunFolder(run_dir).ab_counts),
        "experiment": experiment,
    }


def resolve_feedback(path: str | None) -> str:
    """The feedback inbox of this run: the given folder/file, else the default inbox when it
    exists, else ``""`` (no feedback)."""
    path = str(path or "").strip()
    if not path:
        return str(config.FEEDBACK_DIR) if config.FEEDBACK_DIR.exists() else ""
    p = Path(path).expanduser()
    if not p.exists():
        raise PipelineError(
            f"feedback path {p} does not exist: pass a folder of *.jsonl / *.csv event files, "
            f"or leave it empty to use the default inbox {config.FEEDBACK_DIR}"
        )
    return str(p.resolve())


def write_champion(url: str, run_dir: Path) -> dict[str, Any] | None:
    """Record the published model's parameters for the train step's champion comparison."""
    statements = warehouse.named_statements("model_runs.sql")
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(statements["champion"])
        row = cur.fetchone()
    path = RunFolder(run_dir).champion
    if row is None or not (row[1] or {}).get("rating"):
        path.unlink(missing_ok=True)
        return None
    champion = {"model_version": row[0], "rating": row[1]["rating"], "ranking": row[1]["ranking"]}
    write_json(path, champion)
    return champion


def prune_task(run_id: str, dry_run: bool = False) -> dict[str, Any]:
    """The ``maintenance`` DAG's task: delete the files of runs retention does not keep
    (:mod:`reco.maintenance.retention`), keeping every published run a rollback may need."""
    from reco.maintenance import retention

    with warehouse_task("prune", run_id) as url:
        warehouse.apply_schema(url)
        result = retention.prune(
            retention.published_run_ids(url), dry_run=dry_run, log=lambda m: print(m, flush=True)
        )
        print(
            f"{'would prune' if dry_run else 'pruned'} {len(result['pruned'])} runs and "
            f"{result['event_logs_pruned']} event logs ({result['bytes_freed'] / 2**20:.1f} "
            f"MiB); kept {len(result['kept'])}: "
            + ", ".join(f"{k} ({why})" for k, why in result["kept"].items()),
            flush=True,
        )
        return {k: v for k, v in result.items() if k != "kept"} | {"kept": list(result["kept"])}


def rollback_task(run_id: str, model_version: str | None) -> dict[str, Any]:
    """The ``rollback`` DAG's task: publish an earlier version's lists again
    (:mod:`reco.publishing.rollback`)."""
    from reco.publishing import rollback

    with warehouse_task("rollback", run_id) as url:
        return rollback.rollback(url, model_version, log=lambda m: print(m, flush=True))


def dag_settings(dag_id: str) -> dict[str, Any]:
    """What every DAG of the pipeline sets beside its schedule and params: default_args
    with the failure alert (reco/orchestration/alerts.py), a dagrun_timeout, and for
    ``recommendations`` the Deadline Alert of a run that is late."""
    from reco.orchestration import alerts

    settings: dict[str, Any] = {
        "default_args": {**config.DAG_DEFAULT_ARGS, "on_failure_callback": alerts.task_failed},
        "dagrun_timeout": config.RUN_TIMEOUT,
    }
    if dag_id == "recommendations":
        settings["deadline"] = alerts.deadline_alert()
    return settings


def spark_step(task_id: str, args: list, module: str | None = None) -> Any:
    """An Airflow task that runs one Spark job (``spark_jobs/<module>.py``): the Spark
    provider's ``SparkSubmitOperator`` on a cluster, in the task's own process on
    ``local[*]`` (:mod:`reco.orchestration.spark_submit`).

    Why in-process on ``local[*]``: a spark-submit starts a new JVM per step. Measured on
    2 cores, a driver JVM costs 9-10 s to a session and its first job (6.5 s + 2.6 s with
    the class-data-sharing archive), and each step's first Spark jobs run cold. Where
    tasks share a process (``make run``'s ``dag.test``) the steps share one warm session.
    """
    from reco.orchestration.spark_submit import SparkStepOperator

    return SparkStepOperator(
        task_id=task_id,
        module=module or task_id,
        args=args,
        # Retried (default_args) on what a retry can mend: a lost executor or driver, a
        # refused connection, a timeout. Refused input fails at once (AirflowFailException).
        execution_timeout=config.task_timeout(task_id),
    )
