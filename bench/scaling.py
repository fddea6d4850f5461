"""Scaling benchmark: the whole pipeline on synthetic data of growing size.

Each case is a fresh install (its own ``RECO_VAR_DIR`` under ``var/bench/scaling``: lake,
embedded PostgreSQL, Airflow home) running ``reco run`` exactly as an operator would,
so the time is the real DAG's time (Airflow, the four Spark steps, GX, publish, report):

- ``fixed`` cases: fixed ALS parameters, no cross-validation (``--folds 0``), on data
  shaped like MovieLens 1M (6K users x 3.7K items), 5M, and MovieLens 20M (138K users x
  27K items); the fitted exponent of time vs ratings says how cost grows;
- ``cv`` case: the default retraining (3-fold CV of every ranking candidate of the
  default grids, implicit ALS and EASE; one rating-model fit) on the 1M shape.

Per case: wall time of ``reco run``, each DAG task's wall time (from Airflow, in
``reco.stage_timings``), the phases inside the Spark jobs, and the peak resident memory
of the whole process tree (sampled every 0.5 s: the Airflow process with the
driver JVM and its Python workers; the embedded PostgreSQL server is not counted), of each
kind of process in it (:func:`role_of`) and of the tree while each task ran.

Run with ``make bench`` (or ``python -m bench.scaling --shapes 1m,5m --no-cv``); prints
progress, then a markdown table, and writes ``bench/results/scaling.json`` and
``bench/results/scaling.md``. Synthetic datasets are generated once into
``var/bench/data``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from reco.data.synthetic import SyntheticSpec, write_dataset

ROOT = Path(__file__).resolve().parent.parent

BENCH_DIR = ROOT / "var" / "bench"
RECO = Path(sys.executable).parent / "reco"
RESULTS = ROOT / "bench" / "results"

# users, items, ratings: MovieLens 1M and 20M, and a shape between them.
SHAPES: dict[str, tuple[int, int, int]] = {
    "1m": (6_040, 3_706, 1_000_209),
    "5m": (35_000, 12_000, 5_000_000),
    "20m": (138_493, 26_744, 20_000_263),
}
# Fixed parameters of the scaling cases (no search).
FIXED_GRID = {"rank": [10], "regParam": [0.1], "maxIter": [10]}
FIXED_RANKING_GRID = {"rank": [20], "regParam": [1.0], "alpha": [5.0], "maxIter": [10]}


def dataset_for(shape: str) -> Path:
    """The synthetic dataset of a shape, generated once (deterministic, seeded)."""
    users, items, ratings = SHAPES[shape]
    out = BENCH_DIR / "data" / shape
    spec = SyntheticSpec(
        n_users=users,
        n_items=items,
        mean_ratings_per_user=ratings / users,
        min_ratings_per_user=20,  # as in MovieLens: every user has at least 20 ratings
    )
    manifest = out / "manifest.json"
    if (
        manifest.exists()
        and json.loads(manifest.read_text()).get("spec", {}).get("n_users") == users
    ):
        return out
    print(f"  generating {shape}: {users:,} users x {items:,} items ...", flush=True)
    t0 = time.perf_counter()
    info = write_dataset(out, spec)
    print(f"  {info['n_ratings']:,} ratings in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


# What each process of a run is, for the per-process peaks.
ROLES = ("python_driver", "jvm", "python_workers", "other")


def role_of(proc: Any, root_pid: int) -> str:
    """``python_driver``: ``reco run`` itself (Airflow's dag.test(), the tasks' Python,
    pandas and Arrow batches on the driver side); ``jvm``: the Spark driver JVM (heap and
    off-heap); ``python_workers``: PySpark's daemon and workers (pandas UDFs, Arrow);
    ``other``: launchers and the rest."""
    if proc.pid == root_pid:
        return "python_driver"
    cmdline = " ".join(proc.cmdline())
    if proc.name() == "java" or "/bin/java" in cmdline:
        return "jvm"
    if "pyspark.daemon" in cmdline or "pyspark.worker" in cmdline:
        return "python_workers"
    return "other"


class TreeMemory:
    """Resident memory of a process and all its descendants, sampled in a thread: the
    tree's peak, each role's peak (the sum over its processes, :func:`role_of`) and its
    largest single process, and a timeline to split the peaks by stage."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.every_s = every_s
        self.peak_total = 0
        self.peak_single = 0
        self.current = 0
        self.peak_role = dict.fromkeys(ROLES, 0)
        self.peak_role_single = dict.fromkeys(ROLES, 0)
        self.most_workers = 0
        self.timeline: list[tuple[float, int]] = []  # (epoch seconds, tree total)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            by_role = dict.fromkeys(ROLES, 0)
            workers = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    rss = p.memory_info().rss
                    role = role_of(p, self.root.pid)
                    total += rss
                    by_role[role] += rss
                    workers += role == "python_workers"
                    self.peak_single = max(self.peak_single, rss)
                    self.peak_role_single[role] = max(self.peak_role_single[role], rss)
            self.current = total
            self.peak_total = max(self.peak_total, total)
            for role, rss in by_role.items():
                self.peak_role[role] = max(self.peak_role[role], rss)
            self.most_workers = max(self.most_workers, workers)
            self.timeline.append((time.time(), total))
            self._stop.wait(self.every_s)

    def peak_between(self, start: float, end: float) -> int:
        """The peak of the samples taken while ``start``-``end`` ran, one interval either
        side (a task shorter than the interval still gets the samples around it)."""
        lo, hi = start - self.every_s, end + self.every_s
        return max((rss for t, rss in self.timeline if lo <= t <= hi), default=0)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def gib(n: int) -> float:
    return round(n / 2**30, 2)


