"""``reco run`` speaks to a person: live progress per step on a terminal, plain timestamped
lines in a pipe, Airflow's and Spark's own lines in the run's log file, and a summary that
points to it, each figure of which is the warehouse's; the query it prints runs as
printed, and ``reco runs`` lists the run. Real runs on small synthetic data, the way a
person starts them: the piped run is ``make run``, as the README says."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest

from reco import config
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.runs import RunFolder
from tests.support.run_output import split_summary, summary_field
from tests.support.warehouse_state import (
    describe,
    fetch,
    names,
    published_state,
    session_processes,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RECO = str(Path(sys.executable).parent / "reco")
TASKS = ("prepare", "ingest", "validate", "train", "recommend", "publish", "record_quality")
TASKS += ("report",)
# A 2-fold CV of one ALS and one EASE candidate: 4 fits, enough to see the counter move.
QUICK = [
    "--folds",
    "2",
    "--grid",
    json.dumps({"rank": [8], "regParam": [0.3], "maxIter": [8]}),
    "--ranking-grid",
    json.dumps({"rank": [16], "regParam": [0.3], "alpha": [1.0], "maxIter": [6]}),
    "--ease-grid",
    json.dumps({"lambda": [20.0]}),
    "--gate-tolerance",
    "0.5",
    # This batch may be smaller than one an earlier test ran on this worker (ML-100K).
    "--max-row-drop",
    "1",
]
TOP_N = 5
RUN_TIMEOUT = 900
STAMP = r"\d\d:\d\d:\d\d"
ENDED = r"success|failed|skipped|upstream_failed|up_for_retry"
# What only Airflow's structured log and Spark's JVM write.
LOG_ONLY = ("[info     ]", "Task instance state updated", "correlation_id=", "jdk.incubator")
SCREENS = config.VAR_DIR / "screens"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("progress-data")
    write_dataset(d, SyntheticSpec(n_users=80, n_items=120, mean_ratings_per_user=20, seed=19))
    return d


def reco_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RECO, "run", *args], capture_output=True, text=True, timeout=RUN_TIMEOUT)


def reco_run_argv(dataset: Path) -> list[str]:
    """``reco run`` as the piped run's ``make run`` starts it."""
    return [RECO, "run", "--dataset", str(dataset), "--top-n", str(TOP_N), *QUICK]


def log_path(summary: str) -> Path:
    m = re.search(r"^  log +: (\S+)$", summary, re.M)
    assert m, summary
    return Path(m.group(1))


@dataclass
class PlainRun:
    proc: subprocess.CompletedProcess
    body: str  # the progress lines, after make's echo of the command
    summary: str
    run_id: str


@pytest.fixture(scope="module")
def plain_run(dataset: Path, warehouse_url: str) -> PlainRun:
    """``make run DATASET=... TOP_N=... RUN_ARGS=...`` from the project folder, its output
    in a pipe (as in CI). The make target's ``reco`` reads RECO_VAR_DIR and AIRFLOW_HOME,
    so it runs on the test state."""
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "run",
            f"DATASET={dataset}",
            f"TOP_N={TOP_N}",
            f"RUN_ARGS={shlex.join(QUICK)}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    echo, _, rest = proc.stdout.partition("\n")
    assert f'reco run --dataset "{dataset}" ' in echo, echo  # make shows the command it runs
    body, summary = split_summary(rest)
    m = re.search(r"^recommendations run (\S+): success$", summary, re.M)
    assert m, summary
    return PlainRun(proc, body, summary, m.group(1))


def test_plain_lines_one_per_step_then_the_summary_and_airflows_lines_in_the_log(
    plain_run: PlainRun,
) -> None:
    body, summary = plain_run.body, plain_run.summary
    lines = body.strip().splitlines()
    assert all(re.match(rf"{STAMP} ", line) for line in lines), body
    ends = re.findall(rf"^{STAMP} (\w+) +({ENDED})\b", body, re.M)
    assert sorted(task for task, _ in ends) == sorted(TASKS), body  # one line per task
    states = dict(ends)
    assert {t for t, s in states.items() if s != "success"} <= {"publish"}  # publish: or skipped
    assert len(re.findall(rf"^{STAMP} \w+ +running\b", body, re.M)) == len(TASKS)
    # Inside train: the CV counter, from the timing line of each fit.
    for k in range(1, 5):
        assert re.search(rf"^{STAMP} train +· CV fit {k}/4: ", body, re.M), body

    log = log_path(summary)
    assert log == RunFolder.of(plain_run.run_id).log
    text = log.read_text(encoding="utf-8", errors="replace")
    for marker in LOG_ONLY:
        assert marker in text, marker
        assert marker not in plain_run.proc.stdout and marker not in plain_run.proc.stderr
    assert "[DAG TEST] starting task_id=train" in text
    # py4j's exit line
    assert "Closing down clientserver connection" not in plain_run.proc.stderr


