"""Finding and stopping the processes of an ``airflow standalone`` session, on real
processes (no Airflow needed: any session with the marker will do)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from reco import config
from reco.orchestration import standalone

SLEEPER = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
)


def start_session(marked: bool) -> subprocess.Popen:
    env = dict(os.environ)
    if marked:
        env[standalone.MARKER] = str(config.AIRFLOW_HOME)
    else:
        env.pop(standalone.MARKER, None)
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], env=env, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the leader and its child
        if len(standalone.session_processes(proc.pid, check=False, known=set())[0]) == 2:
            break
        time.sleep(0.1)
    return proc


def test_a_marked_session_is_found_and_stopped_whole() -> None:
    proc = start_session(marked=True)
    pids, marked = standalone.session_processes(proc.pid, check=True, known=set())
    assert marked and proc.pid in pids and len(pids) == 2
    found, killed = standalone.stop(proc.pid, timeout=5)
    assert (found, killed) == (2, 0)  # both ended on SIGTERM
    proc.wait(timeout=5)
    assert standalone.session_processes(proc.pid, check=False, known=set())[0] == []


def test_a_session_without_the_marker_is_never_signalled() -> None:
    proc = start_session(marked=False)
    try:
        assert standalone.stop(proc.pid, timeout=1) == (0, 0)
        assert proc.poll() is None  # still running: not ours to stop
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=5)
