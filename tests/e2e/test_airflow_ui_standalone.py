"""`make airflow` (``reco airflow-ui``): the UI login is on, with a generated password it
prints that works and that no project file holds; and it stops every process it started:
on SIGTERM (a service manager, CI), on SIGINT (Ctrl-C), and a restart after ``kill -9`` of
the wrapper first stops what the killed one left running (it held the UI and log-server
ports).

One test, three ``airflow standalone`` starts in sequence: each takes 30-60 s here."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from reco import config
from reco.cli import environment
from reco.orchestration.standalone import pid_file
from tests.support.servers import (
    alive,
    background,
    free_port,
    kill_all,
    process_tree,
    session_processes,
    tail,
    wait_for,
)

COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server", "LocalExecutor worker")
# The wrapper waits 30 s after SIGTERM, then SIGKILLs and waits up to 20 s more.
STOP_BOUND = 60.0


def component(proc: psutil.Process) -> str | None:
    """Which standalone component ``proc`` is, from its command line (setproctitle'd or
    not): "airflow api_server -- host:...", ".../bin/airflow scheduler", ..."""
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return None
    if re.search(r"airflow worker -- LocalExecutor", cmdline):
        return "LocalExecutor worker"
    match = re.search(r"airflow (scheduler|dag-processor|triggerer|api[-_]server)\b", cmdline)
    return match.group(1).replace("_", "-") if match else None


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for proc in procs:
        try:
            out.append(f"{proc.pid} {proc.status()} {proc.name()} {' '.join(proc.cmdline())[:100]}")
        except psutil.Error:
            out.append(f"{proc.pid} (gone)")
    return out


class Airflow:
    """The starts of one test: where they log, and every process and session seen, so the
    test cleans them up even when it fails."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = environment.project_env()
        self.env["AIRFLOW__API__BASE_URL"] = self.base
        # Own log-server ports: another Airflow on this machine must not hold 8793/8794.
        self.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        self.env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
        self.argv = [str(Path(sys.executable).parent / "reco"), "airflow-ui"]
        self.argv += ["--port", str(self.port)]
        self.seen: set[psutil.Process] = set()
        self.sessions: set[int] = set()
        self.reports: list[str] = []  # what each stop printed

    def up(self, reco: subprocess.Popen, log: Path) -> list[psutil.Process]:
        """Wait until the api-server answers and every component runs; the process tree."""

        def standalone_started() -> bool:
            # `airflow standalone` leads a session of its own; note it for the clean-up
            leaders = [
                p.pid for p in psutil.Process(reco.pid).children() if os.getsid(p.pid) == p.pid
            ]
            self.sessions.update(leaders)
            return bool(leaders)

        wait_for(standalone_started, 120, "airflow standalone", [log])
        wait_for(
            lambda: httpx.get(f"{self.base}/api/v2/monitor/health", timeout=5).status_code == 200,
            300,
            "the api-server",
            [log],
        )

        def all_components() -> bool:
            tree = process_tree(reco.pid)
            self.seen.update(tree)
            return set(COMPONENTS) <= {component(p) for p in tree}

        wait_for(all_components, 180, f"all of {COMPONENTS}", [log])
        tree = process_tree(reco.pid)
        self.seen.update(tree)
        # the pid file names the standalone's process group, for a restart after kill -9
        (standalone,) = psutil.Process(reco.pid).children()
        assert int(pid_file().read_text()) == standalone.pid
        assert os.getpgid(standalone.pid) == standalone.pid
        return tree

    def stop(self, reco: subprocess.Popen, sig: signal.Signals, log: Path) -> float:
        """Signal the wrapper; it must exit 0 within the bound, leaving nothing behind."""
        tree = process_tree(reco.pid)
        self.seen.update(tree)
        assert len(tree) > 10, describe(tree)
        started = time.monotonic()
        reco.send_signal(sig)
        try:
            reco.wait(timeout=STOP_BOUND)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"reco airflow-ui still runs {STOP_BOUND:.0f} s after {sig.name}"
            ) from None
        took = time.monotonic() - started
        printed = log.read_text(errors="replace")
        assert reco.returncode == 0, printed[-2000:]
        assert f"Airflow stopped (on {sig.name};" in printed, printed[-2000:]
        self.reports += [line for line in printed.splitlines() if "Airflow stopped" in line]
        left = alive(tree)
        assert not left, f"still running after {sig.name}: {describe(left)}\n{tail(log, 15)}"
        assert not pid_file().exists()
        return took

    def cleanup(self) -> list[str]:
        procs = list(self.seen)
        for sid in self.sessions:
            procs += session_processes(sid)
        return kill_all(procs)


