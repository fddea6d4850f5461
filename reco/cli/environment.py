"""The environment the ``reco`` commands run in: Java, the project's Airflow settings and
local Airflow home (its metadata DB, the ``spark_default`` connection and the ``spark``
pool), a DAG run in-process (``dag.test``), and the commands that set these up or start
them: ``reco init``, ``reco airflow ...``, ``reco airflow-ui``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from reco import config
from reco.errors import PipelineError


def project_env() -> dict[str, str]:
    """Environment for Airflow and spark-submit: project settings + the venv on PATH."""
    env = dict(os.environ)
    env.update(
        {
            k: v
            for k, v in config.airflow_env().items()
            if k not in os.environ
            or k in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER")
        }
    )
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return env


def apply_project_env() -> None:
    os.environ.update(project_env())


def airflow(*argv: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "airflow"
    return subprocess.run(
        [str(exe), *argv], env=project_env(), check=check, capture_output=capture, text=True
    )


def init_airflow() -> None:
    """Migrate the metadata DB and make sure ``spark_default`` (local[*]) and the ``spark``
    pool exist; what an operator changed in either is kept."""
    config.AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    airflow("db", "migrate", capture=True)
    listed = airflow(
        "connections", "get", config.SPARK_CONN_ID, "-o", "json", check=False, capture=True
    )
    if listed.returncode != 0:
        airflow(
            "connections",
            "add",
            config.SPARK_CONN_ID,
            "--conn-type",
            "spark",
            "--conn-host",
            "local[*]",
            "--conn-description",
            "Spark master for the reco jobs: local[*] or spark://HOST:7077",
            capture=True,
        )
    if airflow("pools", "get", config.SPARK_POOL, check=False, capture=True).returncode != 0:
        airflow(
            "pools",
            "set",
            config.SPARK_POOL,
            str(config.SPARK_POOL_SLOTS),
            "Spark applications the reco DAGs run at once",
            capture=True,
        )


def metadata_db() -> str:
    """Which database Airflow's metadata is in, for the summary (never its password)."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return url.split(":", 1)[0].split("+", 1)[0] if url else "SQLite"


def check_java() -> str:
    """Spark 4 needs Java 17+; return the version line or raise naming the fix."""
    java = shutil.which(
        "java",
        path=(os.environ.get("JAVA_HOME", "") + "/bin") if os.environ.get("JAVA_HOME") else None,
    ) or shutil.which("java")
    fix = (
        "install a Java 17 or 21 runtime (Debian: apt-get install openjdk-17-jre-headless) "
        "and put it on PATH or set JAVA_HOME"
    )
    if not java:
        raise PipelineError(f"Java was not found: Spark 4 needs Java 17+; {fix}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True)
    line = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else ""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', line)
    major = int(m.group(1)) if m else 0
    if major == 1 and m and m.group(2):
        major = int(m.group(2))
    if major < 17:
        raise PipelineError(
            f"Java {major or '?'} found ({line.strip()}): Spark 4 needs Java 17+; {fix}"
        )
    return line.strip()


def load_dag(dag_id: str = "recommendations") -> Any:
    import importlib.util

    path = config.DAGS_DIR / f"{dag_id}.py"
    spec = importlib.util.spec_from_file_location(f"reco_dag_{dag_id}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.dag


def run_dag(conf: dict[str, Any], dag_id: str = "recommendations") -> tuple[str, str]:
    """Run the DAG once in-process (``dag.test``); returns ``(run_id, state)``."""
    apply_project_env()
    if not (config.AIRFLOW_HOME / "airflow.db").exists():
        init_airflow()
    # dag.test() runs are marked triggered_by=test: the task-times listener stores their
    # task times and renders the report again before dag.test() returns
    # (reco/reporting/run_end.py).
    dag = load_dag(dag_id)
    # Deadline Alerts are the scheduler's (a run in-process has no one to alert): Airflow
    # 3.3's dag.test() looks them up as if the DAG were serialized and fails on them.
    dag.deadline = None
    dr = dag.test(run_conf=conf)
    state = str(getattr(dr.state, "value", dr.state)) if dr is not None else "unknown"
    return (dr.run_id if dr is not None else ""), state


def cmd_init(args: argparse.Namespace) -> int:
    from reco.publishing import warehouse
    from reco.validation import data_docs_assets

    java = check_java()
    print(f"java: {java}")
    if not args.image:
        init_airflow()
        print(f"airflow home: {config.AIRFLOW_HOME} ({metadata_db()} metadata, examples off)")
        url = warehouse.resolve_url()
        warehouse.apply_schema(url)
        print(f"warehouse schema applied: {warehouse.describe(url)}")
    from reco import spark

    if spark.cds_enabled() and not spark.CDS_ARCHIVE.exists():
        if os.access(
            spark.CDS_ARCHIVE.parent if spark.CDS_ARCHIVE.parent.exists() else sys.prefix, os.W_OK
        ):
            print("spark driver class archive: building (about a minute, once) ...", flush=True)
            built = spark.build_cds_archive()
            print(
                f"spark driver class archive: {built}"
                if built
                else "spark driver class archive: not built (Spark starts without it, slower)"
            )
        else:
            print(
                f"spark driver class archive: not built ({sys.prefix} is not writable for this "
                "user; build it where the environment is installed: reco init --image)"
            )
    print(f"data docs assets (CSS/JS for offline Data Docs): {data_docs_assets.ensure_vendored()}")
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    exe = Path(sys.executable).parent / "airflow"
    os.execve(str(exe), [str(exe), *args.airflow_args], project_env())
    return 0  # not reached


def cmd_airflow_ui(args: argparse.Namespace) -> int:
    """``airflow standalone`` with the project's DAGs; prints the URL and the login, and
    stops every process of it on Ctrl-C, SIGTERM or SIGHUP (:mod:`reco.orchestration.
    standalone`)."""
    from reco.orchestration import standalone

    with standalone.stop_signals() as received:
        check_java()
        apply_project_env()
        standalone.stop_stale(received)
        if not received and not (config.AIRFLOW_HOME / "airflow.db").exists():
            init_airflow()
        if received:
            return 0
        env = project_env()
        env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
        env.setdefault("AIRFLOW__API__PORT", str(args.port))
        return standalone.serve(env, received)
