"""A long-lived process whose Spark driver JVM dies (the OOM killer, a fatal JVM error)
gets a new driver at its next step, not py4j's bare "Connection refused" at every step
after. Run in a process of its own: killing the test session's driver would take the
shared ``spark`` fixture with it."""

from __future__ import annotations

import json
import subprocess
import sys

from reco import config

SCRIPT = """
import json, os, signal
from reco import spark as reco_spark
from reco.spark import get_spark

first = get_spark("reco-test-driver", master="local[1]")
assert first.range(5).count() == 5
old = first.sparkContext._gateway.proc
os.kill(old.pid, signal.SIGKILL)
old.wait(timeout=30)

second = get_spark("reco-test-driver", master="local[1]")
print(json.dumps({
    "count": second.range(7).count(),
    "old_pid": old.pid,
    "new_pid": second.sparkContext._gateway.proc.pid,
    "dead": [(d.pid, d.exit_code) for d in reco_spark.DEAD_DRIVERS],
}))
second.stop()
"""


def test_a_killed_driver_is_replaced_at_the_next_session() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=config.PROJECT_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["count"] == 7
    assert out["new_pid"] != out["old_pid"]
    assert out["dead"] == [[out["old_pid"], -9]]
    assert f"driver JVM (pid {out['old_pid']}) had exited with code -9" in proc.stderr
