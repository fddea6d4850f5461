"""``airflow standalone`` behind ``reco airflow-ui``: its session, and stopping every process
of it (scheduler, triggerer, api-server, dag-processor, executor workers), also after the
``reco airflow-ui`` that started it was killed hard."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from reco import config

DEAD = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)

# Every process `reco airflow-ui` starts inherits this variable, set to the Airflow home it
# serves: a restart stops only processes that carry it, never an unrelated process that
# happens to reuse a recorded id.
MARKER = "RECO_AIRFLOW_UI_HOME"
STOP_TIMEOUT = 30.0  # seconds between SIGTERM and SIGKILL
# For what a killed `reco airflow-ui` left running: nothing waits on that Airflow any more,
# and a new start waits on this. Seen in the restart test: 41 processes, most gone within
# seconds, sometimes 32 still there after 30 s and killed.
STALE_STOP_TIMEOUT = 10.0


def pid_file() -> Path:
    """Holds the process group (= session) id of the running ``airflow standalone``."""
    return config.AIRFLOW_HOME / "reco-airflow-ui.pid"


def session_processes(sid: int, *, check: bool, known: set[str]) -> tuple[list[int], bool]:
    """Live processes of session ``sid``, and whether one of them carries our marker: the
    session, not the group, as Airflow runs each task in a process group of its own, in the
    same session.

    With ``check`` (a session recorded by an earlier run) only processes with the marker
    in their environment or, as ``setproctitle`` (executor workers, api-server) overwrites
    that, "airflow" in their command line; or in ``known`` ("pid create-time" keys this
    adds to), as an exiting process no longer shows either but may still hold its ports.
    """
    found: list[int] = []
    marked = False
    home = str(config.AIRFLOW_HOME)
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if os.getsid(proc.pid) != sid or proc.status() in DEAD:
                continue
            key = f"{proc.pid} {proc.create_time()}"
        except (psutil.Error, OSError):
            continue  # exited meanwhile
        try:
            environ, cmdline = proc.environ(), " ".join(proc.cmdline())
        except psutil.Error:  # exiting: in our own session, count it until it is a zombie
            environ, cmdline = {}, ""
        if environ.get(MARKER) == home:
            marked = True
        elif check and "airflow" not in cmdline and key not in known:
            continue
        known.add(key)
        found.append(proc.pid)
    return found, marked


def stop(
    sid: int,
    *,
    leader: subprocess.Popen | None = None,
    timeout: float = STOP_TIMEOUT,
    received: list[int] | None = None,
    patience: int = 0,
) -> tuple[int, int]:
    """SIGTERM every process of an ``airflow standalone`` session, wait up to ``timeout``
    (less once ``received``, the signals a handler appends to, holds more than
    ``patience``: a second Ctrl-C), then SIGKILL the rest.

    ``leader``: our own ``airflow standalone`` child, the session leader; without it (a
    session recorded by an earlier run) nothing is signalled unless a process of the
    session carries our marker, and then only the processes that pass the check.
    Returns (processes found, processes that had to be killed).
    """
    received = [] if received is None else received
    check = leader is None
    known: set[str] = set()
    pids, marked = session_processes(sid, check=check, known=known)
    if check and not marked:
        return 0, 0
    found = len(pids)

    def signal_all(sig: int) -> list[int]:
        if leader is not None and leader.returncode is None:
            # an unreaped child leads the group: no other process can hold its id
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sid, sig)
        pids = session_processes(sid, check=check, known=known)[0]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pids

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(received) <= patience:
        if not session_processes(sid, check=check, known=known)[0]:
            return found, 0
        time.sleep(0.2)
    killed = len(signal_all(signal.SIGKILL))
    deadline = time.monotonic() + 20  # a loaded machine takes seconds to tear one down
    while time.monotonic() < deadline and signal_all(signal.SIGKILL):
        time.sleep(0.2)
    left = session_processes(sid, check=check, known=known)[0]
    if left:  # killed but not torn down yet (uninterruptible I/O): say so, do not hang
        print(
            f"warning: Airflow processes {left} have not exited 20 s after SIGKILL", file=sys.stderr
        )
    return found, killed


def stop_stale(received: list[int] | None = None) -> None:
    """A ``reco airflow-ui`` killed hard (kill -9) leaves its Airflow running, holding the
    UI and log-server ports; stop what its pid file names, only if it carries our marker."""
    path = pid_file()
    if not path.exists():
        return
    try:
        sid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        sid = 0
    found, killed = stop(sid, received=received, timeout=STALE_STOP_TIMEOUT) if sid > 1 else (0, 0)
    if found:
        how = f", {killed} with SIGKILL after {STALE_STOP_TIMEOUT:.0f} s" if killed else ""
        print(
            f"stopped {found} Airflow processes left running by an earlier `reco airflow-ui` "
            f"(process group {sid}{how})",
            flush=True,
        )
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM and SIGHUP recorded in the list yielded, not raised, while
    ``reco airflow-ui`` starts and serves; the previous handlers afterwards."""
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def login_file() -> Path:
    """Where Airflow's simple auth manager writes the generated passwords."""
    return config.AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"


def show_login(port: str) -> bool:
    """Print the URL and the generated logins once Airflow has written them; whether it
    had."""
    path = login_file()
    if not path.exists() or path.stat().st_size <= 2:
        return False
    logins = json.loads(path.read_text())
    lines = ["", "=" * 72, f"Airflow UI: http://localhost:{port}"]
    lines += [f"  login: {user}   password: {password}" for user, password in logins.items()]
    lines += [
        f"  (generated; kept in {path})",
        "  trigger the `recommendations` DAG from the UI; Ctrl-C stops Airflow",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)
    return True


def serve(env: dict[str, str], received: list[int], login_wait: float = 180) -> int:
    """Run ``airflow standalone`` in a session of its own until it exits or a stop signal
    lands in ``received`` (:func:`stop_signals`), showing the login once it exists; then
    stop that whole session (otherwise its scheduler, triggerer, api-server, dag-processor
    and executor workers outlive it). The exit code: 0 on a signal, else standalone's."""
    env = {**env, MARKER: str(config.AIRFLOW_HOME)}
    exe = Path(sys.executable).parent / "airflow"
    proc = subprocess.Popen([str(exe), "standalone"], env=env, start_new_session=True)
    path = pid_file()
    try:
        path.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + login_wait
        shown = False
        while not received and proc.poll() is None:
            if not shown and time.monotonic() < deadline:
                shown = show_login(env["AIRFLOW__API__PORT"])
            time.sleep(0.2)
    finally:
        found, killed = stop(proc.pid, leader=proc, received=received, patience=1)
        proc.wait()
        # unless a newer `reco airflow-ui` has taken the file over
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(path.read_text().split()[0]) == proc.pid:
                path.unlink()
        why = f"on {signal.Signals(received[0]).name}" if received else "standalone exited"
        how = f", {killed} with SIGKILL after {STOP_TIMEOUT:.0f} s" if killed else ""
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            print(
                f"Airflow stopped ({why}; {found} processes of group {proc.pid} ended{how})",
                flush=True,
            )
    if received:
        return 0
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