def test_the_summary_says_what_the_warehouse_holds(
    plain_run: PlainRun, dataset: Path, warehouse_url: str
) -> None:
    """Ratings ingested, rows and users published, RMSE and nDCG@N beside their baselines:
    each figure the summary prints is the one in reco.model_runs and reco.recommendations."""
    summary = plain_run.summary
    (run,) = fetch(
        warehouse_url,
        "SELECT status, model_version, n_ratings, n_published, metrics FROM reco.model_runs "
        "WHERE run_id = %s ORDER BY attempt DESC LIMIT 1",
        (plain_run.run_id,),
    )
    status, version, n_ratings, n_published, metrics = run
    assert status == "published"
    ratings = pd.read_csv(dataset / "ratings.csv")

    ingested = re.fullmatch(
        r"([\d,]+) \(([\d,]+) rejected\) from (\S+)", summary_field(summary, "ratings ingested")
    )
    assert ingested, summary
    assert int(ingested[1].replace(",", "")) == n_ratings == len(ratings)
    assert ingested[2] == "0" and Path(ingested[3]) == dataset / "ratings.csv"

    published = re.fullmatch(
        r"([\d,]+) rows for ([\d,]+) users, model (\S+)", summary_field(summary, "published")
    )
    assert published, summary
    ((rows, users, versions),) = fetch(
        warehouse_url,
        "SELECT count(*), count(DISTINCT user_id), array_agg(DISTINCT model_version) "
        "FROM reco.recommendations",
    )
    assert int(published[1].replace(",", "")) == rows == n_published == users * TOP_N
    assert int(published[2].replace(",", "")) == users == ratings["userId"].nunique()
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
        rf"(\S+) \(precision@{TOP_N} (\S+)\); most-popular nDCG@{TOP_N} (\S+)",
        summary_field(summary, f"ranking nDCG@{TOP_N}"),
    )
    assert ranking, summary
    assert ranking.groups() == tuple(
        f"{v:.4f}"
        for v in (metrics["ndcg_at_k"], metrics["precision_at_k"], base["most_popular"]["ndcg"])
    )
    assert metrics["ndcg_at_k"] > base["most_popular"]["ndcg"]

    folder = RunFolder.of(plain_run.run_id)
    report = Path(summary_field(summary, "report"))
    assert report == config.REPORTS_DIR / f"{folder.path.name}.html"
    assert plain_run.run_id in report.read_text(encoding="utf-8")
    assert Path(summary_field(summary, "log")) == folder.log and folder.log.is_file()
    data_docs = Path(summary_field(summary, "data docs"))
    assert data_docs.is_file() and data_docs.name == "index.html"


@pytest.mark.skipif(shutil.which("psql") is None, reason="the printed query calls psql")
def test_the_query_the_summary_prints_runs_as_printed(plain_run: PlainRun, warehouse_url) -> None:
    """The ``query`` line pasted into a shell in the project folder: user 1's list."""
    command = summary_field(plain_run.summary, "query")
    shell = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert shell.returncode == 0, shell.stderr
    expected = fetch(
        warehouse_url,
        "SELECT rank, title, source FROM reco.recommend(1, 10) ORDER BY rank",
    )
    # The run published TOP_N personalised items per user: the query's 10 asks for more.
    assert len(expected) == TOP_N and {r[2] for r in expected} == {"personalised"}
    shown = [
        [cell.strip() for cell in line.split("|")]
        for line in shell.stdout.splitlines()
        if re.match(r"^ +\d+ \|", line)
    ]
    assert [(int(r[0]), r[1], r[2]) for r in shown] == expected, shell.stdout
    assert f"({TOP_N} rows)" in shell.stdout