def case_env(var_dir: Path, driver_memory: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("WAREHOUSE_URL", "AIRFLOW_HOME", "RECO_LAKE_DIR", "RECO_REPORTS_DIR"):
        env.pop(key, None)  # every case is a fresh, self-contained install
    env.update(
        RECO_VAR_DIR=str(var_dir),
        RECO_PGDATA=str(var_dir / "pgdata"),
        RECO_DRIVER_MEMORY=driver_memory,
        PYTHONUNBUFFERED="1",
    )
    return env


def stage_rows(env: dict[str, str]) -> list[dict[str, Any]]:
    """The case's ``reco.stage_timings`` rows (it holds exactly one run)."""
    import psycopg2

    url = subprocess.run(
        [str(RECO), "warehouse-url"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT stage, phase, seconds, extract(epoch FROM started_at) "
            "FROM reco.stage_timings ORDER BY started_at"
        )
        return [
            {"stage": s, "phase": p, "seconds": float(x), "started": float(t)}
            for s, p, x, t in cur.fetchall()
        ]


def run_case(name: str, shape: str, cv: bool, driver_memory: str) -> dict[str, Any]:
    dataset = dataset_for(shape)
    n_ratings = json.loads((dataset / "manifest.json").read_text())["n_ratings"]
    var_dir = BENCH_DIR / "scaling" / name
    env = case_env(var_dir, driver_memory)
    if var_dir.exists():  # an earlier run of this case: stop its server, start afresh
        subprocess.run([str(RECO), "db", "stop"], env=env, capture_output=True)
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True)
    log = var_dir / "run.log"
    print(f"[{name}] fresh install in {var_dir} (reco init, not timed)", flush=True)
    subprocess.run([str(RECO), "init"], env=env, check=True, capture_output=True)
    cmd = [str(RECO), "run", "--dataset", str(dataset)]
    if not cv:
        cmd += [
            "--folds",
            "0",
            "--grid",
            json.dumps(FIXED_GRID),
            "--ranking-grid",
            json.dumps(FIXED_RANKING_GRID),
        ]
    print(f"[{name}] {n_ratings:,} ratings: {' '.join(cmd[1:])}  (log: {log})", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        with TreeMemory(proc.pid) as mem:
            while proc.poll() is None:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    print(
                        f"[{name}]   {time.perf_counter() - t0:5.0f} s, "
                        f"{mem.current / 2**30:.1f} GiB resident now",
                        flush=True,
                    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"[{name}] reco run failed (exit {proc.returncode}); log tail:\n{tail}")
    rows = stage_rows(env)
    subprocess.run([str(RECO), "db", "stop"], env=env, capture_output=True)
    tasks = {r["stage"]: r["seconds"] for r in rows if r["phase"] == "airflow_task"}
    phases = {f"{r['stage']}/{r['phase']}": r["seconds"] for r in rows}
    result = {
        "case": name,
        "shape": shape,
        "users": SHAPES[shape][0],
        "items": SHAPES[shape][1],
        "ratings": n_ratings,
        "cv": cv,
        "params": "default grids, 3-fold CV"
        if cv
        else {"rating": FIXED_GRID, "ranking": FIXED_RANKING_GRID},
        "driver_memory": driver_memory,
        "wall_s": round(wall, 1),
        "peak_rss_gib": gib(mem.peak_total),
        "peak_single_process_rss_gib": gib(mem.peak_single),
        # each role's peak (its processes summed) and its largest process
        "peak_rss_by_process_gib": {role: gib(mem.peak_role[role]) for role in ROLES},
        "peak_rss_largest_process_gib": {role: gib(mem.peak_role_single[role]) for role in ROLES},
        "most_python_workers": mem.most_workers,
        # the tree's peak while each DAG task ran
        "peak_rss_by_task_gib": {
            r["stage"]: gib(mem.peak_between(r["started"], r["started"] + r["seconds"]))
            for r in rows
            if r["phase"] == "airflow_task"
        },
        "tasks_s": tasks,
        "phases_s": phases,
    }
    print(
        f"[{name}] done in {wall:.0f} s, peak {result['peak_rss_gib']} GiB: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in tasks.items()),
        flush=True,
    )
    return result


def fitted_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(time) on log(ratings)."""
    if len(points) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


TASK_ORDER = (
    "prepare",
    "ingest",
    "validate",
    "train",
    "recommend",
    "publish",
    "record_quality",
    "report",
)


def markdown(results: list[dict[str, Any]], exponents: dict[str, float | None]) -> str:
    tasks = [t for t in TASK_ORDER if any(t in r["tasks_s"] for r in results)]
    head = ["case", "ratings", "users x items", "wall s", "peak GiB", *(f"{t} s" for t in tasks)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [
            r["case"],
            f"{r['ratings']:,}",
            f"{r['users']:,} x {r['items']:,}",
            f"{r['wall_s']:.0f}",
            f"{r['peak_rss_gib']:.1f}",
            *(f"{r['tasks_s'].get(t, float('nan')):.0f}" for t in tasks),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Peak resident memory, GiB: the whole process tree, each kind of process (summed "
        "over its processes; the largest single one in brackets), and the tree while each "
        "task ran:"
    )
    lines.append("")
    head = ["case", "tree", *ROLES, "workers", *tasks]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        by, big = r["peak_rss_by_process_gib"], r["peak_rss_largest_process_gib"]
        cells = [
            r["case"],
            f"{r['peak_rss_gib']:.1f}",
            *(f"{by[role]:.1f} ({big[role]:.1f})" for role in ROLES),
            str(r["most_python_workers"]),
            *(f"{r['peak_rss_by_task_gib'].get(t, float('nan')):.1f}" for t in tasks),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        'Reasons ("because you liked X", `recommend/because`: the liked item closest to '
        "each recommendation), share of the run's wall time:"
    )
    lines.append("")
    for r in results:
        because = r["phases_s"].get("recommend/because")
        if because is not None:
            lines.append(
                f"- {r['case']}: {because:.1f} s of {r['wall_s']:.0f} s "
                f"({because / r['wall_s']:.1%})"
            )
    lines.append("")
    lines.append("Fitted exponent of time vs ratings (fixed parameters, log-log least squares):")
    lines.append("")
    for key, value in exponents.items():
        lines.append(f"- {key}: {'n/a' if value is None else f'{value:.2f}'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--shapes", default="1m,5m,20m", help="fixed-parameter cases to run")
    ap.add_argument("--no-cv", action="store_true", help="skip the default-CV case on 1M")
    ap.add_argument("--cv-only", action="store_true", help="run only the default-CV case")
    ap.add_argument(
        "--driver-memory", default="8g", help="Spark driver heap for every case (default 8g)"
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "scaling.json")
    args = ap.parse_args(argv)
    shapes = [] if args.cv_only else [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        ap.error(f"unknown shape(s) {unknown}: choose among {sorted(SHAPES)}")
    if not RECO.exists():
        raise SystemExit(f"{RECO} not found: run `make setup` first")

    results = [run_case(f"fixed-{s}", s, False, args.driver_memory) for s in shapes]
    if not args.no_cv:
        results.append(run_case("cv-1m", "1m", True, args.driver_memory))

    fixed = [r for r in results if not r["cv"]]
    exponents: dict[str, float | None] = {
        "whole run (wall)": fitted_exponent([(r["ratings"], r["wall_s"]) for r in fixed])
    }
    for task in TASK_ORDER:
        pts = [(r["ratings"], r["tasks_s"][task]) for r in fixed if task in r["tasks_s"]]
        if len(pts) == len(fixed):
            exponents[task] = fitted_exponent(pts)
    table = markdown(results, exponents)
    print()
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "exponents": exponents}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
