"""Start real servers (Spark standalone, Airflow components) for a test and stop them
again, with their logs kept for the failure message."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

# Ports handed out below the kernel's ephemeral range: a port of that range can be taken
# as the source port of an outgoing loopback connection between the pick and the listen.
# The compose stack listens minutes after its ports are picked (the images build first),
# and once failed with "bind: address already in use" on such a port.
LOWEST_PORT = 20_000


def first_ephemeral_port() -> int:
    """The lowest of the kernel's source ports for outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens on it, else a free loopback port below the
    ephemeral range (no outgoing connection takes it meanwhile), picked at random so that
    parallel test workers seldom pick the same one."""
    if preferred is not None and bindable(preferred):
        return preferred
    below = max(first_ephemeral_port(), LOWEST_PORT + 1000)
    pick = random.Random()
    for _ in range(200):
        port = pick.randrange(LOWEST_PORT, below)
        if bindable(port):
            return port
    with socket.socket() as s:  # that range is full: any free port
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} not written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(
    check: Callable[[], bool], timeout: float, what: str, logs: Sequence[Path] = ()
) -> None:
    """Poll ``check`` until it is true; on timeout fail naming ``what`` with the log tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001  (not up yet: connection refused, partial file...)
            pass
        time.sleep(1)
    shown = "\n".join(f"--- {p.name} ---\n{tail(p)}" for p in logs)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{shown}")


@contextmanager
def background(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run ``argv`` in its own process group, output to ``log``; stop the whole group on
    exit (SIGTERM, then SIGKILL after 20 s)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid``'s descendants (children, grandchildren, ...), as psutil handles: they keep
    telling a process from a later one that reuses its id."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def session_processes(sid: int) -> list[psutil.Process]:
    """Processes of session ``sid`` (what a ``start_new_session`` child and everything it
    started share, even after a parent died and the rest was re-parented)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def alive(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` still running; a zombie (ended, not reaped yet) counts as ended."""
    running = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
        except psutil.Error:
            continue
    return running


def kill_all(procs: Sequence[psutil.Process]) -> list[str]:
    """SIGKILL those of ``procs`` still running; their command lines, for the report."""
    killed = []
    for proc in alive(procs):
        try:
            killed.append(" ".join(proc.cmdline())[:120])
            proc.kill()
        except psutil.Error:
            continue
    return killed


def airflow_processes(home: Path) -> list[psutil.Process]:
    """Every Airflow process other than this one that runs with ``AIRFLOW_HOME=home``:
    Airflow's components and the task processes they started, whatever session they moved
    to. Only Airflow's own: the test warehouse PostgreSQL, started from the tests, has the
    same environment and must live on."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.environ().get("AIRFLOW_HOME") != str(home):
                continue
            if any("airflow" in Path(arg).name for arg in proc.cmdline()[:2]):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def stop_airflow(home: Path, sessions: Sequence[int] = (), timeout: float = 30.0) -> list[str]:
    """SIGKILL the processes of ``sessions`` and every Airflow process on ``home``, and
    wait until they are gone: a scheduler left on a metadata database fails the running
    tasks of later in-process ``dag.test`` runs as heartbeat-less."""
    procs = [p for sid in sessions for p in session_processes(sid)] + airflow_processes(home)
    killed = kill_all(procs)
    _, still = psutil.wait_procs(alive(procs), timeout=timeout)
    if still:
        raise RuntimeError(f"Airflow processes outlived SIGKILL: {[p.pid for p in still]}")
    return killed