def test_reco_runs_lists_the_latest_runs_of_the_warehouse(plain_run: PlainRun, warehouse_url):
    proc = subprocess.run(
        [RECO, "runs", "--limit", "3"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = fetch(
        warehouse_url,
        "SELECT run_id, attempt, status, metrics->>'rmse', n_published FROM reco.model_runs "
        "ORDER BY started_at DESC LIMIT 3",
    )
    assert len(lines) == len(expected) >= 1, proc.stdout
    assert expected[0][0] == plain_run.run_id  # the newest first
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
    published_rows = summary_field(plain_run.summary, "published").split(" rows ")[0]
    assert first and first.groups() == ("published", published_rows)


@dataclass
class Frame:
    at: float  # seconds since the process started
    text: str


def run_in_pty(
    argv: list[str],
    cols: int = 120,
    rows: int = 50,
    on_screen: Callable[[subprocess.Popen, Frame], None] | None = None,
) -> tuple[int, list[Frame]]:
    """Run ``argv`` on a pseudo-terminal of ``cols`` x ``rows``, in a session and process
    group of its own (as a shell starts a job); every distinct screen it draws (as a VT100
    terminal shows it, through pyte), with its time. ``on_screen(process, frame)`` sees
    each new screen as it is drawn (to act on the process, as a person at the terminal)."""
    import pyte

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"):
        env.pop(name, None)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    frames: list[Frame] = []
    try:
        while time.monotonic() - t0 < RUN_TIMEOUT:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last process has exited
                break
            if not data:
                break
            stream.feed(data)
            text = "\n".join(line.rstrip() for line in screen.display).rstrip()
            if not frames or text != frames[-1].text:
                frames.append(Frame(time.monotonic() - t0, text))
                if on_screen is not None:
                    on_screen(proc, frames[-1])
        else:
            os.killpg(proc.pid, signal.SIGTERM)
    finally:
        os.close(master)
    return proc.wait(timeout=60), frames


def test_the_terminal_view_under_a_pseudo_terminal(dataset: Path, plain_run: PlainRun) -> None:
    code, frames = run_in_pty(reco_run_argv(dataset))
    final = frames[-1].text
    # A frame is the screen after each chunk read from the terminal, so some catch a redraw
    # halfway: the screen during train is the first one drawn whole (its footer included).
    in_train = [f for f in frames if re.search(r"train .* CV fits [1-3]/4", f.text)]
    during = next((f for f in in_train if "step 4/8" in f.text), in_train[0] if in_train else None)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shown = [("during train", during), ("at the end", frames[-1])]
    captured = "\n\n".join(
        f"--- the terminal {name}, {f.at:.0f} s after the start ---\n{f.text}"
        for name, f in shown
        if f is not None
    )
    (SCREENS / "reco-run-terminal.txt").write_text(captured + "\n", encoding="utf-8")
    print(captured)
    gaps = [(b.at - a.at, a.at) for a, b in zip([Frame(0.0, ""), *frames], frames, strict=False)]
    longest, when = max(gaps)
    print(
        f"--- {len(frames)} screens in {frames[-1].at:.0f} s; the longest without a change: "
        f"{longest:.1f} s, from {when:.0f} s after the start"
    )

    assert code == 0, final
    # The screen never stood still for long: the live block redraws itself.
    assert longest < 5.0, f"{longest:.1f} s without a change, from {when:.0f} s"
    assert during is not None, "no screen showed train's CV counter"
    assert re.search(r"━", during.text) and "step 4/8" in during.text, during.text
    # One line per step as it ends, then the summary; none of Airflow's or Spark's lines.
    for task in TASKS:
        assert re.search(rf"^[✓↷] {task} ", final, re.M), f"{task} missing:\n{final}"
    assert re.search(r"^recommendations run \S+: success$", final, re.M)
    assert log_path(final).is_file()
    # The plain run before it was the same work on the same data: the estimate.
    assert "earlier runs like this one took about" in final
    for frame in frames:
        for marker in LOG_ONLY:
            assert marker not in frame.text, f"{marker!r} on the terminal:\n{frame.text}"


def test_a_failed_run_names_the_step_and_why_and_points_to_the_log(
    tmp_path: Path, warehouse_url: str
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = [f"u{i},m{i},good,not-a-time" for i in range(40)]
    (bad / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(lines))
    proc = reco_run("--dataset", str(bad), "--folds", "0")
    print(proc.stdout)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    body, summary = split_summary(proc.stdout)
    assert re.search(rf"^{STAMP} ingest +failed [^:]+: \[ingest\] no usable ratings", body, re.M)
    for task in ("validate", "train", "recommend", "publish", "report"):
        assert re.search(rf"^{STAMP} {task} +upstream_failed$", body, re.M), body
    assert "FAILED (state: failed)" in summary
    assert re.search(r"^  failed at ingest: no usable ratings in .*all 40 lines", summary, re.M)
    log = log_path(summary)
    assert log.is_file() and log.name == "run.log"
    assert "Task failed with exception" in log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_verbose_streams_airflows_and_sparks_lines_instead_of_the_log_file(
    tmp_path: Path, warehouse_url: str
) -> None:
    """``reco run --verbose``: Airflow's and Spark's own lines on the terminal as they come,
    no run.log and no progress lines; the summary still ends the output. A run on data that
    ingest refuses is enough: Airflow has run a task and Spark has started by then."""
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = [f"u{i},m{i},good,not-a-time" for i in range(40)]
    (bad / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(lines))
    proc = reco_run("--verbose", "--dataset", str(bad), "--folds", "0")
    print(proc.stdout[-3000:])
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    shown = proc.stdout + proc.stderr
    for marker in LOG_ONLY:
        assert marker in shown, marker
    assert "[DAG TEST] starting task_id=ingest" in shown
    body, summary = split_summary(proc.stdout)
    assert not re.search(rf"^{STAMP} \w+ +(running|success|failed)\b", body, re.M), body[-3000:]
    run_id = re.search(r"^recommendations run (\S+) FAILED \(state: failed\)", summary, re.M)
    assert run_id, summary
    assert re.search(r"^  failed at ingest: no usable ratings in .*all 40 lines", summary, re.M)
    assert not re.search(r"^  log +:", summary, re.M), summary
    folder = RunFolder.of(run_id.group(1))
    assert folder.path.is_dir() and not folder.log.exists()


def test_ctrl_c_stops_the_run_and_leaves_nothing_behind(dataset: Path, warehouse_url: str) -> None:
    """The footer says "Ctrl-C stops the run": Ctrl-C as a terminal sends it (SIGINT to the
    job's process group: the reco process and the Spark driver's JVM), pressed as ingest's
    end shows, with Spark's driver up. The press lands between two steps or early in
    validate, where PySpark's toPandas() once turned it into an ordinary failure that was
    retried, and the run went on to the end (reco/interrupts.py)."""
    before = published_state(warehouse_url)
    pressed: dict[str, object] = {}

    def press_ctrl_c(proc: subprocess.Popen, frame: Frame) -> None:
        if pressed or not re.search(r"^✓ ingest +\d", frame.text, re.M):
            return
        processes = session_processes(proc.pid)
        if "java" in names(processes):
            pressed.update(frame=frame, sid=proc.pid, processes=processes)
            os.killpg(proc.pid, signal.SIGINT)

    code, frames = run_in_pty(reco_run_argv(dataset), cols=220, on_screen=press_ctrl_c)
    final = frames[-1].text
    print(final)
    assert pressed, f"ingest never ended on the screen with Spark's driver up:\n{final}"
    at_press: Frame = pressed["frame"]  # type: ignore[assignment]
    running: list[psutil.Process] = pressed["processes"]  # type: ignore[assignment]
    assert "Ctrl-C stops the run" in at_press.text, at_press.text
    assert "java" in names(running), describe(running)  # Spark's driver

    assert code == 130, final
    m = re.search(r"^reco run interrupted; the log is (\S+)$", final, re.M)
    assert m, final
    log = Path(m.group(1))
    assert log.is_file() and log.name == "run.log" and log.parent.parent == config.RUNS_DIR
    assert not re.search(r"^✓ (validate|train|publish) ", final, re.M), final  # stopped there
    assert not re.search(r"^↻ ", final, re.M), final  # an interrupted step is not retried
    # What the driver's shutdown prints goes to the log, not under the last step.
    assert "clientserver" not in final and "Spark driver JVM" not in final, final
    assert "recommendations run" not in final  # no summary of a run that did not end

    # Nothing of the run keeps going: the Spark JVM and every other process of the job end.
    _, alive = psutil.wait_procs(running, timeout=30)
    left = alive + [p for p in session_processes(pressed["sid"]) if p not in alive]
    assert not left, f"left running after Ctrl-C: {describe(left)}"
    assert published_state(warehouse_url) == before
