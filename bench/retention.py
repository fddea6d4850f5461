"""Disk use over 30 simulated daily runs, with retention and without.

Runs the pipeline once on ML-100K with ``reco run`` in a state folder of its own, so every
file a real run leaves exists at its real size: the run folder in the lake, the Great
Expectations Data Docs, the HTML report and the Spark event logs. Then simulates 30 daily
runs by copying those files under a new run key per day, dated a day apart, every
``--publish-every``-th run published; after each day it prunes as the ``maintenance`` DAG
does (``reco.maintenance.retention.prune`` with the default policy unless overridden) and
measures the disk use. The same 30 days without pruning give the unbounded figure.

Prints a markdown table and writes ``bench/results/retention.json``. Not part of the test
suite; ``python -m bench.retention`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(tempfile.mkdtemp(prefix="reco-bench-retention-"))
os.environ["RECO_VAR_DIR"] = str(STATE)  # before reco.config is imported
os.environ.pop("WAREHOUSE_URL", None)

from reco import config  # noqa: E402
from reco.maintenance import retention  # noqa: E402
from reco.publishing import warehouse  # noqa: E402

DAY = 86400.0


def one_real_run() -> str:
    cmd = [
        str(ROOT / ".venv" / "bin" / "reco"),
        "run",
        "--dataset",
        str(config.MOVIELENS_DIR / "ml-100k"),
        "--folds",
        "0",
    ]
    print(f"one real run: {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True, env=os.environ, stdout=subprocess.DEVNULL)
    [run] = [p for p in config.RUNS_DIR.iterdir() if (p / "run.json").exists()]
    return run.name


def finished_event_logs(wait_s: float = 120.0) -> list[Path]:
    """The run's Spark event logs once every driver has closed its own (a driver renames
    ``<app>.inprogress`` to ``<app>`` as it stops, shortly after the run returns)."""
    deadline = time.monotonic() + wait_s
    while any(config.SPARK_EVENTS_DIR.glob("*.inprogress")) and time.monotonic() < deadline:
        time.sleep(1)
    return [
        q for q in config.SPARK_EVENTS_DIR.iterdir() if q.is_file() and q.suffix != ".inprogress"
    ]


def copy_as(template: str, key: str, when: float, logs: list[Path]) -> None:
    for src, dst in zip(retention.run_files(template), retention.run_files(key), strict=True):
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.exists():
            shutil.copyfile(src, dst)
    os.utime(config.RUNS_DIR / key, (when, when))
    for log in logs:
        copy = config.SPARK_EVENTS_DIR / f"{log.name}-{key}"
        shutil.copyfile(log, copy)
        os.utime(copy, (when, when))


def simulate(
    template: str, days: int, publish_every: int, policy: retention.Policy | None, logs: list[Path]
) -> list[dict[str, int]]:
    start = time.time() - days * DAY
    published: list[str] = []
    out = []
    for day in range(days):
        key = f"scheduled__sim-{'kept' if policy else 'all'}-{day:02d}"
        when = start + day * DAY
        copy_as(template, key, when, logs)
        if day % publish_every == 0:
            published.insert(0, key)
        if policy is not None:
            retention.prune(published, policy, now=when + 3600)
        use = retention.disk_use()
        use["runs_on_disk"] = sum(
            1 for p in config.RUNS_DIR.iterdir() if p.name.startswith("sched")
        )
        out.append(use)
    for p in list(config.RUNS_DIR.glob("scheduled__sim-*")):  # leave the template alone
        for path in retention.run_files(p.name):
            retention.remove(path)
    for log in config.SPARK_EVENTS_DIR.glob("*-scheduled__sim-*"):
        log.unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.retention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--publish-every", type=int, default=3, help="every Nth run is published")
    args = p.parse_args(argv)
    try:
        template = one_real_run()
        # The template's own logs move aside: each simulated day gets copies dated that day.
        aside = STATE / "template-event-logs"
        aside.mkdir()
        logs = [Path(shutil.move(q, aside / q.name)) for q in finished_event_logs()]
        one = {
            k: retention.size_of(p)
            for k, p in zip(
                ("run folder", "data docs", "report"), retention.run_files(template), strict=True
            )
        }
        one["event logs"] = sum(q.stat().st_size for q in logs)
        policy = retention.Policy.from_config()
        kept = simulate(template, args.days, args.publish_every, policy, logs)
        unbounded = simulate(template, args.days, args.publish_every, None, logs)
    finally:
        warehouse.stop_embedded()
    mib = 1024 * 1024
    print("\none ML-100K run: " + ", ".join(f"{k} {v / mib:.1f} MiB" for k, v in one.items()))
    print(f"policy: {vars(policy)}\n")
    print("| day | runs kept | disk with retention (MiB) | runs without | disk without (MiB) |")
    print("|---:|---:|---:|---:|---:|")
    for day, (a, b) in enumerate(zip(kept, unbounded, strict=True), 1):
        if day in (1, 5, 10, 11, 15, 20, 25, 30) or day == args.days:
            total_a = sum(v for k, v in a.items() if k != "runs_on_disk") / mib
            total_b = sum(v for k, v in b.items() if k != "runs_on_disk") / mib
            print(
                f"| {day} | {a['runs_on_disk']} | {total_a:.1f} | {b['runs_on_disk']} | "
                f"{total_b:.1f} |"
            )
    out = ROOT / "bench" / "results" / "retention.json"
    out.write_text(
        json.dumps(
            {
                "one_run_bytes": one,
                "policy": vars(policy),
                "with_retention": kept,
                "without": unbounded,
            },
            indent=1,
        )
    )
    print(f"\nwritten: {out}")
    shutil.rmtree(STATE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
