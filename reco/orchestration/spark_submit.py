"""The Spark steps as Airflow tasks: the Spark provider's ``SparkSubmitOperator``, configured
from the ``spark_default`` connection, with the embedded default kept in-process.

Which way a step runs follows the connection's master:

- ``local[*]`` (what ``make setup`` creates): the job runs in the task's own process
  (:func:`run_spark_step`). Under ``make run`` every step shares one warm session.
- a cluster (``spark://HOST:7077``, ``yarn``, ``k8s://...``): ``spark-submit
  spark_jobs/<step>.py`` through the provider's hook, one application per step, with
  everything from the connection (:func:`submit_settings`): master and port, the
  ``deploy-mode`` and ``queue`` extras (read by the hook itself), and the extras
  ``executor_memory``, ``executor_cores``, ``total_executor_cores``, ``driver_memory``,
  ``num_executors`` and ``conf`` (a JSON object of Spark properties, over the pipeline's
  own defaults: event logs, time zone, shuffle partitions). On a standalone cluster
  ``total_executor_cores`` (``spark.cores.max``) keeps one application from taking every
  core.

Every Spark step takes a slot of the ``spark`` pool (:data:`config.SPARK_POOL`), so the
``recommendations`` and ``ab_test_analysis`` DAGs share a cluster instead of starving each
other. A refused input (the job's exit code 2) fails the task at once, without retries.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from reco import config, steps
from reco.orchestration import timeouts
from reco.runtime import read_error

# The connection extras this module reads (the hook itself reads deploy-mode and queue).
SUBMIT_EXTRAS = {
    "executor_memory": str,
    "executor_cores": int,
    "total_executor_cores": int,
    "driver_memory": str,
    "num_executors": int,
}


def spark_master(conn_id: str = config.SPARK_CONN_ID) -> str:
    """The Spark master of an Airflow connection (host, plus port when given)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    host = (conn.host or "local[*]").strip()
    if host.startswith("local") or host.startswith("yarn") or host.startswith("k8s"):
        return host
    if "://" not in host:
        host = f"spark://{host}"
    return f"{host}:{conn.port}" if conn.port else host


def is_local(master: str) -> bool:
    return master.startswith("local")


def submit_settings(extra: dict[str, Any]) -> dict[str, Any]:
    """What a ``spark_default`` connection's extras set for a spark-submit, checked:
    ``{"executor_memory": "2g", "total_executor_cores": 2, "conf": {...}}`` and so on.
    A wrong type names the extra and what it takes."""
    out: dict[str, Any] = {}
    for key, kind in SUBMIT_EXTRAS.items():
        if extra.get(key) in (None, ""):
            continue
        try:
            out[key] = kind(extra[key])
        except (TypeError, ValueError):
            raise ValueError(
                f"the {config.SPARK_CONN_ID} connection's extra {key!r} is {extra[key]!r}: "
                f"it takes {'a whole number' if kind is int else 'a size such as 2g'}"
            ) from None
    conf = extra.get("conf") or {}
    if not isinstance(conf, dict):
        raise ValueError(
            f"the {config.SPARK_CONN_ID} connection's extra 'conf' must be a JSON object of "
            f'Spark properties, e.g. {{"spark.sql.shuffle.partitions": "8"}}; got {conf!r}'
        )
    out["conf"] = {str(k): str(v) for k, v in conf.items()}
    return out


def submit_conf(connection_conf: dict[str, str]) -> dict[str, str]:
    """The Spark properties of a submitted step: the pipeline's defaults (what an
    in-process session sets itself), then the connection's ``conf``, which wins."""
    from reco.spark import driver_java_options

    conf = {
        **config.spark_conf_defaults(),
        "spark.driver.extraJavaOptions": driver_java_options(),
    }
    return {**conf, **connection_conf}


def run_spark_step(module: str, argv: list[Any]) -> str:
    """Run the step ``module`` in this process (its entry in reco/steps.py, as
    ``spark_jobs/<module>.py`` would), on ``spark_default``'s master; a refused input
    (exit 2) fails the task at once, without retries."""
    os.environ["SPARK_MASTER"] = spark_master()
    code = steps.get(module).main([str(a) for a in argv])
    if code != 0:
        raise step_failure(module, argv, code)
    return "ok"


def run_dir_of(argv: list[Any]) -> Path | None:
    """The ``--run-dir`` of a step's arguments."""
    return next((Path(str(argv[i + 1])) for i, a in enumerate(argv[:-1]) if a == "--run-dir"), None)


def step_failure(module: str, argv: list[Any], code: int | None) -> Exception:
    """The task's error for a step that exited with ``code``: the step's own message from
    the run folder; exit code 2 (refused input) fails at once, without retries."""
    error = read_error(run_dir_of(argv))
    message = (
        error["message"]
        if error
        else f"spark_jobs/{module}.py exited with {code}; see the task log"
    )
    if code == 2:
        from airflow.sdk.exceptions import AirflowFailException

        return AirflowFailException(f"[{module}] {message}")
    return RuntimeError(f"[{module}] {message}")


class SparkStepOperator(SparkSubmitOperator):
    """``spark_jobs/<module>.py`` with ``args``: in-process on ``local[*]``, else
    spark-submit as the module says."""

    ui_color = "#fcd6a4"

    def __init__(self, *, module: str, args: list[Any], **kwargs: Any) -> None:
        kwargs.setdefault("pool", config.SPARK_POOL)
        super().__init__(
            application=str(steps.get(module).application),
            application_args=args,
            conn_id=config.SPARK_CONN_ID,
            name=f"reco-{module}",
            **kwargs,
        )
        self.module = module

    def execute(self, context: Any) -> str:
        argv = [str(a) for a in self.application_args or []]
        try:
            return self.run_step(context, argv)
        except BaseException as exc:  # AirflowTaskTimeout is not an Exception
            if timeouts.is_timeout(exc):
                run_dir = run_dir_of(argv)
                timeouts.on_timeout(self.task_id, run_dir, exc, self.execution_timeout)
                if self._hook is not None:  # a spark-submit: stop its driver too
                    self.on_kill()
            raise

    def run_step(self, context: Any, argv: list[str]) -> str:
        master = spark_master(self._conn_id)
        if is_local(master):
            return run_spark_step(self.module, argv)
        from airflow.sdk import BaseHook

        settings = submit_settings(BaseHook.get_connection(self._conn_id).extra_dejson)
        self.conf = submit_conf(settings.pop("conf"))
        for key, value in settings.items():
            setattr(self, f"_{key}", value)
        self.application_args = argv
        try:
            super().execute(context)
        except Exception as exc:
            found = re.search(r"[Ee]rror code is: (-?\d+)", str(exc))
            raise step_failure(self.module, argv, int(found.group(1)) if found else None) from exc
        return "ok"
