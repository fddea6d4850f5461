"""``reco run`` speaks to a person: live progress per step on a terminal, plain timestamped
lines in a pipe, Airflow's and Spark's own lines in the run's log file, and a summary that
points to it. Real runs on small synthetic data, the way a person starts them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reco import config
from reco.data.synthetic import SyntheticSpec, write_dataset
from reco.runs import RunFolder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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
    "--top-n",
    "5",
    "--gate-tolerance",
    "0.5",
]
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


def split_summary(out: str) -> tuple[str, str]:
    body, rule, summary = out.partition("\n" + "=" * 72 + "\n")
    assert rule, f"no summary:\n{out}"
    return body, summary


def log_path(summary: str) -> Path:
    m = re.search(r"^  log +: (\S+)$", summary, re.M)
    assert m, summary
    return Path(m.group(1))


@pytest.fixture(scope="module")
def plain_run(dataset: Path, warehouse_url: str) -> subprocess.CompletedProcess:
    """A whole run with its output in a pipe (as in CI)."""
    proc = reco_run("--dataset", str(dataset), *QUICK)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_plain_lines_one_per_step_then_the_summary_and_airflows_lines_in_the_log(
    plain_run: subprocess.CompletedProcess,
) -> None:
    body, summary = split_summary(plain_run.stdout)
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

    run_id = re.search(r"^recommendations run (\S+): success$", summary, re.M).group(1)
    log = log_path(summary)
    assert log == RunFolder.of(run_id).log
    text = log.read_text(encoding="utf-8", errors="replace")
    for marker in LOG_ONLY:
        assert marker in text, marker
        assert marker not in plain_run.stdout and marker not in plain_run.stderr, marker
    assert "[DAG TEST] starting task_id=train" in text
    assert "Closing down clientserver connection" not in plain_run.stderr  # py4j's exit line


@dataclass
class Frame:
    at: float  # seconds since the process started
    text: str


def run_in_pty(argv: list[str], cols: int = 120, rows: int = 50) -> tuple[int, list[Frame]]:
    """Run ``argv`` on a pseudo-terminal of ``cols`` x ``rows``; every distinct screen it
    draws (as a VT100 terminal shows it, through pyte), with its time."""
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
        else:
            os.killpg(proc.pid, signal.SIGTERM)
    finally:
        os.close(master)
    return proc.wait(timeout=60), frames


def test_the_terminal_view_under_a_pseudo_terminal(
    dataset: Path, plain_run: subprocess.CompletedProcess
) -> None:
    code, frames = run_in_pty([RECO, "run", "--dataset", str(dataset), *QUICK])
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