def check_login(base: str, printed: str, port: int) -> str:
    """The printed login works over the API; the password, which it returns, is generated."""
    match = re.search(r"login: (\S+)\s+password: (\S+)", printed)
    assert match, printed[-2000:]
    user, password = match.groups()
    assert user == "admin" and password != "admin" and len(password) >= 12
    assert f"Airflow UI: http://localhost:{port}" in printed
    assert httpx.get(f"{base}/api/v2/dags", timeout=30).status_code == 401
    token = httpx.post(
        f"{base}/auth/token", json={"username": user, "password": password}, timeout=30
    )
    assert token.status_code == 201, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    wait_for(
        lambda: (
            httpx.get(
                f"{base}/api/v2/dags/recommendations", headers=headers, timeout=30
            ).status_code
            == 200
        ),
        240,
        "the DAGs to be parsed",
    )
    return password


def test_airflow_ui_logs_in_then_stops_every_process_on_sigterm_sigint_and_after_kill_9(
    tmp_path: Path,
) -> None:
    environment.init_airflow()
    af = Airflow(tmp_path)
    timings: dict[str, float] = {}
    try:
        # 1. SIGTERM, as a service manager or CI stops it.
        log = tmp_path / "sigterm.log"
        started = time.monotonic()
        with background(af.argv, log, af.env) as reco:
            af.up(reco, log)
            timings["start 1"] = time.monotonic() - started
            wait_for(lambda: "password:" in log.read_text(errors="replace"), 60, "the login")
            password = check_login(af.base, log.read_text(errors="replace"), af.port)
            timings["stop on SIGTERM"] = af.stop(reco, signal.SIGTERM, log)

        # 2. kill -9 of the wrapper: it cannot clean up, Airflow keeps running.
        log = tmp_path / "kill9.log"
        started = time.monotonic()
        with background(af.argv, log, af.env) as reco:
            killed_tree = af.up(reco, log)
            timings["start 2"] = time.monotonic() - started
            old_sid = int(pid_file().read_text())
            reco.kill()
            reco.wait(timeout=10)
            orphans = alive(killed_tree)
            assert set(COMPONENTS) <= {component(p) for p in orphans}, describe(orphans)

        # 3. The next start stops those first, then comes up on the same ports.
        log = tmp_path / "restart.log"
        started = time.monotonic()
        with background(af.argv, log, af.env) as reco:
            wait_for(
                lambda: "left running by an earlier `reco airflow-ui`" in log.read_text(),
                120,
                "the clean-up of the killed run",
                [log],
            )
            timings["clean-up after kill -9"] = time.monotonic() - started
            printed = log.read_text(errors="replace")
            assert f"(process group {old_sid}" in printed, printed[-2000:]
            af.reports += [line for line in printed.splitlines() if "earlier" in line]
            left = alive(killed_tree)
            assert not left, f"the killed run's processes still run: {describe(left)}"
            af.up(reco, log)
            timings["start 3"] = time.monotonic() - started
            # Its own pid file replaced the stale one.
            assert int(pid_file().read_text()) != old_sid
            timings["stop on SIGINT"] = af.stop(reco, signal.SIGINT, log)
    finally:
        leftovers = af.cleanup()
        print("timings (s):", {k: round(v, 1) for k, v in timings.items()}, *af.reports)
    assert not leftovers, f"left running (now killed): {leftovers}"
    # The generated password lives in the local Airflow home, never in the project files.
    password_file = config.AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    assert password in password_file.read_text()
    root = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked
    assert not any(password in (root / p).read_text(errors="ignore") for p in tracked)
